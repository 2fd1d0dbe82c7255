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
//       a fresh stream decoder for PumpSse (Decode(const SseEvent&, out), Finish(out), done()),
//   and optionally std::string ProcessingEcho(const UpstreamResponse&, const Target&)
//       a response header saying where the request was processed (AttemptResult).
//
// (DecodeBody and StreamDecoder may instead take the request and target first, for a vendor
// whose decoding depends on them: a request sent in its native format, core::NativeBody),
//
// and, when the vendor has an embeddings API (core::Operation::kEmbed),
//
//   core::Status PrepareEmbeddings(const core::CompletionRequest&, const Target&,
//                                  http::request<http::string_body>& req)
//   core::Status DecodeEmbeddings(const core::CompletionRequest&, std::string_view body,
//                                 std::vector<core::Chunk>& out)
//   std::size_t EmbeddingBatch()   (optional: the most inputs one upstream call takes)
//
// (a vendor without them refuses embeddings requests before anything is sent);
// so a new vendor is one fuzzable codec, one `HttpProvider<Vendor>` factory, and one case in
// the router's adapter switch.
#pragma once

#include <algorithm>
#include <boost/beast/http/field.hpp>
#include <concepts>
#include <cstddef>
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

/// A POST with the headers every attempt sends.
inline http::request<http::string_body> NewRequest(const core::CompletionRequest& request) {
  http::request<http::string_body> req{http::verb::post, "/", 11};
  req.set(http::field::accept, request.stream ? "text/event-stream" : "application/json");
  req.set(http::field::user_agent, "meridian");
  if (!request.traceparent.empty()) req.set("traceparent", request.traceparent);
  return req;
}

/// Sends `req` to the target; a non-200 answer becomes the vendor's error status (its body
/// read, bounded). Ok: `response` holds the 200 answer, its body unread.
template <class Vendor>
asio::awaitable<core::Status> SendChecked(HttpClient& client, const Vendor& vendor,
                                          const Target& target,
                                          http::request<http::string_body>& req,
                                          std::unique_ptr<UpstreamResponse>& response,
                                          CancelToken& cancel) {
  const core::Status sent = co_await client.Send(*target.endpoint, req, response, cancel);
  if (!sent.ok()) co_return sent;
  if (response->status() == 200) co_return core::Status::Ok();
  const std::string body = co_await ReadErrorBody(*response, cancel);
  co_return vendor.MapError(static_cast<int>(response->status()), body, *response);
}

/// Inputs [first, first + n) of an embeddings request, as a request of their own.
inline core::CompletionRequest EmbeddingSlice(const core::CompletionRequest& request,
                                              std::size_t first, std::size_t n) {
  core::CompletionRequest part;
  part.op = request.op;
  part.model = request.model;
  part.user = request.user;
  part.traceparent = request.traceparent;
  part.embedding.dimensions = request.embedding.dimensions;
  part.embedding.base64 = request.embedding.base64;
  const auto slice = [first, n](const auto& all, auto& out) {
    if (first >= all.size()) return;
    const auto end = std::min(all.size(), first + n);
    out.assign(all.begin() + static_cast<std::ptrdiff_t>(first),
               all.begin() + static_cast<std::ptrdiff_t>(end));
  };
  slice(request.embedding.texts, part.embedding.texts);
  slice(request.embedding.tokens, part.embedding.tokens);
  return part;
}

