// How the codec tests print chunks: one line per chunk, so expected sequences read like the
// wire fixtures they come from.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/core/chunk.h"
#include "providers/common/sse_parser.h"

namespace meridian::providers::testing {

/// "start ID MODEL CREATED", "delta content=.. reasoning=.. tool_calls[=JSON]", "finish R",
/// "usage P/C/T reasoning=R cached=C", "embedding INDEX [V V ..]", "error CODE REASON [retryable]:
/// MESSAGE".
inline std::string Describe(const core::Chunk& c, bool tool_call_json = true) {
  using Kind = core::Chunk::Kind;
  switch (c.kind) {
    case Kind::kStart:
      return "start " + c.id + " " + c.model + " " + std::to_string(c.created);
    case Kind::kDelta: {
      std::string s = "delta";
      if (!c.content.empty()) s += " content=" + c.content;
      if (!c.reasoning.empty()) s += " reasoning=" + c.reasoning;
      if (!c.tool_calls_json.empty()) {
        s += tool_call_json ? " tool_calls=" + c.tool_calls_json : std::string(" tool_calls");
      }
      return s;
    }
    case Kind::kFinish:
      return "finish " + c.finish_reason;
    case Kind::kUsage: {
      const auto& u = c.usage;
      return "usage " + std::to_string(u.prompt_tokens) + "/" +
             std::to_string(u.completion_tokens) + "/" + std::to_string(u.total_tokens) +
             " reasoning=" + (u.reasoning_tokens ? std::to_string(*u.reasoning_tokens) : "-") +
             " cached=" + (u.cached_tokens ? std::to_string(*u.cached_tokens) : "-");
    }
    case Kind::kEmbedding: {
      std::string line = "embedding " + std::to_string(c.index) + " [";
      for (std::size_t i = 0; i < c.embedding.size(); ++i) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%s%g", i == 0 ? "" : " ", c.embedding[i]);
        line += buf;
      }
      return line + "]";
    }
    case Kind::kError:
      return "error " + std::to_string(static_cast<int>(c.error.code)) + " " + c.error.reason +
             (c.error.retryable ? " retryable" : "") + ": " + c.error.message;
  }
  return "?";
}

inline std::vector<std::string> Lines(const std::vector<core::Chunk>& chunks,
                                      bool tool_call_json = true) {
  std::vector<std::string> lines;
  for (const auto& c : chunks) lines.push_back(Describe(c, tool_call_json));
  return lines;
}

/// What a stream decoder made of a byte stream.
struct Decoded {
  std::vector<std::string> lines;
  bool done = false;
  bool started = false;
  core::Status last_status;  ///< the last error Decode/Finish returned
};

/// Feeds `sse` through SseParser and `decoder` as an adapter does, in two writes split at
/// `split` (npos: one write); `finish` then simulates the connection closing. Decoder: the
/// DashScope/Anthropic stream decoder interface (Decode(SseEvent), Finish, done, started).
template <class Decoder>
Decoded DecodeWith(Decoder& decoder, std::string_view sse, bool finish,
                   std::size_t split = std::string_view::npos) {
  SseParser parser;
  std::vector<SseEvent> events;
  if (split == std::string_view::npos) {
    EXPECT_TRUE(parser.Feed(sse, events));
  } else {
    EXPECT_TRUE(parser.Feed(sse.substr(0, split), events));
    EXPECT_TRUE(parser.Feed(sse.substr(split), events));
  }
  parser.Finish();
  std::vector<core::Chunk> chunks;
  Decoded d;
  for (const auto& e : events) {
    core::Status s = decoder.Decode(e, chunks);
    if (!s.ok()) d.last_status = s;
  }
  if (finish) {
    core::Status s = decoder.Finish(chunks);
    if (!s.ok()) d.last_status = s;
  }
  d.done = decoder.done();
  d.started = decoder.started();
  d.lines = Lines(chunks);
  return d;
}

}  // namespace meridian::providers::testing
