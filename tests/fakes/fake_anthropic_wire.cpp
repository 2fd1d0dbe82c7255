// Anthropic Messages API wire format for the fake upstream (wire-protocols.md §3).
#include <boost/json.hpp>
#include <string>
#include <utility>

#include "tests/fakes/fake_openai_server.h"
#include "tests/fakes/fake_vendor_wire.h"

namespace meridian::fakes::wire {
namespace {

namespace json = boost::json;

/// JSON with `", "` and `": "` separators, the way §3.2's stream example prints every event.
std::string Spaced(const json::value& v) {
  if (const json::object* o = v.if_object()) {
    std::string out = "{";
    bool first = true;
    for (const auto& kv : *o) {
      if (!first) out += ", ";
      first = false;
      out += json::serialize(json::value(kv.key()));
      out += ": ";
      out += Spaced(kv.value());
    }
    return out + "}";
  }
  if (const json::array* a = v.if_array()) {
    std::string out = "[";
    for (std::size_t i = 0; i < a->size(); ++i) {
      if (i > 0) out += ", ";
      out += Spaced((*a)[i]);
    }
    return out + "]";
  }
  return json::serialize(v);
}

std::string NamedEvent(const Scenario& sc, std::string_view name, std::string_view data) {
  return SseEvent(sc, {"event: " + std::string(name), DataLine(sc, data)});
}

/// OpenAI finish vocabulary → Anthropic stop_reason (finish=R passes other values through).
std::string StopReason(const std::string& finish) {
  if (finish == "stop") return "end_turn";
  if (finish == "length") return "max_tokens";
  if (finish == "tool_calls") return "tool_use";
  return finish;
}

std::string Signature(std::uint64_t seq) {
  return "EqQBCkYIBhgCIkBmYWtlLXNpZ25hdHVyZS" + std::to_string(seq);
}

ErrorReply Invalid(std::string_view message, std::uint64_t seq) {
  return {400, AnthropicError("invalid_request_error", message, seq), {}};
}

}  // namespace

std::string AnthropicRequestId(std::uint64_t seq) {
  return "req_fake" + std::to_string(seq);
}

HeaderList AnthropicHeaders(std::uint64_t seq) {
  // [U] §3.3: the full rate-limit header list is unconfirmed; these follow its naming.
  return {{"request-id", AnthropicRequestId(seq)},
          {"anthropic-ratelimit-requests-limit", "50"},
          {"anthropic-ratelimit-requests-remaining", "49"},
          {"anthropic-ratelimit-requests-reset", "2026-01-01T00:00:01Z"},
          {"anthropic-ratelimit-tokens-limit", "40000"},
          {"anthropic-ratelimit-tokens-remaining", "39000"},
          {"anthropic-ratelimit-tokens-reset", "2026-01-01T00:00:01Z"}};
}

std::string AnthropicError(std::string_view type, std::string_view message, std::uint64_t seq) {
  json::object o{{"type", "error"}, {"error", json::object{{"type", type}, {"message", message}}}};
  if (seq != 0) o["request_id"] = AnthropicRequestId(seq);
  return json::serialize(o);
}

std::string AnthropicStatusBody(int status, std::uint64_t seq) {
  // Types from §3.3's table; [U] the messages (only 404's is documented).
  switch (status) {
    case 400:
      return AnthropicError("invalid_request_error", "Invalid request (fake status=400).", seq);
    case 401:
      return AnthropicError("authentication_error", "invalid x-api-key", seq);
    case 403:
      return AnthropicError("permission_error",
                            "Your API key does not have permission to use the specified resource.",
                            seq);
    case 404:
      return AnthropicError("not_found_error", "The requested resource could not be found.", seq);
    case 413:
      return AnthropicError("request_too_large",
                            "Request exceeds the maximum allowed number of bytes.", seq);
    case 429:
      return AnthropicError("rate_limit_error",
                            "Number of request tokens has exceeded your per-minute rate limit.",
                            seq);
    case 500:
      return AnthropicError("api_error", "Internal server error", seq);
    case 529:
      return AnthropicError("overloaded_error", "Overloaded", seq);
    default:
      break;
  }
  // §3.3: invalid_request_error also covers the 4XX codes it does not list.
  return status >= 500
             ? AnthropicError("api_error", "Internal server error", seq)
             : AnthropicError("invalid_request_error",
                              "Fake upstream error (status " + std::to_string(status) + ").", seq);
}

std::optional<ErrorReply> AnthropicCheck(const json::value& body, bool has_version,
                                         std::uint64_t seq, std::string& model) {
  if (!has_version) {
    // [U] §3.1 only shows the header being sent (the SDK always sends 2023-06-01); that the
    // API rejects a request without it, and this wording, come from the live API.
    return Invalid("anthropic-version: header is required", seq);
  }
  const json::object* obj = body.if_object();
  // [U] wordings below follow the live API's "<field>: <problem>" style.
  if (obj == nullptr) return Invalid("There was an error parsing the body of your request.", seq);
  const json::value* m = obj->if_contains("model");
  if (m == nullptr || !m->is_string() || m->get_string().empty()) {
    return Invalid("model: Field required", seq);
  }
  model = std::string(m->get_string());
  const json::value* mt = obj->if_contains("max_tokens");
  if (mt == nullptr) return Invalid("max_tokens: Field required", seq);  // §3.1: required
  if (!mt->is_int64() || mt->as_int64() < 1) {
    return Invalid("max_tokens: Input should be a valid integer greater than 0", seq);
  }
  const json::value* messages = obj->if_contains("messages");
  if (messages == nullptr || !messages->is_array()) return Invalid("messages: Field required", seq);
  if (messages->get_array().empty()) {
    return Invalid("messages: at least one message is required", seq);
  }
  std::size_t i = 0;
  for (const json::value& msg : messages->get_array()) {
    const json::value* role = msg.is_object() ? msg.get_object().if_contains("role") : nullptr;
    if (role != nullptr && role->is_string() && role->get_string() == "system") {
      // §3.1: there is no system role; the system prompt is a top-level field.
      return Invalid(
          R"(messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, not "system" as an input message role.)",
          seq);
    }
    if (role == nullptr || !role->is_string() ||
        (role->get_string() != "user" && role->get_string() != "assistant")) {
      return Invalid(
          "messages." + std::to_string(i) + ".role: Input should be 'user' or 'assistant'", seq);
    }
    ++i;
  }
  // [C] Extended thinking with tool use: the last assistant turn must begin with the
  // thinking block the model produced (with its signature), which a translation through
  // another vendor's format loses.
  const json::value* thinking = obj->if_contains("thinking");
  const bool thinking_on = thinking != nullptr && thinking->is_object() &&
                           thinking->get_object().if_contains("type") != nullptr &&
                           thinking->get_object().at("type") == "enabled";
  const json::array& turns = messages->get_array();
  for (std::size_t j = turns.size(); thinking_on && j-- > 0;) {
    const json::object& turn = turns[j].get_object();
    if (turn.at("role") != "assistant") continue;
    const json::value* content = turn.if_contains("content");
    if (content == nullptr || !content->is_array() || content->get_array().empty()) break;
    const json::array& blocks = content->get_array();
    bool tool_use = false;
    for (const json::value& b : blocks) {
      tool_use = tool_use || (b.is_object() && b.get_object().if_contains("type") != nullptr &&
                              b.get_object().at("type") == "tool_use");
    }
    const json::value* first =
        blocks[0].is_object() ? blocks[0].get_object().if_contains("type") : nullptr;
    const bool thought =
        first != nullptr && (*first == "thinking" || *first == "redacted_thinking");
    if (tool_use && !thought) {
      return Invalid("messages." + std::to_string(j) +
                         ".content.0.type: Expected `thinking` or `redacted_thinking`, but found "
                         "`" +
                         (first != nullptr && first->is_string() ? std::string(first->get_string())
                                                                 : std::string("text")) +
                         "`. When `thinking` is enabled, a final `assistant` message must start "
                         "with a thinking block.",
                     seq);
    }
    break;
  }
  return std::nullopt;
}

std::vector<std::string> AnthropicToolNames(const json::object& body) {
  std::vector<std::string> names;
  const json::value* tools = body.if_contains("tools");
  if (tools == nullptr || !tools->is_array()) return names;
  for (const json::value& t : tools->get_array()) {
    const json::value* name = t.is_object() ? t.get_object().if_contains("name") : nullptr;
    if (name != nullptr && name->is_string()) names.emplace_back(name->get_string());
  }
  return names;
}

// usage, with inference_geo when the scenario says where the request ran.
json::object Usage(const ChatPlan& plan, std::int64_t input, std::int64_t output) {
  json::object u{{"input_tokens", input}, {"output_tokens", output}};
  if (plan.sc.inference_geo) u["inference_geo"] = *plan.sc.inference_geo;
  return u;
}

std::string AnthropicBody(const ChatPlan& plan) {
  // [C] The SDK's Message type (§3.1).
  json::array content;
  if (plan.sc.reasoning > 0) {
    content.push_back(json::object{{"type", "thinking"},
                                   {"thinking", FakeOpenAiServer::ReasoningText(plan.sc.reasoning)},
                                   {"signature", Signature(plan.seq)}});
  }
  if (!plan.tool_names.empty()) {
    for (std::size_t i = 0; i < plan.tool_names.size(); ++i) {
      content.push_back(json::object{
          {"type", "tool_use"},
          {"id", "toolu_fake" + std::to_string(i)},
          {"name", plan.tool_names[i]},
          {"input", json::parse(FakeOpenAiServer::ToolArguments(static_cast<int>(i)))}});
    }
  } else {
    std::string text;
    for (const std::string& piece : plan.pieces) text += piece;
    content.push_back(json::object{{"type", "text"}, {"text", text}});
  }
  return json::serialize(
      json::object{{"id", plan.id},
                   {"type", "message"},
                   {"role", "assistant"},
                   {"model", plan.model},
                   {"content", std::move(content)},
                   {"stop_reason", StopReason(plan.finish)},
                   {"stop_sequence", nullptr},
                   {"usage", Usage(plan, plan.prompt_tokens, plan.completion_tokens)}});
}

StreamScript AnthropicStream(const ChatPlan& plan) {
  const Scenario& sc = plan.sc;
  StreamScript s;
  s.content_type = "text/event-stream; charset=utf-8";  // [U]
  auto add = [&](std::string_view name, const json::value& data, EventKind kind) {
    s.events.push_back({NamedEvent(sc, name, Spaced(data)), kind});
  };
  add("message_start",
      json::object{{"type", "message_start"},
                   {"message", json::object{{"id", plan.id},
                                            {"type", "message"},
                                            {"role", "assistant"},
                                            {"content", json::array()},
                                            {"model", plan.model},
                                            {"stop_reason", nullptr},
                                            {"stop_sequence", nullptr},
                                            {"usage", Usage(plan, plan.prompt_tokens, 1)}}}},
      EventKind::kOther);
  int index = 0;
  bool pinged = false;
  auto start = [&](json::object block) {
    add("content_block_start",
        json::object{
            {"type", "content_block_start"}, {"index", index}, {"content_block", std::move(block)}},
        EventKind::kOther);
    if (!pinged) {  // §3.2: the ping follows the first content_block_start
      add("ping", json::object{{"type", "ping"}}, EventKind::kOther);
      pinged = true;
    }
  };
  auto delta = [&](json::object d, EventKind kind) {
    add("content_block_delta",
        json::object{{"type", "content_block_delta"}, {"index", index}, {"delta", std::move(d)}},
        kind);
  };
  auto stop = [&] {
    add("content_block_stop", json::object{{"type", "content_block_stop"}, {"index", index}},
        EventKind::kOther);
    ++index;
  };
  if (sc.reasoning > 0) {
    start(json::object{{"type", "thinking"}, {"thinking", ""}, {"signature", ""}});
    for (int i = 0; i < sc.reasoning; ++i) {
      delta(json::object{{"type", "thinking_delta"},
                         {"thinking", (i == 0 ? "think" : " think") + std::to_string(i)}},
            EventKind::kDelta);
    }
    delta(json::object{{"type", "signature_delta"}, {"signature", Signature(plan.seq)}},
          EventKind::kOther);
    stop();
  }
  if (!plan.tool_names.empty()) {
    for (std::size_t i = 0; i < plan.tool_names.size(); ++i) {
      start(json::object{{"type", "tool_use"},
                         {"id", "toolu_fake" + std::to_string(i)},
                         {"name", plan.tool_names[i]},
                         {"input", json::object()}});
      for (const std::string& frag :
           ToolFragments(FakeOpenAiServer::ToolArguments(static_cast<int>(i)))) {
        delta(json::object{{"type", "input_json_delta"}, {"partial_json", frag}},
              EventKind::kDelta);
      }
      stop();
    }
  } else {
    start(json::object{{"type", "text"}, {"text", ""}});
    for (const std::string& piece : plan.pieces) {
      delta(json::object{{"type", "text_delta"}, {"text", piece}}, EventKind::kDelta);
    }
    stop();
  }
  // Verbatim layout of §3.2, including its unspaced `"stop_sequence":null`; output_tokens is
  // cumulative.
  s.events.push_back(
      {NamedEvent(sc, "message_delta",
                  R"({"type": "message_delta", "delta": {"stop_reason": )" +
                      json::serialize(json::value(StopReason(plan.finish))) +
                      R"(, "stop_sequence":null}, "usage": {"output_tokens": )" +
                      std::to_string(plan.completion_tokens) +
                      (sc.inference_geo ? R"(, "inference_geo": ")" + *sc.inference_geo + "\""
                                        : std::string()) +
                      "}}"),
       EventKind::kFinish});
  add("message_stop", json::object{{"type", "message_stop"}}, EventKind::kOther);

  s.error_frame = NamedEvent(
      sc, "error",
      R"({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})");
  s.garbage_frame = NamedEvent(
      sc, "content_block_delta",
      R"({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "tok)");
  return s;
}

}  // namespace meridian::fakes::wire
