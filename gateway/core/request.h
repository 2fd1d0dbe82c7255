// The transport-independent completion request every front end produces and every provider
// adapter consumes. Plain data, std only. Fields that are passed through to upstreams
// untouched (tools, content arrays, response_format, ...) are kept as raw JSON text, so no
// re-serialisation happens unless an adapter must translate them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace meridian::core {

struct Message {
  std::string role;  ///< system, developer, user, assistant, tool (function: deprecated)
  /// Concatenated text of all text parts (what classifiers and non-OpenAI adapters read).
  std::string text;
  /// The `content` exactly as received when it was an array of parts (raw JSON), else empty.
  std::string content_parts_json;
  bool content_null = false;    ///< `content: null` (assistant tool-call turns)
  std::string name;             ///< optional participant name
  std::string tool_call_id;     ///< role tool
  std::string tool_calls_json;  ///< assistant tool_calls array (raw JSON), if any
};

struct CompletionRequest {
  std::string model;  ///< the client-facing alias
  std::vector<Message> messages;
  bool stream = false;
  bool include_usage = false;                         ///< stream_options.include_usage
  std::optional<std::int64_t> max_tokens;             ///< max_tokens (deprecated form)
  std::optional<std::int64_t> max_completion_tokens;  ///< preferred form
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::vector<std::string> stop;
  std::string tools_json;        ///< raw JSON array, if given
  std::string tool_choice_json;  ///< raw JSON (string or object), if given
  std::string user;
  /// Qwen3 hard thinking switch: from `chat_template_kwargs.enable_thinking` or a top-level
  /// `enable_thinking`; nullopt = the engine's default.
  std::optional<bool> enable_thinking;
  /// Other OpenAI fields passed through as-is, as raw JSON members: "\"seed\":7,\"n\":1".
  std::string passthrough_members_json;
  /// W3C `traceparent` to send upstream (the caller's trace, with the gateway's span as
  /// parent), or empty. Never part of any request body.
  std::string traceparent;

  /// The cap to send upstream: max_completion_tokens, else max_tokens.
  std::optional<std::int64_t> TokenLimit() const {
    return max_completion_tokens ? max_completion_tokens : max_tokens;
  }
};

}  // namespace meridian::core
