#include "providers/openai/openai_codec.h"

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <exception>
#include <limits>
#include <utility>

#include "gateway/core/json_text.h"
#include "providers/common/embeddings.h"
#include "providers/common/json_util.h"
#include "providers/common/sanitize.h"
#include "providers/openai/chunk_scan.h"

namespace meridian::providers::openai {
namespace {

using namespace jsonutil;  // NOLINT(google-build-using-namespace): shared helpers

constexpr UsageKeys kOpenAiUsage{"prompt_tokens", "completion_tokens", "completion_tokens_details"};

namespace json = boost::json;
using core::Chunk;
using core::Status;
using core::StatusCode;

constexpr std::size_t kMaxMessageBytes = 512;
constexpr std::size_t kMaxParamBytes = 128;

// ---------------------------------------------------------------------------------------
// JSON writing

// Shortest round-trip form; JSON has no NaN/Infinity, so those are left out by the caller.

void AppendMessage(std::string& out, const core::Message& m) {
  out += "{\"role\":";
  AppendJsonString(out, m.role);
  out += ",\"content\":";
  if (!m.content_parts_json.empty()) {
    out += m.content_parts_json;
  } else if (m.content_null) {
    out += "null";
  } else {
    AppendJsonString(out, m.text);
  }
  if (!m.name.empty()) {
    AppendKey(out, "name");
    AppendJsonString(out, m.name);
  }
  if (!m.tool_call_id.empty()) {
    AppendKey(out, "tool_call_id");
    AppendJsonString(out, m.tool_call_id);
  }
  if (!m.tool_calls_json.empty()) {
    AppendKey(out, "tool_calls");
    out += m.tool_calls_json;
  }
  out.push_back('}');
}

// Keys this codec writes itself (or deliberately does not forward); a passthrough member
// with one of these names would be a duplicate key.
bool IsOwnKey(std::string_view key) {
  static constexpr std::array<std::string_view, 14> kOwn = {"model",
                                                            "messages",
                                                            "stream",
                                                            "stream_options",
                                                            "max_tokens",
                                                            "max_completion_tokens",
                                                            "temperature",
                                                            "top_p",
                                                            "stop",
                                                            "tools",
                                                            "tool_choice",
                                                            "user",
                                                            "enable_thinking",
                                                            "chat_template_kwargs"};
  for (auto k : kOwn) {
    if (k == key) return true;
  }
  return false;
}

// The members of the passthrough object `key` (to merge with ours); empty when it is absent,
// not an object or not JSON.
json::object PassthroughObject(const core::CompletionRequest& req, std::string_view key) {
  for (const core::PassthroughMember& m : req.passthrough) {
    if (m.key != key) continue;
    json::error_code ec;
    json::value v = json::parse(m.json, ec, {}, ParseOptions());
    if (!ec && v.is_object()) return std::move(v.get_object());
  }
  return {};
}

// ---------------------------------------------------------------------------------------
// JSON reading

// Choice index 0; a choice without `index` counts as 0 (some engines leave it out).
const json::object* FirstChoice(const json::array& choices) {
  for (const auto& c : choices) {
    const json::object* o = c.if_object();
    if (o == nullptr) continue;
    const auto index = IntMember(*o, "index");
    if (!index || *index == 0) return o;
  }
  return nullptr;
}

// Reasoning arrives as reasoning_content (DashScope, llama.cpp, older vLLM, SGLang) or
// reasoning (current vLLM, Ollama, MLX-LM).
std::string_view Reasoning(const json::object& o) {
  std::string_view r = StringMember(o, "reasoning_content");
  return r.empty() ? StringMember(o, "reasoning") : r;
}

std::string ToolCalls(const json::object& o) {
  const json::array* calls = ArrayMember(o, "tool_calls");
  return (calls == nullptr || calls->empty()) ? std::string() : json::serialize(*calls);
}

bool IsSafeId(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

/// The error members of the shapes the OpenAI family uses.
struct UpstreamError {
  bool found = false;
  std::string message;
  std::string type;
  std::string code;  ///< string code, or an integer code printed
  std::optional<std::int64_t> numeric_code;
  std::string param;
};

void ReadErrorFields(const json::object& e, UpstreamError& out) {
  out.found = true;
  out.message = std::string(StringMember(e, "message"));
  out.type = std::string(StringMember(e, "type"));
  out.param = std::string(StringMember(e, "param"));
  if (const json::value* code = Member(e, "code")) {
    if (code->is_string()) {
      out.code = std::string(code->get_string().data(), code->get_string().size());
    } else if (auto n = ToInt(*code)) {
      out.numeric_code = n;
      out.code = std::to_string(*n);
    }
  }
}

UpstreamError ExtractError(const json::object& obj) {
  UpstreamError e;
  if (const json::value* err = Member(obj, "error")) {
    if (const json::object* eo = err->if_object()) {
      ReadErrorFields(*eo, e);
    } else if (err->is_string()) {
      e.found = true;  // Ollama native: {"error":"..."}
      e.message = std::string(err->get_string().data(), err->get_string().size());
    } else {
      e.found = true;
    }
  } else if (Member(obj, "message") != nullptr &&
             (StringMember(obj, "object") == "error" || Member(obj, "code") != nullptr)) {
    ReadErrorFields(obj, e);  // vLLM (old): {"object":"error","message":...,"code":400}
  }
  return e;
}

std::string ReasonFrom(const UpstreamError& e, std::string_view fallback) {
  if (IsSafeId(e.code) && !e.numeric_code) return e.code;
  if (IsSafeId(e.type)) return e.type;
  return std::string(fallback);
}

Status ChunkError(std::string message, std::string reason) {
  return Status::Error(StatusCode::kBadUpstream, std::move(message), std::move(reason));
}

Status StreamErrorStatus(const UpstreamError& e) {
  std::string message = SanitizeUpstreamText(e.message, kMaxMessageBytes);
  if (message.empty()) message = "upstream reported an error mid-stream";
  Status s = ChunkError(std::move(message), ReasonFrom(e, "upstream_stream_error"));
  bool retryable = e.type == "server_error" || e.type == "unavailable_error" ||
                   e.type.find("overloaded") != std::string::npos;
  if (e.numeric_code) {
    const std::int64_t c = *e.numeric_code;
    retryable = retryable || c == 408 || c == 429 || (c >= 500 && c <= 599);
  }
  s.retryable = retryable;
  return s;
}

Chunk UsageChunk(const core::Usage& u) {
  Chunk c;
  c.kind = Chunk::Kind::kUsage;
  c.usage = u;
  return c;
}

// ---------------------------------------------------------------------------------------
// Paths

std::string_view TrimTrailingSlashes(std::string_view s) {
  while (!s.empty() && s.back() == '/') s.remove_suffix(1);
  return s;
}

void AppendPercentEncoded(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char ch : s) {
    if (IsAsciiAlnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
      out.push_back(ch);
    } else {
      const auto c = static_cast<unsigned char>(ch);
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
}

}  // namespace

// -----------------------------------------------------------------------------------------
// Request

std::string BuildChatRequestBody(const core::CompletionRequest& req,
                                 std::string_view upstream_model, OpenAiFlavor flavor,
                                 bool stream) {
  const bool compatible = flavor == OpenAiFlavor::kCompatible;

  std::size_t estimate = 256 + req.tools_json.size();
  for (const core::PassthroughMember& m : req.passthrough)
    estimate += 4 + m.key.size() + m.json.size();
  for (const auto& m : req.messages) {
    estimate += 48 + m.text.size() + m.content_parts_json.size() + m.tool_calls_json.size();
  }
  std::string out;
  out.reserve(estimate + estimate / 8);

  out += "{\"model\":";
  AppendJsonString(out, upstream_model);
  out += ",\"messages\":[";
  for (std::size_t i = 0; i < req.messages.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendMessage(out, req.messages[i]);
  }
  out.push_back(']');

  if (stream) {
    out += ",\"stream\":true";
    json::object options = PassthroughObject(req, "stream_options");
    options["include_usage"] = true;
    AppendKey(out, "stream_options");
    out += json::serialize(options);
  }
  AppendSampling(out, req, compatible ? "max_tokens" : "max_completion_tokens");
  if (!req.tools_json.empty()) {
    AppendKey(out, "tools");
    out += req.tools_json;
  }
  if (!req.tool_choice_json.empty()) {
    AppendKey(out, "tool_choice");
    out += req.tool_choice_json;
  }
  if (!compatible && !req.user.empty()) {
    AppendKey(out, "user");
    AppendJsonString(out, req.user);
  }
  if (compatible) {
    json::object kwargs = PassthroughObject(req, "chat_template_kwargs");
    if (req.enable_thinking) kwargs["enable_thinking"] = *req.enable_thinking;
    if (!kwargs.empty()) {
      AppendKey(out, "chat_template_kwargs");
      out += json::serialize(kwargs);
    }
  }

  for (const core::PassthroughMember& m : req.passthrough) {
    if (IsOwnKey(m.key)) continue;
    AppendKey(out, m.key);
    out += m.json;  // verbatim: a value that is not JSON shows in the upstream's 400
  }
  out.push_back('}');
  return out;
}

namespace {

/// ChatPath / EmbeddingsPath: the operation's path `suffix` ("/chat/completions").
std::string OperationPath(OpenAiFlavor flavor, std::string_view base_path,
                          std::string_view upstream_model, std::string_view api_version,
                          std::string_view kSuffix) {
  std::string_view base = TrimTrailingSlashes(base_path);
  std::string out;
  if (flavor != OpenAiFlavor::kAzure || base.ends_with("/openai/v1")) {
    out.reserve(base.size() + kSuffix.size());
    out.append(base);
    out.append(kSuffix);
    return out;
  }
  // Classic Azure: the resource root may have been configured with its "/openai" segment.
  if (base.ends_with("/openai")) base.remove_suffix(std::string_view("/openai").size());
  out.append(base);
  out.append("/openai/deployments/");
  AppendPercentEncoded(out, upstream_model);
  out.append(kSuffix);
  if (!api_version.empty()) {
    out.append("?api-version=");
    AppendPercentEncoded(out, api_version);
  }
  return out;
}

}  // namespace

std::string ChatPath(OpenAiFlavor flavor, std::string_view base_path,
                     std::string_view upstream_model, std::string_view api_version) {
  return OperationPath(flavor, base_path, upstream_model, api_version, "/chat/completions");
}

std::string EmbeddingsPath(OpenAiFlavor flavor, std::string_view base_path,
                           std::string_view upstream_model, std::string_view api_version) {
  return OperationPath(flavor, base_path, upstream_model, api_version, "/embeddings");
}

// -----------------------------------------------------------------------------------------
// Embeddings

std::string BuildEmbeddingsRequestBody(const core::CompletionRequest& req,
                                       std::string_view upstream_model, OpenAiFlavor flavor) {
  std::string out = "{\"model\":";
  AppendJsonString(out, upstream_model);
  out += ",\"input\":";
  embeddings::AppendInputs(out, req.embedding);
  out += ",\"encoding_format\":\"float\"";
  if (req.embedding.dimensions) {
    AppendKey(out, "dimensions");
    AppendInt(out, *req.embedding.dimensions);
  }
  if (!req.user.empty() && flavor != OpenAiFlavor::kCompatible) {
    AppendKey(out, "user");
    AppendJsonString(out, req.user);
  }
  out.push_back('}');
  return out;
}

Status DecodeEmbeddingsResponse(std::string_view body, std::size_t inputs,
                                std::vector<Chunk>& out) {
  auto fail = [&out](Status s) {
    out.push_back(ErrorChunk(s));
    return s;
  };
  try {
    json::error_code ec;
    const json::value v = json::parse(body, ec, {}, ParseOptions());
    const json::object* obj = ec ? nullptr : v.if_object();
    if (obj == nullptr) {
      return fail(ChunkError("upstream sent invalid JSON", "upstream_invalid_json"));
    }
    if (Member(*obj, "error") != nullptr) return fail(StreamErrorStatus(ExtractError(*obj)));
    const json::array* data = ArrayMember(*obj, "data");
    if (data == nullptr) return fail(embeddings::BadAnswer("upstream sent no embeddings"));
    std::vector<Chunk> items;
    if (auto s = embeddings::ReadItems(*data, "index", inputs, items); !s.ok()) return fail(s);
    Chunk start;
    start.kind = Chunk::Kind::kStart;
    start.model = std::string(StringMember(*obj, "model"));
    out.push_back(std::move(start));
    for (Chunk& c : items) out.push_back(std::move(c));
    if (const json::object* usage = ObjectMember(*obj, "usage")) {
      out.push_back(UsageChunk(ParseUsage(kOpenAiUsage, *usage)));
    }
    return Status::Ok();
  } catch (const std::exception&) {
    return fail(Status::Error(StatusCode::kInternal, "failed to decode upstream response"));
  }
}

// -----------------------------------------------------------------------------------------
// Streaming

Status OpenAiStreamDecoder::Fail(Status status, std::vector<Chunk>& out) {
  done_ = true;
  out.push_back(ErrorChunk(status));
  return status;
}

void OpenAiStreamDecoder::EmitPendingUsage(std::vector<Chunk>& out) {
  if (pending_usage_ && !usage_emitted_) {
    out.push_back(UsageChunk(*pending_usage_));
    usage_emitted_ = true;
  }
  pending_usage_.reset();
}

Status OpenAiStreamDecoder::Decode(std::string_view data, std::vector<Chunk>& out) {
  if (done_) return Status::Ok();
  const std::string_view payload = TrimWs(data);
  if (payload.empty()) return Status::Ok();
  if (payload.starts_with("[DONE]")) {
    EmitPendingUsage(out);
    done_ = true;
    return Status::Ok();
  }
  if (scan_ && started_ && !finished_) {
    // The steady state of a stream: one content delta. (Before kStart the full decode reads
    // id, model and created; after a finish nothing of a delta is forwarded.)
    if (std::optional<std::string> content = ScanContentChunk(payload)) {
      if (!content->empty()) {
        Chunk d;
        d.kind = Chunk::Kind::kDelta;
        d.content = std::move(*content);
        out.push_back(std::move(d));
      }
      return Status::Ok();
    }
  }
  try {
    // Most chunks are a few hundred bytes: parse into a stack arena, no heap traffic.
    std::array<unsigned char, 4096> arena;
    json::monotonic_resource mr(arena.data(), arena.size());
    json::error_code ec;
    const json::value v = json::parse(payload, ec, &mr, ParseOptions());
    const json::object* obj = ec ? nullptr : v.if_object();
    if (obj == nullptr) {
      return Fail(ChunkError("upstream sent invalid JSON in stream", "upstream_invalid_json"), out);
    }
    if (Member(*obj, "error") != nullptr) return Fail(StreamErrorStatus(ExtractError(*obj)), out);

    if (id_.empty()) id_ = std::string(StringMember(*obj, "id"));
    if (model_.empty()) model_ = std::string(StringMember(*obj, "model"));
    if (created_ == 0) created_ = IntMember(*obj, "created").value_or(0);

    const json::array* choices = ArrayMember(*obj, "choices");
    const bool has_choices = choices != nullptr && !choices->empty();
    const json::object* usage = ObjectMember(*obj, "usage");
    // Azure's prompt-annotation chunk has neither, and empty id/model.
    if (!has_choices && usage == nullptr) return Status::Ok();

    if (!started_) {
      Chunk start;
      start.kind = Chunk::Kind::kStart;
      start.id = id_;
      start.model = model_;
      start.created = created_;
      out.push_back(std::move(start));
      started_ = true;
    }

    const json::object* choice = has_choices ? FirstChoice(*choices) : nullptr;
    if (choice != nullptr && !finished_) {
      if (const json::object* delta = ObjectMember(*choice, "delta")) {
        Chunk d;
        d.content = std::string(StringMember(*delta, "content"));
        d.reasoning = std::string(Reasoning(*delta));
        d.tool_calls_json = ToolCalls(*delta);
        if (!d.content.empty() || !d.reasoning.empty() || !d.tool_calls_json.empty()) {
          d.kind = Chunk::Kind::kDelta;
          out.push_back(std::move(d));
        }
      }
      if (const std::string_view reason = StringMember(*choice, "finish_reason"); !reason.empty()) {
        Chunk f;
        f.kind = Chunk::Kind::kFinish;
        f.finish_reason = std::string(reason);
        out.push_back(std::move(f));
        finished_ = true;
      }
    }

    if (usage != nullptr && !usage_emitted_) {
      pending_usage_ = ParseUsage(kOpenAiUsage, *usage);
      if (!has_choices) EmitPendingUsage(out);
    }
    return Status::Ok();
  } catch (const std::exception&) {
    return Fail(Status::Error(StatusCode::kInternal, "failed to decode upstream stream chunk"),
                out);
  }
}

Status OpenAiStreamDecoder::Finish(std::vector<Chunk>& out) {
  if (done_) return Status::Ok();
  if (finished_) {
    EmitPendingUsage(out);
    done_ = true;
    return Status::Ok();
  }
  return Fail(TruncatedStream("upstream closed the stream before it finished", !started_), out);
}

// -----------------------------------------------------------------------------------------
// Non-streaming

Status DecodeChatResponse(std::string_view body, std::vector<Chunk>& out) {
  auto fail = [&out](Status s) {
    out.push_back(ErrorChunk(s));
    return s;
  };
  try {
    // A typical completion fits the stack arena; larger ones spill to the heap in blocks.
    std::array<unsigned char, 16384> arena;
    json::monotonic_resource mr(arena.data(), arena.size());
    json::error_code ec;
    const json::value v = json::parse(body, ec, &mr, ParseOptions());
    const json::object* obj = ec ? nullptr : v.if_object();
    if (obj == nullptr) {
      return fail(ChunkError("upstream sent invalid JSON", "upstream_invalid_json"));
    }
    if (Member(*obj, "error") != nullptr) return fail(StreamErrorStatus(ExtractError(*obj)));
    const json::array* choices = ArrayMember(*obj, "choices");
    const json::object* choice = choices == nullptr ? nullptr : FirstChoice(*choices);
    if (choice == nullptr) {
      return fail(ChunkError("upstream response has no choices", "upstream_no_choices"));
    }

    Chunk start;
    start.kind = Chunk::Kind::kStart;
    start.id = std::string(StringMember(*obj, "id"));
    start.model = std::string(StringMember(*obj, "model"));
    start.created = IntMember(*obj, "created").value_or(0);
    out.push_back(std::move(start));

    if (const json::object* message = ObjectMember(*choice, "message")) {
      Chunk d;
      d.kind = Chunk::Kind::kDelta;
      d.content = std::string(StringMember(*message, "content"));
      d.reasoning = std::string(Reasoning(*message));
      d.tool_calls_json = ToolCalls(*message);
      if (!d.content.empty() || !d.reasoning.empty() || !d.tool_calls_json.empty()) {
        out.push_back(std::move(d));
      }
    }
    Chunk f;
    f.kind = Chunk::Kind::kFinish;
    f.finish_reason = std::string(StringMember(*choice, "finish_reason"));
    if (f.finish_reason.empty()) f.finish_reason = "stop";
    out.push_back(std::move(f));

    if (const json::object* usage = ObjectMember(*obj, "usage")) {
      out.push_back(UsageChunk(ParseUsage(kOpenAiUsage, *usage)));
    }
    return Status::Ok();
  } catch (const std::exception&) {
    return fail(Status::Error(StatusCode::kInternal, "failed to decode upstream response"));
  }
}

// -----------------------------------------------------------------------------------------
// Errors

Status MapUpstreamError(int http_status, std::string_view body, std::string_view retry_after,
                        std::string_view retry_after_ms, std::string_view x_should_retry) {
  UpstreamError e;
  const std::string_view trimmed = TrimWs(body);
  if (!trimmed.empty() && trimmed.front() == '{') {
    try {
      json::error_code ec;
      const json::value v = json::parse(trimmed, ec, {}, ParseOptions());
      if (!ec && v.is_object()) e = ExtractError(v.get_object());
    } catch (const std::exception&) {
      e = UpstreamError{};
    }
  } else if (!trimmed.empty() && trimmed.front() != '<') {
    e.message = std::string(trimmed);  // plain text (MLX "Not Found"); HTML is never quoted
  }
  const std::string upstream_message = SanitizeUpstreamText(e.message, kMaxMessageBytes);

  Status s;
  s.code = StatusCode::kBadUpstream;
  bool detailed = true;  // "upstream returned HTTP N (code): message"
  switch (http_status) {
    case 400:
    case 422:  // vLLM / SGLang request validation errors
      detailed = false;
      s.code = StatusCode::kInvalidArgument;
      s.message =
          upstream_message.empty() ? "upstream rejected the request as invalid" : upstream_message;
      s.reason = ReasonFrom(e, "upstream_invalid_request");
      s.param = SanitizeUpstreamText(e.param, kMaxParamBytes);
      if (e.code == "content_filter") {
        s.reason = "content_filter";
        if (s.param.empty()) s.param = "prompt";
      }
      break;
    case 401:
    case 403:
      // Upstream auth messages quote key fragments; the client cannot act on them anyway.
      detailed = false;
      s.message = "upstream rejected the gateway's credentials for this provider";
      s.reason = http_status == 401 ? "upstream_unauthorized" : "upstream_forbidden";
      break;
    case 413:  // the request is too large for this upstream: the client's to fix
      s.code = StatusCode::kPayloadTooLarge;
      s.reason = "upstream_payload_too_large";
      break;
    case 404:
      detailed = false;
      s.message = "upstream does not know the model or route";
      s.reason = "upstream_not_found";
      break;
    case 408:
    case 504:
      s.code = StatusCode::kUpstreamTimeout;
      s.reason = "upstream_timeout";
      s.retryable = true;
      break;
    case 409:
      s.code = StatusCode::kUnavailable;
      s.reason = "upstream_conflict";
      s.retryable = true;
      break;
    case 429:
      s.code = StatusCode::kRateLimited;
      s.reason = "upstream_rate_limited";
      s.retryable = true;
      break;
    case 500:
    case 502:
    case 503:
    case 529:
      s.code = StatusCode::kUnavailable;
      s.reason = "upstream_unavailable";
      s.retryable = true;
      break;
    default:
      if (http_status >= 400 && http_status <= 499) {
        s.reason = "upstream_client_error";
      } else if (http_status >= 500 && http_status <= 599) {
        s.reason = "upstream_server_error";
        s.retryable = true;
      } else {
        s.reason = "upstream_unexpected_status";
      }
      break;
  }
  if (detailed) {
    s.message = "upstream returned HTTP " + std::to_string(http_status);
    const std::string code = ReasonFrom(e, "");
    if (!code.empty()) s.message += " (" + code + ")";
    if (!upstream_message.empty()) s.message += ": " + upstream_message;
    TruncateUtf8(s.message, kMaxMessageBytes);
  }

  const std::string_view should_retry = TrimWs(x_should_retry);
  if (EqualsIgnoreCase(should_retry, "true")) s.retryable = true;
  if (EqualsIgnoreCase(should_retry, "false")) s.retryable = false;

  if (const auto ms = ParseSeconds(retry_after_ms)) {
    s.retry_after_s = CeilSeconds(*ms / 1000.0);
  } else if (const auto sec = ParseSeconds(retry_after)) {
    s.retry_after_s = CeilSeconds(*sec);
  }
  return s;
}

// -----------------------------------------------------------------------------------------
// The Responses API upstream

namespace {

const json::object* ResponseObject(const json::object& event) {
  return ObjectMember(event, "response");
}

core::Usage ResponsesUsage(const json::object& u) {
  core::Usage usage = ParseUsage({"input_tokens", "output_tokens", "output_tokens_details"}, u);
  if (const auto* d = ObjectMember(u, "input_tokens_details")) {
    usage.cached_tokens = IntMember(*d, "cached_tokens");
  }
  return usage;
}

// A Responses `error` object ({code, message}) as a status; retryable (when nothing was
// emitted) for the codes that say the service, not the request, failed.
Status ResponsesError(const json::object* e, bool nothing_emitted) {
  UpstreamError err;
  if (e != nullptr) ReadErrorFields(*e, err);
  std::string message = SanitizeUpstreamText(err.message, kMaxMessageBytes);
  if (message.empty()) message = "upstream response failed";
  Status st = ChunkError(std::move(message), ReasonFrom(err, "upstream_response_failed"));
  st.retryable = nothing_emitted &&
                 (err.code == "server_error" || err.code == "rate_limit_exceeded" ||
                  err.code.find("overloaded") != std::string::npos || err.type == "server_error");
  return st;
}

Chunk FinishOf(std::string reason) {
  Chunk c;
  c.kind = Chunk::Kind::kFinish;
  c.finish_reason = std::move(reason);
  return c;
}

// The finish of a completed or incomplete response.
std::string ResponsesFinish(const json::object& response, bool calls) {
  if (StringMember(response, "status") == "incomplete") {
    const json::object* d = ObjectMember(response, "incomplete_details");
    return d != nullptr && StringMember(*d, "reason") == "content_filter" ? "content_filter"
                                                                          : "length";
  }
  return calls ? "tool_calls" : "stop";
}

}  // namespace

std::string ResponsesPath(std::string_view base_path) {
  return std::string(TrimTrailingSlashes(base_path)) + "/responses";
}

std::string NativeResponsesRequestBody(std::string_view native_json,
                                       std::string_view upstream_model) {
  auto body = NativeBodyWithModel(native_json, upstream_model);
  if (!body) return {};
  (*body)["store"] = false;
  return json::serialize(*body);
}

Status ResponsesStreamDecoder::Fail(Status status, std::vector<Chunk>& out) {
  done_ = true;
  out.push_back(ErrorChunk(status));
  return status;
}

void ResponsesStreamDecoder::Start(std::string_view id, std::string_view model,
                                   std::int64_t created, std::vector<Chunk>& out) {
  if (started_) return;
  started_ = true;
  emitted_ = true;
  Chunk c;
  c.kind = Chunk::Kind::kStart;
  c.id = std::string(id);
  c.model = std::string(model);
  c.created = created;
  out.push_back(std::move(c));
}

Status ResponsesStreamDecoder::Decode(const SseEvent& event, std::vector<Chunk>& out) {
  if (done_) return Status::Ok();
  const std::size_t before = out.size();
  Status st = DecodeEvent(event, out);
  native_.Carry(event, st, out, before);
  return st;
}

Status ResponsesStreamDecoder::DecodeEvent(const SseEvent& event, std::vector<Chunk>& out) {
  const std::string_view payload = TrimWs(event.data);
  if (payload.empty()) return Status::Ok();
  const auto v = ParseJson(payload);
  const json::object* obj = v ? v->if_object() : nullptr;
  if (obj == nullptr) return Fail(InvalidJson("upstream sent invalid JSON in stream"), out);
  const std::string_view type =
      event.event.empty() ? StringMember(*obj, "type") : std::string_view(event.event);
  auto delta = [&](std::string content, std::string reasoning, std::string calls) {
    Start({}, {}, 0, out);
    Chunk d;
    d.kind = Chunk::Kind::kDelta;
    d.content = std::move(content);
    d.reasoning = std::move(reasoning);
    d.tool_calls_json = std::move(calls);
    out.push_back(std::move(d));
  };
  if (type == "response.created") {
    if (const json::object* r = ResponseObject(*obj)) {
      Start(StringMember(*r, "id"), StringMember(*r, "model"),
            IntMember(*r, "created_at").value_or(0), out);
    }
    return Status::Ok();
  }
  if (type == "response.output_text.delta" || type == "response.refusal.delta") {
    if (const std::string_view d = StringMember(*obj, "delta"); !d.empty()) {
      delta(std::string(d), {}, {});
    }
    return Status::Ok();
  }
  if (type == "response.reasoning_text.delta" || type == "response.reasoning_summary_text.delta") {
    if (const std::string_view d = StringMember(*obj, "delta"); !d.empty()) {
      delta({}, std::string(d), {});
    }
    return Status::Ok();
  }
  if (type == "response.output_item.added") {
    const json::object* item = ObjectMember(*obj, "item");
    if (item == nullptr || StringMember(*item, "type") != "function_call") return Status::Ok();
    const auto tool = static_cast<std::int64_t>(calls_.size());
    calls_.emplace_back(IntMember(*obj, "output_index").value_or(-1), tool);
    std::string s = "[{\"index\":";
    AppendInt(s, tool);
    AppendKey(s, "id");
    AppendJsonString(s, StringMember(*item, "call_id"));
    s += ",\"type\":\"function\",\"function\":{\"name\":";
    AppendJsonString(s, StringMember(*item, "name"));
    AppendKey(s, "arguments");
    AppendJsonString(s, StringMember(*item, "arguments"));
    s += "}}]";
    delta({}, {}, std::move(s));
    return Status::Ok();
  }
  if (type == "response.function_call_arguments.delta") {
    const std::int64_t index = IntMember(*obj, "output_index").value_or(-1);
    const std::string_view d = StringMember(*obj, "delta");
    for (const auto& [output_index, tool] : calls_) {
      if (output_index != index || d.empty()) continue;
      std::string s = "[{\"index\":";
      AppendInt(s, tool);
      s += ",\"function\":{\"arguments\":";
      AppendJsonString(s, d);
      s += "}}]";
      delta({}, {}, std::move(s));
    }
    return Status::Ok();
  }
  if (type == "response.completed" || type == "response.incomplete") {
    const json::object* r = ResponseObject(*obj);
    static const json::object kEmpty;
    const json::object& response = r != nullptr ? *r : kEmpty;
    Start(StringMember(response, "id"), StringMember(response, "model"),
          IntMember(response, "created_at").value_or(0), out);
    out.push_back(FinishOf(ResponsesFinish(response, !calls_.empty())));
    if (const json::object* u = ObjectMember(response, "usage")) {
      out.push_back(UsageChunk(ResponsesUsage(*u)));
    }
    done_ = true;
    return Status::Ok();
  }
  if (type == "response.failed") {
    const json::object* r = ResponseObject(*obj);
    return Fail(ResponsesError(r != nullptr ? ObjectMember(*r, "error") : nullptr, !emitted_), out);
  }
  if (type == "error") return Fail(ResponsesError(obj, !emitted_), out);
  return Status::Ok();  // items, parts, *.done events, unknown types
}

Status ResponsesStreamDecoder::Finish(std::vector<Chunk>& out) {
  if (done_) return Status::Ok();
  return Fail(TruncatedStream("upstream stream ended before response.completed", !emitted_), out);
}

Status DecodeResponsesBody(std::string_view body, std::vector<Chunk>& out) {
  auto fail = [&out](Status s) {
    out.push_back(ErrorChunk(s));
    return s;
  };
  const auto v = ParseJson(body);
  const json::object* obj = v ? v->if_object() : nullptr;
  if (obj == nullptr) return fail(InvalidJson("upstream sent invalid JSON"));
  if (const json::object* e = ObjectMember(*obj, "error");
      e != nullptr || StringMember(*obj, "status") == "failed") {
    return fail(ResponsesError(e, true));
  }
  const json::array* output = ArrayMember(*obj, "output");
  if (output == nullptr) {
    return fail(Status::Error(StatusCode::kBadUpstream, "upstream response has no output",
                              "upstream_no_output"));
  }
  Chunk start;
  start.kind = Chunk::Kind::kStart;
  start.id = std::string(StringMember(*obj, "id"));
  start.model = std::string(StringMember(*obj, "model"));
  start.created = IntMember(*obj, "created_at").value_or(0);
  start.native.assign(body);
  out.push_back(std::move(start));
  Chunk d;
  d.kind = Chunk::Kind::kDelta;
  json::array calls;
  auto texts = [](const json::object& item, std::string_view key, std::string& into) {
    if (const json::array* parts = ArrayMember(item, key)) {
      for (const json::value& p : *parts) {
        if (const json::object* po = p.if_object()) {
          into += StringMember(*po, "text");
          into += StringMember(*po, "refusal");
        }
      }
    }
  };
  for (const json::value& it : *output) {
    const json::object* item = it.if_object();
    if (item == nullptr) continue;
    const std::string_view type = StringMember(*item, "type");
    if (type == "message") {
      texts(*item, "content", d.content);
    } else if (type == "reasoning") {
      texts(*item, "summary", d.reasoning);
      texts(*item, "content", d.reasoning);
    } else if (type == "function_call") {
      calls.push_back(json::object{
          {"index", static_cast<std::int64_t>(calls.size())},
          {"id", StringMember(*item, "call_id")},
          {"type", "function"},
          {"function", json::object{{"name", StringMember(*item, "name")},
                                    {"arguments", StringMember(*item, "arguments")}}}});
    }
  }
  if (!calls.empty()) d.tool_calls_json = json::serialize(calls);
  if (!d.content.empty() || !d.reasoning.empty() || !d.tool_calls_json.empty()) {
    out.push_back(std::move(d));
  }
  out.push_back(FinishOf(ResponsesFinish(*obj, !calls.empty())));
  if (const json::object* u = ObjectMember(*obj, "usage")) {
    out.push_back(UsageChunk(ResponsesUsage(*u)));
  }
  return Status::Ok();
}

}  // namespace meridian::providers::openai
