// Internal to the fake upstream (tests/fakes): the scenario and response-plan types shared by
// fake_openai_server.cpp (the HTTP/SSE machinery) and the wire encoders, one file per vendor:
// fake_openai_wire.cpp (the OpenAI family), fake_dashscope_wire.cpp, fake_anthropic_wire.cpp. The
// encoders are pure: they turn a plan into bytes; pacing, cuts and counters stay in the server.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/fakes/fake_openai_server.h"

namespace meridian::fakes::wire {

enum class UsageChoices : std::uint8_t { kEmpty, kNull, kAbsent };

/// One parsed scenario (see the switch table in fake_openai_server.h).
struct Scenario {
  int tokens = -1;  // -1: options.default_tokens
  int delay_ms = 0;
  int ttft_ms = 0;
  int status = 0;
  std::optional<int> retry_after;
  std::optional<int> retry_after_ms;
  std::optional<bool> should_retry;
  bool quota = false;
  bool content_filter_400 = false;
  bool data_inspection = false;
  bool sse_errors = false;
  bool no_space = false;
  bool crlf = false;
  bool comment = false;
  int split = 0;  // 0 none, -1 two halves, N>0 N-byte pieces
  int close_after = -1;
  int reset_after = -1;
  int error_after = -1;
  int garbage_after = -1;
  bool azure_empty_first = false;
  int tool_calls = 0;
  int reasoning = 0;
  std::optional<std::string> reasoning_field;
  bool think_tags = false;
  bool obfuscation = false;
  std::optional<std::string> finish;
  std::optional<UsageChoices> usage_choices;
  bool hang = false;
  bool html = false;
  bool not_completion = false;
  int long_line = 0;
  std::optional<std::int64_t> content_length;
  bool endless = false;
  int drip_ms = 0;
  std::optional<std::string> inference_geo;  // Anthropic: usage.inference_geo
};

/// Everything a chat response needs, resolved from the request and the scenario.
struct ChatPlan {
  Scenario sc;
  std::uint64_t seq = 0;
  std::string id;
  std::int64_t created = 0;
  std::string model;
  bool stream = false;
  bool include_usage = false;
  bool obfuscation = false;
  std::vector<std::string> pieces;  // content deltas
  std::string finish = "stop";      // OpenAI vocabulary: stop, length, tool_calls, or finish=
  std::string reasoning_field;
  std::vector<std::string> tool_names;
  int prompt_tokens = 0;
  int completion_tokens = 0;

  // DashScope native (parameters.*).
  bool ds_message_format = false;  // result_format "message" (default "text")
  bool ds_incremental = false;     // incremental_output (default false: cumulative frames)
  bool ds_thinking = false;        // enable_thinking
  bool ds_multimodal = false;      // the multimodal-generation endpoint: content as items

