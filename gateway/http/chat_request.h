// OpenAI Chat Completions requests on the client side of the gateway: decodes what any OpenAI
// SDK sends to POST /v1/chat/completions into the transport-independent core request
// (wire-protocols.md §1.4; reasoning per §6). Pure: no I/O, no exceptions escape.
#pragma once

#include <cstddef>
#include <string_view>

#include "gateway/core/request.h"
#include "gateway/core/status.h"
#include "gateway/http/request_fields.h"

namespace meridian::http {

/// Deepest JSON nesting accepted in a request body (objects and arrays count one level each).
inline constexpr std::size_t kMaxJsonDepth = fields::kMaxJsonDepth;
/// Most messages accepted in one request; the same cap OpenAI enforces.
inline constexpr std::size_t kMaxMessages = 2048;
/// Most `stop` sequences, as in OpenAI.
inline constexpr std::size_t kMaxStopSequences = fields::kMaxStopSequences;

/// Decodes and validates a Chat Completions request body into `out` (which is overwritten).
///
/// Every rejection is kInvalidArgument with `param` naming the field as OpenAI does
/// ("messages[2].content", "stream_options", ...) and `reason` an OpenAI-style code
/// ("missing_required_parameter", "invalid_type", "invalid_value", "empty_array",
/// "array_above_max_length", "invalid_json"); malformed JSON has an empty `param`.
///
/// Field handling:
/// - Consumed into typed fields: model, messages, stream, stream_options.include_usage,
///   max_tokens, max_completion_tokens, temperature, top_p, stop, tools, tool_choice, user,
///   enable_thinking (top level) and chat_template_kwargs (only `enable_thinking` is read; the
///   rest of that object is dropped; when both spellings are given chat_template_kwargs wins).
/// - Every other member, known to OpenAI or not (seed, n, response_format, top_k, min_p,
///   repetition_penalty, ...), goes to `passthrough` (key, raw JSON value) in body order. Unlike
///   OpenAI, unknown fields are NOT rejected: local engines have useful extensions. A few known
///   fields are type/range-checked first (n, seed, penalties, logprobs, top_logprobs, ...).
///   Members whose value is null are dropped (null means "default" everywhere).
/// - Message members other than role/content/name/tool_call_id/tool_calls are dropped; this
///   strips earlier turns' `reasoning_content`/`reasoning`, as §6 recommends.
/// - An empty `tools` array or `tool_calls` array is treated as absent.
core::Status DecodeChatRequest(std::string_view body, core::CompletionRequest& out);

}  // namespace meridian::http
