// Incremental Server-Sent Events parser shared by every streaming provider adapter. Follows the
// WHATWG "event stream interpretation" algorithm, which is also what openai-python's SSEDecoder
// implements (see docs: wire-protocols.md §0). Pure: bytes in, events out; no I/O, no clocks.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/core/status.h"

namespace meridian::providers {

/// One dispatched event.
struct SseEvent {
  /// The `event:` field; empty when the event had none (WHATWG then calls it "message").
  std::string event;
  /// All `data:` lines of the event joined with '\n', without a trailing '\n'.
  std::string data;
  /// The last event ID seen on this stream. As in WHATWG (and openai-python) it persists:
  /// an event without an `id:` line carries the previous event's id.
  std::string id;
  /// The `retry:` field of this event, when present and made of ASCII digits only (and
  /// representable as int). Per event, not sticky: the gateway never reconnects upstream.
  std::optional<int> retry;

  friend bool operator==(const SseEvent&, const SseEvent&) = default;
};

/// Splits a byte stream into SSE events.
///
/// Rules (WHATWG): lines end in "\n", "\r\n" or "\r" — also when the "\r" and the "\n" arrive
/// in different Feed calls; a blank line dispatches the pending event; lines starting with ':'
/// are comments; `field:value` loses exactly one leading space of the value; a line without
/// ':' is a field with an empty value; `data` lines are joined with '\n'; an `id` containing
/// NUL is ignored; `retry` must be ASCII digits; unknown fields are ignored; one UTF-8 BOM at
/// the start of the stream is skipped. An event without any `data` line is not dispatched
/// (its `event`/`retry` are discarded); note that a bare `data:` line *does* count, so
/// "data:\n\n" dispatches an event whose data is empty (that is the WHATWG rule).
///
/// Memory is bounded by `max_event_bytes`: once the buffered partial line plus the pending
/// event's data, event name and id exceed it, the parser enters a sticky error state
/// (kBadUpstream) instead of growing. Lines and events that arrive whole inside one Feed are
/// scanned in place, without copying byte by byte.
///
/// Thread-safety: none; one parser per upstream stream, used by one thread at a time.
class SseParser {
 public:
  static constexpr std::size_t kDefaultMaxEventBytes = std::size_t{1} << 20;  // 1 MiB

  explicit SseParser(std::size_t max_event_bytes = kDefaultMaxEventBytes)
      : max_event_bytes_(max_event_bytes) {}

  /// Consumes the next bytes of the stream and appends every event they complete to `out`
  /// (existing elements are kept). Returns ok(). Events completed before an oversize error in
  /// the same call are still appended. After an error, further calls do nothing and return
  /// false until Finish().
  bool Feed(std::string_view bytes, std::vector<SseEvent>& out);

  /// End of stream. Per WHATWG an unterminated event (no blank line after it) is discarded,
  /// never dispatched. Returns true when the stream ended cleanly on an event boundary, false
  /// when bytes of an unterminated line or event were dropped (a truncated stream) or the
  /// parser was in the error state. Resets the parser so that it can read a new stream.
  bool Finish();

  bool ok() const { return status_.ok(); }
  /// kOk, or kBadUpstream with reason "sse_event_too_large".
  const core::Status& status() const { return status_; }

 private:
  void Scan(std::string_view bytes, std::vector<SseEvent>& out);
  void ProcessLine(std::string_view line, std::vector<SseEvent>& out);
  void Dispatch(std::vector<SseEvent>& out);
  std::size_t PendingEventBytes() const { return data_.size() + event_.size() + id_.size(); }
  void Fail();

  std::size_t max_event_bytes_;
  core::Status status_;
  std::string partial_line_;  ///< bytes after the last line end, waiting for the next Feed
  std::string event_;
  std::string data_;  ///< data lines, each followed by '\n'
  std::string id_;    ///< the last event ID buffer (sticky across events)
  std::optional<int> retry_;
  bool in_event_ = false;        ///< a field line was seen since the last blank line
  bool skip_lf_ = false;         ///< the previous Feed ended in '\r'
  bool bom_done_ = false;        ///< the stream start has been checked for a BOM
  std::size_t bom_matched_ = 0;  ///< BOM bytes matched so far (split across Feeds)
};

}  // namespace meridian::providers
