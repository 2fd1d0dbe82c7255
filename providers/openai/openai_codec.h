// Wire codec for OpenAI-family upstreams: provider kinds `openai`, `azure_openai` and
// `openai_compatible` (vLLM, llama.cpp, SGLang, MLX-LM, Ollama). Pure: builds request bodies
// and paths, decodes response bodies and SSE `data` payloads into core::Chunk values, and maps
// upstream error responses to core::Status. No sockets, no clocks, no exceptions escape.
// Reference: wire-protocols.md §1 (OpenAI), §4 (Azure), §5 (local engines), §6 (Qwen3).
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

namespace meridian::providers::openai {

enum class OpenAiFlavor : std::uint8_t {
  kOpenAi,      ///< api.openai.com and its regional hosts
  kAzure,       ///< Azure OpenAI, classic deployment path or the v1 path
  kCompatible,  ///< local engines speaking /v1/chat/completions
};

/// The JSON body of POST .../chat/completions.
///
/// - `model` is `upstream_model` (also on the Azure classic path, where it is redundant).
/// - Messages are rebuilt from core::Message: `content` is content_parts_json verbatim when
///   set, else null when content_null, else the text; `name`, `tool_call_id` when non-empty;
///   `tool_calls` verbatim when non-empty. Earlier turns' reasoning is never sent (Message
///   carries none).
/// - `stream` is sent only when true, together with `stream_options.include_usage: true`
///   (the gateway always meters usage, whatever the client asked for).
/// - The token cap (req.TokenLimit()) is `max_completion_tokens` for kOpenAi/kAzure and
///   `max_tokens` for kCompatible (the name every local engine accepts).
/// - `temperature`, `top_p`, `stop` (always as an array), `tools`, `tool_choice` (verbatim);
///   `user` except for kCompatible (Ollama rejects it, vLLM ignores it).
/// - enable_thinking becomes `chat_template_kwargs.enable_thinking` for kCompatible and is
///   dropped for kOpenAi/kAzure, which reject unknown arguments.
/// - The passthrough members follow in order, values verbatim. Members that would duplicate a
///   key written above are dropped; `stream_options` and (kCompatible) `chat_template_kwargs`
///   objects are merged with ours (ours win); `chat_template_kwargs` is dropped for
///   kOpenAi/kAzure and `stream_options` when not streaming (OpenAI rejects it without
///   `stream`). A value that is not JSON (never from the front ends) is sent as it is, so
///   that the upstream's 400 shows the problem instead of the gateway silently losing it.
///
/// Raw JSON fragments (content parts, tools, tool_calls, tool_choice) are inserted verbatim:
/// the ingress decoder has validated them. Strings are escaped per RFC 8259.
std::string BuildChatRequestBody(const core::CompletionRequest& req,
                                 std::string_view upstream_model, OpenAiFlavor flavor, bool stream);

/// The request path (plus query) for chat completions, given the path part of the configured
/// endpoint (e.g. "/v1" for https://api.openai.com/v1). Trailing slashes are ignored.
///   kOpenAi, kCompatible: base + "/chat/completions" ("" gives "/chat/completions").
///   kAzure, base ending in "/openai/v1": base + "/chat/completions" (v1 API: no api-version).
///   kAzure otherwise (classic): base without a trailing "/openai" +
///     "/openai/deployments/{upstream_model}/chat/completions?api-version={api_version}",
///     both percent-encoded; the query is omitted when api_version is empty.
std::string ChatPath(OpenAiFlavor flavor, std::string_view base_path,
                     std::string_view upstream_model, std::string_view api_version);

/// The JSON body of POST .../embeddings: `model` (upstream_model), `input` (always an array:
/// the texts, or the token-id arrays), `encoding_format: "float"` (the gateway reads every
/// vector; a client that asked for base64 gets it from the front end), `dimensions` when set,
/// and `user` except for kCompatible.
std::string BuildEmbeddingsRequestBody(const core::CompletionRequest& req,
                                       std::string_view upstream_model, OpenAiFlavor flavor);

/// The request path for embeddings, as ChatPath with "/embeddings" for "/chat/completions"
/// (Azure classic: /openai/deployments/{upstream_model}/embeddings?api-version=...).
std::string EmbeddingsPath(OpenAiFlavor flavor, std::string_view base_path,
                           std::string_view upstream_model, std::string_view api_version);

/// Decodes an embeddings body (`{"object":"list","data":[{"embedding":[...],"index":i}],
/// "model","usage":{"prompt_tokens","total_tokens"}}`) for a request of `inputs` inputs:
/// kStart (model), one kEmbedding per input in input order (a vector may also be base64
/// float32 text; items without `index` count by position), kUsage when present. A body with
/// an `error` member, invalid JSON, a vector that is not finite numbers, or items that do not
/// give each input exactly one vector yield a kError chunk (kBadUpstream) and the same Status.
core::Status DecodeEmbeddingsResponse(std::string_view body, std::size_t inputs,
                                      std::vector<core::Chunk>& out);

/// Turns the `data` of each SSE event of a streamed chat completion into chunks.
///
/// Output order (see core::Chunk): kStart once, kDelta*, kFinish once, kUsage at most once;
/// or kError, which is terminal.
/// - kStart is emitted with the first payload that has a non-empty `choices` array or a
///   non-null `usage` — i.e. the upstream's role chunk, before anything else. Payloads with
///   neither (Azure's first chunk, `"choices": []` with only `prompt_filter_results` and empty
///   id/model) emit nothing; kStart carries the first non-empty id/model/created seen.
/// - `delta.role` alone and Azure `content_filter_results` annotations emit nothing.
/// - `delta.content` → kDelta content; `delta.reasoning_content`, else `delta.reasoning`
///   (vLLM, Ollama, MLX) → kDelta reasoning; `delta.tool_calls` → kDelta tool_calls_json (the
///   array re-serialised compactly; argument fragments are forwarded as they come, not
///   concatenated). One kDelta per payload carries any combination.
/// - A non-null `finish_reason` → kFinish, value passed through unchanged (content_filter
///   included). Deltas after it are dropped.
/// - Only choice index 0 is forwarded; other choices (n > 1) are ignored.
/// - `usage`: a payload whose choices are [], null or missing (OpenAI's final chunk; vLLM's
///   quirk) and has usage → kUsage at once. Usage riding on a payload with choices (engines
///   that report it on every chunk or on the finish chunk) is remembered and emitted at
///   [DONE] (or Finish) unless a usage-only payload came first. total_tokens defaults to
///   prompt + completion when absent.
/// - `[DONE]` (prefix match, as openai-python) → done(); later input is ignored.
/// - A payload object with a non-null `error` member (mid-stream error after HTTP 200) →
///   kError: kBadUpstream, message = error.message (redacted, bounded), reason = error.code,
///   else error.type, else "upstream_stream_error"; retryable only when the type is
///   server_error / unavailable_error / contains "overloaded", or a numeric code is 408, 429
///   or 5xx (the router can only use that if no byte reached the client yet).
/// - Invalid JSON → kError kBadUpstream "upstream sent invalid JSON in stream".
/// - Empty / whitespace-only data (keep-alives) is ignored. Unknown fields are ignored.
/// Decode returns the error Status when it emitted kError (the decoder is then done()), else
/// Ok. Thread-safety: none; one decoder per stream.
///
/// Once started, a payload ScanContentChunk recognises (a content delta and nothing else) is
/// decoded by it, without a JSON DOM; `full_decode_only` turns that off (the fuzz target checks
/// both decode every input alike).
class OpenAiStreamDecoder {
 public:
  explicit OpenAiStreamDecoder(bool full_decode_only = false) : scan_(!full_decode_only) {}
  core::Status Decode(std::string_view data, std::vector<core::Chunk>& out);

