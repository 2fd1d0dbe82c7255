// One answer, collected from a provider's chunk stream: what every front end renders for a
// non-streaming request (OpenAI chat.completion, gRPC CompleteResponse, ...). Pure.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/core/chunk.h"
#include "gateway/core/status.h"

namespace meridian::core {

/// One tool call of an answer, merged from its stream fragments.
struct ToolCall {
  std::string id;    ///< "" when the engine sent none (renderers name it "call_<index>")
  std::string type;  ///< "" when the engine sent none ("function")
  std::string name;
  std::string arguments;  ///< a JSON text, as the model produced it
};

struct Completion {
  std::string content;
  std::string reasoning;
  std::map<std::int64_t, ToolCall> tool_calls;  ///< keyed and ordered by delta index
  std::string finish_reason;                    ///< as the upstream said ("" when it did not)
  Usage usage;
  bool has_usage = false;
  /// The first failure seen (a kError chunk, malformed tool-call fragments): when set the
  /// answer is that error, even if the provider reported success.
  std::optional<Status> error;
  /// An embeddings answer: the vectors keyed and ordered by input index.
  std::map<std::int64_t, std::vector<float>> embeddings;
  /// The upstream's own body when the request went in its native format (Chunk::native).
  std::string native;

  /// The finish reason to report: the upstream's, else "tool_calls" when tool calls arrived,
  /// else "stop".
  std::string_view FinishReason() const;
};

/// One item of a chunk's tool_calls_json (an OpenAI `delta.tool_calls` fragment), read.
struct ToolFragment {
  std::int64_t index = 0;  ///< `index`, else the item's position (engines that omit it)
  std::string id;          ///< "" when the fragment carries none
  std::string type;
  std::string name;
  std::string arguments;  ///< this fragment's piece of the arguments (parsed ones re-serialised)
};

/// The fragments of `json`; false when it is not an array of fragment objects.
bool ParseToolFragments(std::string_view json, std::vector<ToolFragment>& out);

/// Collects chunks into a Completion. Assign a fresh instance to start over (a fallback to
/// another provider).
class CompletionAggregator {
 public:
  /// Accumulates one chunk. Tool-call fragments (OpenAI delta.tool_calls items) are merged by
  /// `index`: id, type and function.name are taken from the first fragment that has them,
  /// function.arguments are concatenated (parsed arguments are written back as JSON text). A
  /// kError chunk, or malformed tool_calls JSON (as kBadUpstream), records the error.
  void Add(const Chunk& c);
  const Completion& completion() const { return c_; }
  const std::optional<Status>& error() const { return c_.error; }

 private:
  void MergeToolCalls(std::string_view json);
  Completion c_;
};

}  // namespace meridian::core
