// A real HTTP/1.1 server on loopback that speaks the OpenAI Chat Completions wire format the way
// OpenAI, Azure OpenAI and the local engines (vLLM, llama.cpp, SGLang, MLX-LM) actually do, quirks
// and failure modes included. Integration tests point the gateway at it: the gateway is the
// client, so its real HTTP client, TLS stack and SSE parser are what gets exercised.
// The same server also impersonates DashScope's native API and Anthropic's Messages API
// (Profile::kDashScope, Profile::kAnthropic; their encoders live in fake_dashscope_wire.cpp and
// fake_anthropic_wire.cpp). Wire details follow the upstream wire-protocol reference
// (wire-protocols.md §0-§7).
#pragma once

#include <atomic>
#include <boost/json/value.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace meridian::fakes {

/// Which upstream the server impersonates. Differences are in routes, auth, error bodies,
/// reasoning field name, the usage chunk and (MLX) the HTTP framing; see each value.
enum class Profile : std::uint8_t {
  /// POST /v1/chat/completions, GET /v1/models. `Authorization: Bearer <key>`. Errors are
  /// `{"error":{"message","type","param","code"}}` with a string (or null) code. No /health.
  /// Reasoning is hidden (only counted in usage) unless `reasoning_field=` says otherwise.
  kOpenAi,
  /// Classic POST /openai/deployments/{dep}/chat/completions?api-version=V (missing api-version:
  /// 400) and v1 POST /openai/v1/chat/completions (model = deployment, no api-version). Requires
  /// `api-key: <key>`. Errors are `{"error":{"code":"<str>","message"}}`; non-streaming bodies
  /// carry prompt_filter_results / content_filter_results.
  kAzure,
  /// vLLM: `reasoning` field; usage chunk has `"choices": null`; old-style error body
  /// `{"object":"error","message","type","param","code":<int>}`; GET /health → 200 empty body
  /// (503 empty when unhealthy); unknown path → 404 `{"detail":"Not Found"}`.
  kVllm,
  /// llama.cpp llama-server: `reasoning_content`; errors `{"error":{"code":<int>,"message",
  /// "type"}}`; GET /health and /v1/health → `{"status":"ok"}`, or 503 "Loading model" when
  /// unhealthy; the finish chunk carries an extra `timings` object.
  kLlamaCpp,
  /// SGLang: `reasoning_content` [U]; vLLM-style errors; GET /health and /health_generate → 200.
  kSglang,
  /// mlx_lm.server (Python http.server): answers HTTP/1.0 and closes after every response, so
  /// streams are close-delimited (no chunked encoding). Every delta repeats role, content,
  /// `reasoning` and `tool_calls: []`; no role-only first chunk; the last content-bearing chunk
  /// carries finish_reason. Errors are `{"error":"<string>"}`; unknown path → 404 with the
  /// plain body `Not Found` (but `Content-type: application/json`). GET /health →
  /// `{"status": "ok"}`. Never checks API keys.
  kMlx,
  /// Alibaba DashScope native API (§2.2-2.5): POST /api/v1/services/aigc/text-generation/
  /// generation (string content only) and .../multimodal-generation/generation (Qwen-VL:
  /// content as [{"text"}|{"image"}] items, in requests and answers) with `Authorization: Bearer
  /// <key>` (else 401 `InvalidApiKey`). Body
  /// `{"model","input":{"messages"|"prompt"},"parameters":{...}}`; a top-level `messages` is
  /// 400 `InvalidParameter`. `parameters.result_format` "message" answers with
  /// `output.choices[].message`, absent or "text" with `output.text` (the real default).
  /// Streams only with the header `X-DashScope-SSE: enable` (a body `stream` is ignored):
  /// `id:N` / `event:result` / `:HTTP_STATUS/200` / `data:{...}` events, no space after the
  /// colons, `finish_reason` the string "null" until the last frame, cumulative `usage` with
  /// the same `request_id` on every frame, no [DONE]. `incremental_output` false (the default)
  /// repeats all text so far in every frame; `enable_thinking` adds `reasoning_content` frames
  /// (three, or `reasoning=N`) before the content (thinking with `incremental_output` false
  /// in a stream: 400). Errors are flat `{"code","message","request_id"}`. Tools come from
  /// `parameters.tools` (OpenAI shape). No /health, no model list.
  kDashScope,
  /// Anthropic Messages API (§3): POST /v1/messages. Requires `x-api-key: <key>` (401
  /// authentication_error) and an `anthropic-version` header (400 invalid_request_error; the
  /// rejection is not in the reference, the live API does it). `model`, `max_tokens` and a
  /// non-empty `messages` with user/assistant roles only (a "system" role is 400) are
  /// required. Streams (`"stream": true`) are named events message_start, content_block_start,
  /// ping (after the first block start), content_block_delta (thinking_delta + signature_delta,
  /// text_delta, input_json_delta), content_block_stop, message_delta (cumulative
  /// output_tokens), message_stop, JSON printed with `", "`/`": "` separators as in §3.2; no
  /// [DONE]. Errors are `{"type":"error","error":{"type","message"},"request_id"}`; status=529
  /// is overloaded_error. finish "stop"/"length"/"tool_calls" become stop_reason end_turn/
  /// max_tokens/tool_use. Tools come from `tools[].name`. No /health, no model list.
  kAnthropic,
};

