#include "gateway/http/responses_request.h"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <limits>
#include <utility>
#include <vector>

#include "gateway/core/json_text.h"
#include "gateway/core/json_value.h"
#include "gateway/http/chat_request.h"
#include "gateway/http/request_fields.h"

namespace meridian::http {
namespace {

namespace json = boost::json;
using core::AppendJsonString;
using core::AppendJsonValue;
using core::Status;
using core::Sv;
using fields::BadValue;
using fields::EmptyArray;
using fields::Index;
using fields::IntegerIn;
using fields::Invalid;
using fields::Member;
using fields::Missing;
using fields::NumberIn;
using fields::NumberTooLarge;
using fields::RequiredString;
using fields::TooLong;
using fields::Unsupported;
using fields::WrongType;

Status Stateless(std::string param) {
  std::string msg = "'" + param +
                    "' is not supported: this gateway keeps no conversation state (it stores no "
                    "content), so send the whole conversation in 'input'.";
  return Unsupported(std::move(param), std::move(msg));
}

// The conversation being built from `input` items. function_call items become the tool calls
// of one assistant turn: the assistant message just before them, or a new one.
class Conversation {
 public:
  explicit Conversation(std::vector<core::Message>& out) : out_(out) {}

  core::Message& Add(std::string role) {
    Flush();
    core::Message& m = out_.emplace_back();
    m.role = std::move(role);
    assistant_open_ = m.role == "assistant";
    return m;
  }

  Status AddCall(const json::object& item, const std::string& path) {
    std::string call_id;
    std::string name;
    std::string arguments;
    if (auto s = RequiredString(item, "call_id", path, call_id); !s.ok()) return s;
    if (auto s = RequiredString(item, "name", path, name); !s.ok()) return s;
    if (auto s = RequiredString(item, "arguments", path, arguments); !s.ok()) return s;
    if (!assistant_open_) Add("assistant").content_null = true;
    pending_.emplace_back(
        json::object{{"id", call_id},
                     {"type", "function"},
                     {"function", json::object{{"name", name}, {"arguments", arguments}}}});
    return Status::Ok();
  }

  /// Writes the pending tool calls into their assistant turn; the turn is closed.
  void Flush() {
    assistant_open_ = false;
    if (pending_.empty()) return;
    // Only strings in these calls: nothing a JSON writer could fail on.
    (void)core::AppendJsonArray(out_.back().tool_calls_json, pending_);
    pending_.clear();
  }

