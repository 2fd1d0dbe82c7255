#include "providers/openai/openai_adapter.h"

#include <boost/beast/http/field.hpp>

#include "providers/common/stream_pump.h"
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

asio::awaitable<AttemptResult> OpenAiAdapter::Complete(const core::CompletionRequest& request,
                                                       const Target& target, ChunkSink& sink,
                                                       CancelToken& cancel) {
  AttemptResult result;
  if (target.endpoint == nullptr) {
    result.status = MissingEndpoint(target);
    co_return result;
  }
  const UpstreamProfile& p = *target.provider;
  const OpenAiFlavor flavor = FlavorOf(p.kind);
  http::request<http::string_body> req{
      http::verb::post,
      openai::ChatPath(flavor, target.endpoint->base_path, target.upstream_model, p.api_version),
      11};
  req.set(http::field::content_type, "application/json");
  req.set(http::field::accept, request.stream ? "text/event-stream" : "application/json");
  req.set(http::field::user_agent, "meridian");
  if (!request.traceparent.empty()) req.set("traceparent", request.traceparent);
  if (!target.credential.empty()) {
    if (flavor == OpenAiFlavor::kAzure) {
      req.set("api-key", target.credential);
    } else {
      req.set(http::field::authorization, "Bearer " + target.credential);
    }
  }
  req.body() = openai::BuildChatRequestBody(request, target.upstream_model, flavor, request.stream);

  std::unique_ptr<UpstreamResponse> response;
  result.status = co_await client_.Send(*target.endpoint, req, response, cancel);
  if (!result.status.ok()) co_return result;

  if (response->status() != 200) {
    const std::string body = co_await ReadErrorBody(*response, cancel);
    result.status = openai::MapUpstreamError(
        static_cast<int>(response->status()), body, response->header("retry-after"),
        response->header("retry-after-ms"), response->header("x-should-retry"));
    co_return result;
  }

  if (!request.stream) {
    co_await DeliverBody(
        *response,
        [](std::string_view body, std::vector<core::Chunk>& out) {
          return openai::DecodeChatResponse(body, out);
        },
        sink, cancel, result);
    co_return result;
  }

  // The OpenAI decoder reads the data of each event.
  struct Decoder {
    openai::OpenAiStreamDecoder d;
    core::Status Decode(const SseEvent& e, std::vector<core::Chunk>& out) {
      return d.Decode(e.data, out);
    }
    core::Status Finish(std::vector<core::Chunk>& out) { return d.Finish(out); }
    bool done() const { return d.done(); }
  } decoder;
  co_await PumpSse(*response, decoder, sink, cancel, result);
  co_return result;
}

}  // namespace meridian::providers
