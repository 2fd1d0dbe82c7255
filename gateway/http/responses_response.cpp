#include "gateway/http/responses_response.h"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <utility>

#include "gateway/core/json_text.h"
#include "gateway/core/json_value.h"

namespace meridian::http {
namespace {

namespace json = boost::json;
using core::AppendDouble;
using core::AppendInt;
using core::AppendJsonString;
using core::Sv;

void AppendUsage(std::string& out, const core::Usage& u) {
  out += "{\"input_tokens\":";
  AppendInt(out, u.prompt_tokens);
  out += ",\"input_tokens_details\":{\"cached_tokens\":";
  AppendInt(out, u.cached_tokens.value_or(0));
  out += "},\"output_tokens\":";
  AppendInt(out, u.completion_tokens);
  out += ",\"output_tokens_details\":{\"reasoning_tokens\":";
  AppendInt(out, u.reasoning_tokens.value_or(0));
  out += "},\"total_tokens\":";
  AppendInt(out, u.total_tokens != 0 ? u.total_tokens : u.prompt_tokens + u.completion_tokens);
  out += '}';
}

void AppendOutputText(std::string& out, std::string_view text) {
  out += "{\"type\":\"output_text\",\"text\":";
  AppendJsonString(out, text);
  out += ",\"annotations\":[],\"logprobs\":[]}";
}

void AppendReasoningText(std::string& out, std::string_view text) {
  out += "{\"type\":\"reasoning_text\",\"text\":";
  AppendJsonString(out, text);
  out += '}';
}

// A message item; `text` null: as first added, with no content part yet.
void AppendMessage(std::string& out, std::string_view id, std::string_view status,
                   const std::string* text) {
  out += "{\"id\":";
  AppendJsonString(out, id);
  out += ",\"type\":\"message\",\"status\":";
  AppendJsonString(out, status);
  out += ",\"role\":\"assistant\",\"content\":[";
  if (text != nullptr) AppendOutputText(out, *text);
  out += "]}";
}

void AppendReasoning(std::string& out, std::string_view id, const std::string* text) {
  out += "{\"id\":";
  AppendJsonString(out, id);
  out += ",\"type\":\"reasoning\",\"summary\":[],\"content\":[";
  if (text != nullptr) AppendReasoningText(out, *text);
  out += "]}";
}

void AppendFunctionCall(std::string& out, std::string_view id, std::string_view status,
                        std::string_view call_id, std::string_view name,
                        std::string_view arguments) {
  out += "{\"id\":";
  AppendJsonString(out, id);
  out += ",\"type\":\"function_call\",\"status\":";
  AppendJsonString(out, status);
  out += ",\"call_id\":";
  AppendJsonString(out, call_id);
  out += ",\"name\":";
  AppendJsonString(out, name);
  out += ",\"arguments\":";
  AppendJsonString(out, arguments);
  out += '}';
}

void AppendOptionalNumber(std::string& out, const std::optional<double>& d) {
  if (d) {
    (void)AppendDouble(out, *d);  // writes null for what JSON cannot spell
  } else {
    out += "null";
  }
}

// The `incomplete_details.reason` for a finish reason, or "" when the answer is complete.
std::string_view IncompleteReason(std::string_view finish) {
  if (finish == "length") return "max_output_tokens";
  if (finish == "content_filter") return "content_filter";
  return {};
}

// The whole response object. `output` is a JSON array; `usage` may be null; `error` and
// `incomplete` are JSON ("null" or an object).
std::string ResponseJson(const ResponseHead& h, std::string_view status, std::string_view output,
                         const core::Usage* usage, std::string_view error,
                         std::string_view incomplete) {
  const ResponsesEcho& e = h.echo;
  std::string out;
  out.reserve(512 + output.size() + e.tools_json.size());
  out += "{\"id\":";
  AppendJsonString(out, h.id);
  out += ",\"object\":\"response\",\"created_at\":";
  AppendInt(out, h.created_at);
  out += ",\"status\":";
  AppendJsonString(out, status);
  out += ",\"background\":false,\"error\":";
  out += error;
  out += ",\"incomplete_details\":";
  out += incomplete;
  out += ",\"instructions\":";
  if (e.instructions) {
    AppendJsonString(out, *e.instructions);
  } else {
    out += "null";
  }
  out += ",\"max_output_tokens\":";
  if (e.max_output_tokens) {
    AppendInt(out, *e.max_output_tokens);
  } else {
    out += "null";
  }
  out += ",\"model\":";
  AppendJsonString(out, h.model);
  out += ",\"output\":";
  out += output;
  out += ",\"parallel_tool_calls\":";
  out += e.parallel_tool_calls ? "true" : "false";
  out += ",\"previous_response_id\":null,\"reasoning\":";
  out += e.reasoning_json;
  out += ",\"store\":false,\"temperature\":";
  AppendOptionalNumber(out, e.temperature);
  out += ",\"text\":";
  out += e.text_json;
  out += ",\"tool_choice\":";
  out += e.tool_choice_json;
  out += ",\"tools\":";
  out += e.tools_json;
  out += ",\"top_p\":";
  AppendOptionalNumber(out, e.top_p);
  out += ",\"truncation\":\"disabled\",\"usage\":";
  if (usage != nullptr) {
    AppendUsage(out, *usage);
  } else {
    out += "null";
  }
  out += ",\"user\":";
  if (e.user) {
    AppendJsonString(out, *e.user);
  } else {
    out += "null";
  }
  out += ",\"metadata\":";
  out += e.metadata_json;
  out += '}';
  return out;
}

std::string Incomplete(std::string_view reason) {
  if (reason.empty()) return "null";
  std::string out = "{\"reason\":";
  AppendJsonString(out, reason);
  out += '}';
  return out;
}

std::string ItemId(std::string_view prefix, const std::string& base, std::size_t n) {
  std::string id(prefix);
  id += base;
  id += '_';
  id += std::to_string(n);
  return id;
}

// `text` (an object holding a Responses `response` object under `key`, or that object itself
// when `key` is empty) with the head's id, model and the caller's metadata; empty when it has
// no such object.
std::string WithHead(std::string_view text, std::string_view key, const ResponseHead& head) {
  json::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  json::value* target = &v;
  if (!ec && !key.empty()) {
    target = v.is_object() ? v.get_object().if_contains(json::string_view(key.data(), key.size()))
                           : nullptr;
  }
  json::object* o = ec || target == nullptr ? nullptr : target->if_object();
  if (o == nullptr) return {};
  (*o)["id"] = json::string_view(head.id.data(), head.id.size());
  (*o)["model"] = json::string_view(head.model.data(), head.model.size());
  // The caller's metadata never went upstream: the gateway echoes it.
  json::error_code mec;
  json::value metadata = json::parse(head.echo.metadata_json, mec);
  if (!mec) (*o)["metadata"] = std::move(metadata);
  std::string out;
  if (!core::AppendJsonValue(out, v)) return {};
  return out;
}

}  // namespace

std::string RenderResponse(const ResponseHead& head, const core::Completion& answer) {
  if (!answer.native.empty()) {
    if (std::string out = WithHead(answer.native, {}, head); !out.empty()) return out;
  }
  const std::string_view incomplete = IncompleteReason(answer.FinishReason());
  const std::string_view item_status = incomplete.empty() ? "completed" : "incomplete";
  std::string output = "[";
  std::size_t n = 0;
  auto next = [&output, &n]() -> std::size_t {
    if (n != 0) output += ',';
    return n++;
  };
  if (!answer.reasoning.empty()) {
    const std::size_t i = next();
    AppendReasoning(output, ItemId("rs_", head.item_base, i), &answer.reasoning);
  }
  if (!answer.content.empty() || answer.tool_calls.empty()) {
    const std::size_t i = next();
    AppendMessage(output, ItemId("msg_", head.item_base, i), item_status, &answer.content);
  }
  for (const auto& [index, call] : answer.tool_calls) {
    const std::size_t i = next();
    const std::string call_id = call.id.empty() ? "call_" + std::to_string(index) : call.id;
    AppendFunctionCall(output, ItemId("fc_", head.item_base, i), item_status, call_id, call.name,
                       call.arguments);
  }
  output += ']';
  return ResponseJson(head, incomplete.empty() ? "completed" : "incomplete", output, &answer.usage,
                      "null", Incomplete(incomplete));
}

// -----------------------------------------------------------------------------------------
// Streaming

ResponsesStreamEncoder::ResponsesStreamEncoder(ResponseHead head) : head_(std::move(head)) {}

void ResponsesStreamEncoder::Event(std::string_view type, std::string fields, std::string& out) {
  out += "event: ";
  out += type;
  out += "\ndata: {\"type\":";
  AppendJsonString(out, type);
  if (!fields.empty()) {
    out += ',';
    out += fields;
  }
  out += ",\"sequence_number\":";
  AppendInt(out, sequence_++);
  out += "}\n\n";
}

std::string ResponsesStreamEncoder::Response(std::string_view status,
                                             const std::string& error) const {
  std::string output = "[";
  for (std::size_t i = 0; i < items_.size(); ++i) {
    const Item& it = items_[i];
    if (i != 0) output += ',';
    const std::string_view item_status = it.done ? "completed" : "incomplete";
    switch (it.kind) {
      case Kind::kMessage:
        AppendMessage(output, it.id, item_status, &it.text);
        break;
      case Kind::kReasoning:
        AppendReasoning(output, it.id, &it.text);
        break;
      case Kind::kFunction:
        AppendFunctionCall(output, it.id, item_status, it.call_id, it.name, it.text);
        break;
    }
  }
  output += ']';
  const bool in_progress = status == "in_progress";
  const std::string_view reason =
      in_progress ? std::string_view() : IncompleteReason(finish_reason_);
  std::string object = ResponseJson(head_, status, in_progress ? "[]" : output,
                                    has_usage_ ? &usage_ : nullptr, error.empty() ? "null" : error,
                                    Incomplete(status == "incomplete" ? reason : ""));
  std::string fields = "\"response\":";
  fields += object;
  return fields;
}

void ResponsesStreamEncoder::Native(std::string_view events, std::string& out) {
  started_ = true;
  while (!events.empty()) {
    std::size_t end = events.find("\n\n");
    end = end == std::string_view::npos ? events.size() : end + 2;
    const std::string_view frame = events.substr(0, end);
    events.remove_prefix(end);
    ++sequence_;  // OpenAI numbers its events 0, 1, ...: a failure of ours comes next
    constexpr std::string_view kEvent = "event: response.";
    const std::size_t nl = frame.find('\n');
    const std::string_view name = frame.substr(0, nl);
    const bool terminal = name == "event: response.completed" ||
                          name == "event: response.incomplete" || name == "event: response.failed";
    const bool carries_response = terminal || name == "event: response.created" ||
                                  name == "event: response.in_progress" ||
                                  name == "event: response.queued";
    constexpr std::string_view kData = "data: ";
    if (carries_response && name.starts_with(kEvent) && nl != std::string_view::npos &&
        frame.substr(nl + 1).starts_with(kData)) {
      const std::size_t data_end = frame.find('\n', nl + 1);
      const std::size_t data_at = nl + 1 + kData.size();
      const std::string rewritten =
          WithHead(frame.substr(data_at, data_end - data_at), "response", head_);
      if (!rewritten.empty()) {
        out += frame.substr(0, data_at);
        out += rewritten;
        out += frame.substr(data_end);
      } else {
        out += frame;
      }
    } else {
      out += frame;
    }
    if (terminal) finished_ = true;
  }
}

void ResponsesStreamEncoder::Start(std::string& out) {
  if (started_) return;
  started_ = true;
  Event("response.created", Response("in_progress", {}), out);
  Event("response.in_progress", Response("in_progress", {}), out);
}

ResponsesStreamEncoder::Item& ResponsesStreamEncoder::Open(Kind kind, std::string& out) {
  CloseOpen(out, kind == Kind::kFunction);
  const std::size_t index = items_.size();
  Item& it = items_.emplace_back();
  it.kind = kind;
  it.id = ItemId(kind == Kind::kMessage     ? "msg_"
                 : kind == Kind::kReasoning ? "rs_"
                                            : "fc_",
                 head_.item_base, index);
  return it;
}

void ResponsesStreamEncoder::CloseOpen(std::string& out, bool keep_functions) {
  for (std::size_t i = 0; i < items_.size(); ++i) {
    if (items_[i].done) continue;
    if (keep_functions && items_[i].kind == Kind::kFunction) continue;
    Close(i, out);
  }
}

namespace {

// `"item_id":..,"output_index":..` (and `"content_index":0` for parts).
std::string Where(const std::string& id, std::size_t index, bool content) {
  std::string f = "\"item_id\":";
  AppendJsonString(f, id);
  f += ",\"output_index\":";
  AppendInt(f, index);
  if (content) f += ",\"content_index\":0";
  return f;
}

std::string OutputIndex(std::size_t index) {
  std::string f = "\"output_index\":";
  AppendInt(f, index);
  return f;
}

}  // namespace

void ResponsesStreamEncoder::Close(std::size_t index, std::string& out) {
  Item& it = items_[index];
  it.done = true;
  std::string item;
  switch (it.kind) {
    case Kind::kMessage: {
      std::string f = Where(it.id, index, true);
      f += ",\"text\":";
      AppendJsonString(f, it.text);
      f += ",\"logprobs\":[]";
      Event("response.output_text.done", std::move(f), out);
      std::string part = Where(it.id, index, true) + ",\"part\":";
      AppendOutputText(part, it.text);
      Event("response.content_part.done", std::move(part), out);
      AppendMessage(item, it.id, "completed", &it.text);
      break;
    }
    case Kind::kReasoning: {
      std::string f = Where(it.id, index, true);
      f += ",\"text\":";
      AppendJsonString(f, it.text);
      Event("response.reasoning_text.done", std::move(f), out);
      std::string part = Where(it.id, index, true) + ",\"part\":";
      AppendReasoningText(part, it.text);
      Event("response.content_part.done", std::move(part), out);
      AppendReasoning(item, it.id, &it.text);
      break;
    }
    case Kind::kFunction: {
      std::string f = Where(it.id, index, false);
      f += ",\"name\":";
      AppendJsonString(f, it.name);
      f += ",\"arguments\":";
      AppendJsonString(f, it.text);
      Event("response.function_call_arguments.done", std::move(f), out);
      AppendFunctionCall(item, it.id, "completed", it.call_id, it.name, it.text);
      break;
    }
  }
  Event("response.output_item.done", OutputIndex(index) + ",\"item\":" + item, out);
}

void ResponsesStreamEncoder::ToolDeltas(std::string_view text, std::string& out) {
  std::vector<core::ToolFragment> fragments;
  if (!core::ParseToolFragments(text, fragments)) return;  // the provider codec checked them
  for (core::ToolFragment& f : fragments) {
    std::size_t index = items_.size();
    for (std::size_t i = items_.size(); i-- > 0;) {
      if (!items_[i].done && items_[i].kind == Kind::kFunction && items_[i].tool_index == f.index) {
        index = i;
        break;
      }
    }
    if (index == items_.size()) {
      Item& it = Open(Kind::kFunction, out);
      index = items_.size() - 1;
      it.tool_index = f.index;
      it.call_id = f.id.empty() ? "call_" + std::to_string(f.index) : std::move(f.id);
      it.name = std::move(f.name);
      std::string added = OutputIndex(index) + ",\"item\":";
      AppendFunctionCall(added, it.id, "in_progress", it.call_id, it.name, "");
      Event("response.output_item.added", std::move(added), out);
    } else if (items_[index].name.empty()) {
      items_[index].name = std::move(f.name);
    }
    if (!f.arguments.empty()) {
      items_[index].text += f.arguments;
      std::string delta = Where(items_[index].id, index, false) + ",\"delta\":";
      AppendJsonString(delta, f.arguments);
      Event("response.function_call_arguments.delta", std::move(delta), out);
    }
  }
}

void ResponsesStreamEncoder::Encode(const core::Chunk& c, std::string& out) {
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
    case core::Chunk::Kind::kDelta: {
      // A text or reasoning delta extends the open item of its kind, else opens one.
      auto text_delta = [this, &out](Kind kind, const std::string& delta) {
        if (delta.empty()) return;
        std::size_t index = items_.size() - (items_.empty() ? 0 : 1);
        if (items_.empty() || items_.back().done || items_.back().kind != kind) {
          Item& it = Open(kind, out);
          index = items_.size() - 1;
          std::string added = OutputIndex(index) + ",\"item\":";
          std::string part = Where(it.id, index, true) + ",\"part\":";
          if (kind == Kind::kMessage) {
            AppendMessage(added, it.id, "in_progress", nullptr);
            AppendOutputText(part, "");
          } else {
            AppendReasoning(added, it.id, nullptr);
            AppendReasoningText(part, "");
          }
          Event("response.output_item.added", std::move(added), out);
          Event("response.content_part.added", std::move(part), out);
        }
        Item& it = items_[index];
        it.text += delta;
        std::string f = Where(it.id, index, true) + ",\"delta\":";
        AppendJsonString(f, delta);
        if (kind == Kind::kMessage) {
          f += ",\"logprobs\":[]";
          Event("response.output_text.delta", std::move(f), out);
        } else {
          Event("response.reasoning_text.delta", std::move(f), out);
        }
      };
      text_delta(Kind::kReasoning, c.reasoning);
      text_delta(Kind::kMessage, c.content);
      if (!c.tool_calls_json.empty()) ToolDeltas(c.tool_calls_json, out);
      break;
    }
    case core::Chunk::Kind::kFinish:
      finish_reason_ = c.finish_reason;
      break;
    case core::Chunk::Kind::kUsage:
      usage_ = c.usage;
      has_usage_ = true;
      break;
    case core::Chunk::Kind::kError:
      Error(c.error, out);
      break;
    case core::Chunk::Kind::kEmbedding:  // embeddings are never streamed
      break;
  }
}

void ResponsesStreamEncoder::Done(std::string& out) {
  if (finished_) return;
  if (native_) {  // the upstream's terminal event was forwarded, or the stream failed
    finished_ = true;
    return;
  }
  Start(out);
  CloseOpen(out, false);
  finished_ = true;
  const bool incomplete = !IncompleteReason(finish_reason_).empty();
  Event(incomplete ? "response.incomplete" : "response.completed",
        Response(incomplete ? "incomplete" : "completed", {}), out);
}

void ResponsesStreamEncoder::Error(const core::Status& status, std::string& out) {
  if (finished_) return;
  Start(out);
  finished_ = true;
  std::string error = "{\"code\":";
  AppendJsonString(error, status.reason.empty() ? std::string_view("server_error")
                                                : std::string_view(status.reason));
  error += ",\"message\":";
  AppendJsonString(error, status.message);
  error += '}';
  Event("response.failed", Response("failed", error), out);
}

}  // namespace meridian::http
