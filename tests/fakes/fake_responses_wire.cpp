// OpenAI's Responses API wire format for the fake upstream: the `response` object and the
// event stream api.openai.com sends for POST /v1/responses (OpenAI's API reference, "Streaming
// events": every event named in `event:`, its `data` carrying `type` and `sequence_number`).
#include <boost/json.hpp>
#include <string>
#include <utility>

#include "tests/fakes/fake_openai_server.h"
#include "tests/fakes/fake_vendor_wire.h"

namespace meridian::fakes::wire {
namespace {

namespace json = boost::json;

ErrorReply Invalid(std::string message, const char* param, const char* code) {
  return {400,
          json::serialize(json::object{{"error", json::object{{"message", std::move(message)},
                                                              {"type", "invalid_request_error"},
                                                              {"param", param},
                                                              {"code", code}}}}),
          {}};
}

std::string RespId(const ChatPlan& plan) {
  return "resp_fake" + std::to_string(plan.seq);
}

json::object Usage(const ChatPlan& plan) {
  const int reasoning = plan.sc.reasoning;
  return json::object{{"input_tokens", plan.prompt_tokens},
                      {"input_tokens_details", json::object{{"cached_tokens", 0}}},
                      {"output_tokens", plan.completion_tokens},
                      {"output_tokens_details", json::object{{"reasoning_tokens", reasoning}}},
                      {"total_tokens", plan.prompt_tokens + plan.completion_tokens}};
}

std::string Text(const ChatPlan& plan) {
  std::string text;
  for (const std::string& piece : plan.pieces) text += piece;
  return text;
}

// The output items of a finished plan: reasoning, then the message or the function calls.
json::array Output(const ChatPlan& plan) {
  json::array out;
  if (plan.sc.reasoning > 0) {
    out.push_back(json::object{
        {"id", "rs_fake" + std::to_string(plan.seq)},
        {"type", "reasoning"},
        {"summary",
         json::array{json::object{{"type", "summary_text"},
                                  {"text", FakeOpenAiServer::ReasoningText(plan.sc.reasoning)}}}}});
  }
  if (!plan.tool_names.empty()) {
    for (std::size_t i = 0; i < plan.tool_names.size(); ++i) {
      out.push_back(
          json::object{{"id", "fc_fake" + std::to_string(i)},
                       {"type", "function_call"},
                       {"status", "completed"},
                       {"arguments", FakeOpenAiServer::ToolArguments(static_cast<int>(i))},
                       {"call_id", "call_fake" + std::to_string(i)},
                       {"name", plan.tool_names[i]}});
    }
  } else {
    out.push_back(json::object{{"id", "msg_fake" + std::to_string(plan.seq)},
                               {"type", "message"},
                               {"status", "completed"},
                               {"role", "assistant"},
                               {"content", json::array{json::object{{"type", "output_text"},
                                                                    {"annotations", json::array()},
                                                                    {"text", Text(plan)}}}}});
  }
  return out;
}

json::object ResponseObject(const ChatPlan& plan, std::string_view status, bool finished) {
  const bool incomplete = finished && plan.finish == "length";
  json::object r{
      {"id", RespId(plan)},
      {"object", "response"},
      {"created_at", plan.created},
      {"status", incomplete ? std::string_view("incomplete") : status},
      {"error", nullptr},
      {"incomplete_details", incomplete ? json::value(json::object{{"reason", "max_output_tokens"}})
                                        : json::value(nullptr)},
      {"model", plan.model},
      {"output", finished ? json::value(Output(plan)) : json::value(json::array())},
      {"store", false},
      {"usage", finished ? json::value(Usage(plan)) : json::value(nullptr)}};
  return r;
}

}  // namespace

std::optional<ErrorReply> ResponsesCheck(const json::object& body, std::uint64_t seq) {
  (void)seq;
  const json::value* model = body.if_contains("model");
  if (model == nullptr || !model->is_string()) {
    return Invalid("Missing required parameter: 'model'.", "model", "missing_required_parameter");
  }
  const json::value* input = body.if_contains("input");
  if (input == nullptr || !(input->is_string() || input->is_array())) {
    return Invalid("Missing required parameter: 'input'.", "input", "missing_required_parameter");
  }
  return std::nullopt;
}

std::string ResponsesBody(const ChatPlan& plan) {
  return json::serialize(ResponseObject(plan, "completed", true));
}

StreamScript ResponsesStream(const ChatPlan& plan) {
  const Scenario& sc = plan.sc;
  StreamScript s;
  s.content_type = "text/event-stream; charset=utf-8";
  int sequence = 0;
  auto add = [&](std::string_view type, json::object data, EventKind kind) {
    data["type"] = type;
    data["sequence_number"] = sequence++;
    s.events.push_back(
        {SseEvent(sc, {"event: " + std::string(type), DataLine(sc, json::serialize(data))}), kind});
  };
  add("response.created", json::object{{"response", ResponseObject(plan, "in_progress", false)}},
      EventKind::kOther);
  add("response.in_progress",
      json::object{{"response", ResponseObject(plan, "in_progress", false)}}, EventKind::kOther);
  const json::array output = Output(plan);
  int index = 0;
  if (sc.reasoning > 0) {
    const std::string id = "rs_fake" + std::to_string(plan.seq);
    add("response.output_item.added",
        json::object{
            {"output_index", index},
            {"item", json::object{{"id", id}, {"type", "reasoning"}, {"summary", json::array()}}}},
        EventKind::kOther);
    for (int i = 0; i < sc.reasoning; ++i) {
      add("response.reasoning_summary_text.delta",
          json::object{{"item_id", id},
                       {"output_index", index},
                       {"summary_index", 0},
                       {"delta", (i == 0 ? "think" : " think") + std::to_string(i)}},
          EventKind::kDelta);
    }
    add("response.output_item.done", json::object{{"output_index", index}, {"item", output[0]}},
        EventKind::kOther);
    ++index;
  }
  if (!plan.tool_names.empty()) {
    for (std::size_t i = 0; i < plan.tool_names.size(); ++i, ++index) {
      json::object item = output[static_cast<std::size_t>(index)].as_object();
      json::object added = item;
      added["arguments"] = "";
      added["status"] = "in_progress";
      add("response.output_item.added", json::object{{"output_index", index}, {"item", added}},
          EventKind::kOther);
      const std::string args = FakeOpenAiServer::ToolArguments(static_cast<int>(i));
      for (const std::string& frag : ToolFragments(args)) {
        add("response.function_call_arguments.delta",
            json::object{{"item_id", item.at("id")}, {"output_index", index}, {"delta", frag}},
            EventKind::kDelta);
      }
      add("response.function_call_arguments.done",
          json::object{{"item_id", item.at("id")}, {"output_index", index}, {"arguments", args}},
          EventKind::kOther);
      add("response.output_item.done", json::object{{"output_index", index}, {"item", item}},
          EventKind::kOther);
    }
  } else {
    const std::string id = "msg_fake" + std::to_string(plan.seq);
    const json::object part{{"type", "output_text"}, {"annotations", json::array()}, {"text", ""}};
    add("response.output_item.added",
        json::object{{"output_index", index},
                     {"item", json::object{{"id", id},
                                           {"type", "message"},
                                           {"status", "in_progress"},
                                           {"role", "assistant"},
                                           {"content", json::array()}}}},
        EventKind::kOther);
    add("response.content_part.added",
        json::object{
            {"item_id", id}, {"output_index", index}, {"content_index", 0}, {"part", part}},
        EventKind::kOther);
    for (const std::string& piece : plan.pieces) {
      add("response.output_text.delta",
          json::object{{"item_id", id},
                       {"output_index", index},
                       {"content_index", 0},
                       {"delta", piece},
                       {"logprobs", json::array()}},
          EventKind::kDelta);
    }
    add("response.output_text.done",
        json::object{
            {"item_id", id}, {"output_index", index}, {"content_index", 0}, {"text", Text(plan)}},
        EventKind::kOther);
    add("response.output_item.done",
        json::object{{"output_index", index}, {"item", output[static_cast<std::size_t>(index)]}},
        EventKind::kOther);
  }
  const bool incomplete = plan.finish == "length";
  add(incomplete ? "response.incomplete" : "response.completed",
      json::object{{"response", ResponseObject(plan, "completed", true)}}, EventKind::kFinish);

  json::object failed = ResponseObject(plan, "failed", false);
  failed["error"] = json::object{{"code", "server_error"},
                                 {"message", "The server had an error processing your request."}};
  s.error_frame =
      SseEvent(sc, {"event: response.failed",
                    DataLine(sc, json::serialize(json::object{{"type", "response.failed"},
                                                              {"sequence_number", sequence},
                                                              {"response", std::move(failed)}}))});
  s.garbage_frame =
      SseEvent(sc, {"event: response.output_text.delta",
                    DataLine(sc, R"({"type":"response.output_text.delta","delta":"tok)")});
  return s;
}

}  // namespace meridian::fakes::wire
