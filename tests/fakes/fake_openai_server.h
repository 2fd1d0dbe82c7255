// A real HTTP/1.1 server on loopback that speaks the OpenAI Chat Completions wire format the way
// OpenAI, Azure OpenAI and the local engines (vLLM, llama.cpp, SGLang, MLX-LM) actually do, quirks
// and failure modes included. Integration tests point the gateway at it: the gateway is the
// client, so its real HTTP client, TLS stack and SSE parser are what gets exercised.
// Wire details follow the upstream wire-protocol reference (wire-protocols.md §0, §1, §4-§7).
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
  /// Key the client must present. Unset: kOpenAi/kAzure require kDefaultApiKey and the local
  /// engines accept anything (as when started without --api-key). Set: every profile but kMlx
  /// requires it (Bearer for the local engines). Set to "": no check at all.
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
  /// usage.prompt_tokens of every response (fixed so tests can assert totals).
  int prompt_tokens = 9;
  /// Scenario applied to every chat request before anything else (same syntax as the header).
  std::string default_scenario{};
  std::optional<ServerTls> tls{};
  /// io_context threads; connections run on strands, so >1 only adds real parallelism.
  int threads = 1;
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
/// | switch             | effect |
/// |--------------------|--------|
/// | reset              | forget every switch from earlier layers |
/// | tokens=N           | N content deltas "tok0", " tok1", ... (ignored when a text is set) |
/// | delay_ms=N         | wait N ms before every delta event (non-streaming: N ms per token) |
/// | ttft_ms=N          | stall N ms after reading the request, before the first byte (errors too)
/// | | status=CODE        | answer CODE with the profile's error body (after auth checks) | |
/// retry_after=S      | with status/quota: `retry-after: S` | | retry_after_ms=N   | with
/// status/quota: `retry-after-ms: N` | | should_retry=B     | with status/quota: `x-should-retry:
/// true` or `false` | | quota              | 429 with OpenAI's insufficient_quota body | |
/// content_filter_400 | 400 with Azure's content_filter body (any profile) | | no_space           |
/// `data:{...}` instead of `data: {...}` | | crlf               | `\r\n` line endings (an event
/// ends `\r\n\r\n`) | | comment            | a `: fake-comment` line before the data line of every
/// event | | split              | each event written as two HTTP chunks, 1 ms apart | | split=N |
/// each event written as N-byte HTTP chunks (N=1: byte trickle) | | close_after=N      | after N
/// delta events: close (FIN), no finish chunk, no [DONE]; | |                    | non-streaming:
/// close after half the body | | reset_after=N      | like close_after but with a TCP RST
/// (SO_LINGER 0) | | error_after=N      | streaming: after N delta events `data: {"error":...}`
/// (profile's | |                    | shape), terminate the chunked body, close | | garbage[=N] |
/// an invalid-JSON data event after N (default 0) delta events, then | |                    | carry
/// on; non-streaming: 200 with half a JSON body | | azure_empty_first  | first event is Azure's
/// `"choices":[]` + prompt_filter_results chunk | | tool_calls[=N]     | N (default 1) tool calls
/// named after the request's tools (else | |                    | get_weather); arguments
/// ToolArguments(i) streamed in 7-byte | |                    | fragments; content null;
/// finish_reason "tool_calls" | | reasoning=N        | N reasoning deltas "think0", " think1", ...
/// before the content | | reasoning_field=F  | field of those deltas (default per profile; empty =
/// hidden) | | think_tags         | reasoning inside content instead: "<think>", ..., "</think>" |
/// | obfuscation        | "obfuscation" on every chunk (unless include_obfuscation is false) |
/// | finish=R           | finish_reason R (e.g. length, content_filter) |
/// | usage_choices=K    | usage chunk's choices: empty, null or absent (default per profile) |
/// | hang               | read the request, never answer (until the client leaves or Stop()) |
///
/// Flags take an optional `=0`/`=1` so a later layer can switch an earlier one off. When several
/// failure switches hit the same point, garbage goes out first, then error_after, close_after,
/// reset_after (the first of these three ends the stream). Precedence before the body:
/// ttft_ms, hang, content_filter_400, quota/status.
///
/// "Delta events" are the reasoning, content and tool-call-fragment events after the role chunk.
/// `max_tokens` / `max_completion_tokens` in the request cap the content deltas (finish
/// "length"). Streams honour `stream_options.include_usage` (usage chunk + `"usage":null` on
/// every earlier chunk) and `include_obfuscation`.
///
/// Counters count chat-completion requests only (health and model-list calls are recorded in
/// requests() but not counted), so a test can assert retries without health probes interfering.
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
  /// What an SDK would use as base URL: origin + "/v1", or origin + "/openai/v1" for kAzure.
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
  /// Streams that reached their scripted end ([DONE], or MLX's last chunk).
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
