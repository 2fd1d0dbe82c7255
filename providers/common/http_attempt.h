// The one HTTP shell every vendor adapter runs in: request out, error status mapped, body or
// SSE stream decoded into chunks. A vendor supplies only its pure codec, as a type with
//
//   core::Status Prepare(const core::CompletionRequest&, const Target&,
//                        http::request<http::string_body>& req)
//       path (req.target), content type, auth and vendor headers, body; an error refuses the
//       attempt before anything is sent (e.g. a content part the vendor cannot take);
//   core::Status MapError(int http_status, std::string_view body, const UpstreamResponse&)
//       a non-200 answer as a Status (the response gives its headers: retry-after, ...);
//   core::Status DecodeBody(std::string_view body, std::vector<core::Chunk>& out)
//       a whole non-streaming body;
//   Decoder StreamDecoder()
//       a fresh stream decoder for PumpSse (Decode(const SseEvent&, out), Finish(out), done()).
//
// and, when the vendor has an embeddings API (core::Operation::kEmbed),
//
//   core::Status PrepareEmbeddings(const core::CompletionRequest&, const Target&,
//                                  http::request<http::string_body>& req)
//   core::Status DecodeEmbeddings(const core::CompletionRequest&, std::string_view body,
//                                 std::vector<core::Chunk>& out)
//
// (a vendor without them refuses embeddings requests before anything is sent);
// so a new vendor is one fuzzable codec, one `HttpProvider<Vendor>` factory, and one case in
// the router's adapter switch.
#pragma once

#include <boost/beast/http/field.hpp>
#include <concepts>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "providers/common/http_client.h"
#include "providers/common/stream_pump.h"
#include "providers/provider.h"

namespace meridian::providers {

/// A vendor codec with an embeddings API (see the file comment).
template <class Vendor>
concept HasEmbeddings = requires(const Vendor& v, const core::CompletionRequest& r, const Target& t,
                                 http::request<http::string_body>& q, std::string_view b,
                                 std::vector<core::Chunk>& o) {
  { v.PrepareEmbeddings(r, t, q) } -> std::same_as<core::Status>;
  { v.DecodeEmbeddings(r, b, o) } -> std::same_as<core::Status>;
};

template <class Vendor>
asio::awaitable<AttemptResult> RunHttpAttempt(HttpClient& client, Vendor vendor,
                                              const core::CompletionRequest& request,
                                              const Target& target, ChunkSink& sink,
                                              CancelToken& cancel) {
  AttemptResult result;
  if (target.endpoint == nullptr) {
    result.status = MissingEndpoint(target);
    co_return result;
  }
  http::request<http::string_body> req{http::verb::post, "/", 11};
  req.set(http::field::accept, request.stream ? "text/event-stream" : "application/json");
  req.set(http::field::user_agent, "meridian");
  if (!request.traceparent.empty()) req.set("traceparent", request.traceparent);
  constexpr bool kEmbeds = HasEmbeddings<Vendor>;
  const bool embed = request.op == core::Operation::kEmbed;
  if (!embed) {
    result.status = vendor.Prepare(request, target, req);
  } else if constexpr (kEmbeds) {
    result.status = vendor.PrepareEmbeddings(request, target, req);
  } else {
    result.status = core::Status::Error(
        core::StatusCode::kInvalidArgument,
        "provider '" + target.provider->id + "' has no embeddings API; the request was not sent",
        "unsupported_input");
  }
  if (!result.status.ok()) co_return result;

  std::unique_ptr<UpstreamResponse> response;
  result.status = co_await client.Send(*target.endpoint, req, response, cancel);
  if (!result.status.ok()) co_return result;
  if (response->status() != 200) {
    const std::string body = co_await ReadErrorBody(*response, cancel);
    result.status = vendor.MapError(static_cast<int>(response->status()), body, *response);
    co_return result;
  }
  if (!request.stream) {
    co_await DeliverBody(
        *response,
        [&vendor, &request, embed](std::string_view body, std::vector<core::Chunk>& out) {
          if constexpr (kEmbeds) {
            if (embed) return vendor.DecodeEmbeddings(request, body, out);
          }
          return vendor.DecodeBody(body, out);
        },
        sink, cancel, result);
    co_return result;
  }
  auto decoder = vendor.StreamDecoder();
  co_await PumpSse(*response, decoder, sink, cancel, result);
  co_return result;
}

/// A provider that speaks HTTP through the shell above with the codec `Vendor`. Each vendor's
/// adapter .cpp defines its Vendor and a factory returning one of these.
template <class Vendor>
class HttpProvider final : public Provider {
 public:
  explicit HttpProvider(HttpClient& client) : client_(client) {}
  asio::awaitable<AttemptResult> Complete(const core::CompletionRequest& request,
                                          const Target& target, ChunkSink& sink,
                                          CancelToken& cancel) override {
    return RunHttpAttempt(client_, Vendor{}, request, target, sink, cancel);
  }

 private:
  HttpClient& client_;
};

}  // namespace meridian::providers
