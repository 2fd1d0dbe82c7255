#include "providers/dashscope/dashscope_adapter.h"

#include <boost/beast/http/field.hpp>

#include "providers/common/json_util.h"
#include "providers/common/stream_pump.h"
#include "providers/dashscope/dashscope_codec.h"

namespace meridian::providers {

std::string DashScopeAdapter::GenerationPath(std::string_view base_path) {
  constexpr std::string_view kApiV1 = "/api/v1";
  if (base_path.ends_with(kApiV1)) {
    base_path.remove_suffix(kApiV1.size());
  }
  return std::string(base_path) + std::string(dashscope::kGenerationPath);
}

asio::awaitable<AttemptResult> DashScopeAdapter::Complete(const core::CompletionRequest& request,
                                                          const Target& target, ChunkSink& sink,
                                                          CancelToken& cancel) {
  AttemptResult result;
  if (target.endpoint == nullptr) {
    result.status = MissingEndpoint(target);
    co_return result;
  }
  result.status = jsonutil::RefuseNonTextParts(request, target.provider->id);
  if (!result.status.ok()) co_return result;
  http::request<http::string_body> req{http::verb::post, GenerationPath(target.endpoint->base_path),
                                       11};
  req.set(http::field::content_type, dashscope::kContentType);
  req.set(http::field::accept, request.stream ? "text/event-stream" : "application/json");
  req.set(http::field::user_agent, "meridian");
  if (!request.traceparent.empty()) req.set("traceparent", request.traceparent);
  if (request.stream) req.set(dashscope::kSseHeaderName, dashscope::kSseHeaderValue);
  if (!target.credential.empty()) {
    req.set(http::field::authorization, "Bearer " + target.credential);
  }
  req.body() =
      dashscope::BuildGenerationRequestBody(request, target.upstream_model, request.stream);

  std::unique_ptr<UpstreamResponse> response;
  result.status = co_await client_.Send(*target.endpoint, req, response, cancel);
  if (!result.status.ok()) co_return result;

  if (response->status() != 200) {
    const std::string body = co_await ReadErrorBody(*response, cancel);
    result.status = dashscope::MapDashScopeError(static_cast<int>(response->status()), body);
    co_return result;
  }
  if (!request.stream) {
    co_await DeliverBody(
        *response,
        [](std::string_view body, std::vector<core::Chunk>& out) {
          return dashscope::DecodeGenerationResponse(body, out);
        },
        sink, cancel, result);
    co_return result;
  }
  dashscope::DashScopeStreamDecoder decoder(/*incremental_output=*/true);
  co_await PumpSse(*response, decoder, sink, cancel, result);
  co_return result;
}

}  // namespace meridian::providers
