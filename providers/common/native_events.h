// A request sent in the client's own format (core::NativeBody) to a vendor of that format: the
// upstream's events ride on the chunks decoded from them (core::Chunk::native), so the front
// end can forward them as they came. Shared by the stream decoders that support it. Pure.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/core/chunk.h"
#include "gateway/core/status.h"
#include "providers/common/sse_parser.h"

namespace meridian::providers {

/// One SSE event as framed on the wire: `event: <name>` (when it has one), a `data:` line per
/// line of its data, a blank line.
inline void AppendSseFrame(std::string& out, std::string_view event, std::string_view data) {
  if (!event.empty()) {
    out += "event: ";
    out += event;
    out += '\n';
  }
  for (;;) {
    const std::size_t nl = data.find('\n');
    out += "data: ";
    out += data.substr(0, nl);
    out += '\n';
    if (nl == std::string_view::npos) break;
    data.remove_prefix(nl + 1);
  }
  out += '\n';
}

/// Attaches events to chunks: the first chunk decoded from an event carries that event and
/// the ones before it that decoded to nothing. An event that failed (the decoder emitted
/// kError) is not carried, nor are those waiting: the front end reports a failure itself.
class NativeEvents {
 public:
  explicit NativeEvents(bool on) : on_(on) {}
  bool on() const { return on_; }

  /// After `event` was decoded into out[before, out.size()) with result `status`.
  void Carry(const SseEvent& event, const core::Status& status, std::vector<core::Chunk>& out,
             std::size_t before) {
    if (!on_) return;
    if (!status.ok()) {
      pending_.clear();
      return;
    }
    AppendSseFrame(pending_, event.event, event.data);
    if (out.size() > before) {
      out[before].native = std::move(pending_);
      pending_.clear();
    }
  }

 private:
  bool on_ = false;
  std::string pending_;
};

}  // namespace meridian::providers
