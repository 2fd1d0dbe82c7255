// DashScope native text-generation wire format for the fake upstream (wire-protocols.md §2.2-2.5).
#include <boost/json.hpp>
#include <cstdio>
#include <string>
#include <utility>

#include "tests/fakes/fake_openai_server.h"
#include "tests/fakes/fake_vendor_wire.h"

namespace meridian::fakes::wire {
namespace {

namespace json = boost::json;

constexpr std::string_view kInvalidParameter =
    "Required parameter(s) missing or invalid, please check the request parameters.";
constexpr std::string_view kInternalError =
    "An internal error has occured, please try again later or contact service support.";  // (sic)

ErrorReply Bad(std::string_view message, std::uint64_t seq) {
  return {400, DashScopeError("InvalidParameter", message, seq), {}};
}

json::object Usage(const ChatPlan& plan, int output_tokens, int reasoning_tokens) {
  json::object u{{"total_tokens", plan.prompt_tokens + output_tokens},
                 {"output_tokens", output_tokens},
                 {"input_tokens", plan.prompt_tokens},
                 {"prompt_tokens_details", json::object{{"cached_tokens", 0}}}};
  if (plan.sc.reasoning > 0) {
    u["output_tokens_details"] = json::object{{"reasoning_tokens", reasoning_tokens}};
  }
  return u;
}

/// `{"output":...,"usage":...,"request_id":...}`, the order every documented frame uses.
std::string Envelope(const ChatPlan& plan, json::object output, int output_tokens,
                     int reasoning_tokens) {
  return json::serialize(json::object{{"output", std::move(output)},
                                      {"usage", Usage(plan, output_tokens, reasoning_tokens)},
                                      {"request_id", DashScopeRequestId(plan.seq)}});
}

/// result_format "message" wraps the message in choices; "text" has a flat output.
/// The multimodal API's content: an array of {"text"} items ([] for an empty increment).
void AsItems(const ChatPlan& plan, json::object& message) {
  if (!plan.ds_multimodal) return;
  json::value* content = message.if_contains("content");
  if (content == nullptr || !content->is_string()) return;
  json::array items;
  if (!content->get_string().empty())
    items.push_back(json::object{{"text", content->get_string()}});
  *content = std::move(items);
}

json::object Output(const ChatPlan& plan, json::object message, const std::string& text,
                    std::string_view finish) {
  if (!plan.ds_message_format) return json::object{{"finish_reason", finish}, {"text", text}};
  AsItems(plan, message);
  return json::object{{"choices", json::array{json::object{{"message", std::move(message)},
                                                           {"finish_reason", finish}}}}};
}

/// One `id:N / event:result / :HTTP_STATUS/200 / data:{...}` event (no space after colons).
std::string ResultEvent(const Scenario& sc, int id, std::string_view payload) {
  return SseEvent(sc, {"id:" + std::to_string(id), "event:result", ":HTTP_STATUS/200",
                       DataLine(sc, payload, /*space=*/false)});
}

}  // namespace

std::string DashScopeRequestId(std::uint64_t seq) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "fa4e0000-0000-4000-8000-%012llx",
                static_cast<unsigned long long>(seq));
  return buf;
}

HeaderList DashScopeHeaders(std::uint64_t seq) {
  return {{"x-request-id", DashScopeRequestId(seq)}};
}

std::string DashScopeError(std::string_view code, std::string_view message, std::uint64_t seq) {
  return json::serialize(
      json::object{{"code", code}, {"message", message}, {"request_id", DashScopeRequestId(seq)}});
}

std::string DashScopeStatusBody(int status, bool quota, std::uint64_t seq) {
  switch (status) {
    case 400:
      return DashScopeError("InvalidParameter", kInvalidParameter, seq);
    case 401:
      return DashScopeInvalidKeyBody(seq);
    case 403:
      return DashScopeError("AccessDenied", "Access denied.", seq);
    case 408:
      return DashScopeError("RequestTimeOut", "Request timed out, please try again later.", seq);
    case 413:
      // [U] §2.5 lists the code without a message.
      return DashScopeError("BadRequest.TooLarge", "Request entity too large.", seq);
    case 429:
      if (quota) {
        return DashScopeError("Throttling.AllocationQuota",
                              "Allocated quota exceeded, please increase your quota limit.", seq);
      }
      return DashScopeError("Throttling", "Requests throttling triggered.", seq);
    case 500:
      return DashScopeError("InternalError", kInternalError, seq);
    default:
      break;
  }
  return status >= 500 ? DashScopeError("InternalError", kInternalError, seq)
                       : DashScopeError("InvalidParameter", kInvalidParameter, seq);
}

