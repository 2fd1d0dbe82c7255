#include "gateway/http/messages_request.h"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "gateway/core/json_value.h"
#include "gateway/http/chat_request.h"
#include "gateway/http/request_fields.h"

namespace meridian::http {
namespace {

namespace json = boost::json;
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

// Text blocks ({type: text, text}) joined with newlines: `system`, tool_result content.
Status TextBlocks(const json::value& v, const std::string& path, std::string& out) {
  if (v.is_string()) {
    out.assign(Sv(v.get_string()));
    return Status::Ok();
  }
  if (!v.is_array()) return WrongType(path, "a string or an array of text blocks", v);
  const json::array& blocks = v.get_array();
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const std::string block_path = Index(path, i);
    const json::object* b = blocks[i].if_object();
    if (b == nullptr) return WrongType(block_path, "an object", blocks[i]);
    std::string type;
    if (auto s = RequiredString(*b, "type", block_path, type); !s.ok()) return s;
    if (type != "text") {
      return BadValue(Member(block_path, "type"),
                      "'" + type + "'. Only 'text' blocks are supported here.");
    }
    std::string text;
    if (auto s = RequiredString(*b, "text", block_path, text); !s.ok()) return s;
    if (i > 0) out += '\n';
    out += text;
  }
  return Status::Ok();
}

// An image block's source as the URL a chat image_url part carries.
Status ImageUrl(const json::object& block, const std::string& path, std::string& url) {
  const json::value* sv = block.if_contains("source");
  if (sv == nullptr) return Missing(Member(path, "source"));
  const json::object* source = sv->if_object();
  if (source == nullptr) return WrongType(Member(path, "source"), "an object", *sv);
  const std::string source_path = Member(path, "source");
  std::string type;
  if (auto s = RequiredString(*source, "type", source_path, type); !s.ok()) return s;
  if (type == "url") return RequiredString(*source, "url", source_path, url);
  if (type != "base64") {
    return Unsupported(Member(source_path, "type"),
                       "image source type '" + type +
                           "' is not supported: send 'base64' or 'url' (this gateway stores no "
                           "files).");
  }
  std::string media_type;
  std::string data;
  if (auto s = RequiredString(*source, "media_type", source_path, media_type); !s.ok()) return s;
  if (auto s = RequiredString(*source, "data", source_path, data); !s.ok()) return s;
  url = "data:" + media_type + ";base64," + data;
  return Status::Ok();
}

// One message of `messages`; a user turn's tool_result blocks become tool messages first.
Status DecodeMessage(const json::value& v, const std::string& path,
                     std::vector<core::Message>& out) {
  const json::object* o = v.if_object();
  if (o == nullptr) return WrongType(path, "an object", v);
  std::string role;
  if (auto s = RequiredString(*o, "role", path, role); !s.ok()) return s;
  if (role != "user" && role != "assistant") {
    return BadValue(Member(path, "role"),
                    "'" + role +
                        "'. Supported values are: 'user' and 'assistant' (the system "
                        "prompt is the top-level 'system').");
  }
  const std::string content_path = Member(path, "content");
  const json::value* content = o->if_contains("content");
  if (content == nullptr) return Missing(content_path);
  core::Message m;
  m.role = role;
  if (content->is_string()) {
    m.text.assign(Sv(content->get_string()));
    out.push_back(std::move(m));
    return Status::Ok();
  }
  if (!content->is_array()) {
    return WrongType(content_path, "a string or an array of content blocks", *content);
  }
  const json::array& blocks = content->get_array();
  if (blocks.empty()) return EmptyArray(content_path);
  json::array parts;
  json::array calls;
  bool media = false;
  bool any_text = false;
  for (std::size_t j = 0; j < blocks.size(); ++j) {
    const std::string block_path = Index(content_path, j);
    const json::object* b = blocks[j].if_object();
    if (b == nullptr) return WrongType(block_path, "an object", blocks[j]);
    std::string type;
    if (auto s = RequiredString(*b, "type", block_path, type); !s.ok()) return s;
    if (type == "text") {
      std::string text;
      if (auto s = RequiredString(*b, "text", block_path, text); !s.ok()) return s;
      if (any_text) m.text += '\n';
      m.text += text;
      any_text = true;
      parts.emplace_back(json::object{{"type", "text"}, {"text", text}});
    } else if (type == "image") {
      std::string url;
      if (auto s = ImageUrl(*b, block_path, url); !s.ok()) return s;
      parts.emplace_back(
          json::object{{"type", "image_url"}, {"image_url", json::object{{"url", url}}}});
      media = true;
    } else if (type == "tool_use" && role == "assistant") {
      std::string id;
      std::string name;
      if (auto s = RequiredString(*b, "id", block_path, id); !s.ok()) return s;
      if (auto s = RequiredString(*b, "name", block_path, name); !s.ok()) return s;
      const json::value* input = b->if_contains("input");
      if (input == nullptr) return Missing(Member(block_path, "input"));
      if (!input->is_object()) return WrongType(Member(block_path, "input"), "an object", *input);
      std::string arguments;
      if (!AppendJsonValue(arguments, *input)) return NumberTooLarge(Member(block_path, "input"));
      calls.emplace_back(
          json::object{{"id", id},
                       {"type", "function"},
                       {"function", json::object{{"name", name}, {"arguments", arguments}}}});
    } else if (type == "tool_result" && role == "user") {
      core::Message& tool = out.emplace_back();
      tool.role = "tool";
      if (auto s = RequiredString(*b, "tool_use_id", block_path, tool.tool_call_id); !s.ok()) {
        return s;
      }
      if (const json::value* c = b->if_contains("content"); c != nullptr && !c->is_null()) {
        if (auto s = TextBlocks(*c, Member(block_path, "content"), tool.text); !s.ok()) return s;
      }
    } else if (type == "thinking" || type == "redacted_thinking") {
      continue;  // earlier turns' reasoning is not sent again
    } else {
      return BadValue(Member(block_path, "type"),
                      "'" + type +
                          "'. Supported blocks are: 'text', 'image', 'tool_use' "
                          "(assistant), 'tool_result' (user) and 'thinking'.");
    }
  }
  if (media && !core::AppendJsonArray(m.content_parts_json, parts))
    return NumberTooLarge(content_path);
  if (!calls.empty()) (void)core::AppendJsonArray(m.tool_calls_json, calls);  // strings only
  m.content_null = m.text.empty() && !media && !calls.empty();
  // A user turn of tool results alone is those tool messages; anything else is a message.
  if (any_text || media || !calls.empty()) out.push_back(std::move(m));
  return Status::Ok();
}

Status DecodeTools(const json::value& v, core::CompletionRequest& out) {
  if (!v.is_array()) return WrongType("tools", "an array", v);
  const json::array& arr = v.get_array();
  json::array chat;
  for (std::size_t i = 0; i < arr.size(); ++i) {
    const std::string path = Index("tools", i);
    const json::object* tool = arr[i].if_object();
    if (tool == nullptr) return WrongType(path, "an object", arr[i]);
    if (const json::value* type = tool->if_contains("type");
        type != nullptr && !(type->is_string() && type->get_string() == "custom")) {
      return Unsupported(Member(path, "type"),
                         "server tools run at Anthropic; this gateway serves client tools "
                         "({name, description, input_schema}) on every provider.");
    }
    std::string name;
    if (auto s = RequiredString(*tool, "name", path, name); !s.ok()) return s;
    const json::value* schema = tool->if_contains("input_schema");
    if (schema == nullptr) return Missing(Member(path, "input_schema"));
    if (!schema->is_object()) return WrongType(Member(path, "input_schema"), "an object", *schema);
    json::object fn{{"name", name}, {"parameters", *schema}};
    if (const json::value* d = tool->if_contains("description"); d != nullptr && !d->is_null()) {
      fn["description"] = *d;
    }
    chat.emplace_back(json::object{{"type", "function"}, {"function", std::move(fn)}});
  }
  if (!chat.empty() && !core::AppendJsonArray(out.tools_json, chat)) return NumberTooLarge("tools");
  return Status::Ok();
}

Status DecodeToolChoice(const json::value& v, core::CompletionRequest& out) {
  const json::object* o = v.if_object();
  if (o == nullptr) return WrongType("tool_choice", "an object", v);
  std::string type;
  if (auto s = RequiredString(*o, "type", "tool_choice", type); !s.ok()) return s;
  if (type == "auto") {
    out.tool_choice_json = "\"auto\"";
  } else if (type == "any") {
    out.tool_choice_json = "\"required\"";
  } else if (type == "none") {
    out.tool_choice_json = "\"none\"";
  } else if (type == "tool") {
    std::string name;
    if (auto s = RequiredString(*o, "name", "tool_choice", name); !s.ok()) return s;
    const json::value chat{{"type", "function"}, {"function", json::object{{"name", name}}}};
    (void)AppendJsonValue(out.tool_choice_json, chat);
  } else {
    return BadValue("tool_choice.type",
                    "'" + type + "'. Supported values are: 'auto', 'any', 'tool' and 'none'.");
  }
  if (const json::value* p = o->if_contains("disable_parallel_tool_use");
      p != nullptr && !p->is_null()) {
    if (!p->is_bool()) return WrongType("tool_choice.disable_parallel_tool_use", "a boolean", *p);
    if (p->get_bool()) out.passthrough.push_back({"parallel_tool_calls", "false"});
  }
  return Status::Ok();
}

Status DecodeBody(const json::object& body, core::CompletionRequest& out) {
  bool have_model = false;
  bool have_max_tokens = false;
  bool have_messages = false;
  std::string system;
  bool have_system = false;
  std::vector<core::Message> messages;
  for (const auto& kv : body) {
    const std::string_view key = Sv(kv.key());
    const json::value& v = kv.value();
    const std::string param(key);
    if (key == "model") {
      if (auto s = fields::Model(v, out.model); !s.ok()) return s;
      have_model = true;
    } else if (key == "max_tokens") {
      std::int64_t n = 0;
      if (auto s = IntegerIn(v, param, 1, std::numeric_limits<std::int64_t>::max(), n); !s.ok()) {
        return s;
      }
      out.max_tokens = n;
      have_max_tokens = true;
    } else if (key == "messages") {
      if (!v.is_array()) return WrongType(param, "an array", v);
      const json::array& arr = v.get_array();
      if (arr.empty()) return EmptyArray(param);
      if (arr.size() > kMaxMessages) return TooLong(param, kMaxMessages, arr.size());
      for (std::size_t i = 0; i < arr.size(); ++i) {
        if (auto s = DecodeMessage(arr[i], Index("messages", i), messages); !s.ok()) return s;
      }
      have_messages = true;
    } else if (v.is_null()) {
      continue;
    } else if (key == "system") {
      if (auto s = TextBlocks(v, param, system); !s.ok()) return s;
      have_system = true;
    } else if (key == "stream") {
      if (!v.is_bool()) return WrongType(param, "a boolean", v);
      out.stream = v.get_bool();
    } else if (key == "temperature") {
      double d = 0;
      if (auto s = NumberIn(v, param, 0, 1, d); !s.ok()) return s;
      out.temperature = d;
    } else if (key == "top_p") {
      double d = 0;
      if (auto s = NumberIn(v, param, 0, 1, d); !s.ok()) return s;
      out.top_p = d;
    } else if (key == "top_k") {
      std::int64_t n = 0;
      if (auto s = IntegerIn(v, param, 0, std::numeric_limits<std::int64_t>::max(), n); !s.ok()) {
        return s;
      }
      out.passthrough.push_back({"top_k", std::to_string(n)});
    } else if (key == "stop_sequences") {
      if (!v.is_array()) return WrongType(param, "an array of strings", v);
      const json::array& arr = v.get_array();
      for (std::size_t i = 0; i < arr.size(); ++i) {
        if (!arr[i].is_string()) return WrongType(Index(param, i), "a string", arr[i]);
        out.stop.emplace_back(Sv(arr[i].get_string()));
      }
    } else if (key == "tools") {
      if (auto s = DecodeTools(v, out); !s.ok()) return s;
    } else if (key == "tool_choice") {
      if (auto s = DecodeToolChoice(v, out); !s.ok()) return s;
    } else if (key == "thinking") {
      const json::object* t = v.if_object();
      if (t == nullptr) return WrongType(param, "an object", v);
      std::string type;
      if (auto s = RequiredString(*t, "type", param, type); !s.ok()) return s;
      if (type != "enabled" && type != "disabled") {
        return BadValue("thinking.type", "'" + type +
                                             "'. Supported values are: 'enabled' and "
                                             "'disabled'.");
      }
      out.enable_thinking = type == "enabled";
    } else if (key == "metadata") {
      const json::object* m = v.if_object();
      if (m == nullptr) return WrongType(param, "an object", v);
      if (const json::value* u = m->if_contains("user_id"); u != nullptr && !u->is_null()) {
        if (!u->is_string()) return WrongType("metadata.user_id", "a string", *u);
        out.user.assign(Sv(u->get_string()));
      }
    } else if (key == "service_tier") {
      if (!v.is_string()) return WrongType(param, "a string", v);  // accepted, no effect
    } else if (key == "inference_geo") {
      return Unsupported(param,
                         "'inference_geo' is not supported: the gateway's policy decides where "
                         "a request is processed, from the caller's region and data class.");
    } else if (key == "container" || key == "mcp_servers") {
      return Unsupported(param, "'" + param + "' is not supported: nothing runs at the gateway.");
    } else {
      return Invalid(param, param + ": Extra inputs are not permitted", "unknown_parameter");
    }
  }
  if (!have_model) return Missing("model");
  if (!have_max_tokens) return Missing("max_tokens");
  if (!have_messages) return Missing("messages");
  if (have_system && !system.empty()) {
    core::Message& m = out.messages.emplace_back();
    m.role = "system";
    m.text = std::move(system);
  }
  for (core::Message& m : messages) out.messages.push_back(std::move(m));
  if (out.messages.empty()) return EmptyArray("messages");
  return Status::Ok();
}

}  // namespace

core::Status DecodeMessagesRequest(std::string_view body, core::CompletionRequest& out) {
  auto st = fields::DecodeInto(body, out, &DecodeBody);
  if (!st.ok()) return st;
  // Validated: an Anthropic upstream gets it as it came (cache_control, thinking blocks with
  // their signatures), every other provider the translation above.
  out.native.format = core::NativeBody::Format::kAnthropicMessages;
  out.native.json.assign(body);
  return st;
}

}  // namespace meridian::http
