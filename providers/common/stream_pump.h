// The I/O loop every adapter shares once its upstream answered 200: read body bytes, split
// them into SSE events, decode them into chunks and hand those to the sink one by one
// (awaiting it: backpressure). The vendor-specific part is the decoder.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "providers/common/content_type.h"
#include "providers/common/http_client.h"
#include "providers/common/sse_parser.h"
#include "providers/provider.h"

namespace meridian::providers {

/// Bytes of an upstream error body worth reading (it only explains the status).
inline constexpr std::size_t kMaxErrorBody = 64 * 1024;

/// Emits `chunks` in order and clears them. Stops at the first kError chunk, whose status
/// becomes result.status, or when the sink is gone (kCancelled). False when it stopped.
inline asio::awaitable<bool> Deliver(std::vector<core::Chunk>& chunks, ChunkSink& sink,
                                     AttemptResult& result) {
  for (auto& c : chunks) {
    if (c.kind == core::Chunk::Kind::kError) {
      result.status = std::move(c.error);
      chunks.clear();
      co_return false;
    }
    result.emitted = true;
    if (!co_await sink.Emit(c)) {
      result.status =
          core::Status::Error(core::StatusCode::kCancelled, "client went away", "cancelled");
      chunks.clear();
      co_return false;
    }
  }
  chunks.clear();
  co_return true;
}

/// Reads a non-200 response's body (bounded); a failure reading it leaves it partial.
inline asio::awaitable<std::string> ReadErrorBody(UpstreamResponse& response, CancelToken& cancel) {
  std::string body;
  (void)co_await response.ReadAll(body, cancel);
  if (body.size() > kMaxErrorBody) body.resize(kMaxErrorBody);
  co_return body;
}

/// An attempt against a provider without a parsed endpoint (the policy compiler requires one
/// for every kind but sim, so this is a bug, reported rather than crashed on).
inline core::Status MissingEndpoint(const Target& target) {
  return core::Status::Error(core::StatusCode::kInternal,
                             "provider '" + target.provider->id + "' has no endpoint");
}

/// Reads a whole (non-streaming) body and delivers what `decode(body, chunks)` (returning the
/// error Status it found, if any) makes of it. Sets result.status on failure.
template <class Decode>
asio::awaitable<void> DeliverBody(UpstreamResponse& response, Decode decode, ChunkSink& sink,
                                  CancelToken& cancel, AttemptResult& result) {
  result.status = CheckContentType(response.header("content-type"), false);
  if (!result.status.ok()) co_return;
  std::string body;
  std::vector<core::Chunk> chunks;
  result.status = co_await response.ReadAll(body, cancel);
  if (!result.status.ok()) co_return;
  result.status = decode(body, chunks);
  if (!result.status.ok()) co_return;
  (void)co_await Deliver(chunks, sink, result);
}

/// Streams an SSE body through `decoder` into `sink`. Decoder: `Decode(const SseEvent&,
/// std::vector<core::Chunk>&)`, `Finish(std::vector<core::Chunk>&)` (the body ended) and
/// `done()` (its stream's end was seen). Sets result.status on failure.
template <class Decoder>
asio::awaitable<void> PumpSse(UpstreamResponse& response, Decoder& decoder, ChunkSink& sink,
                              CancelToken& cancel, AttemptResult& result) {
  result.status = CheckContentType(response.header("content-type"), true);
  if (!result.status.ok()) co_return;
  SseParser parser;
  std::vector<SseEvent> events;
  std::vector<core::Chunk> chunks;
  std::string bytes;
  while (!decoder.done()) {
    if (response.done()) {
      parser.Finish();
      (void)decoder.Finish(chunks);
      (void)co_await Deliver(chunks, sink, result);
      co_return;
    }
    bytes.clear();
    auto st = co_await response.ReadSome(bytes, cancel);
    if (!st.ok()) {
      result.status = std::move(st);
      co_return;
    }
    events.clear();
    const bool parsed = parser.Feed(bytes, events);
    // Events completed before an oversize event are still delivered, then the error ends it.
    for (const auto& e : events) {
      (void)decoder.Decode(e, chunks);
      if (decoder.done()) break;
    }
    if (!co_await Deliver(chunks, sink, result)) co_return;
    if (!parsed) {
      result.status = parser.status();
      co_return;
    }
  }
  // The stream's end was seen. The body's terminator usually follows at once; read it briefly
  // so the connection can be reused, but never hold the client's answer for a lingering
  // upstream.
  if (!response.done()) {
    bytes.clear();
    (void)co_await response.ReadSome(bytes, cancel, std::chrono::milliseconds(100));
  }
}

}  // namespace meridian::providers
