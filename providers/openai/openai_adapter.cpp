#include "providers/openai/openai_adapter.h"

#include "providers/common/http_attempt.h"
#include "providers/openai/openai_codec.h"

namespace meridian::providers {
namespace {

using openai::OpenAiFlavor;

OpenAiFlavor FlavorOf(UpstreamKind kind) {
  switch (kind) {
    case UpstreamKind::kAzureOpenAi:
      return OpenAiFlavor::kAzure;
    case UpstreamKind::kOpenAiCompatible:
      return OpenAiFlavor::kCompatible;
    default:
      return OpenAiFlavor::kOpenAi;
  }
}

}  // namespace

/// The OpenAI family's codec in the shared HTTP shell (http_attempt.h). Not in the anonymous
/// namespace: the shell's coroutine frames hold it.
struct OpenAiVendor {
  static void SetHeaders(OpenAiFlavor flavor, const Target& target,
                         http::request<http::string_body>& req) {
    req.set(http::field::content_type, "application/json");
    if (target.credential.empty()) return;
    if (flavor == OpenAiFlavor::kAzure) {
      req.set("api-key", target.credential);
    } else {
      req.set(http::field::authorization, "Bearer " + target.credential);
    }
  }
  /// A Responses API request to a provider that serves OpenAI's own Responses API.
  static bool Native(const core::CompletionRequest& request, const UpstreamProfile& p) {
    return p.responses_api && request.native.format == core::NativeBody::Format::kOpenAiResponses;
  }

  core::Status Prepare(const core::CompletionRequest& request, const Target& target,
                       http::request<http::string_body>& req) const {
    const UpstreamProfile& p = *target.provider;
    const OpenAiFlavor flavor = FlavorOf(p.kind);
    if (Native(request, p)) {
      req.target(openai::ResponsesPath(target.endpoint->base_path));
      SetHeaders(flavor, target, req);
      req.body() = openai::NativeResponsesRequestBody(request.native.json, target.upstream_model);
      if (req.body().empty()) {
        return core::Status::Error(core::StatusCode::kInternal,
                                   "the request's Responses body is not a JSON object");
      }
      return core::Status::Ok();
    }
    req.target(
        openai::ChatPath(flavor, target.endpoint->base_path, target.upstream_model, p.api_version));
    SetHeaders(flavor, target, req);
    req.body() =
        openai::BuildChatRequestBody(request, target.upstream_model, flavor, request.stream);
    return core::Status::Ok();
  }
  core::Status PrepareEmbeddings(const core::CompletionRequest& request, const Target& target,
                                 http::request<http::string_body>& req) const {
    const UpstreamProfile& p = *target.provider;
    const OpenAiFlavor flavor = FlavorOf(p.kind);
    req.target(openai::EmbeddingsPath(flavor, target.endpoint->base_path, target.upstream_model,
                                      p.api_version));
    SetHeaders(flavor, target, req);
    req.body() = openai::BuildEmbeddingsRequestBody(request, target.upstream_model, flavor);
    return core::Status::Ok();
  }
  core::Status DecodeEmbeddings(const core::CompletionRequest& request, std::string_view body,
                                std::vector<core::Chunk>& out) const {
    return openai::DecodeEmbeddingsResponse(body, request.embedding.size(), out);
  }
  /// Azure names the region that served the call in x-ms-region (residency echo).
  std::string ProcessingEcho(const UpstreamResponse& r, const Target& target) const {
    if (FlavorOf(target.provider->kind) != OpenAiFlavor::kAzure) return {};
    const std::string_view region = r.header("x-ms-region");
    return region.empty() ? std::string() : "x-ms-region=" + std::string(region);
  }
  core::Status MapError(int status, std::string_view body, const UpstreamResponse& r) const {
    return openai::MapUpstreamError(status, body, r.header("retry-after"),
                                    r.header("retry-after-ms"), r.header("x-should-retry"));
  }
  core::Status DecodeBody(const core::CompletionRequest& request, const Target& target,
                          std::string_view body, std::vector<core::Chunk>& out) const {
    if (Native(request, *target.provider)) return openai::DecodeResponsesBody(body, out);
    return openai::DecodeChatResponse(body, out);
  }
  /// The chat decoder reads the data of each event; the Responses one, whole events.
  struct Decoder {
    bool responses = false;
    openai::OpenAiStreamDecoder chat;
    openai::ResponsesStreamDecoder native;
    core::Status Decode(const SseEvent& e, std::vector<core::Chunk>& out) {
      return responses ? native.Decode(e, out) : chat.Decode(e.data, out);
    }
    core::Status Finish(std::vector<core::Chunk>& out) {
      return responses ? native.Finish(out) : chat.Finish(out);
    }
    bool done() const { return responses ? native.done() : chat.done(); }
  };
  Decoder StreamDecoder(const core::CompletionRequest& request, const Target& target) const {
    Decoder d;
    d.responses = Native(request, *target.provider);
    return d;
  }
};

std::unique_ptr<Provider> MakeOpenAiAdapter(HttpClient& client) {
  return std::make_unique<HttpProvider<OpenAiVendor>>(client);
}

}  // namespace meridian::providers
