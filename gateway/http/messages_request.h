// Anthropic Messages API requests (POST /v1/messages) on the client side of the gateway:
// decoded into the transport-independent core request, so Anthropic SDK clients and coding
// agents reach every provider kind through the one exchange. Pure: no I/O, no exceptions.
#pragma once

#include <string_view>

#include "gateway/core/request.h"
#include "gateway/core/status.h"

namespace meridian::http {

/// Decodes and validates a Messages request body into `out` (overwritten). Rejections are
/// kInvalidArgument naming the field in `param` ("messages[1].content[0].type").
///
/// Mapping onto the core request:
/// - `model`, `max_tokens` (both required), `stream`, `temperature` (0..1), `top_p`,
///   `stop_sequences` -> stop, `top_k` passes through, `metadata.user_id` -> user.
/// - `system` (a string or text blocks) becomes a leading system message.
/// - `messages`: roles user and assistant; content a string or blocks: `text`; `image`
///   (base64 source as a data: URL, or a url source) as a chat `image_url` part; `tool_use`
///   (assistant) as tool_calls with `input` serialised as the arguments; `tool_result` (user)
///   as a tool message each, before the rest of that user turn; earlier `thinking` and
///   `redacted_thinking` blocks are dropped from the translation.
/// - `tools` (`{name, description, input_schema}`) as function tools; server tools (a `type`
///   other than `custom`) are refused. `tool_choice` auto / any / tool / none as auto /
///   required / the named function / none; `disable_parallel_tool_use` as
///   parallel_tool_calls false.
/// - `thinking` {type: enabled} / {type: disabled} as enable_thinking.
/// - `inference_geo`, `container`, `mcp_servers` are refused (`unsupported_parameter`): the
///   policy, not the caller, decides where a request is processed, and nothing runs at the
///   gateway; any other unknown field is refused as Anthropic does.
/// - The validated body itself is kept as `out.native` (kAnthropicMessages): an Anthropic
///   provider receives it as it came, only `model` replaced, so what the translation drops
///   (thinking blocks and signatures, cache_control) still reaches Anthropic.
core::Status DecodeMessagesRequest(std::string_view body, core::CompletionRequest& out);

}  // namespace meridian::http