std::string_view ProfileName(Profile profile);

/// TLS for the fake server. With `client_ca_file` set, client certificates are requested and
/// verified against it (mTLS); `require_client_cert` makes a missing one a handshake failure.
struct ServerTls {
  std::string cert_file{};
  std::string key_file{};
  std::string client_ca_file{};
  bool require_client_cert = false;
};

struct FakeServerOptions {
  Profile profile = Profile::kOpenAi;
  /// Key the client must present. Unset: kOpenAi/kAzure/kDashScope/kAnthropic require
  /// kDefaultApiKey and the local engines accept anything (as when started without --api-key). Set:
  /// every profile but kMlx requires it (Bearer for the local engines). Set to "": no check at all.
  std::optional<std::string> api_key{};
  /// Ids listed by GET /v1/models. Requests may name any model; responses echo the request's.
  std::vector<std::string> models = {"fake-model"};
  /// Azure deployments that exist (classic path segment, or `model` on the v1 path). Others get
  /// 404 DeploymentNotFound. Empty: any name is accepted.
  std::vector<std::string> azure_deployments = {"fake-deployment"};
  /// Response text, split on spaces into one delta per word (the first without a leading
  /// space). Empty: "tok0 tok1 ... tok{N-1}" with N = default_tokens or `tokens=`.
  std::string text{};
  int default_tokens = 5;
  /// usage.prompt_tokens of every response (fixed so tests can assert totals); embeddings
  /// count this many tokens per input.
  int prompt_tokens = 9;
  /// Length of embedding vectors when the request sets no dimensions.
  int embedding_dimensions = 8;
  /// Scenario applied to every chat request before anything else (same syntax as the header).
  std::string default_scenario{};
  std::optional<ServerTls> tls{};
  /// io_context threads; connections run on strands, so >1 only adds real parallelism.
  int threads = 1;
  /// Recorded requests kept (0: all). Past the cap the oldest half is forgotten, so a long
  /// load test (tests/bench/fake_upstream) runs in bounded memory.
  std::size_t max_recorded = 0;
};

/// One request as the server received it.
struct RecordedRequest {
  std::uint64_t seq = 0;  ///< 1-based arrival order across all requests
  std::string method{};
  std::string target{};  ///< path plus query, as sent
  std::string path{};
  std::string query{};  ///< without the '?'
  /// Lower-cased names; repeated headers are joined with ", ".
  std::map<std::string, std::string> headers{};
  std::string body{};
  unsigned http_version = 11;  ///< 10 or 11
  std::string scenario{};      ///< effective scenario for chat requests ("" otherwise)
  bool tls = false;
  std::string client_cert_cn{};                 ///< mTLS peer certificate subject CN, if any
  std::vector<std::string> client_cert_uris{};  ///< its URI SANs (SPIFFE ids)

  /// Header value by case-insensitive name; "" when absent.
  std::string header(std::string_view name) const;
  bool has_header(std::string_view name) const;
};

