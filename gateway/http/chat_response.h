// OpenAI Chat Completions responses on the client side of the gateway: provider chunks
// re-encoded in OpenAI's exact shapes, the `chat.completion` body, the model list
// (wire-protocols.md §1.4, §1.5; reasoning per §6). Pure: no I/O, no clocks (`created` is
// passed in), no exceptions escape.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/core/chunk.h"
#include "gateway/core/completion.h"
#include "gateway/core/status.h"

namespace meridian::http {

/// OpenAI's `usage` object (prompt/completion/total tokens, the *_details objects when known).
void AppendUsage(std::string& out, const core::Usage& u);

/// Re-encodes a provider's chunk stream as OpenAI `chat.completion.chunk` SSE events.
/// Writes straight into the caller's buffer; no JSON DOM per chunk.
class ChatStreamEncoder {
 public:
  /// `id` is what the client sees (e.g. "chatcmpl-" + request id), `created` unix seconds
  /// fixed for the whole response, `model` the alias the client asked for (not the upstream
  /// model). `include_usage` is the request's stream_options.include_usage: it adds
  /// `"usage":null` to every chunk and lets the final usage chunk through.
  ChatStreamEncoder(std::string_view id, std::int64_t created, std::string_view model,
                    bool include_usage);

  /// Appends zero or more complete `data: {...}\n\n` events for `c`:
  /// - kStart: the role chunk (once; its upstream id/model/created are not shown).
  /// - kDelta: one chunk with any of reasoning_content, content, tool_calls (raw array,
  ///   written verbatim: the provider codec must hand over valid JSON); nothing if all empty.
  /// - kFinish: `delta:{}` plus finish_reason ("stop" if the provider left it empty).
  /// - kUsage: the `choices:[]` usage chunk, only when include_usage.
  /// - kError: same as Error().
  /// If a delta or finish comes before any kStart the role chunk is written first, so the
  /// client always sees OpenAI's order.
  void Encode(const core::Chunk& c, std::string& out);

  /// Appends the `data: [DONE]\n\n` terminator.
  void Done(std::string& out);

  /// Appends a terminal `data: {"error":{...}}\n\n` event (openai-python raises APIError on
  /// it). The caller must close the stream afterwards; no [DONE] follows an error.
  void Error(const core::Status& status, std::string& out);

  /// True once Done() or Error() (or a kError chunk) was written. From then on every call
  /// appends nothing, so a stream has exactly one terminal event even if both the provider
  /// (kError chunk) and the router (Error()) report the same failure.
  bool finished() const { return finished_; }

 private:
  void AppendPrefix(std::string& out) const;
  void AppendSuffix(std::string& out) const;
  void EnsureStarted(std::string& out);

  std::string prefix_;  ///< `data: {"id":..,"object":..,"created":..,"model":..,`
  bool include_usage_;
  bool started_ = false;
  bool finished_ = false;
};

/// The non-streaming `chat.completion` JSON (§1.4) of `answer` with the client-facing `id`,
/// `created` (unix seconds) and `model` alias. `content` is null when the answer is only tool
/// calls; `reasoning_content` appears when any reasoning arrived; a tool call without an id is
/// named "call_<index>". `usage` is always present; unknown counts are 0 and the *_details
/// objects appear only when known. (An answer with an error is answered with the error.)
std::string RenderChatCompletion(const core::Completion& answer, std::string_view id,
                                 std::int64_t created, std::string_view model);

/// The GET /v1/models body: every alias, owned_by "meridian", with the given `created`.
std::string ModelsListJson(const std::vector<std::string>& aliases, std::int64_t created);

/// The GET /v1/models/{id} body: one model object, as in the list.
std::string ModelJson(std::string_view alias, std::int64_t created);

}  // namespace meridian::http