std::string DashScopeDataInspectionBody(std::uint64_t seq) {
  // [U] §2.5 gives "Input or output data may contain inappropriate content." for both
  // directions; the live service names the side it blocked.
  return DashScopeError("DataInspectionFailed", "Input data may contain inappropriate content.",
                        seq);
}

std::string DashScopeInvalidKeyBody(std::uint64_t seq) {
  return DashScopeError("InvalidApiKey", "Invalid API-key provided.", seq);
}

ErrorReply DashScopeSseError(const Scenario& sc, ErrorReply error) {
  ErrorReply out;
  out.status = 200;
  out.headers = std::move(error.headers);
  out.headers.emplace_back("x-dashscope-finished", "true");
  out.body = SseEvent(sc, {"id:1", "event:error", ":HTTP_STATUS/" + std::to_string(error.status),
                           DataLine(sc, error.body, /*space=*/false)});
  return out;
}

std::optional<ErrorReply> DashScopeCheck(const json::value& body, bool stream, std::uint64_t seq,
                                         std::string& model, const json::object*& params,
                                         ChatPlan& flags) {
  params = nullptr;
  const json::object* obj = body.if_object();
  if (obj == nullptr) return Bad(kInvalidParameter, seq);
  const json::value* m = obj->if_contains("model");
  // [U] The wording of the missing-model error is not in the reference.
  if (m == nullptr || !m->is_string() || m->get_string().empty()) {
    return Bad("Model not exist.", seq);
  }
  model = std::string(m->get_string());
  // Messages live inside `input`; a top-level `messages` is simply not seen (§2.2).
  const json::value* input = obj->if_contains("input");
  const json::object* in = input != nullptr ? input->if_object() : nullptr;
  const json::value* messages = in != nullptr ? in->if_contains("messages") : nullptr;
  const json::value* prompt = in != nullptr ? in->if_contains("prompt") : nullptr;
  const bool has_messages =
      messages != nullptr && messages->is_array() && !messages->get_array().empty();
  const bool has_prompt = prompt != nullptr && prompt->is_string();
  if (!has_messages && !has_prompt) {
    return Bad(R"(Either "prompt" or "messages" must exist and cannot both be none)", seq);
  }
  if (has_messages) {
    for (const json::value& msg : messages->get_array()) {
      const json::value* content =
          msg.is_object() ? msg.get_object().if_contains("content") : nullptr;
      if (content == nullptr) continue;
      if (!flags.ds_multimodal) {
        // [U] wording; text models take string content only.
        if (!content->is_string()) return Bad("Input should be a valid string: content", seq);
        continue;
      }
      if (!content->is_array()) return Bad("Input should be a valid list: content", seq);
      for (const json::value& item : content->get_array()) {
        const json::object* o = item.if_object();
        const bool ok = o != nullptr && o->size() == 1 &&
                        ((o->contains("text") && o->at("text").is_string()) ||
                         (o->contains("image") && o->at("image").is_string()));
        if (!ok) return Bad("Each content item must be {\"text\": ...} or {\"image\": ...}", seq);
      }
    }
  }
  if (const json::value* p = obj->if_contains("parameters"); p != nullptr) {
    params = p->if_object();
    if (params == nullptr) return Bad(kInvalidParameter, seq);
  }
  flags.ds_message_format = false;  // default result_format is "text"
  flags.ds_incremental = false;     // default is cumulative output
  flags.ds_thinking = false;
  if (params != nullptr) {
    if (const json::value* rf = params->if_contains("result_format"); rf != nullptr) {
      if (!rf->is_string() || (rf->get_string() != "message" && rf->get_string() != "text")) {
        return Bad(kInvalidParameter, seq);
      }
      flags.ds_message_format = rf->get_string() == "message";
    }
    if (const json::value* io = params->if_contains("incremental_output");
        io != nullptr && io->is_bool()) {
      flags.ds_incremental = io->as_bool();
    }
    if (const json::value* et = params->if_contains("enable_thinking");
        et != nullptr && et->is_bool()) {
      flags.ds_thinking = et->as_bool();
    }
  }
  if (flags.ds_thinking && stream && !flags.ds_incremental) {
    // §2.2: thinking mode "only supports incremental output". [U] wording.
    return Bad(R"(The incremental_output parameter must be "true" when enable_thinking is true.)",
               seq);
  }
  return std::nullopt;
}

