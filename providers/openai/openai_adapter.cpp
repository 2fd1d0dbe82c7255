#include "providers/openai/openai_adapter.h"

#include <boost/beast/http/field.hpp>

#include "providers/common/sse_parser.h"
#include "providers/openai/openai_codec.h"

namespace meridian::providers {
namespace {

using openai::OpenAiFlavor;

OpenAiFlavor FlavorOf(policy::ProviderKind kind) {
  switch (kind) {
    case policy::ProviderKind::kAzureOpenAi:
      return OpenAiFlavor::kAzure;
    case policy::ProviderKind::kOpenAiCompatible:
      return OpenAiFlavor::kCompatible;
    default:
      return OpenAiFlavor::kOpenAi;
  }
}

constexpr std::size_t kMaxErrorBody = 64 * 1024;

}  // namespace

asio::awaitable<AttemptResult> OpenAiAdapter::Complete(const core::CompletionRequest& request,
                                                       const Target& target, ChunkSink& sink,
                                                       CancelToken& cancel) {
  AttemptResult result;
  if (target.endpoint == nullptr) {
    result.status = core::Status::Error(core::StatusCode::kInternal,
                                        "provider '" + target.provider->id + "' has no endpoint");
    co_return result;
  }
  const policy::Provider& p = *target.provider;
  const OpenAiFlavor flavor = FlavorOf(p.kind);
  http::request<http::string_body> req{
      http::verb::post,
      openai::ChatPath(flavor, target.endpoint->base_path, target.upstream_model, p.api_version),
      11};
  req.set(http::field::content_type, "application/json");
  req.set(http::field::accept, request.stream ? "text/event-stream" : "application/json");
  req.set(http::field::user_agent, "meridian");
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
    std::string body;
    // The body only explains the error; a failure reading it still leaves the status.
    (void)co_await response->ReadAll(body, cancel);
    if (body.size() > kMaxErrorBody) body.resize(kMaxErrorBody);
    result.status = openai::MapUpstreamError(
        static_cast<int>(response->status()), body, response->header("retry-after"),
        response->header("retry-after-ms"), response->header("x-should-retry"));
    co_return result;
  }

  std::vector<core::Chunk> chunks;
  // Emits decoded chunks in order; stops at the first error chunk, which becomes the result.
  auto deliver = [&]() -> asio::awaitable<bool> {
    for (auto& c : chunks) {
      if (c.kind == core::Chunk::Kind::kError) {
        result.status = std::move(c.error);
        co_return false;
      }
      result.emitted = true;
      if (!co_await sink.Emit(c)) {
        result.status =
            core::Status::Error(core::StatusCode::kCancelled, "client went away", "cancelled");
        co_return false;
      }
    }
    chunks.clear();
    co_return true;
  };

  if (!request.stream) {
    std::string body;
    result.status = co_await response->ReadAll(body, cancel);
    if (!result.status.ok()) co_return result;
    result.status = openai::DecodeChatResponse(body, chunks);
    if (!result.status.ok()) co_return result;
    (void)co_await deliver();
    co_return result;
  }

  SseParser parser;
  openai::OpenAiStreamDecoder decoder;
  std::vector<SseEvent> events;
  std::string bytes;
  while (!decoder.done()) {
    if (response->done()) {
      parser.Finish();
      (void)decoder.Finish(chunks);
      (void)co_await deliver();
      co_return result;
    }
    bytes.clear();
    auto st = co_await response->ReadSome(bytes, cancel);
    if (!st.ok()) {
      result.status = std::move(st);
      co_return result;
    }
    events.clear();
    const bool parsed = parser.Feed(bytes, events);
    // Events completed before an oversize event are still delivered, then the error ends it.
    for (const auto& e : events) {
      (void)decoder.Decode(e.data, chunks);
      if (decoder.done()) break;
    }
    if (!co_await deliver()) co_return result;
    if (!parsed) {
      result.status = parser.status();
      co_return result;
    }
  }
  // [DONE] seen. The chunked body's terminator usually follows at once; read it briefly so
  // the connection can be reused, but never hold the client's answer for a lingering upstream.
  if (!response->done()) {
    bytes.clear();
    (void)co_await response->ReadSome(bytes, cancel, std::chrono::milliseconds(100));
  }
  co_return result;
}

}  // namespace meridian::providers
