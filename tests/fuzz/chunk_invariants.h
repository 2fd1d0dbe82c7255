// Shared by the stream-decoder fuzz targets: checks the core::Chunk order contract
// (gateway/core/chunk.h) on everything a provider stream decoder emits, and traps on the
// first violation so libFuzzer records the input as a crash.
//
//   kStart (once, first) , kDelta* , kFinish (at most once) , kUsage (at most once)
//   or kError (terminal: nothing after it), and nothing at all once done().
// Also: a kDelta's tool_calls_json, when set, is a JSON array (the front end's encoder writes
// it verbatim), and every error Status carries a message.
//
// Usage: one ChunkOrderChecker per decoded stream; call Check() after every Decode() and
// CheckFinish() after Finish(), passing only the chunks that call appended.
#pragma once

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cstddef>
#include <cstdio>
#include <string_view>
#include <vector>

#include "gateway/core/chunk.h"
#include "gateway/core/status.h"
#include "providers/common/sse_parser.h"

namespace meridian::fuzz {

[[noreturn]] inline void InvariantFailed(const char* what) {
  std::fprintf(stderr, "INVARIANT VIOLATED: %s\n", what);
  std::fflush(stderr);
  __builtin_trap();
}

#define MERIDIAN_FUZZ_CHECK(cond)                                            \
  do {                                                                       \
    if (!(cond)) ::meridian::fuzz::InvariantFailed(#cond " (" __FILE__ ")"); \
  } while (0)

/// A non-OK Status must say what went wrong.
inline void CheckErrorStatus(const core::Status& s) {
  MERIDIAN_FUZZ_CHECK(!s.ok());
  MERIDIAN_FUZZ_CHECK(!s.message.empty());
}

/// Raw JSON a codec hands over for verbatim insertion must parse as an array.
inline bool IsJsonArray(std::string_view text) {
  boost::system::error_code ec;
  const boost::json::value v =
      boost::json::parse(boost::json::string_view(text.data(), text.size()), ec);
  return !ec && v.is_array();
}

class ChunkOrderChecker {
 public:
  /// `chunks` are the chunks appended by one Decode() call, `returned` its result,
  /// `done_before`/`done_after` the decoder's done() around the call, and `started_after`
  /// its started().
  void Check(const std::vector<core::Chunk>& chunks, std::size_t first,
             const core::Status& returned, bool done_before, bool done_after, bool started_after) {
    if (done_before) MERIDIAN_FUZZ_CHECK(chunks.size() == first);  // nothing after done()
    bool emitted_error = false;
    for (std::size_t i = first; i < chunks.size(); ++i) {
      Accept(chunks[i]);
      if (chunks[i].kind == core::Chunk::Kind::kError) emitted_error = true;
    }
    // Decode returns the error Status exactly when it emitted kError.
    MERIDIAN_FUZZ_CHECK(emitted_error == !returned.ok());
    if (emitted_error) CheckErrorStatus(returned);
    // done() is sticky and set by a finish or an error.
    if (done_before) MERIDIAN_FUZZ_CHECK(done_after);
    if (error_ || finished_) MERIDIAN_FUZZ_CHECK(done_after);
    MERIDIAN_FUZZ_CHECK(started_after == started_);
  }

  /// After Finish(): the stream must be terminated (a kFinish or a kError), and done().
  void CheckFinish(const std::vector<core::Chunk>& chunks, std::size_t first,
                   const core::Status& returned, bool done_before, bool done_after,
                   bool started_after) {
    Check(chunks, first, returned, done_before, done_after, started_after);
    MERIDIAN_FUZZ_CHECK(done_after);
    MERIDIAN_FUZZ_CHECK(error_ || finished_);
  }

  bool started() const { return started_; }
  bool finished() const { return finished_; }
  bool errored() const { return error_; }

 private:
  void Accept(const core::Chunk& c) {
    using Kind = core::Chunk::Kind;
    MERIDIAN_FUZZ_CHECK(!error_);  // kError is terminal
    switch (c.kind) {
      case Kind::kStart:
        MERIDIAN_FUZZ_CHECK(!started_);
        MERIDIAN_FUZZ_CHECK(!finished_ && !usage_);
        started_ = true;
        break;
      case Kind::kDelta:
        MERIDIAN_FUZZ_CHECK(started_);  // kStart before deltas
        MERIDIAN_FUZZ_CHECK(!finished_ && !usage_);
        if (!c.tool_calls_json.empty()) MERIDIAN_FUZZ_CHECK(IsJsonArray(c.tool_calls_json));
        break;
      case Kind::kFinish:
        MERIDIAN_FUZZ_CHECK(started_);
        MERIDIAN_FUZZ_CHECK(!finished_);  // at most one kFinish
        MERIDIAN_FUZZ_CHECK(!usage_);
        finished_ = true;
        break;
      case Kind::kUsage:
        MERIDIAN_FUZZ_CHECK(!usage_);  // at most one kUsage
        usage_ = true;
        break;
      case Kind::kError:
        MERIDIAN_FUZZ_CHECK(!finished_);  // a finished stream cannot fail afterwards
        CheckErrorStatus(c.error);
        error_ = true;
        break;
      default:
        InvariantFailed("unknown chunk kind");
    }
  }

  bool started_ = false;
  bool finished_ = false;
  bool usage_ = false;
  bool error_ = false;
};

/// Checks a complete non-streaming decode (DecodeGenerationResponse and the like): the same
/// order contract, terminated, and an error Status exactly when a kError was emitted.
inline void CheckWholeResponse(const std::vector<core::Chunk>& chunks,
                               const core::Status& returned) {
  ChunkOrderChecker checker;
  checker.Check(chunks, 0, returned, /*done_before=*/false, /*done_after=*/true,
                /*started_after=*/[&] {
                  for (const auto& c : chunks)
                    if (c.kind == core::Chunk::Kind::kStart) return true;
                  return false;
                }());
  MERIDIAN_FUZZ_CHECK(checker.errored() || checker.finished());
}

/// Feeds `stream` in `piece`-byte writes through SseParser and `decoder` (the DashScope /
/// Anthropic stream decoder interface), checking the chunk order after every event and after
/// Finish(); then checks that `late` (a terminating event) decoded after Finish adds nothing.
template <class Decoder>
void RunStreamChecked(Decoder& decoder, std::string_view stream, std::size_t piece,
                      const providers::SseEvent& late) {
  providers::SseParser parser;
  ChunkOrderChecker checker;
  std::vector<core::Chunk> chunks;
  std::vector<providers::SseEvent> events;
  auto decode_all = [&] {
    for (const auto& e : events) {
      const bool done_before = decoder.done();
      const std::size_t first = chunks.size();
      const core::Status s = decoder.Decode(e, chunks);
      checker.Check(chunks, first, s, done_before, decoder.done(), decoder.started());
    }
    events.clear();
  };
  for (std::size_t pos = 0; pos < stream.size(); pos += piece) {
    if (!parser.Feed(stream.substr(pos, piece), events)) break;
    decode_all();
  }
  decode_all();
  (void)parser.Finish();
  const bool done_before = decoder.done();
  const std::size_t first = chunks.size();
  const core::Status s = decoder.Finish(chunks);
  checker.CheckFinish(chunks, first, s, done_before, decoder.done(), decoder.started());
  if (done_before) MERIDIAN_FUZZ_CHECK(s.ok());  // documented: nothing, Ok
  const std::size_t after = chunks.size();
  (void)decoder.Decode(late, chunks);
  MERIDIAN_FUZZ_CHECK(chunks.size() == after);
}

}  // namespace meridian::fuzz