  // OpenAI's Responses API (POST /v1/responses) instead of chat completions.
  bool responses = false;
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

enum class EventKind : std::uint8_t { kOther, kDelta, kFinish };

/// One SSE event, already framed (its bytes go out as they are).
struct Event {
  std::string bytes;
  EventKind kind = EventKind::kOther;  // deltas count for close_after, delay_ms, ...
};

/// A whole streaming response, before pacing and scripted failures are applied.
struct StreamScript {
  std::string content_type;
  std::vector<Event> events;
  std::string done;           ///< written after the events ("" for none), e.g. `data: [DONE]`
  std::string error_frame;    ///< error_after: the in-stream error event
  std::string garbage_frame;  ///< garbage: the unparseable event
};

/// A complete (error) response.
struct ErrorReply {
  int status = 0;
  std::string body;
  HeaderList headers;
};

/// Frames one SSE event from complete lines ("data: {...}", "event:result", ":comment"),
/// honouring the crlf and comment switches.
std::string SseEvent(const Scenario& sc, const std::vector<std::string>& lines);

/// `data:` or `data: ` (no_space), followed by `payload`.
std::string DataLine(const Scenario& sc, std::string_view payload, bool space = true);

/// Argument fragments of a streamed tool call (7 bytes each, so boundaries fall inside keys).
std::vector<std::string> ToolFragments(const std::string& args);

/// The number of tokens ("delta events") a plan produces: content, reasoning and tool fragments.
int CompletionTokens(const ChatPlan& plan);

// ---- Profiles and the OpenAI family (fake_openai_wire.cpp) -----------------------------------

/// vLLM, llama.cpp, SGLang, MLX-LM.
bool IsLocal(Profile p);
/// The profiles with their own (non-OpenAI) wire format.
bool IsVendor(Profile p);
/// Where a profile puts streamed reasoning ("" = hidden, counted in usage only).
std::string DefaultReasoningField(Profile p);
UsageChoices DefaultUsageChoices(Profile p);
const char* StreamContentType(Profile p);
/// Headers the real service puts on every response.
HeaderList ProfileHeaders(Profile p, std::uint64_t seq);

/// An error in OpenAI's terms, rendered per profile by ErrorBody.
struct ErrorText {
  std::string message;
  std::string type;         // OpenAI `type`
  boost::json::value code;  // OpenAI `code` (string or null)
  boost::json::value param;
};
/// OpenAI's message/type/code for an HTTP status.
ErrorText DefaultErrorText(int status);
/// The error body a profile sends with HTTP `status`.
std::string ErrorBody(Profile p, int status, ErrorText t, std::uint64_t seq = 0);
/// Azure's 400 for a prompt its content filter blocked.
std::string AzureContentFilterBody();
/// The body a profile sends for an unknown path.
std::string NotFoundBody(Profile p, const std::string& method, const std::string& path);
/// The chat.completion body of an OpenAI-family profile.
std::string OpenAiBody(Profile p, const ChatPlan& plan);
/// The chat.completion.chunk stream of an OpenAI-family profile, then `data: [DONE]`.
StreamScript OpenAiStream(Profile p, const ChatPlan& plan);

// ---- OpenAI's Responses API (fake_responses_wire.cpp) ---------------------------------------

/// 400 unless the body has a string `model` and an `input` (a string or an array).
std::optional<ErrorReply> ResponsesCheck(const boost::json::object& body, std::uint64_t seq);
/// The `response` object of a plan (status completed, or incomplete after a length finish).
std::string ResponsesBody(const ChatPlan& plan);
/// The event stream: response.created, .in_progress, per output item added / parts / deltas /
/// done, then response.completed (or .incomplete); mid-stream errors are response.failed.
StreamScript ResponsesStream(const ChatPlan& plan);

// ---- DashScope native (fake_dashscope_wire.cpp) ---------------------------------------------

/// Deterministic request id in DashScope's UUID layout.
std::string DashScopeRequestId(std::uint64_t seq);
HeaderList DashScopeHeaders(std::uint64_t seq);
/// `{"code","message","request_id"}`.
std::string DashScopeError(std::string_view code, std::string_view message, std::uint64_t seq);
/// The documented code/message for an HTTP status (status=, quota).
std::string DashScopeStatusBody(int status, bool quota, std::uint64_t seq);
std::string DashScopeDataInspectionBody(std::uint64_t seq);
std::string DashScopeInvalidKeyBody(std::uint64_t seq);
/// An error answered the way §2.5's capture shows it on an SSE request: HTTP 200, an
/// event-stream body with one `id:1`/`event:error`/`:HTTP_STATUS/<status>`/`data:<body>` frame.
ErrorReply DashScopeSseError(const Scenario& sc, ErrorReply error);
/// Request checks after auth; fills `model`, `params` (may stay null) and the plan flags.
/// `flags.ds_multimodal` (set by the caller: which endpoint) decides the content shape the
/// messages must have: strings for text generation, arrays of {"text"} / {"image"} items for
/// multimodal generation; anything else is 400 InvalidParameter.
std::optional<ErrorReply> DashScopeCheck(const boost::json::value& body, bool stream,
                                         std::uint64_t seq, std::string& model,
                                         const boost::json::object*& params, ChatPlan& flags);
std::string DashScopeBody(const ChatPlan& plan);
StreamScript DashScopeStream(const ChatPlan& plan);

// ---- Anthropic Messages (fake_anthropic_wire.cpp) --------------------------------------------

std::string AnthropicRequestId(std::uint64_t seq);
HeaderList AnthropicHeaders(std::uint64_t seq);
/// `{"type":"error","error":{"type","message"},"request_id"}`.
std::string AnthropicError(std::string_view type, std::string_view message, std::uint64_t seq);
std::string AnthropicStatusBody(int status, std::uint64_t seq);
/// Header and body checks after the key check; fills `model`.
std::optional<ErrorReply> AnthropicCheck(const boost::json::value& body, bool has_version,
                                         std::uint64_t seq, std::string& model);
/// Tool names declared in an Anthropic request (`tools[].name`).
std::vector<std::string> AnthropicToolNames(const boost::json::object& body);
std::string AnthropicBody(const ChatPlan& plan);
StreamScript AnthropicStream(const ChatPlan& plan);

// ---- Embeddings, OpenAI family and DashScope (fake_embeddings_wire.cpp) ----------------------

/// An embeddings request as the fake understood it.
struct EmbedPlan {
  std::string model;
  std::vector<std::string> inputs;  ///< texts, or token ids written "1,2,3"
  int dimensions = 0;
  bool base64 = false;  ///< OpenAI family: encoding_format "base64"
};
/// OpenAI-family checks (`model` unless on Azure's classic path, `input` a non-empty string,
/// array of strings or token ids, `encoding_format` float/base64, `dimensions` >= 1); fills
/// `plan` (dimensions default `default_dims`).
std::optional<ErrorReply> OpenAiEmbeddingsCheck(Profile p, const boost::json::value& body,
                                                bool model_optional, int default_dims,
                                                std::uint64_t seq, EmbedPlan& plan);
/// `{"object":"list","data":[{"object":"embedding","index","embedding"}],"model","usage"}`,
/// vectors as float arrays or base64 float32 (little-endian), as OpenAI sends them.
std::string OpenAiEmbeddingsBody(const EmbedPlan& plan, int tokens_per_input);
/// DashScope text-embedding checks (`model`, `input.texts` of 1 to 10 strings,
/// `parameters.dimension`); fills `plan`.
std::optional<ErrorReply> DashScopeEmbeddingsCheck(const boost::json::value& body, int default_dims,
                                                   std::uint64_t seq, EmbedPlan& plan);
/// `{"output":{"embeddings":[{"sparse_embedding":[],"embedding","text_index"}]},"usage":
/// {"total_tokens"},"request_id"}`, items in reverse order (the API promises text_index, not
/// order).
std::string DashScopeEmbeddingsBody(const EmbedPlan& plan, int tokens_per_input, std::uint64_t seq);

}  // namespace meridian::fakes::wire
