// Wire codec for Alibaba Cloud Model Studio's NATIVE DashScope text-generation API
// (POST {host}/api/v1/services/aigc/text-generation/generation). Pure: builds request bodies,
// decodes response bodies and parsed SSE events into core::Chunk values, and maps upstream
// errors to core::Status. No sockets, no clocks, no exceptions escape.
// Reference: wire-protocols.md §0 (SSE framing) and §2 (DashScope), §2.2–§2.5.
//
// Headers the adapter must send (§2.2):
//   Authorization: Bearer <region-bound DashScope API key>
//   Content-Type: application/json
//   X-DashScope-SSE: enable          -- streaming requests only; without it the upstream
//                                       answers with one JSON body even if asked to stream
// Optional: X-DashScope-WorkSpace: <workspace id>.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/core/chunk.h"
#include "gateway/core/request.h"
#include "gateway/core/status.h"
#include "providers/common/sse_parser.h"

namespace meridian::providers::dashscope {

/// Path of the native text-generation endpoint, appended to the region host (§2.1).
inline constexpr std::string_view kGenerationPath =
    "/api/v1/services/aigc/text-generation/generation";

/// Path of the native multimodal-generation endpoint (Qwen-VL, Qwen-Omni): the same
/// parameters and answers as kGenerationPath, message content as items.
inline constexpr std::string_view kMultimodalPath =
    "/api/v1/services/aigc/multimodal-generation/generation";

/// True when a message carries an image part: the request goes to kMultimodalPath.
bool NeedsMultimodal(const core::CompletionRequest& req);

/// The first content part this codec cannot send, as an invalid-request status
/// (`unsupported_content_part`, the router may try another provider) naming the part: any but
/// text, refusal and image_url, or an image that is not an http(s) or data:image/ URL.
core::Status CheckContentParts(const core::CompletionRequest& req, std::string_view provider_id);

/// Path of the native text-embedding endpoint (Model Studio's "text-embedding-v3/v4"
/// synchronous API), appended to the region host like kGenerationPath.
inline constexpr std::string_view kEmbeddingPath =
    "/api/v1/services/embeddings/text-embedding/text-embedding";

/// The most texts one text-embedding call takes (text-embedding-v3/v4); the adapter sends a
/// longer request as several calls.
inline constexpr std::size_t kMaxEmbeddingTexts = 10;

/// The JSON body of POST kEmbeddingPath:
///   {"model": upstream_model, "input": {"texts": [...]},
///    "parameters": {"dimension": N (when the request sets dimensions)}}
/// Text inputs only (the adapter refuses token ids before this is called).
std::string BuildEmbeddingRequestBody(const core::CompletionRequest& req,
                                      std::string_view upstream_model);

/// Decodes a text-embedding body (`{"output":{"embeddings":[{"embedding":[...],
/// "text_index":i}]},"usage":{"total_tokens":N},"request_id":...}`) for `inputs` inputs:
/// kStart (request id), one kEmbedding per input in input order, kUsage (prompt = total =
/// usage.total_tokens) when present. An error object, invalid JSON, a vector that is not
/// numbers, or embeddings that do not give each input exactly one vector yield kError and the
/// same Status.
core::Status DecodeEmbeddingResponse(std::string_view body, std::size_t inputs,
                                     std::vector<core::Chunk>& out);

/// Header names/values for the adapter (see the file comment).
inline constexpr std::string_view kSseHeaderName = "X-DashScope-SSE";
inline constexpr std::string_view kSseHeaderValue = "enable";
inline constexpr std::string_view kContentType = "application/json";

/// The JSON body of POST kGenerationPath:
///   {"model": upstream_model,
///    "input": {"messages": [...]},
///    "parameters": {"result_format": "message", "incremental_output": true (stream only),
///                   "max_tokens", "temperature", "top_p", "seed", "stop", "enable_thinking",
///                   "enable_search", "tools", "tool_choice"}}
/// - Messages go inside `input` (a top-level `messages` is a 400 upstream, §2.2).
/// - Message content is a JSON string: text-generation takes string content (an array of
///   text parts is sent as its extracted text, Message::text). When a message carries an image
///   (NeedsMultimodal), every message's content is an array of items instead, as the
///   multimodal API takes them: {"text": ...} and {"image": url} (an http(s) or data: URL) in
///   part order; the adapter then posts to kMultimodalPath. A
///   `content: null` assistant tool-call turn is sent as "". `name`, `tool_call_id` and
///   `tool_calls` (verbatim) are added when non-empty.
/// - result_format is always "message" (the decoders expect output.choices[]).
/// - incremental_output: true is sent explicitly when streaming (§2.2 "Always send it
///   explicitly"; thinking mode supports only incremental output); omitted otherwise.
/// - max_tokens = req.TokenLimit(); temperature/top_p when finite; stop always as an array;
///   enable_thinking only when the request set it; tools and tool_choice verbatim
///   (tool_choice is not in the reference's table [U], passed through as OpenAI shape).
/// - Of the passthrough members only `seed` and `enable_search` are forwarded (the
///   parameters §2.2 documents); other OpenAI members (n, user, response_format, ...) are
///   dropped, and so is a value that is not JSON.
std::string BuildGenerationRequestBody(const core::CompletionRequest& req,
                                       std::string_view upstream_model, bool stream);

/// Turns the parsed SSE events of a native stream (§2.4) into chunks.
///
/// Output order (see core::Chunk): kStart once, kDelta*, kFinish once, kUsage at most once;
/// or kError, which is terminal.
/// - `:HTTP_STATUS/200` comments are dropped by SseParser; `id:` is not used.
/// - `event:error` (whatever the data), or any data object with a non-empty string `code` and
///   no `output` (an error inside an HTTP 200 stream, §2.5) → kError with
///   MapDashScopeError(0, data): the real HTTP status is only in the dropped comment line, so
///   the mapping is by `code`.
/// - kStart is emitted with the first result frame; id = request_id, model empty (frames do
///   not carry it; the adapter knows the upstream model), created 0.
/// - output.choices[0].message.content → kDelta content; .reasoning_content → kDelta
///   reasoning; .tool_calls → kDelta tool_calls_json (re-serialised). result_format "text"
///   frames (output.text / output.finish_reason, older captures) are accepted too.
/// - finish_reason: missing, JSON null and the STRING "null" mean "not finished". Any other
///   value ("stop", "length", "tool_calls", ...) → kFinish with the value unchanged, then
///   kUsage from that frame (usage is cumulative on every frame, so only the last one is
///   used: input_tokens → prompt, output_tokens → completion, total_tokens (default: sum),
///   output_tokens_details.reasoning_tokens, prompt_tokens_details.cached_tokens), and the
///   decoder is done(): DashScope sends no [DONE]; later events are ignored.
/// - Cumulative output: constructed with incremental_output = false (the request did not ask
///   for incremental output, §2.4), each frame's content/reasoning repeats all text so far;
///   the decoder then emits only the part after the previous frame's text (if a frame does
///   not extend the previous text, it is emitted whole and becomes the new base). Prefix
///   AUTO-detection is deliberately not done in incremental mode: genuine deltas can start
///   with the text so far ("a","a" would lose the second "a"). BuildGenerationRequestBody
///   always asks for incremental output when streaming, so the default is true.
/// - Empty/whitespace data is ignored; invalid JSON → kError kBadUpstream
///   "upstream_invalid_json". Unknown fields are ignored.
/// Decode returns the error Status when it emitted kError (the decoder is then done()), else
/// Ok. Thread-safety: none; one decoder per stream.
class DashScopeStreamDecoder {
 public:
  explicit DashScopeStreamDecoder(bool incremental_output = true)
      : incremental_(incremental_output) {}

