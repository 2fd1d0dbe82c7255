#include "providers/dashscope/dashscope_codec.h"

#include <array>
#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <utility>

#include "gateway/core/json_text.h"
#include "providers/common/embeddings.h"
#include "providers/common/json_util.h"
#include "providers/common/sanitize.h"

namespace meridian::providers::dashscope {
namespace {

using namespace jsonutil;  // NOLINT(google-build-using-namespace): shared helpers

constexpr UsageKeys kDashScopeUsage{"input_tokens", "output_tokens", "output_tokens_details"};

namespace json = boost::json;
using core::Chunk;
using core::Status;
using core::StatusCode;

// ---------------------------------------------------------------------------------------
// JSON writing

/// The parts of `m` as multimodal content items: {"text": ...} and {"image": url}, in order;
/// a message without parts is one text item.
void AppendMultimodalContent(std::string& out, const core::Message& m) {
  out.push_back('[');
  bool first = true;
  auto item = [&](std::string_view key, std::string_view value) {
    if (!first) out.push_back(',');
    first = false;
    out += "{";
    AppendJsonString(out, key);
    out.push_back(':');
    AppendJsonString(out, value);
    out += "}";
  };
  const auto parts = m.content_parts_json.empty() ? std::nullopt : ParseJson(m.content_parts_json);
  if (parts && parts->is_array()) {
    for (const json::value& p : parts->get_array()) {
      const json::object* o = p.if_object();
      if (o == nullptr) continue;
      const std::string_view type = StringMember(*o, "type");
      if (type == "text" || type == "refusal") {
        item("text", StringMember(*o, type));
      } else if (type == "image_url") {
        const json::object* image = ObjectMember(*o, "image_url");
        if (image != nullptr) item("image", StringMember(*image, "url"));
      }
    }
  } else {
    item("text", m.text);
  }
  out.push_back(']');
}

void AppendMessage(std::string& out, const core::Message& m, bool multimodal) {
  out += "{\"role\":";
  AppendJsonString(out, m.role);
  // Text generation takes string content only: parts arrays are reduced to their text and
  // content:null becomes "" (Message::text is empty then). The multimodal API takes items.
  AppendKey(out, "content");
  if (multimodal) {
    AppendMultimodalContent(out, m);
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

// ---------------------------------------------------------------------------------------
// JSON reading

// finish_reason is the STRING "null" until the last frame (§2.4); JSON null or missing too.
std::string_view RealFinishReason(std::string_view r) {
  return r == "null" ? std::string_view{} : r;
}

// What one frame/body carries, result_format "message" or "text".
struct Output {
  std::string content;
  std::string_view reasoning;
  std::string tool_calls_json;
  std::string_view finish_reason;
};

// A message's content: a string (text generation) or, from the multimodal API, an array of
// {"text": ...} items, joined.
std::string ContentText(const json::object& msg) {
  const json::value* c = Member(msg, "content");
  if (c == nullptr) return {};
  if (const json::string* s = c->if_string()) return std::string(s->data(), s->size());
  std::string out;
  if (const json::array* items = c->if_array()) {
    for (const json::value& item : *items) {
      if (const json::object* o = item.if_object()) out += StringMember(*o, "text");
    }
  }
  return out;
}

// nullopt when there is no usable output object.
std::optional<Output> ReadOutput(const json::object& root) {
  const json::object* output = ObjectMember(root, "output");
  if (output == nullptr) return std::nullopt;
  Output o;
  if (const json::array* choices = ArrayMember(*output, "choices")) {
    if (choices->empty()) return o;
    const json::object* choice = choices->front().if_object();
    if (choice == nullptr) return o;
    if (const json::object* msg = ObjectMember(*choice, "message")) {
      o.content = ContentText(*msg);
      o.reasoning = StringMember(*msg, "reasoning_content");
      if (const json::array* calls = ArrayMember(*msg, "tool_calls"); calls && !calls->empty()) {
        o.tool_calls_json = json::serialize(*calls);
      }
    }
    o.finish_reason = RealFinishReason(StringMember(*choice, "finish_reason"));
    return o;
  }
  o.content = std::string(StringMember(*output, "text"));  // result_format "text"
  o.finish_reason = RealFinishReason(StringMember(*output, "finish_reason"));
  return o;
}

bool IsErrorObject(const json::object& root) {
  return !StringMember(root, "code").empty() && Member(root, "output") == nullptr;
}

Chunk StartChunk(std::string_view request_id) {
  Chunk c;
  c.kind = Chunk::Kind::kStart;
  c.id = std::string(request_id);
  return c;
}

}  // namespace

// -----------------------------------------------------------------------------------------
// Request

bool NeedsMultimodal(const core::CompletionRequest& req) {
  for (const core::Message& m : req.messages) {
    if (m.content_parts_json.empty()) continue;
    const auto parts = ParseJson(m.content_parts_json);
    if (!parts || !parts->is_array()) continue;
    for (const json::value& p : parts->get_array()) {
      if (const json::object* o = p.if_object(); o && StringMember(*o, "type") == "image_url") {
        return true;
      }
    }
  }
  return false;
}

Status CheckContentParts(const core::CompletionRequest& req, std::string_view provider_id) {
  return jsonutil::CheckContentParts(req, provider_id, [](const json::object& part) {
    const json::object* image = ObjectMember(part, "image_url");
    const std::string_view url = image ? StringMember(*image, "url") : std::string_view{};
    const bool ok =
        url.starts_with("https://") || url.starts_with("http://") || url.starts_with("data:image/");
    return ok ? std::string() : std::string("an image must be an http(s) or data:image/ URL");
  });
}

std::string BuildGenerationRequestBody(const core::CompletionRequest& req,
                                       std::string_view upstream_model, bool stream) {
  std::string out;
  out.reserve(256);
  out += "{\"model\":";
  AppendJsonString(out, upstream_model);
  out += ",\"input\":{\"messages\":[";
  const bool multimodal = NeedsMultimodal(req);
  for (std::size_t i = 0; i < req.messages.size(); ++i) {
    if (i != 0) out.push_back(',');
    AppendMessage(out, req.messages[i], multimodal);
  }
  out += "]},\"parameters\":{\"result_format\":\"message\"";
  if (stream) out += ",\"incremental_output\":true";
  AppendSampling(out, req, "max_tokens");
  if (req.enable_thinking) {
    AppendKey(out, "enable_thinking");
    out += *req.enable_thinking ? "true" : "false";
  }
  if (!req.tools_json.empty()) {
    AppendKey(out, "tools");
    out += req.tools_json;
  }
  if (!req.tool_choice_json.empty()) {
    AppendKey(out, "tool_choice");
    out += req.tool_choice_json;
  }
  for (const core::PassthroughMember& m : req.passthrough) {
    if (m.key != "seed" && m.key != "enable_search") continue;
    json::error_code ec;
    json::parse(m.json, ec, {}, ParseOptions());
    if (ec) continue;  // an unusable value is dropped (documented)
    AppendKey(out, m.key);
    out += m.json;
  }
  out += "}}";
  return out;
}

// -----------------------------------------------------------------------------------------
// Errors

Status MapDashScopeError(int http_status, std::string_view body) {
  std::string code;
  std::string message;
  try {
    json::error_code ec;
    const json::value v = json::parse(body, ec, {}, ParseOptions());
    if (const json::object* o = ec ? nullptr : v.if_object()) {
      code = std::string(StringMember(*o, "code"));
      message = std::string(StringMember(*o, "message"));
    }
  } catch (const std::exception&) {
  }
  const std::string safe_code = SanitizeUpstreamText(code, 128);
  const std::string safe_msg = SanitizeUpstreamText(message);
  auto detailed = [&] {
    std::string m = http_status > 0 ? "upstream returned HTTP " + std::to_string(http_status)
                                    : std::string("upstream error");
    if (!safe_code.empty()) m += " (" + safe_code + ")";
    if (!safe_msg.empty()) m += ": " + safe_msg;
    return m;
  };
  const std::string_view c = code;

  if (c == "Throttling" || c.starts_with("Throttling.") || (c.empty() && http_status == 429)) {
    return UpstreamStatus(StatusCode::kRateLimited, detailed(), "upstream_rate_limited", true);
  }
  if (c == "InvalidApiKey" || http_status == 401) {
    return UpstreamStatus(StatusCode::kBadUpstream, "upstream rejected the gateway's credentials",
                          "upstream_unauthorized", false);
  }
  if (c == "AccessDenied" || c.starts_with("AccessDenied.") || (c.empty() && http_status == 403)) {
    return UpstreamStatus(StatusCode::kBadUpstream,
                          "upstream denied access to the gateway's account", "upstream_forbidden",
                          false);
  }
  if (c == "Arrearage") {
    return UpstreamStatus(StatusCode::kBadUpstream,
                          "upstream account of the gateway is not in good standing",
                          "upstream_arrearage", false);
  }
  if (c == "DataInspectionFailed" || c == "data_inspection_failed") {
    Status s = UpstreamStatus(StatusCode::kInvalidArgument,
                              "upstream content moderation rejected the request" +
                                  (safe_msg.empty() ? std::string() : ": " + safe_msg),
                              "data_inspection_failed", false);
    s.param = "messages";
    return s;
  }
  if (c == "BadRequest.TooLarge" || (c.empty() && http_status == 413)) {
    return UpstreamStatus(StatusCode::kPayloadTooLarge, detailed(), "upstream_payload_too_large",
                          false);
  }
  if (c == "RequestTimeOut" || http_status == 408 || http_status == 504) {
    return UpstreamStatus(StatusCode::kUpstreamTimeout, detailed(), "upstream_timeout", true);
  }
  if (c == "InternalError" || c.starts_with("InternalError.") ||
      (http_status >= 500 && http_status <= 599)) {
    return UpstreamStatus(StatusCode::kUnavailable, detailed(), "upstream_unavailable", true);
  }
  if (c == "InvalidParameter" || c == "invalid_parameter_error") {
    return UpstreamStatus(StatusCode::kInvalidArgument, detailed(), "invalid_parameter", false);
  }
  if (http_status == 400) {
    return UpstreamStatus(StatusCode::kInvalidArgument, detailed(), "upstream_invalid_request",
                          false);
  }
  if (http_status == 404) {
    return UpstreamStatus(StatusCode::kBadUpstream, "upstream endpoint or model not found",
                          "upstream_not_found", false);
  }
  if (http_status >= 400 && http_status <= 499) {
    return UpstreamStatus(StatusCode::kBadUpstream, detailed(), "upstream_client_error", false);
  }
  return UpstreamStatus(StatusCode::kBadUpstream, detailed(), "upstream_error", false);
}

// -----------------------------------------------------------------------------------------
// Streaming

Status DashScopeStreamDecoder::Fail(Status status, std::vector<Chunk>& out) {
  done_ = true;
  emitted_ = true;
  out.push_back(ErrorChunk(status));
  return status;
}

std::string DashScopeStreamDecoder::Fresh(std::string& previous, std::string_view text) const {
  if (incremental_) return std::string(text);
  if (text.empty()) return {};  // a cumulative frame never shrinks; "" carries nothing new
  std::string fresh =
      text.starts_with(previous) ? std::string(text.substr(previous.size())) : std::string(text);
  previous.assign(text);
  return fresh;
}

Status DashScopeStreamDecoder::Decode(const SseEvent& event, std::vector<Chunk>& out) {
  if (done_) return Status::Ok();
  const std::string_view payload = TrimWs(event.data);
  if (event.event == "error") return Fail(MapDashScopeError(0, payload), out);
  if (payload.empty()) return Status::Ok();
  try {
    json::error_code ec;
    const json::value v = json::parse(payload, ec, {}, ParseOptions());
    const json::object* obj = ec ? nullptr : v.if_object();
    if (obj == nullptr) return Fail(InvalidJson("upstream sent invalid JSON in stream"), out);
    if (IsErrorObject(*obj)) return Fail(MapDashScopeError(0, payload), out);
    const std::optional<Output> o = ReadOutput(*obj);
    if (!o) return Status::Ok();  // neither output nor error: nothing to forward

    if (!started_) {
      out.push_back(StartChunk(StringMember(*obj, "request_id")));
      started_ = true;
      emitted_ = true;
    }
    Chunk d;
    d.kind = Chunk::Kind::kDelta;
    d.content = Fresh(prev_content_, o->content);
    d.reasoning = Fresh(prev_reasoning_, o->reasoning);
    d.tool_calls_json = o->tool_calls_json;
    if (!d.content.empty() || !d.reasoning.empty() || !d.tool_calls_json.empty()) {
      out.push_back(std::move(d));
    }
    if (!o->finish_reason.empty()) {
      Chunk f;
      f.kind = Chunk::Kind::kFinish;
      f.finish_reason = std::string(o->finish_reason);
      out.push_back(std::move(f));
      if (const json::object* usage = ObjectMember(*obj, "usage")) {
        Chunk u;
        u.kind = Chunk::Kind::kUsage;
        u.usage = ParseUsage(kDashScopeUsage, *usage);
        out.push_back(std::move(u));
      }
      done_ = true;
    }
    return Status::Ok();
  } catch (const std::exception&) {
    return Fail(Status::Error(StatusCode::kInternal, "failed to decode upstream stream frame"),
                out);
  }
}

Status DashScopeStreamDecoder::Finish(std::vector<Chunk>& out) {
  if (done_) return Status::Ok();
  return Fail(TruncatedStream("upstream stream ended before the final frame", !emitted_), out);
}

// -----------------------------------------------------------------------------------------
// Non-streaming

std::string BuildEmbeddingRequestBody(const core::CompletionRequest& req,
                                      std::string_view upstream_model) {
  std::string out = "{\"model\":";
  AppendJsonString(out, upstream_model);
  out += ",\"input\":{\"texts\":";
  embeddings::AppendInputs(out, req.embedding);
  out += "},\"parameters\":{";
  if (req.embedding.dimensions) {
    out += "\"dimension\":";
    AppendInt(out, *req.embedding.dimensions);
  }
  out += "}}";
  return out;
}

Status DecodeEmbeddingResponse(std::string_view body, std::size_t inputs, std::vector<Chunk>& out) {
  auto fail = [&out](Status s) {
    out.push_back(ErrorChunk(s));
    return s;
  };
  try {
    json::error_code ec;
    const json::value v = json::parse(body, ec, {}, ParseOptions());
    const json::object* obj = ec ? nullptr : v.if_object();
    if (obj == nullptr) return fail(InvalidJson("upstream sent invalid JSON"));
    if (IsErrorObject(*obj)) return fail(MapDashScopeError(0, body));
    const json::object* output = ObjectMember(*obj, "output");
    const json::array* items = output == nullptr ? nullptr : ArrayMember(*output, "embeddings");
    if (items == nullptr) return fail(embeddings::BadAnswer("upstream sent no embeddings"));
    std::vector<Chunk> chunks;
    if (auto s = embeddings::ReadItems(*items, "text_index", inputs, chunks); !s.ok()) {
      return fail(s);
    }
    out.push_back(StartChunk(StringMember(*obj, "request_id")));
    for (Chunk& c : chunks) out.push_back(std::move(c));
    if (const json::object* usage = ObjectMember(*obj, "usage")) {
      Chunk u;
      u.kind = Chunk::Kind::kUsage;
      u.usage.prompt_tokens = IntMember(*usage, "total_tokens").value_or(0);
      u.usage.total_tokens = u.usage.prompt_tokens;
      out.push_back(std::move(u));
    }
    return Status::Ok();
  } catch (const std::exception&) {
    return fail(Status::Error(StatusCode::kInternal, "failed to decode upstream response"));
  }
}

Status DecodeGenerationResponse(std::string_view body, std::vector<Chunk>& out) {
  auto fail = [&out](Status s) {
    out.push_back(ErrorChunk(s));
    return s;
  };
  try {
    json::error_code ec;
    const json::value v = json::parse(body, ec, {}, ParseOptions());
    const json::object* obj = ec ? nullptr : v.if_object();
    if (obj == nullptr) return fail(InvalidJson("upstream sent invalid JSON"));
    if (IsErrorObject(*obj)) return fail(MapDashScopeError(0, body));
    const std::optional<Output> o = ReadOutput(*obj);
    if (!o) {
      return fail(Status::Error(StatusCode::kBadUpstream, "upstream response has no output",
                                "upstream_no_output"));
    }
    out.push_back(StartChunk(StringMember(*obj, "request_id")));
    Chunk d;
    d.kind = Chunk::Kind::kDelta;
    d.content = std::string(o->content);
    d.reasoning = std::string(o->reasoning);
    d.tool_calls_json = o->tool_calls_json;
    if (!d.content.empty() || !d.reasoning.empty() || !d.tool_calls_json.empty()) {
      out.push_back(std::move(d));
    }
    Chunk f;
    f.kind = Chunk::Kind::kFinish;
    f.finish_reason = o->finish_reason.empty() ? "stop" : std::string(o->finish_reason);
    out.push_back(std::move(f));
    if (const json::object* usage = ObjectMember(*obj, "usage")) {
      Chunk u;
      u.kind = Chunk::Kind::kUsage;
      u.usage = ParseUsage(kDashScopeUsage, *usage);
      out.push_back(std::move(u));
    }
    return Status::Ok();
  } catch (const std::exception&) {
    return fail(Status::Error(StatusCode::kInternal, "failed to decode upstream response"));
  }
}

}  // namespace meridian::providers::dashscope
