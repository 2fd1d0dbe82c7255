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
  core::Status Prepare(const core::CompletionRequest& request, const Target& target,
                       http::request<http::string_body>& req) const {
    const UpstreamProfile& p = *target.provider;
    const OpenAiFlavor flavor = FlavorOf(p.kind);
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
  core::Status MapError(int status, std::string_view body, const UpstreamResponse& r) const {
    return openai::MapUpstreamError(status, body, r.header("retry-after"),
                                    r.header("retry-after-ms"), r.header("x-should-retry"));
  }
  core::Status DecodeBody(std::string_view body, std::vector<core::Chunk>& out) const {
    return openai::DecodeChatResponse(body, out);
  }
  /// The OpenAI decoder reads the data of each event.
  struct Decoder {
    openai::OpenAiStreamDecoder d;
    core::Status Decode(const SseEvent& e, std::vector<core::Chunk>& out) {
      return d.Decode(e.data, out);
    }
    core::Status Finish(std::vector<core::Chunk>& out) { return d.Finish(out); }
    bool done() const { return d.done(); }
  };
  Decoder StreamDecoder() const { return {}; }
};

std::unique_ptr<Provider> MakeOpenAiAdapter(HttpClient& client) {
  return std::make_unique<HttpProvider<OpenAiVendor>>(client);
}

}  // namespace meridian::providers