  /// The upstream connection ended. After [DONE] or an error: nothing. After a finish_reason
  /// without [DONE]: emits remembered usage, Ok. Otherwise the stream was truncated: emits
  /// kError kBadUpstream reason "upstream_truncated_stream" (retryable when nothing was
  /// emitted yet) and returns it.
  core::Status Finish(std::vector<core::Chunk>& out);

  /// [DONE] seen, an error emitted, or Finish called.
  bool done() const { return done_; }
  /// kStart has been emitted.
  bool started() const { return started_; }

 private:
  core::Status Fail(core::Status status, std::vector<core::Chunk>& out);
  void EmitPendingUsage(std::vector<core::Chunk>& out);

  std::string id_;
  std::string model_;
  std::int64_t created_ = 0;
  std::optional<core::Usage> pending_usage_;
  bool started_ = false;
  bool finished_ = false;
  bool usage_emitted_ = false;
  bool done_ = false;
  bool scan_ = true;
};

/// Decodes a non-streaming chat completion body into kStart, kDelta (message.content,
/// reasoning_content else reasoning, tool_calls re-serialised; omitted when all are empty),
/// kFinish (finish_reason, "stop" when the upstream left it null), kUsage (when present).
/// Only choice index 0 is used. A body with an `error` member, invalid JSON, or no choice
/// yields a kError chunk (kBadUpstream) and the same Status is returned.
core::Status DecodeChatResponse(std::string_view body, std::vector<core::Chunk>& out);

/// Maps a non-2xx upstream response to a Status. Understands OpenAI/Azure/vLLM-new
/// `{"error":{message,type,param,code}}`, vLLM-old `{"object":"error","message",...,"code":N}`,
/// llama.cpp `{"error":{"code":503,"message":...,"type":...}}`, `{"error":"text"}`, and plain
/// text (MLX "Not Found"; HTML pages are not quoted).
///
///   status        code              retryable  reason
///   400           kInvalidArgument  no         error.code/type, else upstream_invalid_request
///                 (message = upstream message; Azure content_filter → reason content_filter,
///                 param error.param or "prompt"; other 400s param = error.param)
///   401           kBadUpstream      no         upstream_unauthorized   (fixed message)
///   403           kBadUpstream      no         upstream_forbidden      (fixed message)
///   404           kBadUpstream      no         upstream_not_found      (fixed message)
///   408           kUpstreamTimeout  yes        upstream_timeout
///   409           kUnavailable      yes        upstream_conflict
///   429           kRateLimited      yes        upstream_rate_limited
///   500 502 503 529 kUnavailable    yes        upstream_unavailable
///   504           kUpstreamTimeout  yes        upstream_timeout
///   other 4xx     kBadUpstream      no         upstream_client_error
///   other 5xx     kBadUpstream      yes        upstream_server_error   (as openai-python)
///   anything else kBadUpstream      no         upstream_unexpected_status
/// Except for 400/401/403/404 the message is "upstream returned HTTP N (code): message".
/// `x-should-retry: true|false` overrides retryable (as in openai-python). retry_after_s comes
/// from retry-after-ms (rounded up to whole seconds), else Retry-After in seconds; an HTTP-date
/// Retry-After is ignored (this module has no clock). Upstream text is redacted (sk-… keys,
/// long key-like tokens) and bounded to 512 bytes of valid UTF-8.
core::Status MapUpstreamError(int http_status, std::string_view body, std::string_view retry_after,
                              std::string_view retry_after_ms, std::string_view x_should_retry);

// -----------------------------------------------------------------------------------------
// OpenAI's own Responses API upstream (POST {base}/responses), for a Responses API request
// (core::NativeBody kOpenAiResponses) to a provider with responses_api.

/// The request path: `base_path` + "/responses" (api.openai.com/v1/responses).
std::string ResponsesPath(std::string_view base_path);

/// The client's own Responses body with `model` set to `upstream_model` and `store` forced to
/// false (the gateway promises that no conversation is kept: OpenAI would otherwise store the
/// response for 30 days); empty when `native_json` is not a JSON object.
std::string NativeResponsesRequestBody(std::string_view native_json,
                                       std::string_view upstream_model);

/// Turns the SSE events of a Responses stream into chunks (core::Chunk order), for the
/// gateway's own accounting; the events themselves ride on the chunks (Chunk::native).
/// - response.created → kStart (response.id, response.model, response.created_at).
/// - response.output_text.delta and response.refusal.delta → content;
///   response.reasoning_text.delta and response.reasoning_summary_text.delta → reasoning.
/// - response.output_item.added of a function_call → a tool-call header (index = the
///   function calls of the response counted 0, 1, ...; id = call_id, name, arguments);
///   response.function_call_arguments.delta → that call's argument fragment.
/// - response.completed → kFinish ("tool_calls" when a function call came, else "stop"),
///   kUsage (input/output tokens, cached and reasoning details); response.incomplete →
///   kFinish "length" (max_output_tokens) or "content_filter", kUsage; then done().
/// - response.failed (its response.error) and `error` events → kError (kBadUpstream, reason
///   the error code; retryable, when nothing was emitted yet, for server_error,
///   rate_limit_exceeded and overloaded codes); done().
/// - Invalid JSON → kError "upstream_invalid_json"; other events carry nothing.
class ResponsesStreamDecoder {
 public:
  core::Status Decode(const SseEvent& event, std::vector<core::Chunk>& out);
  /// The connection ended: before a terminal event, kError "upstream_truncated_stream".
  core::Status Finish(std::vector<core::Chunk>& out);
  bool done() const { return done_; }
  bool started() const { return started_; }

 private:
  core::Status DecodeEvent(const SseEvent& event, std::vector<core::Chunk>& out);
  core::Status Fail(core::Status status, std::vector<core::Chunk>& out);
  void Start(std::string_view id, std::string_view model, std::int64_t created,
             std::vector<core::Chunk>& out);

  NativeEvents native_{true};
  bool started_ = false;
  bool emitted_ = false;
  bool done_ = false;
  /// output_index → tool index, for function_call items.
  std::vector<std::pair<std::int64_t, std::int64_t>> calls_;
};

/// A non-streaming Responses body as chunks: kStart (carrying the body as Chunk::native),
/// kDelta (message output_text/refusal → content, reasoning summary/content text →
/// reasoning, function_call items → tool calls), kFinish, kUsage; `error` non-null or status
/// failed → kError, as is invalid JSON or no `output`. The error Status is returned.
core::Status DecodeResponsesBody(std::string_view body, std::vector<core::Chunk>& out);

}  // namespace meridian::providers::openai