  core::Status Decode(const SseEvent& event, std::vector<core::Chunk>& out);

  /// The upstream connection ended. After a finish frame or an error: nothing, Ok. Otherwise
  /// the stream was truncated: emits kError kBadUpstream reason "upstream_truncated_stream"
  /// (retryable only when no chunk was emitted yet) and returns it.
  core::Status Finish(std::vector<core::Chunk>& out);

  /// A finish frame was seen, an error emitted, or Finish called.
  bool done() const { return done_; }
  /// kStart has been emitted.
  bool started() const { return started_; }

 private:
  core::Status Fail(core::Status status, std::vector<core::Chunk>& out);
  std::string Fresh(std::string& previous, std::string_view text) const;

  bool incremental_;
  bool started_ = false;
  bool emitted_ = false;
  bool done_ = false;
  std::string prev_content_;    ///< cumulative mode: content of the previous frame
  std::string prev_reasoning_;  ///< cumulative mode: reasoning of the previous frame
};

/// Decodes a non-streaming body (§2.3) into kStart (id = request_id), kDelta (content,
/// reasoning_content, tool_calls; omitted when all are empty), kFinish (finish_reason; "stop"
/// when missing/null/"null"), kUsage (when present). result_format "text" bodies are accepted.
/// An error body (non-empty `code`, no `output`) → kError mapped by MapDashScopeError(0, body);
/// invalid JSON or no output → kError kBadUpstream. The error Status is returned.
core::Status DecodeGenerationResponse(std::string_view body, std::vector<core::Chunk>& out);

/// Maps a DashScope error (flat `{"code","message","request_id"}`, §2.5) to a Status. The
/// `code` decides first; http_status (0 = unknown, e.g. inside a 200 stream) is the fallback.
///
///   code                                  status            retryable  reason
///   Throttling, Throttling.*              kRateLimited      yes        upstream_rate_limited
///   InvalidApiKey (or HTTP 401)           kBadUpstream      no         upstream_unauthorized *
///   AccessDenied, AccessDenied.* (403)    kBadUpstream      no         upstream_forbidden *
///   Arrearage                             kBadUpstream      no         upstream_arrearage *
///   DataInspectionFailed,
///     data_inspection_failed              kInvalidArgument  no         data_inspection_failed
///   InvalidParameter, invalid_parameter_error,
///     other 400                           kInvalidArgument  no         invalid_parameter /
///                                                                      upstream_invalid_request
///   BadRequest.TooLarge (413)             kPayloadTooLarge  no         upstream_payload_too_large
///   RequestTimeOut (408), 504             kUpstreamTimeout  yes        upstream_timeout
///   InternalError, InternalError.*, 5xx   kUnavailable      yes        upstream_unavailable
///   404                                   kBadUpstream      no         upstream_not_found *
///   other 4xx                             kBadUpstream      no         upstream_client_error
///   anything else (unknown code, no HTTP) kBadUpstream      no         upstream_error
/// (*) credential/account problems of the GATEWAY: fixed message, the upstream text is not
/// forwarded. Data inspection (content moderation) is the client's concern: its message is
/// "upstream content moderation rejected the request: <upstream message>", param "messages",
/// and it is never retried on another candidate (no moderation shopping). Other messages are
/// "upstream returned HTTP N (code): message" (or "upstream error (code): message" with no
/// HTTP status); 400-class invalid-parameter errors forward the upstream message. Upstream
/// text always goes through SanitizeUpstreamText (providers/common/sanitize.h) (key redaction,
/// 512-byte bound).
core::Status MapDashScopeError(int http_status, std::string_view body);

}  // namespace meridian::providers::dashscope
