// Wire codec for the Anthropic Messages API (POST {host}/v1/messages). Pure: builds request
// bodies, decodes response bodies and parsed SSE events into core::Chunk values, and maps
// upstream errors to core::Status. No sockets, no clocks, no exceptions escape.
// Reference: wire-protocols.md §0 (SSE framing) and §3 (Anthropic), §3.1–§3.3.
//
// Headers the adapter must send (§3.1):
//   x-api-key: <Anthropic API key>
//   anthropic-version: kDefaultVersion (unless configured otherwise)
//   content-type: application/json
// Responses carry a `request-id` header and `anthropic-ratelimit-*` / `retry-after` headers
// (§3.3); pass `retry-after` to MapAnthropicError.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/core/chunk.h"
#include "gateway/core/request.h"
#include "gateway/core/status.h"
#include "providers/common/native_events.h"
#include "providers/common/sse_parser.h"

namespace meridian::providers::anthropic {

/// Path of the Messages endpoint, appended to the configured host (§3.1).
inline constexpr std::string_view kMessagesPath = "/v1/messages";
/// Header names/values for the adapter (see the file comment).
inline constexpr std::string_view kApiKeyHeader = "x-api-key";
inline constexpr std::string_view kVersionHeader = "anthropic-version";
inline constexpr std::string_view kDefaultVersion = "2023-06-01";  ///< anthropic-version default
inline constexpr std::string_view kContentType = "application/json";
/// max_tokens when neither the request nor the config sets it (Anthropic requires it).
inline constexpr std::int64_t kDefaultMaxTokens = 4096;
/// Smallest thinking budget Anthropic accepts.
inline constexpr std::int64_t kMinThinkingBudget = 1024;

/// Image media types the Messages API takes.
inline constexpr std::string_view kImageMediaTypes[] = {"image/jpeg", "image/png", "image/gif",
                                                        "image/webp"};

/// The first content part this codec cannot send, as an invalid-request status
/// (`unsupported_content_part`, the router may try another provider) naming the part and its
/// position ("messages[1].content[0].type"): any part but text, refusal and image_url, an
/// image whose URL is neither http(s) nor a base64 `data:` URL, or whose media type is not in
/// kImageMediaTypes. Ok when every part can be sent.
core::Status CheckContentParts(const core::CompletionRequest& req, std::string_view provider_id);

/// The JSON body of POST kMessagesPath:
///   {"model", "max_tokens", "system"?, "messages", "stop_sequences"?, "temperature"?,
///    "top_p"?, "stream"?, "tools"?, "tool_choice"?, "thinking"?}
/// - max_tokens = req.TokenLimit(), else default_max_tokens, else (when that is <= 0)
///   kDefaultMaxTokens. Always sent: Anthropic requires it.
/// - system/developer messages are lifted into a top-level "system" string: their texts, in
///   order, empty ones skipped, joined with "\n\n". Omitted when there is no such text.
/// - Roles: `assistant` stays assistant; `user`, `tool` and any other role (e.g. the
///   deprecated `function`) become user turns. ALTERNATION: consecutive messages that map to
///   the same role are MERGED into one turn whose content is the concatenation of their
///   blocks (the API requires user/assistant alternation; a merged turn keeps every block in
///   order, so nothing is lost). A turn that is exactly one text block is sent with string
///   content, any other turn as a block array.
/// - Blocks: a message's text (Message::text) → {"type":"text"}; a message whose content
///   parts hold an image is sent part by part instead: text parts as text blocks, each
///   `image_url` as {"type":"image","source":...} — a `data:` URL as a `base64` source with
///   its media type, an http(s) URL as a `url` source (CheckContentParts refuses what cannot
///   be sent this way before the body is built); empty texts are left out (Anthropic rejects
///   empty text blocks). A turn left without any
///   block is sent as content "" (the upstream decides).
///   Assistant tool_calls → {"type":"tool_use","id","name","input"} after the text, where
///   input is the parsed `function.arguments` string (an already-parsed object is taken
///   as-is; empty, unparseable or non-object arguments become {}). Non-function calls are
///   dropped. A `tool` message → {"type":"tool_result","tool_use_id": tool_call_id,
///   "content": text} (content left out when empty) in a user turn; several tool results
///   in a row, and a user message right after them, share one user turn with the
///   tool_result blocks first, as the API requires.
/// - `name` is dropped (no Anthropic equivalent); so are `user` and passthrough members
///   (seed, n, response_format, parallel_tool_calls, ...): Anthropic rejects unknown fields.
/// - tools: [{"type":"function","function":{name,description,parameters}}] →
///   [{"name","description"?,"input_schema": parameters or {"type":"object"}}]; non-function
///   tools and unparseable tools_json are dropped.
/// - tool_choice (only when at least one tool is sent): "auto" → {"type":"auto"},
///   "none" → {"type":"none"}, "required" → {"type":"any"},
///   {"type":"function","function":{"name":N}} → {"type":"tool","name":N}; anything else is
///   dropped.
/// - stop → "stop_sequences"; temperature / top_p when finite; "stream": true only when
///   streaming.
/// - THINKING: only when req.enable_thinking == true. budget_tokens = max(1024,
///   max_tokens / 2), i.e. half of the output cap goes to thinking (Anthropic counts thinking
///   tokens inside max_tokens), never below the API minimum of 1024. The API requires
///   1024 <= budget < max_tokens, so thinking is NOT sent when max_tokens <= 1024; nor when
///   tool_choice forces a tool ("any"/"tool"), which the API rejects together with thinking.
///   When thinking is sent, `temperature` is left out and `top_p` is sent only when >= 0.95
///   (the API rejects other values with thinking). enable_thinking false/unset sends nothing
///   (thinking is off by default upstream).
std::string BuildMessagesRequestBody(const core::CompletionRequest& req,
                                     std::string_view upstream_model, bool stream,
                                     std::int64_t default_max_tokens);

/// The client's own Messages body (core::NativeBody kAnthropicMessages, validated by the
/// front end) with `model` set to `upstream_model` and everything else as it came; empty when
/// `native_json` is not a JSON object (never for what the front end keeps).
std::string NativeMessagesRequestBody(std::string_view native_json,
                                      std::string_view upstream_model);

/// Turns the parsed SSE events of a Messages stream (§3.2) into chunks.
///
/// Output order (see core::Chunk): kStart once, kDelta*, kFinish once, kUsage at most once;
/// or kError, which is terminal.
/// - The event type is the `event:` name, else the data's "type".
/// - message_start → kStart (id = message.id, model = message.model, created 0); its usage is
///   remembered. Content arriving before any message_start gets a kStart with empty id/model.
/// - content_block_start: a `text`/`thinking` block with non-empty initial text → kDelta
///   content/reasoning; a `tool_use` block → kDelta tool_calls_json
///   [{"index":i,"id":..,"type":"function","function":{"name":..,"arguments":""}}], where i
///   counts the tool_use blocks of the message (0, 1, ...), not the content block index.
/// - content_block_delta: text_delta → content; thinking_delta → reasoning; input_json_delta
///   → [{"index":i,"function":{"arguments":"<partial_json>"}}] (empty fragments dropped);
///   signature_delta, citations_delta and unknown delta types are ignored.
/// - message_delta: stop_reason and usage are remembered (usage members overlay the
///   message_start ones; output_tokens is cumulative, so the last value wins).
/// - message_stop → kFinish (MapStopReason of the last stop_reason; "stop" when none came),
///   then kUsage (when any usage was seen), and done(); later events are ignored. kFinish is
///   deferred to message_stop so that a stream cut after message_delta ends in kError
///   without a preceding kFinish.
/// - Usage: prompt_tokens = input_tokens + cache_read_input_tokens +
///   cache_creation_input_tokens (Anthropic's input_tokens excludes cached input, OpenAI's
///   prompt_tokens includes it); cached_tokens = cache_read_input_tokens when reported;
///   completion_tokens = output_tokens; total = prompt + completion.
/// - ping, content_block_stop and unknown event types are ignored (forward compatibility,
///   as the Anthropic docs require). Empty/whitespace data is ignored.
/// - `event: error` (or data of type "error") → kError with MapAnthropicError(0, data);
///   retryable is kept only when nothing (not even kStart) was emitted yet.
/// - Invalid JSON (or a non-object) → kError kBadUpstream "upstream_invalid_json".
/// Decode returns the error Status when it emitted kError (the decoder is then done()), else
/// Ok. Thread-safety: none; one decoder per stream.
class AnthropicStreamDecoder {
 public:
  /// `native`: the request went as the client's own Messages body, so every chunk also
  /// carries (Chunk::native) the events it came from, framed as received: the first chunk
  /// decoded from an event carries that event and those before it that decoded to nothing
  /// (ping, content_block_stop, signature deltas, ...); message_stop rides on the kFinish it
  /// yields. An error event is not carried: the front end reports the failure itself.
  explicit AnthropicStreamDecoder(bool native = false) : native_(native) {}

