// OpenAI Responses API requests (POST /v1/responses) on the client side of the gateway:
// decoded into the same transport-independent core request as Chat Completions, so every
// provider serves them (translated to its own API) through the one exchange. Pure: no I/O, no
// exceptions escape.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/core/request.h"
#include "gateway/core/status.h"

namespace meridian::http {

/// What a `response` object repeats of its request (OpenAI echoes these in every response
/// object, streamed or not). Objects and arrays as raw JSON, as the client sent them.
struct ResponsesEcho {
  std::optional<std::string> instructions;
  std::optional<std::int64_t> max_output_tokens;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::string tools_json = "[]";              ///< Responses shape
  std::string tool_choice_json = "\"auto\"";  ///< Responses shape
  std::string text_json = R"({"format":{"type":"text"}})";
  std::string reasoning_json = R"({"effort":null,"summary":null})";
  std::string metadata_json = "{}";
  bool parallel_tool_calls = true;
  std::optional<std::string> user;
};

struct ResponsesRequest {
  core::CompletionRequest completion;
  ResponsesEcho echo;
};

/// Decodes and validates a Responses request body into `out` (overwritten). Rejections are
/// kInvalidArgument with OpenAI's `param` paths ("input[2].content[0].type") and codes; a
/// field this stateless gateway cannot honour is `unsupported_parameter`, a field OpenAI does
/// not define `unknown_parameter`.
///
/// Mapping onto the core request:
/// - `input`: a string is one user message. Items: messages (`type: "message"` or a bare
///   `{role, content}`; roles user, assistant, system, developer; content a string or parts:
///   input_text/output_text become text, input_image a chat `image_url` part (a URL or data
///   URL; a `file_id` is refused), input_file with `file_data` a chat `file` part);
///   `function_call` items become an assistant turn's tool_calls (consecutive calls share one
///   turn); `function_call_output` a tool message; earlier `reasoning` items are dropped.
///   `item_reference` is refused (nothing is stored to refer to).
/// - `instructions` becomes a leading system message.
/// - `tools` (function tools only: `{type, name, description, parameters, strict}`) and
///   `tool_choice` (`none`/`auto`/`required` or `{type: "function", name}`) in chat shape.
/// - `max_output_tokens` -> max_completion_tokens; `temperature`, `top_p`, `user`;
///   `text.format` json_object/json_schema -> response_format; `text.verbosity` ->
///   verbosity; `reasoning.effort` -> reasoning_effort; `parallel_tool_calls`,
///   `safety_identifier`, `prompt_cache_key`, `service_tier` pass through.
/// - `store` is accepted (the response says false: nothing is kept); `metadata` is echoed,
///   never sent upstream; `include`, `truncation` and `stream_options` are accepted.
/// - `previous_response_id`, `conversation`, `prompt`, `background: true` are refused with
///   `unsupported_parameter`: the gateway keeps no state.
/// - The validated body itself is kept as `out.completion.native` (kOpenAiResponses): a
///   provider with `responses_api` receives it as it came (`model` replaced, `store` false,
///   earlier reasoning items included; `metadata` left out, as always), the others the
///   translation.
core::Status DecodeResponsesRequest(std::string_view body, ResponsesRequest& out);

}  // namespace meridian::http
