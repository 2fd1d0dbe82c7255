#include "providers/anthropic/anthropic_adapter.h"

#include <boost/beast/http/field.hpp>

#include "providers/anthropic/anthropic_codec.h"
#include "providers/common/json_util.h"
#include "providers/common/stream_pump.h"

namespace meridian::providers {

std::string AnthropicAdapter::MessagesPath(std::string_view base_path) {
  constexpr std::string_view kV1 = "/v1";
  if (base_path.ends_with(kV1)) base_path.remove_suffix(kV1.size());
  return std::string(base_path) + std::string(anthropic::kMessagesPath);
}

asio::awaitable<AttemptResult> AnthropicAdapter::Complete(const core::CompletionRequest& request,
                                                          const Target& target, ChunkSink& sink,
                                                          CancelToken& cancel) {
  AttemptResult result;
  if (target.endpoint == nullptr) {
    result.status = MissingEndpoint(target);
    co_return result;
  }
  const UpstreamProfile& p = *target.provider;
  result.status = jsonutil::RefuseNonTextParts(request, p.id);
  if (!result.status.ok()) co_return result;
  http::request<http::string_body> req{http::verb::post, MessagesPath(target.endpoint->base_path),
                                       11};
  req.set(http::field::content_type, anthropic::kContentType);
  req.set(http::field::accept, request.stream ? "text/event-stream" : "application/json");
  req.set(http::field::user_agent, "meridian");
  if (!request.traceparent.empty()) req.set("traceparent", request.traceparent);
  req.set(anthropic::kVersionHeader,
          p.anthropic_version.empty() ? anthropic::kDefaultVersion : p.anthropic_version);
  if (!target.credential.empty()) req.set(anthropic::kApiKeyHeader, target.credential);
  req.body() = anthropic::BuildMessagesRequestBody(request, target.upstream_model, request.stream,
                                                   p.max_tokens_default);

  std::unique_ptr<UpstreamResponse> response;
  result.status = co_await client_.Send(*target.endpoint, req, response, cancel);
  if (!result.status.ok()) co_return result;

  if (response->status() != 200) {
    const std::string body = co_await ReadErrorBody(*response, cancel);
    result.status = anthropic::MapAnthropicError(static_cast<int>(response->status()), body,
                                                 response->header("retry-after"));
    co_return result;
  }
  if (!request.stream) {
    co_await DeliverBody(
        *response,
        [](std::string_view body, std::vector<core::Chunk>& out) {
          return anthropic::DecodeMessagesResponse(body, out);
        },
        sink, cancel, result);
    co_return result;
  }
  anthropic::AnthropicStreamDecoder decoder;
  co_await PumpSse(*response, decoder, sink, cancel, result);
  co_return result;
}

}  // namespace meridian::providers