std::string DashScopeBody(const ChatPlan& plan) {
  std::string content;
  for (const std::string& piece : plan.pieces) content += piece;
  json::object message{{"role", "assistant"}, {"content", content}};
  if (plan.sc.reasoning > 0) {
    message["reasoning_content"] = FakeOpenAiServer::ReasoningText(plan.sc.reasoning);
  }
  if (!plan.tool_names.empty()) {
    json::array calls;
    for (std::size_t i = 0; i < plan.tool_names.size(); ++i) {
      calls.push_back(json::object{
          {"id", "call_fake" + std::to_string(i)},
          {"type", "function"},
          {"function",
           json::object{{"name", plan.tool_names[i]},
                        {"arguments", FakeOpenAiServer::ToolArguments(static_cast<int>(i))}}}});
    }
    message["tool_calls"] = std::move(calls);
  }
  AsItems(plan, message);
  // §2.3: finish_reason comes before message in the non-streaming choice.
  json::object output =
      plan.ds_message_format
          ? json::object{{"choices", json::array{json::object{{"finish_reason", plan.finish},
                                                              {"message", std::move(message)}}}}}
          : json::object{{"finish_reason", plan.finish}, {"text", content}};
  return Envelope(plan, std::move(output), plan.completion_tokens, plan.sc.reasoning);
}

StreamScript DashScopeStream(const ChatPlan& plan) {
  const Scenario& sc = plan.sc;
  StreamScript s;
  s.content_type = "text/event-stream;charset=UTF-8";
  const bool incremental = plan.ds_incremental;
  const bool thinking = sc.reasoning > 0;
  int id = 1;
  int out = 0;
  int reasoned = 0;
  std::string content_so_far;
  std::string reasoning_so_far;
  // Field order as in §2.4: content, reasoning_content, role.
  auto message = [&](const std::string& content, const std::string& reasoning) {
    json::object m{{"content", content}};
    if (thinking) m["reasoning_content"] = reasoning;
    return m;
  };
  auto add = [&](json::object msg, std::string_view finish, EventKind kind) {
    msg["role"] = "assistant";
    const std::string text(msg.at("content").as_string());
    s.events.push_back(
        {ResultEvent(sc, id++,
                     Envelope(plan, Output(plan, std::move(msg), text, finish), out, reasoned)),
         kind});
  };
  for (int i = 0; i < sc.reasoning; ++i) {
    const std::string piece = (i == 0 ? "think" : " think") + std::to_string(i);
    reasoning_so_far += piece;
    ++out;
    ++reasoned;
    add(message("", incremental ? piece : reasoning_so_far), "null", EventKind::kDelta);
  }
  for (const std::string& piece : plan.pieces) {
    content_so_far += piece;
    ++out;
    add(message(incremental ? piece : content_so_far, incremental ? "" : reasoning_so_far), "null",
        EventKind::kDelta);
  }
  for (std::size_t i = 0; i < plan.tool_names.size(); ++i) {
    const std::vector<std::string> frags =
        ToolFragments(FakeOpenAiServer::ToolArguments(static_cast<int>(i)));
    for (std::size_t j = 0; j < frags.size(); ++j) {
      // [C] The first fragment names the call, later ones carry arguments only (OpenAI style).
      json::object call{{"index", i}};
      json::object fn;
      if (j == 0) {
        call["id"] = "call_fake" + std::to_string(i);
        call["type"] = "function";
        fn["name"] = plan.tool_names[i];
      }
      fn["arguments"] = frags[j];
      call["function"] = std::move(fn);
      json::object msg = message("", "");
      msg["tool_calls"] = json::array{std::move(call)};
      ++out;
      add(std::move(msg), "null", EventKind::kDelta);
    }
  }
  // The last frame: empty increment (or, cumulative, the whole text) and the real finish_reason.
  add(message(incremental ? "" : content_so_far, incremental ? "" : reasoning_so_far), plan.finish,
      EventKind::kFinish);

  // §2.5: an error inside the 200 stream. Its real status only shows in the comment line.
  const int error_id = sc.error_after + 1;
  const std::string error_body =
      sc.data_inspection
          ? DashScopeError("DataInspectionFailed", "Output data may contain inappropriate content.",
                           plan.seq)
          : DashScopeError("InternalError", kInternalError, plan.seq);
  s.error_frame = SseEvent(sc, {"id:" + std::to_string(error_id), "event:error",
                                sc.data_inspection ? ":HTTP_STATUS/400" : ":HTTP_STATUS/500",
                                DataLine(sc, error_body, false)});
  s.garbage_frame =
      ResultEvent(sc, sc.garbage_after + 1,
                  plan.ds_message_format ? R"({"output":{"choices":[{"message":{"content":"tok)"
                                         : R"({"output":{"finish_reason":"null","text":"tok)");
  return s;
}

}  // namespace meridian::fakes::wire
