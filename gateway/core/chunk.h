// What providers emit and front ends encode: one transport-independent stream element.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gateway/core/status.h"

namespace meridian::core {

struct Usage {
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::int64_t total_tokens = 0;
  std::optional<std::int64_t> reasoning_tokens;
  std::optional<std::int64_t> cached_tokens;
  /// Where the provider said it processed the request, as "<source>=<value>" (Anthropic's
  /// usage.inference_geo: "inference_geo=global"); "" when it said nothing.
  std::string processing_echo;
};

/// One element of a completion stream, in order:
///   kStart (once: upstream id/model/created known), kDelta*, kFinish (once),
///   kUsage (at most once), or kError (terminal, instead of or after deltas).
/// An embeddings answer is kStart?, kEmbedding (one per input), kUsage?.
struct Chunk {
  enum class Kind : std::uint8_t { kStart, kDelta, kFinish, kUsage, kError, kEmbedding };
  Kind kind = Kind::kDelta;
  // kStart
  std::string id;     ///< upstream completion id (the front end may replace it)
  std::string model;  ///< upstream model name
  std::int64_t created = 0;
  // kDelta: any combination
  std::string content;
  std::string reasoning;        ///< reasoning_content / reasoning / thinking delta
  std::string tool_calls_json;  ///< raw JSON array of delta.tool_calls items
  // kFinish
  std::string finish_reason;  ///< OpenAI vocabulary: stop, length, tool_calls, content_filter
  // kUsage
  Usage usage;
  // kError
  Status error;
  // kEmbedding: the vector of input number `index`
  std::int64_t index = 0;
  std::vector<float> embedding;
  /// A request sent in its native format (core::NativeBody) to that vendor: the upstream's
  /// answer as it came, for the front end of that format to forward instead of re-encoding
  /// this chunk. Streams: the SSE events (`event:`/`data:` lines, blank-line terminated) read
  /// since the previous chunk, through the one this chunk was decoded from (a chunk may be
  /// an empty kDelta that carries only events); a whole body rides on its kStart.
  std::string native;
};

}  // namespace meridian::core