 private:
  std::vector<core::Message>& out_;
  json::array pending_;
  bool assistant_open_ = false;
};

bool IsMessageRole(std::string_view r) {
  return r == "user" || r == "assistant" || r == "system" || r == "developer";
}

// Content parts of a message item, as chat parts; text parts also joined into m.text.
Status DecodeParts(const json::array& parts, const std::string& path, core::Message& m) {
  if (parts.empty()) return EmptyArray(path);
  json::array chat;
  bool media = false;
  bool any_text = false;
  for (std::size_t j = 0; j < parts.size(); ++j) {
    const std::string part_path = Index(path, j);
    const json::object* part = parts[j].if_object();
    if (part == nullptr) return WrongType(part_path, "an object", parts[j]);
    std::string type;
    if (auto s = RequiredString(*part, "type", part_path, type); !s.ok()) return s;
    if (type == "input_text" || type == "output_text" || type == "refusal") {
      std::string text;
      const char* key = type == "refusal" ? "refusal" : "text";
      if (auto s = RequiredString(*part, key, part_path, text); !s.ok()) return s;
      if (any_text) m.text += '\n';
      m.text += text;
      any_text = true;
      chat.emplace_back(json::object{{"type", "text"}, {"text", text}});
    } else if (type == "input_image") {
      const json::value* file_id = part->if_contains("file_id");
      if (file_id != nullptr && !file_id->is_null()) {
        return Unsupported(Member(part_path, "file_id"),
                           "'file_id' is not supported: this gateway stores no files; send the "
                           "image as 'image_url' (an https or data: URL).");
      }
      std::string url;
      if (auto s = RequiredString(*part, "image_url", part_path, url); !s.ok()) return s;
      json::object image{{"url", url}};
      if (const json::value* detail = part->if_contains("detail");
          detail != nullptr && !detail->is_null()) {
        if (!detail->is_string())
          return WrongType(Member(part_path, "detail"), "a string", *detail);
        image["detail"] = *detail;
      }
      chat.emplace_back(json::object{{"type", "image_url"}, {"image_url", std::move(image)}});
      media = true;
    } else if (type == "input_file") {
      const json::value* data = part->if_contains("file_data");
      if (data == nullptr || !data->is_string()) {
        return Unsupported(Member(part_path, "file_data"),
                           "an input_file must carry 'file_data' (base64): this gateway stores "
                           "no files, so 'file_id' and 'file_url' are not supported.");
      }
      json::object file{{"file_data", *data}};
      if (const json::value* name = part->if_contains("filename"); name != nullptr) {
        if (!name->is_string()) return WrongType(Member(part_path, "filename"), "a string", *name);
        file["filename"] = *name;
      }
      chat.emplace_back(json::object{{"type", "file"}, {"file", std::move(file)}});
      media = true;
    } else {
      return BadValue(Member(part_path, "type"),
                      "'" + type +
                          "'. Supported values are: 'input_text', 'output_text', 'refusal', "
                          "'input_image' and 'input_file'.");
    }
  }
  // Text-only content stays plain text (what every adapter sends); parts only with media.
  if (media && !core::AppendJsonArray(m.content_parts_json, chat)) return NumberTooLarge(path);
  return Status::Ok();
}

Status DecodeMessageItem(const json::object& item, const std::string& path, Conversation& conv) {
  std::string role;
  if (auto s = RequiredString(item, "role", path, role); !s.ok()) return s;
  if (!IsMessageRole(role)) {
    return BadValue(Member(path, "role"), "'" + role +
                                              "'. Supported values are: 'user', 'assistant', "
                                              "'system', and 'developer'.");
  }
  core::Message& m = conv.Add(role);
  const std::string content_path = Member(path, "content");
  const json::value* content = item.if_contains("content");
  if (content == nullptr) return Missing(content_path);
  if (content->is_string()) {
    m.text.assign(Sv(content->get_string()));
    return Status::Ok();
  }
  if (!content->is_array()) {
    return WrongType(content_path, "a string or an array of content parts", *content);
  }
  return DecodeParts(content->get_array(), content_path, m);
}

Status DecodeCallOutput(const json::object& item, const std::string& path, Conversation& conv) {
  std::string call_id;
  if (auto s = RequiredString(item, "call_id", path, call_id); !s.ok()) return s;
  const json::value* output = item.if_contains("output");
  if (output == nullptr) return Missing(Member(path, "output"));
  core::Message& m = conv.Add("tool");
  m.tool_call_id = std::move(call_id);
  if (output->is_string()) {
    m.text.assign(Sv(output->get_string()));
    return Status::Ok();
  }
  if (!output->is_array()) {
    return WrongType(Member(path, "output"), "a string or an array of content parts", *output);
  }
  core::Message parts;
  if (auto s = DecodeParts(output->get_array(), Member(path, "output"), parts); !s.ok()) return s;
  if (!parts.content_parts_json.empty()) {
    return Unsupported(Member(path, "output"),
                       "a function_call_output may carry text only through this gateway.");
  }
  m.text = std::move(parts.text);
  return Status::Ok();
}

Status DecodeInput(const json::value& v, std::vector<core::Message>& out) {
  if (v.is_string()) {
    core::Message& m = out.emplace_back();
    m.role = "user";
    m.text.assign(Sv(v.get_string()));
    return Status::Ok();
  }
  if (!v.is_array()) return WrongType("input", "a string or an array of input items", v);
  const json::array& items = v.get_array();
  if (items.empty()) return EmptyArray("input");
  if (items.size() > kMaxMessages) return TooLong("input", kMaxMessages, items.size());
  Conversation conv(out);
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string path = Index("input", i);
    const json::object* item = items[i].if_object();
    if (item == nullptr) return WrongType(path, "an object", items[i]);
    const json::value* type = item->if_contains("type");
    std::string_view t = "message";  // an EasyInputMessage has no type
    if (type != nullptr) {
      if (!type->is_string()) return WrongType(Member(path, "type"), "a string", *type);
      t = Sv(type->get_string());
    }
    Status s = Status::Ok();
    if (t == "message") {
      s = DecodeMessageItem(*item, path, conv);
    } else if (t == "function_call") {
      s = conv.AddCall(*item, path);
    } else if (t == "function_call_output") {
      s = DecodeCallOutput(*item, path, conv);
    } else if (t == "reasoning") {
      continue;  // earlier turns' reasoning is not sent again (as reasoning_content in chat)
    } else if (t == "item_reference") {
      s = Unsupported(path,
                      "item references are not supported: this gateway keeps no conversation "
                      "state, so send the items themselves.");
    } else {
      s = BadValue(Member(path, "type"), "'" + std::string(t) +
                                             "'. Supported input item types are: 'message', "
                                             "'function_call', 'function_call_output' and "
                                             "'reasoning'.");
    }
    if (!s.ok()) return s;
  }
  conv.Flush();
  if (out.empty()) return EmptyArray("input");  // reasoning items only
  return Status::Ok();
}

// Responses function tools ({type, name, description, parameters, strict}) in chat shape.
Status DecodeTools(const json::value& v, core::CompletionRequest& out) {
  if (!v.is_array()) return WrongType("tools", "an array", v);
  const json::array& arr = v.get_array();
  json::array chat;
  for (std::size_t i = 0; i < arr.size(); ++i) {
    const std::string path = Index("tools", i);
    const json::object* tool = arr[i].if_object();
    if (tool == nullptr) return WrongType(path, "an object", arr[i]);
    std::string type;
    if (auto s = RequiredString(*tool, "type", path, type); !s.ok()) return s;
    if (type != "function") {
      return Unsupported(Member(path, "type"),
                         "tool type '" + type +
                             "' is not supported: hosted tools run at OpenAI, and this gateway "
                             "serves function tools on every provider.");
    }
    std::string name;
    if (auto s = RequiredString(*tool, "name", path, name); !s.ok()) return s;
    json::object fn{{"name", name}};
    for (const char* key : {"description", "parameters", "strict"}) {
      if (const json::value* m = tool->if_contains(key); m != nullptr && !m->is_null()) {
        fn[key] = *m;
      }
    }
    chat.emplace_back(json::object{{"type", "function"}, {"function", std::move(fn)}});
  }
  if (!chat.empty() && !core::AppendJsonArray(out.tools_json, chat)) return NumberTooLarge("tools");
  return Status::Ok();
}

Status DecodeToolChoice(const json::value& v, core::CompletionRequest& out) {
  if (v.is_string()) {
    if (auto s = fields::ToolChoiceMode(v); !s.ok()) return s;
    (void)AppendJsonValue(out.tool_choice_json, v);
    return Status::Ok();
  }
  const json::object* o = v.if_object();
  if (o == nullptr) return WrongType("tool_choice", "a string or an object", v);
  std::string type;
  if (auto s = RequiredString(*o, "type", "tool_choice", type); !s.ok()) return s;
  if (type != "function") {
    return Unsupported("tool_choice.type", "tool_choice type '" + type +
                                               "' is not supported: name a function tool, or "
                                               "use 'none', 'auto' or 'required'.");
  }
  std::string name;
  if (auto s = RequiredString(*o, "name", "tool_choice", name); !s.ok()) return s;
  const json::value chat{{"type", "function"}, {"function", json::object{{"name", name}}}};
  (void)AppendJsonValue(out.tool_choice_json, chat);
  return Status::Ok();
}

void Pass(core::CompletionRequest& out, std::string key, std::string json_text) {
  out.passthrough.push_back({std::move(key), std::move(json_text)});
}

// text: {format: {type: text|json_object|json_schema, ...}, verbosity}.
Status DecodeText(const json::value& v, core::CompletionRequest& out) {
  const json::object* o = v.if_object();
  if (o == nullptr) return WrongType("text", "an object", v);
  if (const json::value* f = o->if_contains("format"); f != nullptr && !f->is_null()) {
    const json::object* format = f->if_object();
    if (format == nullptr) return WrongType("text.format", "an object", *f);
    std::string type;
    if (auto s = RequiredString(*format, "type", "text.format", type); !s.ok()) return s;
    if (type == "json_object") {
      Pass(out, "response_format", R"({"type":"json_object"})");
    } else if (type == "json_schema") {
      std::string name;
      if (auto s = RequiredString(*format, "name", "text.format", name); !s.ok()) return s;
      const json::value* schema = format->if_contains("schema");
      if (schema == nullptr) return Missing("text.format.schema");
      if (!schema->is_object()) return WrongType("text.format.schema", "an object", *schema);
      json::object js{{"name", name}, {"schema", *schema}};
      for (const char* key : {"description", "strict"}) {
        if (const json::value* m = format->if_contains(key); m != nullptr && !m->is_null()) {
          js[key] = *m;
        }
      }
      std::string rf = R"({"type":"json_schema","json_schema":)";
      if (!AppendJsonValue(rf, js)) return NumberTooLarge("text.format");
      rf += '}';
      Pass(out, "response_format", std::move(rf));
    } else if (type != "text") {
      return BadValue("text.format.type", "'" + type +
                                              "'. Supported values are: 'text', 'json_object' and "
                                              "'json_schema'.");
    }
  }
  if (const json::value* verbosity = o->if_contains("verbosity");
      verbosity != nullptr && !verbosity->is_null()) {
    if (!verbosity->is_string()) return WrongType("text.verbosity", "a string", *verbosity);
    std::string j;
    (void)AppendJsonValue(j, *verbosity);
    Pass(out, "verbosity", std::move(j));
  }
  return Status::Ok();
}

Status DecodeReasoning(const json::value& v, core::CompletionRequest& out) {
  const json::object* o = v.if_object();
  if (o == nullptr) return WrongType("reasoning", "an object", v);
  if (const json::value* effort = o->if_contains("effort");
      effort != nullptr && !effort->is_null()) {
    if (!effort->is_string()) return WrongType("reasoning.effort", "a string", *effort);
    std::string j;
    (void)AppendJsonValue(j, *effort);
    Pass(out, "reasoning_effort", std::move(j));
  }
  return Status::Ok();
}

Status RawEcho(const json::value& v, std::string_view param, std::string& out) {
  out.clear();
  if (!AppendJsonValue(out, v)) return NumberTooLarge(std::string(param));
  return Status::Ok();
}

Status DecodeBody(const json::object& body, ResponsesRequest& req) {
  core::CompletionRequest& out = req.completion;
  ResponsesEcho& echo = req.echo;
  bool have_model = false;
  bool have_input = false;
  std::vector<core::Message> input;
  for (const auto& kv : body) {
    const std::string_view key = Sv(kv.key());
    const json::value& v = kv.value();
    const std::string param(key);
    if (key == "model") {
      if (auto s = fields::Model(v, out.model); !s.ok()) return s;
      have_model = true;
      continue;
    }
    if (key == "input") {
      if (auto s = DecodeInput(v, input); !s.ok()) return s;
      have_input = true;
      continue;
    }
    if (v.is_null()) continue;  // null means "the default" for every optional field
    if (key == "instructions") {
      if (!v.is_string()) return WrongType(param, "a string", v);
      echo.instructions.emplace(Sv(v.get_string()));
    } else if (key == "stream") {
      if (!v.is_bool()) return WrongType(param, "a boolean", v);
      out.stream = v.get_bool();
    } else if (key == "stream_options") {
      if (!v.is_object()) return WrongType(param, "an object", v);  // include_obfuscation only
    } else if (key == "max_output_tokens") {
      std::int64_t n = 0;
      if (auto s = IntegerIn(v, param, 1, std::numeric_limits<std::int64_t>::max(), n); !s.ok()) {
        return s;
      }
      out.max_completion_tokens = n;
      echo.max_output_tokens = n;
    } else if (key == "temperature") {
      double d = 0;
      if (auto s = NumberIn(v, param, 0, 2, d); !s.ok()) return s;
      out.temperature = d;
      echo.temperature = d;
    } else if (key == "top_p") {
      double d = 0;
      if (auto s = NumberIn(v, param, 0, 1, d); !s.ok()) return s;
      out.top_p = d;
      echo.top_p = d;
    } else if (key == "tools") {
      if (auto s = DecodeTools(v, out); !s.ok()) return s;
      if (auto s = RawEcho(v, param, echo.tools_json); !s.ok()) return s;
    } else if (key == "tool_choice") {
      if (auto s = DecodeToolChoice(v, out); !s.ok()) return s;
      if (auto s = RawEcho(v, param, echo.tool_choice_json); !s.ok()) return s;
    } else if (key == "text") {
      if (auto s = DecodeText(v, out); !s.ok()) return s;
      if (auto s = RawEcho(v, param, echo.text_json); !s.ok()) return s;
    } else if (key == "reasoning") {
      if (auto s = DecodeReasoning(v, out); !s.ok()) return s;
      if (auto s = RawEcho(v, param, echo.reasoning_json); !s.ok()) return s;
    } else if (key == "metadata") {
      if (!v.is_object()) return WrongType(param, "an object", v);
      if (auto s = RawEcho(v, param, echo.metadata_json); !s.ok()) return s;
    } else if (key == "parallel_tool_calls") {
      if (!v.is_bool()) return WrongType(param, "a boolean", v);
      echo.parallel_tool_calls = v.get_bool();
      Pass(out, param, v.get_bool() ? "true" : "false");
    } else if (key == "user") {
      if (!v.is_string()) return WrongType(param, "a string", v);
      out.user.assign(Sv(v.get_string()));
      echo.user = out.user;
    } else if (key == "safety_identifier" || key == "prompt_cache_key" || key == "service_tier") {
      if (!v.is_string()) return WrongType(param, "a string", v);
      std::string j;
      (void)AppendJsonValue(j, v);
      Pass(out, param, std::move(j));
    } else if (key == "store") {
      if (!v.is_bool()) return WrongType(param, "a boolean", v);  // reported as false
    } else if (key == "include") {
      if (!v.is_array()) return WrongType(param, "an array", v);
    } else if (key == "truncation") {
      if (!v.is_string()) return WrongType(param, "a string", v);
    } else if (key == "background") {
      if (!v.is_bool()) return WrongType(param, "a boolean", v);
      if (v.get_bool()) return Stateless(param);
    } else if (key == "previous_response_id" || key == "conversation" || key == "prompt") {
      return Stateless(param);
    } else {
      return Invalid(param, "Unknown parameter: '" + param + "'.", "unknown_parameter");
    }
  }
  if (!have_model) return Missing("model");
  if (!have_input) return Missing("input");
  if (echo.instructions) {
    core::Message& system = out.messages.emplace_back();
    system.role = "system";
    system.text = *echo.instructions;
  }
  for (core::Message& m : input) out.messages.push_back(std::move(m));
  return Status::Ok();
}

}  // namespace

core::Status DecodeResponsesRequest(std::string_view body, ResponsesRequest& out) {
  auto st = fields::DecodeInto(body, out, &DecodeBody);
  if (!st.ok()) return st;
  // Validated: a provider serving OpenAI's own Responses API gets it as it came (reasoning
  // items, hosted-tool-free function tools, every text.format option), the others the
  // translation above.
  // `metadata` stays behind: it is the caller's own bookkeeping, echoed by the gateway and
  // never sent upstream (nor classified).
  boost::json::error_code ec;
  boost::json::value v = boost::json::parse(boost::json::string_view(body.data(), body.size()), ec);
  if (ec || !v.is_object()) return st;  // cannot happen: the decoder parsed it
  v.get_object().erase("metadata");
  if (!core::AppendJsonValue(out.completion.native.json, v)) return st;
  out.completion.native.format = core::NativeBody::Format::kOpenAiResponses;
  return st;
}

}  // namespace meridian::http