  core::Status Decode(const SseEvent& event, std::vector<core::Chunk>& out);

  /// The upstream connection ended. After message_stop or an error: nothing, Ok. Otherwise
  /// the stream was truncated: emits kError kBadUpstream reason "upstream_truncated_stream"
  /// (retryable only when no chunk was emitted yet) and returns it.
  core::Status Finish(std::vector<core::Chunk>& out);

  /// message_stop seen, an error emitted, or Finish called.
  bool done() const { return done_; }
  /// kStart has been emitted.
  bool started() const { return started_; }

 private:
  core::Status DecodeEvent(const SseEvent& event, std::vector<core::Chunk>& out);
  core::Status Fail(core::Status status, std::vector<core::Chunk>& out);
  void EnsureStarted(std::string_view id, std::string_view model, std::vector<core::Chunk>& out);
  /// Tool index of the tool_use content block `block_index`, or -1.
  std::int64_t ToolIndex(std::int64_t block_index) const;

  NativeEvents native_;
  bool started_ = false;
  bool emitted_ = false;
  bool done_ = false;
  bool usage_seen_ = false;
  std::string stop_reason_;
  /// Usage counters seen so far (message_delta values overlay message_start ones).
  std::optional<std::int64_t> input_tokens_;
  std::optional<std::int64_t> output_tokens_;
  std::optional<std::int64_t> cache_read_tokens_;
  std::optional<std::int64_t> cache_creation_tokens_;
  std::string inference_geo_;  ///< usage.inference_geo, where Anthropic says it ran
  /// content block index → tool index, for tool_use blocks.
  std::vector<std::pair<std::int64_t, std::int64_t>> tool_blocks_;
};

/// Decodes a non-streaming Messages body (§3.2 non-streaming response) into kStart (id,
/// model), kDelta (text blocks concatenated → content, thinking blocks → reasoning, tool_use
/// blocks → tool_calls_json [{"index":i,"id","type":"function","function":{"name",
/// "arguments": serialised input}}]; omitted when all are empty), kFinish
/// (MapStopReason(stop_reason), "stop" when missing), kUsage (when present, as in the stream
/// decoder). An error body (type "error") → kError mapped by MapAnthropicError(0, body);
/// invalid JSON → kError "upstream_invalid_json"; no content array → kError
/// "upstream_no_output". The error Status is returned.
core::Status DecodeMessagesResponse(std::string_view body, std::vector<core::Chunk>& out);

/// Maps an Anthropic error (§3.3: non-2xx body {"type":"error","error":{"type","message"},
/// "request_id"?}, or the data of an `event: error` inside a 200 stream with http_status 0)
/// to a Status. error.type decides first; http_status (0 = unknown) is the fallback.
///
///   error.type / HTTP                     status            retryable  reason
///   rate_limit_error / 429                kRateLimited      yes        upstream_rate_limited
///   overloaded_error / 529                kUnavailable      yes        upstream_overloaded
///   api_error / 500, other 5xx            kUnavailable      yes        upstream_unavailable
///   timeout_error / 504, 408              kUpstreamTimeout  yes        upstream_timeout
///   authentication_error / 401            kBadUpstream      no         upstream_unauthorized *
///   permission_error / 403                kBadUpstream      no         upstream_forbidden *
///   billing_error / 402                   kBadUpstream      no         upstream_billing *
///   not_found_error / 404                 kBadUpstream      no         upstream_not_found *
///   request_too_large / 413               kPayloadTooLarge  no         upstream_payload_too_large
///   invalid_request_error / 400           kInvalidArgument  no         upstream_invalid_request
///   other 4xx                             kBadUpstream      no         upstream_client_error
///   anything else (unknown type, no HTTP) kBadUpstream      no         upstream_error
/// (*) credential/account/configuration problems of the GATEWAY: fixed message, the upstream
/// text is not forwarded. Other messages are "upstream returned HTTP N (type): message" (or
/// "upstream error (type): message" with no HTTP status), so invalid_request_error forwards
/// the upstream message to the client. Upstream text always goes through
/// SanitizeUpstreamText (providers/common/sanitize.h) (key redaction, 512-byte bound); non-JSON
/// bodies (e.g. Cloudflare HTML for 413) are not quoted. retry_after_s is set from
/// `retry_after_header` when it is a non-negative number of seconds (rounded up; HTTP-dates are
/// ignored: this module has no clock) and the status is retryable.
core::Status MapAnthropicError(int http_status, std::string_view body,
                               std::string_view retry_after_header = {});

/// Anthropic stop_reason → OpenAI finish_reason (§3.2 table):
///   end_turn, stop_sequence, pause_turn → "stop"; max_tokens,
///   model_context_window_exceeded → "length"; tool_use → "tool_calls";
///   refusal → "content_filter"; anything else (including "") → "stop" (a new reason must not
///   break clients; "stop" is the neutral OpenAI value).
std::string_view MapStopReason(std::string_view stop_reason);

}  // namespace meridian::providers::anthropic
