// libFuzzer: providers::SseParser (providers/common/sse_parser.h).
//
// Input layout: byte 0 picks max_event_bytes (small, so the size limit is reached often);
// bytes 1..4 seed the split sizes; the rest is the stream. The stream is fed
//   (a) whole, in one Feed;
//   (b) split at fuzzer-chosen points (sizes 0..63 bytes, including empty Feeds);
//   (c) one byte per Feed;
// each into a parser with the same limit. Invariants (a violation traps):
//   - Split feeding never changes the result: when (b)/(c) stays ok, (a) is ok too and all
//     three produce the same events and the same Finish() result.
//   - (b)/(c) may hit the size limit earlier than (a) (a line that arrives whole is scanned in
//     place, one arriving in pieces is buffered), so their events are always a prefix of (a)'s.
//   - Feed returns ok(); after an error every Feed returns false and appends nothing; the
//     error is kBadUpstream "sse_event_too_large" with a message; Finish() is false then.
//   - Memory is bounded: every event's data+event+id fits max_event_bytes, and a trailing
//     unterminated line longer than the limit puts the parser in the error state (it must
//     not be buffered).
//   - Finish() resets: the same parser reading the stream again gives the same result.
//   - Every dispatched event's data/event/id hold no line terminator (id holds no NUL).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chunk_invariants.h"
#include "providers/common/sse_parser.h"

