// OpenAI legacy Completions answers: `text_completion` objects, streamed as `data:` events
// ending with `data: [DONE]`, from any provider's chunks. Pure: no I/O, no clocks.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "gateway/core/chunk.h"
#include "gateway/core/completion.h"
#include "gateway/core/status.h"

namespace meridian::http {

/// The non-streaming `text_completion`: one choice with the answer's text (reasoning and tool
/// calls have no place in it), its finish_reason, and usage.
std::string RenderTextCompletion(const core::Completion& answer, std::string_view id,
                                 std::int64_t created, std::string_view model);

/// Re-encodes a provider's chunks as `text_completion` SSE events: one per content delta, a
/// last one with finish_reason, the `choices: []` usage event when include_usage, then
/// `data: [DONE]`; a failure is one `data: {"error":...}` event and no [DONE].
class CompletionsStreamEncoder {
 public:
  CompletionsStreamEncoder(std::string_view id, std::int64_t created, std::string_view model,
                           bool include_usage);

  void Encode(const core::Chunk& c, std::string& out);
  void Done(std::string& out);
  void Error(const core::Status& status, std::string& out);
  bool finished() const { return finished_; }

 private:
  void AppendChoice(std::string& out, std::string_view text, std::string_view finish);

  std::string prefix_;  ///< `data: {"id":..,"object":"text_completion","created":..,"model":..,`
  bool include_usage_;
  bool finished_ = false;
};

}  // namespace meridian::http