/// The fake upstream. Construction binds 127.0.0.1:0 and starts serving; destruction (or Stop)
/// closes every connection and joins the threads.
///
/// Scenarios. A scenario is a comma-separated list of switches, `name` or `name=value`. The
/// effective scenario of a chat request is, left to right (later switches win):
/// options.default_scenario, SetScenario(), the next PushScenario() entry, a `<<fake:SPEC>>`
/// marker anywhere in a message's string content (survives any gateway that forwards messages),
/// and the `x-fake-scenario` request header (per request, so concurrent tests don't interfere).
/// Scenarios only affect chat-completion requests (health probes never consume them). An
/// unknown switch is answered with HTTP 418 and a message naming it.
///
// clang-format off
/// | switch             | effect |
/// |--------------------|--------|
/// | reset              | forget every switch from earlier layers |
/// | tokens=N           | N content deltas "tok0", " tok1", ... (ignored when a text is set) |
/// | delay_ms=N         | wait N ms before every delta event (non-streaming: N ms per token) |
/// | ttft_ms=N          | stall N ms after reading the request, before the first byte (errors too) |
/// | status=CODE        | answer CODE with the profile's error body (after auth checks); DashScope: |
/// |                    | 429 Throttling, 500 InternalError, ...; Anthropic: 529 overloaded_error, |
/// |                    | 429 rate_limit_error, 500 api_error, ... (§3.3 table) |
/// | retry_after=S      | with status/quota: `retry-after: S` |
/// | retry_after_ms=N   | with status/quota: `retry-after-ms: N` |
/// | should_retry=B     | with status/quota: `x-should-retry: true` or `false` |
/// | quota              | 429 with OpenAI's insufficient_quota body (DashScope: |
/// |                    | Throttling.AllocationQuota; Anthropic: rate_limit_error) |
/// | content_filter_400 | 400 with Azure's content_filter body (any profile) |
/// | data_inspection    | 400 with DashScope's DataInspectionFailed body (any profile); DashScope |
/// |                    | streams with error_in_stream: that code in the in-stream error instead |
/// | sse_errors         | DashScope, streaming request: errors (key, request checks, status=, |
/// |                    | data_inspection) arrive as HTTP 200 event-stream with one `id:1`/ |
/// |                    | `event:error`/`:HTTP_STATUS/<code>`/`data:{...}` frame and |
/// |                    | `x-dashscope-finished: true` (§2.5's capture; [U] for this endpoint) |
/// | no_space           | `data:{...}` instead of `data: {...}` (DashScope never has the space) |
/// | crlf               | `\r\n` line endings (an event ends `\r\n\r\n`) |
/// | comment            | a `: fake-comment` line at the start of every event |
/// | split              | each event written as two HTTP chunks, 1 ms apart |
/// | split=N            | each event written as N-byte HTTP chunks (N=1: byte trickle) |
/// | close_after=N      | after N delta events: close (FIN), no finish chunk, no [DONE] / no |
/// |                    | terminal event; non-streaming: close after half the body |
/// | reset_after=N      | like close_after but with a TCP RST (SO_LINGER 0) |
/// | error_after=N      | streaming: after N delta events the profile's in-stream error, then the |
/// | error_in_stream=N  | chunked body is terminated and the connection closed. OpenAI family: |
/// |                    | `data: {"error":...}`; DashScope: `id:N+1`/`event:error`/ |
/// |                    | `:HTTP_STATUS/500`/`data:{"code":"InternalError",...}` (§2.5); Anthropic: |
/// |                    | `event: error` with overloaded_error (§3.2). The two names are synonyms |
/// | garbage[=N]        | an invalid-JSON data event after N (default 0) delta events, then carry |
/// |                    | on; non-streaming: 200 with half a JSON body |
/// | azure_empty_first  | first event is Azure's `"choices":[]` + prompt_filter_results chunk |
/// | tool_calls[=N]     | N (default 1) tool calls named after the request's tools (else |
/// |                    | get_weather); arguments ToolArguments(i) streamed in 7-byte fragments; |
/// |                    | finish "tool_calls". OpenAI: content null; DashScope: |
/// |                    | message.tool_calls; Anthropic: tool_use blocks with input_json_delta, |
/// |                    | stop_reason tool_use |
/// | reasoning=N        | N reasoning deltas "think0", " think1", ... before the content. |
/// |                    | DashScope: reasoning_content frames (message format only); Anthropic: a |
/// |                    | thinking block (thinking_delta x N, one signature_delta) at index 0 |
/// | reasoning_field=F  | field of those deltas (default per profile; empty = hidden) |
/// | inference_geo=G    | Anthropic: `usage.inference_geo` G (us, global) in the body's usage and |
/// |                    | the stream's message_start and message_delta usage (where it ran) |
/// | think_tags         | reasoning inside content instead: "<think>", ..., "</think>" |
/// | obfuscation        | "obfuscation" on every chunk (unless include_obfuscation is false) |
/// | finish=R           | finish_reason R (e.g. length, content_filter); Anthropic stop_reason R |
/// | usage_choices=K    | usage chunk's choices: empty, null or absent (default per profile) |
/// | hang               | read the request, never answer (until the client leaves or Stop()) |
/// | html               | 200 with a text/html page (a captive portal or login page) |
/// | not_completion     | 200 with valid JSON (a stream: one valid SSE event and [DONE]) that is |
/// |                    | not a chat completion: a model list |
/// | long_line=N        | 200 whose body is one line of N bytes: an SSE `data:` line (a stream) or |
/// |                    | a JSON string member, sent in 16 KiB chunks, then properly ended |
/// | content_length=N   | 200 declaring `Content-Length: N`, sending 7 bytes, then silence |
/// | endless            | 200 with a chunked body that never ends (SSE comment lines or JSON |
/// |                    | whitespace), written as fast as the client reads |
/// | drip_ms=N          | 200, then one body byte every N ms forever (`:`/newline, an SSE comment |
/// |                    | that is never an event; or JSON whitespace): never idle, never done |
// clang-format on
///
/// Flags take an optional `=0`/`=1` so a later layer can switch an earlier one off. When several
/// failure switches hit the same point, garbage goes out first, then error_after, close_after,
/// reset_after (the first of these three ends the stream). Precedence before the body:
/// ttft_ms, hang, content_filter_400, data_inspection, quota/status, then the malformed-answer
/// switches (html, not_completion, long_line, content_length, endless, drip_ms; the first set
/// in that order wins). azure_empty_first,
/// reasoning_field, think_tags, obfuscation and usage_choices are OpenAI-family switches; the
/// DashScope and Anthropic profiles ignore them.
///
/// "Delta events" are the reasoning, content and tool-call-fragment events after the role chunk
/// (DashScope: every frame but the last; Anthropic: the thinking_delta, text_delta and
/// input_json_delta events). `max_tokens` / `max_completion_tokens` in the request (DashScope:
/// `parameters.max_tokens`) cap the content deltas (finish "length", Anthropic "max_tokens").
/// Streams honour `stream_options.include_usage` (usage chunk + `"usage":null` on every earlier
/// chunk) and `include_obfuscation`. The `<<fake:SPEC>>` marker is also found in DashScope's
/// `input.messages` and in Anthropic's text content blocks.
///
/// Embeddings: POST /v1/embeddings (OpenAI, vLLM, llama.cpp, SGLang), Azure's
/// /openai/deployments/{dep}/embeddings?api-version=V and /openai/v1/embeddings, DashScope's
/// /api/v1/services/embeddings/text-embedding/text-embedding (at most 10 texts, as the real
/// API); MLX and Anthropic have none (404). Vectors are EmbeddingOf(input, dimensions or
/// options.embedding_dimensions), floats or (OpenAI family, `encoding_format: "base64"`)
/// base64 float32; DashScope lists them in reverse order (it promises text_index, not order).
/// Of the scenario switches they honour ttft_ms, hang, status/quota (with retry_after...) and
/// garbage (half a body); they count as chat requests below.
///
/// Counters count chat requests only (chat completions, DashScope generation, Anthropic
/// messages; health and model-list calls are recorded in requests() but not counted), so a test
/// can assert retries without health probes interfering.
/// Completion counters move when the server's last write completes, which can be after the
/// client has already read the whole response: assert them through WaitFor, not directly.
class FakeOpenAiServer {
 public:
  static constexpr const char* kDefaultApiKey = "test-key";
  static constexpr const char* kScenarioHeader = "x-fake-scenario";
  static constexpr std::chrono::milliseconds kDefaultWait{5000};