namespace {

using meridian::providers::SseEvent;
using meridian::providers::SseParser;

struct Result {
  std::vector<SseEvent> events;
  bool ok = true;
  bool finish_clean = false;
};

void CheckStatus(const SseParser& p) {
  if (p.ok()) {
    MERIDIAN_FUZZ_CHECK(p.status().ok());
    return;
  }
  MERIDIAN_FUZZ_CHECK(p.status().code == meridian::core::StatusCode::kBadUpstream);
  MERIDIAN_FUZZ_CHECK(p.status().reason == "sse_event_too_large");
  MERIDIAN_FUZZ_CHECK(!p.status().message.empty());
}

// Feeds `pieces` in order. Checks the per-call contract.
template <typename Pieces>
Result Run(SseParser& parser, const Pieces& pieces) {
  Result r;
  for (std::string_view piece : pieces) {
    const bool was_ok = parser.ok();
    const std::size_t before = r.events.size();
    const bool ret = parser.Feed(piece, r.events);
    MERIDIAN_FUZZ_CHECK(ret == parser.ok());
    if (!was_ok) {
      MERIDIAN_FUZZ_CHECK(!ret);
      MERIDIAN_FUZZ_CHECK(r.events.size() == before);
    }
    CheckStatus(parser);
  }
  r.ok = parser.ok();
  r.finish_clean = parser.Finish();
  if (!r.ok) MERIDIAN_FUZZ_CHECK(!r.finish_clean);
  // Finish() resets the parser.
  MERIDIAN_FUZZ_CHECK(parser.ok());
  return r;
}

bool IsPrefix(const std::vector<SseEvent>& a, const std::vector<SseEvent>& b) {
  if (a.size() > b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!(a[i] == b[i])) return false;
  return true;
}

void CheckEvents(const std::vector<SseEvent>& events, std::size_t max_event_bytes) {
  for (const auto& e : events) {
    MERIDIAN_FUZZ_CHECK(e.data.size() + e.event.size() + e.id.size() <= max_event_bytes);
    MERIDIAN_FUZZ_CHECK(e.data.find('\r') == std::string::npos);
    MERIDIAN_FUZZ_CHECK(e.event.find_first_of("\r\n") == std::string::npos);
    MERIDIAN_FUZZ_CHECK(e.id.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos);
    if (e.retry) MERIDIAN_FUZZ_CHECK(*e.retry >= 0);
  }
}

void SameResult(const Result& split, const Result& whole) {
  MERIDIAN_FUZZ_CHECK(IsPrefix(split.events, whole.events));
  if (split.ok) {
    MERIDIAN_FUZZ_CHECK(whole.ok);
    MERIDIAN_FUZZ_CHECK(split.events.size() == whole.events.size());
    MERIDIAN_FUZZ_CHECK(split.finish_clean == whole.finish_clean);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 5) return 0;
  // 16..4096 bytes: small enough that the limit is hit by ordinary inputs.
  const std::size_t max_event_bytes = 16 + std::size_t{data[0]} * 16;
  const std::uint8_t* seed = data + 1;
  const std::string_view stream(reinterpret_cast<const char*>(data + 5), size - 5);

  // (a) whole.
  SseParser whole_parser(max_event_bytes);
  const Result whole = Run(whole_parser, std::vector<std::string_view>{stream});
  CheckEvents(whole.events, max_event_bytes);

  // Memory bound: the bytes after the last line terminator are buffered; more than the limit
  // must be an error, not growth. (A BOM at the very start is not content.)
  {
    std::string_view rest = stream;
    const std::size_t last_eol = rest.find_last_of("\r\n");
    if (last_eol != std::string_view::npos) {
      rest.remove_prefix(last_eol + 1);
    } else if (rest.substr(0, 3) == "\xEF\xBB\xBF") {
      rest.remove_prefix(3);
    }
    if (rest.size() > max_event_bytes) MERIDIAN_FUZZ_CHECK(!whole.ok);
  }

  // Finish() reset the parser: reading the same stream again gives the same result.
  {
    const Result again = Run(whole_parser, std::vector<std::string_view>{stream});
    MERIDIAN_FUZZ_CHECK(again.ok == whole.ok && again.finish_clean == whole.finish_clean);
    MERIDIAN_FUZZ_CHECK(again.events == whole.events);
  }

  // (b) split at fuzzer-chosen points: the split sizes cycle through the 4 seed bytes, each
  // taken mod 64 (0 = an empty Feed, which must be harmless).
  {
    std::vector<std::string_view> pieces;
    std::size_t pos = 0;
    std::size_t i = 0;
    std::size_t empties = 0;
    while (pos < stream.size()) {
      std::size_t n = seed[i % 4] % 64;
      // Also vary the pattern over time so long inputs do not repeat the same 4 sizes.
      n = (n + i / 4) % 64;
      ++i;
      if (n == 0 && ++empties > 64) n = 1;  // bound the number of empty Feeds
      n = std::min(n, stream.size() - pos);
      pieces.push_back(stream.substr(pos, n));
      pos += n;
    }
    SseParser parser(max_event_bytes);
    const Result split = Run(parser, pieces);
    CheckEvents(split.events, max_event_bytes);
    SameResult(split, whole);
  }

  // (c) one byte per Feed (the worst case for CR/LF and BOM handling across Feeds).
  if (stream.size() <= 4096) {
    std::vector<std::string_view> bytes;
    bytes.reserve(stream.size());
    for (std::size_t k = 0; k < stream.size(); ++k) bytes.push_back(stream.substr(k, 1));
    SseParser parser(max_event_bytes);
    const Result single = Run(parser, bytes);
    CheckEvents(single.events, max_event_bytes);
    SameResult(single, whole);
  }

  // With the default (1 MiB) limit nothing in a -max_len input can overflow: split and whole
  // must agree exactly.
  {
    SseParser big_whole;
    const Result w = Run(big_whole, std::vector<std::string_view>{stream});
    MERIDIAN_FUZZ_CHECK(w.ok);
    std::vector<std::string_view> halves{stream.substr(0, stream.size() / 2),
                                         stream.substr(stream.size() / 2)};
    SseParser big_split;
    const Result s = Run(big_split, halves);
    MERIDIAN_FUZZ_CHECK(s.ok && s.events == w.events && s.finish_clean == w.finish_clean);
  }
  return 0;
}
