#include "gateway/http/messages_response.h"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <utility>

#include "gateway/core/json_text.h"
#include "gateway/core/json_value.h"

namespace meridian::http {
namespace {

namespace json = boost::json;
using core::AppendInt;
using core::AppendJsonString;
using core::Sv;

// A tool call's arguments as the `input` object of a tool_use block.
std::string InputObject(std::string_view arguments) {
  json::error_code ec;
  const json::value v = json::parse(json::string_view(arguments.data(), arguments.size()), ec);
  std::string out;
  if (ec || !v.is_object() || !core::AppendJsonValue(out, v)) return "{}";
  return out;
}

void AppendUsage(std::string& out, const core::Usage& u) {
  out += "{\"input_tokens\":";
  AppendInt(out, u.prompt_tokens);
  out += ",\"output_tokens\":";
  AppendInt(out, u.completion_tokens);
  out += '}';
}

const char* AnthropicErrorType(core::StatusCode code) {
  switch (HttpStatusFor(code)) {
    case 400:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 503:
      return "overloaded_error";
    default:
      break;
  }
  return HttpStatusFor(code) >= 500 ? "api_error" : "invalid_request_error";
}

std::string ErrorObject(const core::Status& status) {
  // The message ToHttpError would show (it fills in an empty one).
  const json::value openai = json::parse(ToHttpError(status).body);
  std::string out = "{\"type\":";
  AppendJsonString(out, AnthropicErrorType(status.code));
  out += ",\"message\":";
  AppendJsonString(out, Sv(openai.at("error").at("message").as_string()));
  if (!status.reason.empty()) {
    out += ",\"code\":";
    AppendJsonString(out, status.reason);
  }
  out += '}';
  return out;
}

// Gives an Anthropic `message` object the gateway's id and the client's alias in place of the
// upstream's; false when it is not an object.
bool SetHead(json::value& message, const MessageHead& head) {
  json::object* o = message.if_object();
  if (o == nullptr) return false;
  (*o)["id"] = json::string_view(head.id.data(), head.id.size());
  (*o)["model"] = json::string_view(head.model.data(), head.model.size());
  return true;
}

// `text` (JSON) parsed, `edit`ed, and written back; empty when it does not parse or edit.
template <class Edit>
std::string Rewritten(std::string_view text, Edit edit) {
  json::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  std::string out;
  if (ec || !edit(v) || !core::AppendJsonValue(out, v)) return {};
  return out;
}

}  // namespace

std::string_view StopReason(std::string_view finish) {
  if (finish == "length") return "max_tokens";
  if (finish == "tool_calls") return "tool_use";
  if (finish == "content_filter") return "refusal";
  return "end_turn";
}

std::string RenderMessage(const MessageHead& head, const core::Completion& answer) {
  if (!answer.native.empty()) {
    const auto edit = [&head](json::value& v) { return SetHead(v, head); };
    if (std::string out = Rewritten(answer.native, edit); !out.empty()) return out;
  }
  std::string out = "{\"id\":";
  AppendJsonString(out, head.id);
  out += ",\"type\":\"message\",\"role\":\"assistant\",\"model\":";
  AppendJsonString(out, head.model);
  out += ",\"content\":[";
  bool first = true;
  auto sep = [&out, &first] {
    if (!first) out += ',';
    first = false;
  };
  if (!answer.reasoning.empty()) {
    sep();
    out += "{\"type\":\"thinking\",\"thinking\":";
    AppendJsonString(out, answer.reasoning);
    out += ",\"signature\":\"\"}";
  }
  if (!answer.content.empty() || answer.tool_calls.empty()) {
    sep();
    out += "{\"type\":\"text\",\"text\":";
    AppendJsonString(out, answer.content);
    out += '}';
  }
  for (const auto& [index, call] : answer.tool_calls) {
    sep();
    out += "{\"type\":\"tool_use\",\"id\":";
    AppendJsonString(out, call.id.empty() ? "toolu_" + std::to_string(index) : call.id);
    out += ",\"name\":";
    AppendJsonString(out, call.name);
    out += ",\"input\":";
    out += InputObject(call.arguments);
    out += '}';
  }
  out += "],\"stop_reason\":";
  AppendJsonString(out, StopReason(answer.FinishReason()));
  out += ",\"stop_sequence\":null,\"usage\":";
  AppendUsage(out, answer.usage);
  out += '}';
  return out;
}

HttpError ToAnthropicError(const core::Status& status) {
  HttpError e = ToHttpError(status);
  e.body = "{\"type\":\"error\",\"error\":" + ErrorObject(status) + "}";
  return e;
}

// -----------------------------------------------------------------------------------------
// Streaming

MessagesStreamEncoder::MessagesStreamEncoder(MessageHead head) : head_(std::move(head)) {}

void MessagesStreamEncoder::Event(std::string_view type, std::string_view fields,
                                  std::string& out) {
  out += "event: ";
  out += type;
  out += "\ndata: {\"type\":";
  AppendJsonString(out, type);
  if (!fields.empty()) {
    out += ',';
    out += fields;
  }
  out += "}\n\n";
}

void MessagesStreamEncoder::Native(std::string_view events, std::string& out) {
  // Anthropic's own events, as they came; only message_start's message gets the gateway's id
  // and the client's alias (the events after it name neither).
  constexpr std::string_view kStart = "event: message_start\ndata: ";
  if (!started_ && events.starts_with(kStart)) {
    const std::size_t end = events.find('\n', kStart.size());
    const std::string_view data = events.substr(kStart.size(), end - kStart.size());
    const std::string rewritten = Rewritten(data, [this](json::value& v) {
      json::value* message = v.is_object() ? v.get_object().if_contains("message") : nullptr;
      return message != nullptr && SetHead(*message, head_);
    });
    if (!rewritten.empty() && end != std::string_view::npos) {
      out += kStart;
      out += rewritten;
      events.remove_prefix(end);
    }
  }
  started_ = true;
  out += events;
  if (events.find("event: message_stop\n") != std::string_view::npos) finished_ = true;
}

void MessagesStreamEncoder::Start(std::string& out) {
  if (started_) return;
  started_ = true;
  std::string message = "\"message\":{\"id\":";
  AppendJsonString(message, head_.id);
  message += ",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":";
  AppendJsonString(message, head_.model);
  message +=
      ",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":0,"
      "\"output_tokens\":0}}";
  Event("message_start", message, out);
}

void MessagesStreamEncoder::OpenBlock(Kind kind, std::string_view block, std::string& out) {
  CloseBlock(out);
  std::string f = "\"index\":";
  AppendInt(f, blocks_);
  f += ",\"content_block\":";
  f += block;
  Event("content_block_start", f, out);
  open_ = kind;
  ++blocks_;
}

void MessagesStreamEncoder::CloseBlock(std::string& out) {
  if (open_ == Kind::kNone) return;
  std::string f = "\"index\":";
  AppendInt(f, blocks_ - 1);
  Event("content_block_stop", f, out);
  open_ = Kind::kNone;
  open_tool_ = -1;
}

void MessagesStreamEncoder::Delta(std::string_view delta, std::string& out) {
  std::string f = "\"index\":";
  AppendInt(f, blocks_ - 1);
  f += ",\"delta\":";
  f += delta;
  Event("content_block_delta", f, out);
}

void MessagesStreamEncoder::ToolDeltas(std::string_view text, std::string& out) {
  std::vector<core::ToolFragment> fragments;
  if (!core::ParseToolFragments(text, fragments)) return;  // the provider codec checked them
  for (const core::ToolFragment& f : fragments) {
    if (open_ != Kind::kToolUse || open_tool_ != f.index) {
      std::string block = "{\"type\":\"tool_use\",\"id\":";
      AppendJsonString(block, f.id.empty() ? "toolu_" + std::to_string(f.index) : f.id);
      block += ",\"name\":";
      AppendJsonString(block, f.name);
      block += ",\"input\":{}}";
      OpenBlock(Kind::kToolUse, block, out);
      open_tool_ = f.index;
    }
    if (!f.arguments.empty()) {
      std::string delta = "{\"type\":\"input_json_delta\",\"partial_json\":";
      AppendJsonString(delta, f.arguments);
      delta += '}';
      Delta(delta, out);
    }
  }
}

void MessagesStreamEncoder::Encode(const core::Chunk& c, std::string& out) {
  if (finished_) return;
  if (!started_) native_ = !c.native.empty();
  if (native_) {
    if (c.kind == core::Chunk::Kind::kError) {
      Error(c.error, out);
    } else {
      Native(c.native, out);
    }
    return;
  }
  Start(out);
  switch (c.kind) {
    case core::Chunk::Kind::kStart:
      break;
    case core::Chunk::Kind::kDelta:
      if (!c.reasoning.empty()) {
        if (open_ != Kind::kThinking) {
          OpenBlock(Kind::kThinking, R"({"type":"thinking","thinking":"","signature":""})", out);
        }
        std::string d = "{\"type\":\"thinking_delta\",\"thinking\":";
        AppendJsonString(d, c.reasoning);
        d += '}';
        Delta(d, out);
      }
      if (!c.content.empty()) {
        if (open_ != Kind::kText) OpenBlock(Kind::kText, R"({"type":"text","text":""})", out);
        std::string d = "{\"type\":\"text_delta\",\"text\":";
        AppendJsonString(d, c.content);
        d += '}';
        Delta(d, out);
      }
      if (!c.tool_calls_json.empty()) ToolDeltas(c.tool_calls_json, out);
      break;
    case core::Chunk::Kind::kFinish:
      finish_reason_ = c.finish_reason;
      break;
    case core::Chunk::Kind::kUsage:
      usage_ = c.usage;
      break;
    case core::Chunk::Kind::kError:
      Error(c.error, out);
      break;
    case core::Chunk::Kind::kEmbedding:  // embeddings are never streamed
      break;
  }
}

void MessagesStreamEncoder::Done(std::string& out) {
  if (finished_) return;
  if (native_) {  // the upstream's message_stop was forwarded, or the stream failed
    finished_ = true;
    return;
  }
  Start(out);
  CloseBlock(out);
  finished_ = true;
  std::string f = "\"delta\":{\"stop_reason\":";
  AppendJsonString(f, StopReason(finish_reason_.empty() ? "stop" : finish_reason_));
  f += ",\"stop_sequence\":null},\"usage\":";
  AppendUsage(f, usage_);
  Event("message_delta", f, out);
  Event("message_stop", {}, out);
}

void MessagesStreamEncoder::Error(const core::Status& status, std::string& out) {
  if (finished_) return;
  Start(out);
  finished_ = true;
  Event("error", "\"error\":" + ErrorObject(status), out);
}

}  // namespace meridian::http
