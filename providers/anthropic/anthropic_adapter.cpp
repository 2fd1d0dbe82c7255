#include "providers/anthropic/anthropic_adapter.h"

#include "providers/anthropic/anthropic_codec.h"
#include "providers/common/http_attempt.h"

namespace meridian::providers {

namespace {

std::string MessagesPath(std::string_view base_path) {
  constexpr std::string_view kV1 = "/v1";
  if (base_path.ends_with(kV1)) base_path.remove_suffix(kV1.size());
  return std::string(base_path) + std::string(anthropic::kMessagesPath);
}

}  // namespace

/// Anthropic's Messages codec in the shared HTTP shell (http_attempt.h). Not in the anonymous
/// namespace: the shell's coroutine frames hold it.
struct AnthropicVendor {
  /// The client spoke Anthropic's own Messages API: its body goes as it came.
  static bool Native(const core::CompletionRequest& request) {
    return request.native.format == core::NativeBody::Format::kAnthropicMessages;
  }

  core::Status Prepare(const core::CompletionRequest& request, const Target& target,
                       http::request<http::string_body>& req) const {
    const UpstreamProfile& p = *target.provider;
    if (Native(request)) {
      req.body() = anthropic::NativeMessagesRequestBody(request.native.json, target.upstream_model);
      if (req.body().empty()) {
        return core::Status::Error(core::StatusCode::kInternal,
                                   "the request's Messages body is not a JSON object");
      }
    } else {
      if (auto st = anthropic::CheckContentParts(request, p.id); !st.ok()) return st;
      req.body() = anthropic::BuildMessagesRequestBody(request, target.upstream_model,
                                                       request.stream, p.max_tokens_default);
    }
    req.target(MessagesPath(target.endpoint->base_path));
    req.set(http::field::content_type, anthropic::kContentType);
    req.set(anthropic::kVersionHeader,
            p.anthropic_version.empty() ? anthropic::kDefaultVersion : p.anthropic_version);
    if (!target.credential.empty()) req.set(anthropic::kApiKeyHeader, target.credential);
    return core::Status::Ok();
  }
  core::Status MapError(int status, std::string_view body, const UpstreamResponse& r) const {
    return anthropic::MapAnthropicError(status, body, r.header("retry-after"));
  }
  core::Status DecodeBody(const core::CompletionRequest& request, const Target& target,
                          std::string_view body, std::vector<core::Chunk>& out) const {
    (void)target;
    auto st = anthropic::DecodeMessagesResponse(body, out);
    if (st.ok() && Native(request) && !out.empty()) out.front().native.assign(body);
    return st;
  }
  anthropic::AnthropicStreamDecoder StreamDecoder(const core::CompletionRequest& request,
                                                  const Target& target) const {
    (void)target;
    return anthropic::AnthropicStreamDecoder(Native(request));
  }
};

std::unique_ptr<Provider> MakeAnthropicAdapter(HttpClient& client) {
  return std::make_unique<HttpProvider<AnthropicVendor>>(client);
}

}  // namespace meridian::providers