  explicit FakeOpenAiServer(FakeServerOptions options = {});
  ~FakeOpenAiServer();
  FakeOpenAiServer(const FakeOpenAiServer&) = delete;
  FakeOpenAiServer& operator=(const FakeOpenAiServer&) = delete;

  std::uint16_t port() const { return port_; }
  Profile profile() const { return options_.profile; }
  /// "http://127.0.0.1:PORT" (https with TLS).
  std::string origin() const;
  /// What an SDK would use as base URL: origin + "/v1"; origin + "/openai/v1" for kAzure,
  /// origin + "/api/v1" for kDashScope, origin alone for kAnthropic.
  std::string base_url() const;
  /// The key clients must send ("" when none is checked).
  std::string api_key() const;

  /// Closes the listener and every connection, waits for the handlers to unwind and joins the
  /// threads. Idempotent; the destructor calls it.
  void Stop();

  /// Sticky scenario for all later chat requests (replaces the previous one). Throws
  /// std::invalid_argument on an unknown switch.
  void SetScenario(std::string spec);
  /// One-shot scenario for the next `count` chat requests, queued after earlier pushes.
  void PushScenario(std::string spec, int count = 1);
  /// Drops the sticky scenario and the one-shot queue (options.default_scenario stays).
  void ClearScenarios();
  /// Replaces options.text for later requests.
  void SetText(std::string text);
  /// Health endpoints answer 503 (profile body) while unhealthy.
  void SetHealthy(bool healthy);
  /// "" when `spec` parses, else a message naming the offending switch.
  static std::string ValidateScenario(std::string_view spec);