/// An embeddings attempt: one upstream call, or, for a vendor with `EmbeddingBatch()` (the
/// most inputs one call takes), one call per batch in order. The vectors are delivered only
/// once every batch answered (indices in the whole request's order, usage summed), so a
/// failing batch leaves nothing emitted and the router may try the next candidate.
template <class Vendor>
asio::awaitable<AttemptResult> RunEmbeddings(HttpClient& client, const Vendor& vendor,
                                             const core::CompletionRequest& request,
                                             const Target& target, ChunkSink& sink,
                                             CancelToken& cancel) {
  AttemptResult result;
  const std::size_t total = request.embedding.size();
  std::size_t batch = total == 0 ? 1 : total;
  if constexpr (requires { vendor.EmbeddingBatch(); }) {
    batch = std::max<std::size_t>(1, std::min(batch, vendor.EmbeddingBatch()));
  }
  std::vector<core::Chunk> all;
  core::Usage usage;
  bool has_usage = false;
  bool started = false;
  const bool whole = batch >= total;
  for (std::size_t first = 0;; first += batch) {
    core::CompletionRequest part;  // the batch, when the request is split
    if (!whole) part = EmbeddingSlice(request, first, batch);
    const core::CompletionRequest& sent = whole ? request : part;
    auto req = NewRequest(sent);
    result.status = vendor.PrepareEmbeddings(sent, target, req);
    if (!result.status.ok()) co_return result;
    std::unique_ptr<UpstreamResponse> response;
    result.status = co_await SendChecked(client, vendor, target, req, response, cancel);
    if (!result.status.ok()) co_return result;
    result.status = CheckContentType(response->header("content-type"), false);
    if (!result.status.ok()) co_return result;
    std::string body;
    result.status = co_await response->ReadAll(body, cancel);
    if (!result.status.ok()) co_return result;
    std::vector<core::Chunk> chunks;
    result.status = vendor.DecodeEmbeddings(sent, body, chunks);
    if (!result.status.ok()) co_return result;
    for (core::Chunk& c : chunks) {
      if (c.kind == core::Chunk::Kind::kStart) {
        if (!started) all.push_back(std::move(c));
        started = true;
      } else if (c.kind == core::Chunk::Kind::kEmbedding) {
        c.index += static_cast<std::int64_t>(first);
        all.push_back(std::move(c));
      } else if (c.kind == core::Chunk::Kind::kUsage) {
        usage.prompt_tokens += c.usage.prompt_tokens;
        usage.total_tokens += c.usage.total_tokens;
        has_usage = true;
      }
    }
    if (first + batch >= total) break;
  }
  if (has_usage) {
    core::Chunk& u = all.emplace_back();
    u.kind = core::Chunk::Kind::kUsage;
    u.usage = usage;
  }
  (void)co_await Deliver(all, sink, result);
  co_return result;
}

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
  if (request.op == core::Operation::kEmbed) {
    if constexpr (HasEmbeddings<Vendor>) {
      co_return co_await RunEmbeddings(client, vendor, request, target, sink, cancel);
    } else {
      result.status = core::Status::Error(
          core::StatusCode::kInvalidArgument,
          "provider '" + target.provider->id + "' has no embeddings API; the request was not sent",
          "unsupported_input");
      co_return result;
    }
  }
  auto req = NewRequest(request);
  result.status = vendor.Prepare(request, target, req);
  if (!result.status.ok()) co_return result;

  std::unique_ptr<UpstreamResponse> response;
  result.status = co_await SendChecked(client, vendor, target, req, response, cancel);
  if (!result.status.ok()) co_return result;
  if constexpr (requires { vendor.ProcessingEcho(*response, target); }) {
    result.processing_echo = vendor.ProcessingEcho(*response, target);
  }
  if (!request.stream) {
    co_await DeliverBody(
        *response,
        [&vendor, &request, &target](std::string_view body, std::vector<core::Chunk>& out) {
          if constexpr (requires { vendor.DecodeBody(request, target, body, out); }) {
            return vendor.DecodeBody(request, target, body, out);
          } else {
            return vendor.DecodeBody(body, out);
          }
        },
        sink, cancel, result);
    co_return result;
  }
  auto decoder = [&vendor, &request, &target] {
    if constexpr (requires { vendor.StreamDecoder(request, target); }) {
      return vendor.StreamDecoder(request, target);
    } else {
      return vendor.StreamDecoder();
    }
  }();
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
