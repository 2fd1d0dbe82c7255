#include "gateway/http/chat_request.h"

#include <array>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "gateway/core/json_text.h"
#include "gateway/core/json_value.h"
#include "gateway/http/request_fields.h"

namespace meridian::http {
namespace {

namespace json = boost::json;
using core::AppendJsonArray;
using core::AppendJsonString;
using core::AppendJsonValue;
using core::AsInteger;
using core::Status;
using core::StatusCode;
using core::Sv;
using fields::BadValue;
using fields::EmptyArray;
using fields::FormatBound;
using fields::Index;
using fields::IntegerIn;
using fields::Invalid;
using fields::Member;
using fields::Missing;
using fields::NumberIn;
using fields::NumberTooLarge;
using fields::OptionalBool;
using fields::OptionalString;
using fields::TooLong;
using fields::WrongType;

// Shape checks for fields we forward verbatim, so OpenAI-style 400s come from the gateway
// instead of an upstream-specific error after routing.
enum class Shape : std::uint8_t { kInteger, kNumber, kBool, kString, kObject, kArray };

struct PassthroughRule {
  std::string_view name;
  Shape shape;
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  std::size_t max_length = 0;  ///< strings only; 0 = unlimited
};

constexpr double kInf = std::numeric_limits<double>::infinity();

constexpr std::array kPassthroughRules = {
    // One choice per request: core::Chunk carries no choice index, so n > 1 cannot be served.
    PassthroughRule{"n", Shape::kInteger, 1, 1},
    PassthroughRule{"seed", Shape::kInteger, -kInf, kInf},
    PassthroughRule{"frequency_penalty", Shape::kNumber, -2, 2},
    PassthroughRule{"presence_penalty", Shape::kNumber, -2, 2},
    PassthroughRule{"logprobs", Shape::kBool},
    PassthroughRule{"top_logprobs", Shape::kInteger, 0, 20},
    PassthroughRule{"parallel_tool_calls", Shape::kBool},
    PassthroughRule{"store", Shape::kBool},
    PassthroughRule{"response_format", Shape::kObject},
    PassthroughRule{"logit_bias", Shape::kObject},
    PassthroughRule{"metadata", Shape::kObject},
    PassthroughRule{"prediction", Shape::kObject},
    PassthroughRule{"audio", Shape::kObject},
    PassthroughRule{"web_search_options", Shape::kObject},
    PassthroughRule{"modalities", Shape::kArray},
    PassthroughRule{"reasoning_effort", Shape::kString},
    PassthroughRule{"verbosity", Shape::kString},
    PassthroughRule{"service_tier", Shape::kString},
    PassthroughRule{"prompt_cache_key", Shape::kString},
    PassthroughRule{"safety_identifier", Shape::kString, -kInf, kInf, 64},
};

Status CheckPassthrough(std::string_view key, const json::value& v) {
  for (const auto& rule : kPassthroughRules) {
    if (rule.name != key) continue;
    std::string param(key);
    switch (rule.shape) {
      case Shape::kInteger: {
        std::int64_t n = 0;
        if (!AsInteger(v, n)) return WrongType(std::move(param), "an integer", v);
        const auto d = static_cast<double>(n);
        if (d < rule.min || d > rule.max) {
          return BadValue(std::move(param), "must be between " + FormatBound(rule.min) + " and " +
                                                FormatBound(rule.max) + ".");
        }
        return Status::Ok();
      }
      case Shape::kNumber: {
        double d = 0;
        return NumberIn(v, std::move(param), rule.min, rule.max, d);
      }
      case Shape::kBool:
        if (!v.is_bool()) return WrongType(std::move(param), "a boolean", v);
        return Status::Ok();
      case Shape::kString:
        if (!v.is_string()) return WrongType(std::move(param), "a string", v);
        if (rule.max_length != 0 && v.get_string().size() > rule.max_length) {
          return BadValue(std::move(param), "string too long, expected at most " +
                                                std::to_string(rule.max_length) + " characters.");
        }
        return Status::Ok();
      case Shape::kObject:
        if (!v.is_object()) return WrongType(std::move(param), "an object", v);
        return Status::Ok();
      case Shape::kArray:
        if (!v.is_array()) return WrongType(std::move(param), "an array", v);
        return Status::Ok();
    }
  }
  return Status::Ok();  // unknown to us: an engine extension, forwarded unchecked
}

bool IsRole(std::string_view r) {
  return r == "system" || r == "developer" || r == "user" || r == "assistant" || r == "tool" ||
         r == "function";
}

Status DecodeContentParts(const json::array& parts, const std::string& path, core::Message& m) {
  if (parts.empty()) return EmptyArray(path);
  bool any_text = false;
  for (std::size_t j = 0; j < parts.size(); ++j) {
    const std::string part_path = Index(path, j);
    const json::object* part = parts[j].if_object();
    if (part == nullptr) return WrongType(part_path, "an object", parts[j]);
    const json::value* type = part->if_contains("type");
    if (type == nullptr) return Missing(Member(part_path, "type"));
    if (!type->is_string()) return WrongType(Member(part_path, "type"), "a string", *type);
    // Other part types (image_url, input_audio, file, refusal, engine extensions such as
    // video_url) travel only in content_parts_json; the adapter decides what it supports.
    if (type->get_string() == "text") {
      const json::value* text = part->if_contains("text");
      if (text == nullptr) return Missing(Member(part_path, "text"));
      if (!text->is_string()) return WrongType(Member(part_path, "text"), "a string", *text);
      if (any_text) m.text += '\n';
      m.text += Sv(text->get_string());
      any_text = true;
    } else if (type->get_string().empty()) {
      return BadValue(Member(part_path, "type"), "must not be empty.");
    } else if (!core::PartKindOf(Sv(type->get_string()))) {
      return BadValue(Member(part_path, "type"),
                      "'" + std::string(Sv(type->get_string())) +
                          "'. Supported values are: 'text', 'image_url', 'input_audio', 'file', "
                          "'video_url' and 'refusal'.");
    }
  }
  if (!AppendJsonArray(m.content_parts_json, parts)) return NumberTooLarge(path);
  return Status::Ok();
}

Status DecodeMessage(const json::value& v, const std::string& path, core::Message& m) {
  const json::object* o = v.if_object();
  if (o == nullptr) return WrongType(path, "an object", v);

  const json::value* role = o->if_contains("role");
  if (role == nullptr) return Missing(Member(path, "role"));
  if (!role->is_string()) return WrongType(Member(path, "role"), "a string", *role);
  m.role.assign(Sv(role->get_string()));
  if (!IsRole(m.role)) {
    return BadValue(Member(path, "role"),
                    "'" + m.role +
                        "'. Supported values are: 'system', 'developer', 'user', 'assistant', "
                        "'tool', and 'function'.");
  }
  const bool null_content_ok = m.role == "assistant" || m.role == "function";

  const std::string content_path = Member(path, "content");
  const json::value* content = o->if_contains("content");
  if (content == nullptr || content->is_null()) {
    if (!null_content_ok) {
      if (content == nullptr) return Missing(content_path);
      return WrongType(content_path, "a string or an array of content parts", *content);
    }
    m.content_null = true;
  } else if (content->is_string()) {
    m.text.assign(Sv(content->get_string()));
  } else if (content->is_array()) {
    if (auto s = DecodeContentParts(content->get_array(), content_path, m); !s.ok()) return s;
  } else {
    return WrongType(content_path, "a string or an array of content parts", *content);
  }

  if (auto s = OptionalString(*o, "name", path, m.name); !s.ok()) return s;
  if (auto s = OptionalString(*o, "tool_call_id", path, m.tool_call_id); !s.ok()) return s;
  if (const json::value* id = o->if_contains("tool_call_id");
      m.role == "tool" && (id == nullptr || id->is_null())) {
    return Missing(Member(path, "tool_call_id"));
  }

  if (const json::value* calls = o->if_contains("tool_calls");
      calls != nullptr && !calls->is_null()) {
    const std::string calls_path = Member(path, "tool_calls");
    if (!calls->is_array()) return WrongType(calls_path, "an array", *calls);
    const json::array& arr = calls->get_array();
    for (std::size_t j = 0; j < arr.size(); ++j) {
      if (!arr[j].is_object()) return WrongType(Index(calls_path, j), "an object", arr[j]);
    }
    if (!arr.empty() && !AppendJsonArray(m.tool_calls_json, arr)) {
      return NumberTooLarge(calls_path);
    }
  }
  return Status::Ok();
}

Status DecodeMessages(const json::value& v, std::vector<core::Message>& out) {
  if (!v.is_array()) return WrongType("messages", "an array", v);
  const json::array& arr = v.get_array();
  if (arr.empty()) return EmptyArray("messages");
  if (arr.size() > kMaxMessages) return TooLong("messages", kMaxMessages, arr.size());
  out.resize(arr.size());
  for (std::size_t i = 0; i < arr.size(); ++i) {
    if (auto s = DecodeMessage(arr[i], Index("messages", i), out[i]); !s.ok()) return s;
  }
  return Status::Ok();
}

Status DecodeTools(const json::value& v, std::string& out) {
  if (!v.is_array()) return WrongType("tools", "an array", v);
  const json::array& arr = v.get_array();
  for (std::size_t i = 0; i < arr.size(); ++i) {
    const std::string path = Index("tools", i);
    const json::object* tool = arr[i].if_object();
    if (tool == nullptr) return WrongType(path, "an object", arr[i]);
    const json::value* type = tool->if_contains("type");
    if (type == nullptr) return Missing(Member(path, "type"));
    if (!type->is_string()) return WrongType(Member(path, "type"), "a string", *type);
    // Only function tools have a schema every upstream shares; others (custom, ...) are
    // forwarded for the upstream to judge.
    if (type->get_string() != "function") continue;
    const std::string fn_path = Member(path, "function");
    const json::value* fn = tool->if_contains("function");
    if (fn == nullptr) return Missing(fn_path);
    if (!fn->is_object()) return WrongType(fn_path, "an object", *fn);
    const json::value* name = fn->get_object().if_contains("name");
    if (name == nullptr) return Missing(Member(fn_path, "name"));
    if (!name->is_string()) return WrongType(Member(fn_path, "name"), "a string", *name);
  }
  if (!arr.empty() && !AppendJsonArray(out, arr)) return NumberTooLarge("tools");
  return Status::Ok();
}

Status DecodeToolChoice(const json::value& v, std::string& out) {
  if (v.is_string()) {
    if (auto s = fields::ToolChoiceMode(v); !s.ok()) return s;
  } else if (!v.is_object()) {
    return WrongType("tool_choice", "a string or an object", v);
  }
  if (!AppendJsonValue(out, v)) return NumberTooLarge("tool_choice");
  return Status::Ok();
}

Status DecodeBody(const json::object& body, core::CompletionRequest& out) {
  bool have_model = false;
  bool have_messages = false;
  const json::value* stream_options = nullptr;
  std::optional<bool> top_level_thinking;
  std::optional<bool> kwargs_thinking;

  for (const auto& kv : body) {
    const std::string_view key = Sv(kv.key());
    const json::value& v = kv.value();

    if (key == "model") {
      if (auto s = fields::Model(v, out.model); !s.ok()) return s;
      have_model = true;
    } else if (key == "messages") {
      if (auto s = DecodeMessages(v, out.messages); !s.ok()) return s;
      have_messages = true;
    } else if (v.is_null()) {
      // Null means "use the default" for every optional field; nothing to record or forward.
      continue;
    } else if (key == "stream") {
      if (!v.is_bool()) return WrongType("stream", "a boolean", v);
      out.stream = v.get_bool();
    } else if (key == "stream_options") {
      if (!v.is_object()) return WrongType("stream_options", "an object", v);
      stream_options = &v;
    } else if (key == "max_tokens" || key == "max_completion_tokens") {
      std::int64_t n = 0;
      if (auto s = IntegerIn(v, std::string(key), 1, std::numeric_limits<std::int64_t>::max(), n);
          !s.ok()) {
        return s;
      }
      (key == "max_tokens" ? out.max_tokens : out.max_completion_tokens) = n;
    } else if (key == "temperature") {
      double d = 0;
      if (auto s = NumberIn(v, "temperature", 0, 2, d); !s.ok()) return s;
      out.temperature = d;
    } else if (key == "top_p") {
      double d = 0;
      if (auto s = NumberIn(v, "top_p", 0, 1, d); !s.ok()) return s;
      out.top_p = d;
    } else if (key == "stop") {
      if (auto s = fields::Stop(v, out.stop); !s.ok()) return s;
    } else if (key == "tools") {
      if (auto s = DecodeTools(v, out.tools_json); !s.ok()) return s;
    } else if (key == "tool_choice") {
      if (auto s = DecodeToolChoice(v, out.tool_choice_json); !s.ok()) return s;
    } else if (key == "user") {
      if (!v.is_string()) return WrongType("user", "a string", v);
      out.user.assign(Sv(v.get_string()));
    } else if (key == "enable_thinking") {
      if (auto s = OptionalBool(v, "enable_thinking", top_level_thinking); !s.ok()) return s;
    } else if (key == "chat_template_kwargs") {
      if (!v.is_object()) return WrongType("chat_template_kwargs", "an object", v);
      if (const json::value* t = v.get_object().if_contains("enable_thinking")) {
        if (auto s = OptionalBool(*t, "chat_template_kwargs.enable_thinking", kwargs_thinking);
            !s.ok()) {
          return s;
        }
      }
    } else {
      if (auto s = CheckPassthrough(key, v); !s.ok()) return s;
      core::PassthroughMember& member = out.passthrough.emplace_back();
      member.key.assign(key);
      if (!AppendJsonValue(member.json, v)) return NumberTooLarge(std::string(key));
    }
  }

  if (!have_model) return Missing("model");
  if (!have_messages) return Missing("messages");

  if (auto s = fields::StreamOptions(stream_options, out.stream, out.include_usage); !s.ok()) {
    return s;
  }
  out.enable_thinking = kwargs_thinking ? kwargs_thinking : top_level_thinking;
  return Status::Ok();
}

}  // namespace

// -----------------------------------------------------------------------------------------

core::Status DecodeChatRequest(std::string_view body, core::CompletionRequest& out) {
  return fields::DecodeInto(body, out, &DecodeBody);
}

}  // namespace meridian::http