  // ---- observations (thread-safe) ----
  std::vector<RecordedRequest> requests() const;
  std::optional<RecordedRequest> last_request() const;
  std::string last_request_body() const;
  /// The last request body parsed as JSON (null when absent or invalid).
  boost::json::value last_request_json() const;
  /// All recorded requests, chat or not.
  int request_count() const;

  int connections_accepted() const { return connections_accepted_.load(); }
  /// Chat requests received (counted as soon as the request is read, before any stall).
  int requests_started() const { return requests_started_.load(); }
  /// Chat responses written completely (errors included, cut streams excluded).
  int responses_completed() const { return responses_completed_.load(); }
  /// Streaming responses whose 200 header went out.
  int streams_started() const { return streams_started_.load(); }
  /// Streams that reached their scripted end ([DONE], MLX's last chunk, DashScope's last frame,
  /// Anthropic's message_stop).
  int streams_completed() const { return streams_completed_.load(); }
  /// Streaming requests whose client went away (EOF/RST seen while stalling or waiting between
  /// events, or a failed write) before the stream ended. Proves the gateway cancelled upstream.
  int streams_cut_by_client() const { return streams_cut_by_client_.load(); }
  /// Any chat request (streaming or not) abandoned by the client before the response ended.
  int requests_cut_by_client() const { return requests_cut_by_client_.load(); }
  /// Responses the server cut on purpose (close_after, reset_after, error_after), streaming or
  /// not.
  int streams_cut_by_server() const { return streams_cut_by_server_.load(); }
  /// Chat requests currently being handled (including stalled and hanging ones).
  int active_requests() const { return active_requests_.load(); }

  /// Blocks until `pred` is true or `timeout` passes; re-evaluated whenever the server's state
  /// changes (requests, counters), so tests never sleep to synchronise. `pred` may call any
  /// accessor above. Returns the final value of `pred`.
  bool WaitFor(const std::function<bool()>& pred,
               std::chrono::milliseconds timeout = kDefaultWait) const;

  /// Forgets recorded requests and zeroes the counters.
  void ResetObservations();

  // ---- deterministic content, for assertions ----
  /// "tok0 tok1 ... tok{n-1}".
  static std::string TokenText(int n);
  /// "think0 think1 ... think{n-1}".
  static std::string ReasoningText(int n);
  /// The JSON arguments string of tool call `index`.
  static std::string ToolArguments(int index);
  /// The vector the fake answers for one embeddings input (a text, or token ids written
  /// "1,2,3"): `dimensions` multiples of 1/1024, so every value is exact in float and JSON.
  static std::vector<float> EmbeddingOf(std::string_view input, int dimensions);

 private:
  struct Impl;  // the asio machinery; nested, so it may update the fields below

  void Notify() const;

  FakeServerOptions options_;
  std::uint16_t port_ = 0;
  std::unique_ptr<Impl> impl_;

  mutable std::mutex mu_;  // guards the fields below
  std::string sticky_scenario_;
  std::deque<std::string> oneshot_scenarios_;
  std::string text_;
  bool healthy_ = true;
  std::vector<RecordedRequest> requests_;
  std::uint64_t next_seq_ = 1;

  // Separate from mu_ so WaitFor's predicate can take mu_ through the accessors.
  mutable std::mutex wait_mu_;
  mutable std::condition_variable wait_cv_;

  std::atomic<int> connections_accepted_{0};
  std::atomic<int> requests_started_{0};
  std::atomic<int> responses_completed_{0};
  std::atomic<int> streams_started_{0};
  std::atomic<int> streams_completed_{0};
  std::atomic<int> streams_cut_by_client_{0};
  std::atomic<int> requests_cut_by_client_{0};
  std::atomic<int> streams_cut_by_server_{0};
  std::atomic<int> active_requests_{0};
};

}  // namespace meridian::fakes
