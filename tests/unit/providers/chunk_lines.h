// How the codec tests print chunks: one line per chunk, so expected sequences read like the
// wire fixtures they come from.
#pragma once

#include <string>
#include <vector>

#include "gateway/core/chunk.h"

namespace meridian::providers::testing {

/// "start ID MODEL CREATED", "delta content=.. reasoning=.. tool_calls[=JSON]", "finish R",
/// "usage P/C/T reasoning=R cached=C", "error CODE REASON [retryable]: MESSAGE".
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

}  // namespace meridian::providers::testing
