// The OpenAI Responses API codec, as pure functions: request items onto the core request, and
// provider chunks back into the `response` object and its event stream, in OpenAI's order.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/http/responses_request.h"
#include "gateway/http/responses_response.h"
#include "tests/unit/passthrough_members.h"

namespace meridian::http {
namespace {

namespace json = boost::json;
using core::Chunk;
using core::Status;
using core::StatusCode;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

ResponsesRequest MustDecode(std::string_view body) {
  ResponsesRequest r;
  const Status s = DecodeResponsesRequest(body, r);
  EXPECT_TRUE(s.ok()) << s.message << " (param " << s.param << ")";
  return r;
}

Status DecodeError(std::string_view body) {
  ResponsesRequest r;
  const Status s = DecodeResponsesRequest(body, r);
  EXPECT_TRUE(r.completion.messages.empty()) << "no half request is handed back";
  return s;
}

// ---- requests ------------------------------------------------------------------------------

TEST(DecodeResponsesRequest, AStringInputIsOneUserMessageAndInstructionsLeadAsSystem) {
  const auto r = MustDecode(
      R"({"model":"m","input":"Hello","instructions":"Be brief.","max_output_tokens":64,
          "temperature":0.5,"top_p":0.9,"user":"u-1","stream":true,"store":true,
          "metadata":{"k":"v"},"include":["reasoning.encrypted_content"],"truncation":"auto"})");
  const core::CompletionRequest& c = r.completion;
  EXPECT_EQ(c.model, "m");
  ASSERT_EQ(c.messages.size(), 2u);
  EXPECT_EQ(c.messages[0].role, "system");
  EXPECT_EQ(c.messages[0].text, "Be brief.");
  EXPECT_EQ(c.messages[1].role, "user");
  EXPECT_EQ(c.messages[1].text, "Hello");
  EXPECT_EQ(c.messages[1].content_parts_json, "");
  EXPECT_EQ(c.max_completion_tokens, 64);
  EXPECT_EQ(c.temperature, 0.5);
  EXPECT_EQ(c.top_p, 0.9);
  EXPECT_EQ(c.user, "u-1");
  EXPECT_TRUE(c.stream);
  EXPECT_TRUE(c.passthrough.empty()) << "metadata is echoed, never sent upstream";
  EXPECT_EQ(r.echo.instructions, "Be brief.");
  EXPECT_EQ(r.echo.metadata_json, R"({"k":"v"})");
  EXPECT_EQ(r.echo.user, "u-1");
}

TEST(DecodeResponsesRequest, ItemsBecomeTheChatConversation) {
  const auto r = MustDecode(R"({"model":"m","input":[
      {"role":"developer","content":"Use tools."},
      {"type":"message","role":"user","content":[{"type":"input_text","text":"What is"},
        {"type":"input_text","text":"the weather?"}]},
      {"type":"reasoning","id":"rs_1","summary":[]},
      {"type":"message","role":"assistant","content":[{"type":"output_text","text":"Checking."}]},
      {"type":"function_call","call_id":"call_a","name":"weather","arguments":"{\"city\":\"Paris\"}"},
      {"type":"function_call","call_id":"call_b","name":"time","arguments":"{}"},
      {"type":"function_call_output","call_id":"call_a","output":"18C"},
      {"type":"function_call_output","call_id":"call_b","output":[{"type":"input_text","text":"noon"}]},
      {"type":"function_call","call_id":"call_c","name":"weather","arguments":"{}"}]})");
  const auto& m = r.completion.messages;
  ASSERT_EQ(m.size(), 6u);
  EXPECT_EQ(m[0].role, "developer");
  EXPECT_EQ(m[0].text, "Use tools.");
  EXPECT_EQ(m[1].role, "user");
  EXPECT_EQ(m[1].text, "What is\nthe weather?");
  EXPECT_EQ(m[1].content_parts_json, "") << "text-only parts stay plain text";
  // The assistant's text and the two calls after it are one turn.
  EXPECT_EQ(m[2].role, "assistant");
  EXPECT_EQ(m[2].text, "Checking.");
  EXPECT_EQ(json::parse(m[2].tool_calls_json), json::parse(R"([
      {"id":"call_a","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}},
      {"id":"call_b","type":"function","function":{"name":"time","arguments":"{}"}}])"));
  EXPECT_EQ(m[3].role, "tool");
  EXPECT_EQ(m[3].tool_call_id, "call_a");
  EXPECT_EQ(m[3].text, "18C");
  EXPECT_EQ(m[4].tool_call_id, "call_b");
  EXPECT_EQ(m[4].text, "noon");
  // A call after tool output opens an assistant turn of its own, with no content.
  EXPECT_EQ(m[5].role, "assistant");
  EXPECT_TRUE(m[5].content_null);
  EXPECT_THAT(m[5].tool_calls_json, HasSubstr("call_c"));
}

TEST(DecodeResponsesRequest, ImagesAndFilesBecomeChatPartsBesideTheText) {
  const auto r = MustDecode(R"({"model":"m","input":[{"role":"user","content":[
      {"type":"input_text","text":"What is this?"},
      {"type":"input_image","image_url":"https://img.example/a.png","detail":"low"},
      {"type":"input_file","file_data":"data:application/pdf;base64,JVBE","filename":"a.pdf"}]}]})");
  const core::Message& m = r.completion.messages.at(0);
  EXPECT_EQ(m.text, "What is this?");
  EXPECT_EQ(json::parse(m.content_parts_json), json::parse(R"([
      {"type":"text","text":"What is this?"},
      {"type":"image_url","image_url":{"url":"https://img.example/a.png","detail":"low"}},
      {"type":"file","file":{"file_data":"data:application/pdf;base64,JVBE","filename":"a.pdf"}}])"));
}

TEST(DecodeResponsesRequest, FunctionToolsChoiceFormatAndReasoningInChatTerms) {
  const auto r = MustDecode(R"({"model":"m","input":"x",
      "tools":[{"type":"function","name":"weather","description":"Look it up",
                "parameters":{"type":"object"},"strict":true}],
      "tool_choice":{"type":"function","name":"weather"},
      "text":{"format":{"type":"json_schema","name":"w","schema":{"type":"object"},"strict":true},
              "verbosity":"low"},
      "reasoning":{"effort":"low","summary":"auto"},"parallel_tool_calls":false,
      "safety_identifier":"h","prompt_cache_key":"k","service_tier":"auto"})");
  const core::CompletionRequest& c = r.completion;
  EXPECT_EQ(json::parse(c.tools_json), json::parse(R"([{"type":"function","function":{
      "name":"weather","description":"Look it up","parameters":{"type":"object"},"strict":true}}])"));
  EXPECT_EQ(json::parse(c.tool_choice_json),
            json::parse(R"({"type":"function","function":{"name":"weather"}})"));
  EXPECT_EQ(json::parse("{" + meridian::testing::MembersJson(c) + "}"), json::parse(R"({
      "response_format":{"type":"json_schema","json_schema":{"name":"w","schema":{"type":"object"},"strict":true}},
      "verbosity":"low","reasoning_effort":"low","parallel_tool_calls":false,
      "safety_identifier":"h","prompt_cache_key":"k","service_tier":"auto"})"));
  // The response echoes the request's own shapes.
  EXPECT_EQ(json::parse(r.echo.tool_choice_json),
            json::parse(R"({"type":"function","name":"weather"})"));
  EXPECT_THAT(r.echo.tools_json, HasSubstr(R"("name":"weather")"));
  EXPECT_FALSE(r.echo.parallel_tool_calls);
  EXPECT_THAT(r.echo.reasoning_json, HasSubstr(R"("summary":"auto")"));

  const auto j =
      MustDecode(R"({"model":"m","input":"x","text":{"format":{"type":"json_object"}}})");
  EXPECT_EQ(meridian::testing::MembersJson(j.completion),
            R"("response_format":{"type":"json_object"})");
  const auto t = MustDecode(
      R"({"model":"m","input":"x","text":{"format":{"type":"text"}},"tool_choice":"required"})");
  EXPECT_TRUE(t.completion.passthrough.empty());
  EXPECT_EQ(t.completion.tool_choice_json, R"("required")");
}

struct Refusal {
  const char* name;
  const char* body;
  const char* param;
  const char* reason;
};

class ResponsesRefusal : public ::testing::TestWithParam<Refusal> {};

TEST_P(ResponsesRefusal, NamesTheFieldAsOpenAiDoes) {
  const Refusal& c = GetParam();
  const Status s = DecodeError(c.body);
  EXPECT_EQ(s.code, StatusCode::kInvalidArgument);
  EXPECT_EQ(s.param, c.param);
  EXPECT_EQ(s.reason, c.reason) << s.message;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ResponsesRefusal,
    ::testing::Values(
        Refusal{"no_model", R"({"input":"x"})", "model", "missing_required_parameter"},
        Refusal{"no_input", R"({"model":"m"})", "input", "missing_required_parameter"},
        Refusal{"empty_input", R"({"model":"m","input":[]})", "input", "empty_array"},
        Refusal{"only_reasoning", R"({"model":"m","input":[{"type":"reasoning","summary":[]}]})",
                "input", "empty_array"},
        Refusal{"input_number", R"({"model":"m","input":7})", "input", "invalid_type"},
        Refusal{"previous_response", R"({"model":"m","input":"x","previous_response_id":"r"})",
                "previous_response_id", "unsupported_parameter"},
        Refusal{"conversation", R"({"model":"m","input":"x","conversation":"c"})", "conversation",
                "unsupported_parameter"},
        Refusal{"background", R"({"model":"m","input":"x","background":true})", "background",
                "unsupported_parameter"},
        Refusal{"unknown", R"({"model":"m","input":"x","messages":[]})", "messages",
                "unknown_parameter"},
        Refusal{"hosted_tool", R"({"model":"m","input":"x","tools":[{"type":"web_search"}]})",
                "tools[0].type", "unsupported_parameter"},
        Refusal{"tool_without_name", R"({"model":"m","input":"x","tools":[{"type":"function"}]})",
                "tools[0].name", "missing_required_parameter"},
        Refusal{
            "file_id_image",
            R"({"model":"m","input":[{"role":"user","content":[{"type":"input_image","file_id":"f"}]}]})",
            "input[0].content[0].file_id", "unsupported_parameter"},
        Refusal{"item_reference", R"({"model":"m","input":[{"type":"item_reference","id":"i"}]})",
                "input[0]", "unsupported_parameter"},
        Refusal{"bad_role", R"({"model":"m","input":[{"role":"tool","content":"x"}]})",
                "input[0].role", "invalid_value"},
        Refusal{"bad_part",
                R"({"model":"m","input":[{"role":"user","content":[{"type":"text","text":"x"}]}]})",
                "input[0].content[0].type", "invalid_value"},
        Refusal{"call_without_id",
                R"({"model":"m","input":[{"type":"function_call","name":"f","arguments":"{}"}]})",
                "input[0].call_id", "missing_required_parameter"},
        Refusal{"bad_item", R"({"model":"m","input":[{"type":"web_search_call"}]})",
                "input[0].type", "invalid_value"},
        Refusal{"schema_without_name",
                R"({"model":"m","input":"x","text":{"format":{"type":"json_schema","schema":{}}}})",
                "text.format.name", "missing_required_parameter"},
        Refusal{"max_output_tokens", R"({"model":"m","input":"x","max_output_tokens":0})",
                "max_output_tokens", "invalid_value"},
        Refusal{"malformed", R"({"model":"m",)", "", "invalid_json"}),
    [](const ::testing::TestParamInfo<Refusal>& p) { return std::string(p.param.name); });

// ---- responses -----------------------------------------------------------------------------

ResponseHead Head() {
  ResponseHead h;
  h.id = "resp_00000000000000ab";
  h.item_base = "00000000000000ab";
  h.created_at = 1741569952;
  h.model = "qwen";
  return h;
}

Chunk Text(std::string s) {
  Chunk c;
  c.content = std::move(s);
  return c;
}

Chunk Finish(std::string reason) {
  Chunk c;
  c.kind = Chunk::Kind::kFinish;
  c.finish_reason = std::move(reason);
  return c;
}

Chunk UsageChunk(std::int64_t in, std::int64_t out) {
  Chunk c;
  c.kind = Chunk::Kind::kUsage;
  c.usage.prompt_tokens = in;
  c.usage.completion_tokens = out;
  c.usage.total_tokens = in + out;
  return c;
}

// The events of a stream: (event name, data object), checking framing and numbering.
std::vector<std::pair<std::string, json::object>> Events(std::string_view s) {
  std::vector<std::pair<std::string, json::object>> out;
  std::int64_t seq = 0;
  while (!s.empty()) {
    EXPECT_TRUE(s.starts_with("event: ")) << s;
    const std::size_t nl = s.find('\n');
    const std::string name(s.substr(7, nl - 7));
    s.remove_prefix(nl + 1);
    EXPECT_TRUE(s.starts_with("data: ")) << s;
    const std::size_t end = s.find("\n\n");
    json::object data = json::parse(s.substr(6, end - 6)).as_object();
    EXPECT_EQ(data.at("type").as_string(), name);
    EXPECT_EQ(data.at("sequence_number").as_int64(), seq++);
    out.emplace_back(name, std::move(data));
    s.remove_prefix(end + 2);
  }
  return out;
}

std::vector<std::string> Names(const std::vector<std::pair<std::string, json::object>>& events) {
  std::vector<std::string> out;
  for (const auto& [name, data] : events) out.push_back(name);
  return out;
}

TEST(ResponsesStream, TextInOpenAisEventOrder) {
  ResponsesStreamEncoder enc(Head());
  std::string out;
  enc.Start(out);
  for (const Chunk& c : {Text("Hel"), Text("lo"), Finish("stop"), UsageChunk(3, 2)})
    enc.Encode(c, out);
  enc.Done(out);
  const auto events = Events(out);
  EXPECT_THAT(
      Names(events),
      ElementsAre("response.created", "response.in_progress", "response.output_item.added",
                  "response.content_part.added", "response.output_text.delta",
                  "response.output_text.delta", "response.output_text.done",
                  "response.content_part.done", "response.output_item.done", "response.completed"));
  EXPECT_EQ(events[0].second.at("response").at("status"), "in_progress");
  EXPECT_EQ(events[0].second.at("response").at("output"), json::array());
  EXPECT_EQ(json::value(events[2].second), json::parse(R"({"type":"response.output_item.added",
      "output_index":0,"item":{"id":"msg_00000000000000ab_0","type":"message",
      "status":"in_progress","role":"assistant","content":[]},"sequence_number":2})"));
  EXPECT_EQ(json::value(events[4].second), json::parse(R"({"type":"response.output_text.delta",
      "item_id":"msg_00000000000000ab_0","output_index":0,"content_index":0,"delta":"Hel",
      "logprobs":[],"sequence_number":4})"));
  EXPECT_EQ(events[6].second.at("text"), "Hello");
  const json::object& done = events.back().second.at("response").as_object();
  EXPECT_EQ(done.at("id"), "resp_00000000000000ab");
  EXPECT_EQ(done.at("status"), "completed");
  EXPECT_EQ(done.at("store"), false);
  EXPECT_EQ(done.at("model"), "qwen");
  EXPECT_EQ(done.at("output").at(0).at("content").at(0).at("text"), "Hello");
  EXPECT_EQ(done.at("usage"), json::parse(R"({"input_tokens":3,"input_tokens_details":
      {"cached_tokens":0},"output_tokens":2,"output_tokens_details":{"reasoning_tokens":0},
      "total_tokens":5})"));
  EXPECT_TRUE(enc.finished());
  std::string more;
  enc.Encode(Text("late"), more);
  enc.Done(more);
  enc.Error(Status::Error(StatusCode::kInternal, "x", "y"), more);
  EXPECT_EQ(more, "") << "exactly one terminal event";
}

TEST(ResponsesStream, ReasoningThenTextThenToolCallsEachTheirOwnItem) {
  ResponsesStreamEncoder enc(Head());
  std::string out;
  Chunk think;
  think.reasoning = "hmm";
  Chunk call0;
  call0.tool_calls_json =
      R"([{"index":0,"id":"call_x","type":"function","function":{"name":"f","arguments":"{\"a"}}])";
  Chunk call0more;
  call0more.tool_calls_json = R"([{"index":0,"function":{"arguments":"\":1}"}}])";
  Chunk call1;
  call1.tool_calls_json = R"([{"index":1,"function":{"name":"g","arguments":"{}"}}])";
  for (const Chunk& c : {think, Text("ok"), call0, call0more, call1, Finish("tool_calls")}) {
    enc.Encode(c, out);
  }
  enc.Done(out);
  const auto events = Events(out);
  EXPECT_THAT(Names(events),
              ElementsAre("response.created", "response.in_progress",
                          // reasoning, item 0
                          "response.output_item.added", "response.content_part.added",
                          "response.reasoning_text.delta",
                          // text closes it and opens the message, item 1
                          "response.reasoning_text.done", "response.content_part.done",
                          "response.output_item.done", "response.output_item.added",
                          "response.content_part.added", "response.output_text.delta",
                          // the first call closes the message and opens item 2
                          "response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.output_item.added",
                          "response.function_call_arguments.delta",
                          "response.function_call_arguments.delta",
                          // the second call is item 3; both close at the end, in order
                          "response.output_item.added", "response.function_call_arguments.delta",
                          "response.function_call_arguments.done", "response.output_item.done",
                          "response.function_call_arguments.done", "response.output_item.done",
                          "response.completed"));
  EXPECT_EQ(events[3].second.at("part"), json::parse(R"({"type":"reasoning_text","text":""})"));
  EXPECT_EQ(events[14].second.at("item"), json::parse(R"({"id":"fc_00000000000000ab_2",
      "type":"function_call","status":"in_progress","call_id":"call_x","name":"f","arguments":""})"));
  EXPECT_EQ(events[19].second.at("arguments"), R"({"a":1})");
  EXPECT_EQ(events[17].second.at("item").at("call_id"), "call_1") << "no id: call_<index>";
  const json::array& output = events.back().second.at("response").at("output").as_array();
  ASSERT_EQ(output.size(), 4u);
  EXPECT_EQ(output[0].at("type"), "reasoning");
  EXPECT_EQ(output[0].at("content").at(0).at("text"), "hmm");
  EXPECT_EQ(output[1].at("type"), "message");
  EXPECT_EQ(output[2].at("arguments"), R"({"a":1})");
  EXPECT_EQ(output[3].at("name"), "g");
  EXPECT_EQ(output[3].at("status"), "completed");
}

TEST(ResponsesStream, ALengthFinishIsIncompleteAndAFailureIsFailed) {
  {
    ResponsesStreamEncoder enc(Head());
    std::string out;
    for (const Chunk& c : {Text("a"), Finish("length")}) enc.Encode(c, out);
    enc.Done(out);
    const auto events = Events(out);
    EXPECT_EQ(events.back().first, "response.incomplete");
    EXPECT_EQ(events.back().second.at("response").at("incomplete_details"),
              json::parse(R"({"reason":"max_output_tokens"})"));
  }
  {
    ResponsesStreamEncoder enc(Head());
    std::string out;
    enc.Encode(Text("partial"), out);
    enc.Error(Status::Error(StatusCode::kBadUpstream, "the provider broke off", "upstream_error"),
              out);
    const auto events = Events(out);
    EXPECT_EQ(events.back().first, "response.failed");
    const json::object& r = events.back().second.at("response").as_object();
    EXPECT_EQ(r.at("status"), "failed");
    EXPECT_EQ(r.at("error"),
              json::parse(R"({"code":"upstream_error","message":"the provider broke off"})"));
    EXPECT_EQ(r.at("output").at(0).at("status"), "incomplete");
    EXPECT_EQ(r.at("output").at(0).at("content").at(0).at("text"), "partial");
  }
}

TEST(RenderResponse, ItemsInOpenAisOrderAndTheRequestEchoed) {
  ResponseHead head = Head();
  head.echo.instructions = "Be brief.";
  head.echo.max_output_tokens = 100;
  head.echo.temperature = 0.5;
  head.echo.metadata_json = R"({"k":"v"})";
  core::CompletionAggregator agg;
  Chunk think;
  think.reasoning = "because";
  Chunk call;
  call.tool_calls_json =
      R"([{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}])";
  for (const Chunk& c : {think, Text("Sure."), call, Finish("tool_calls"), UsageChunk(5, 7)}) {
    agg.Add(c);
  }
  const json::value v = json::parse(RenderResponse(head, agg.completion()));
  EXPECT_EQ(v, json::parse(R"({"id":"resp_00000000000000ab","object":"response",
      "created_at":1741569952,"status":"completed","background":false,"error":null,
      "incomplete_details":null,"instructions":"Be brief.","max_output_tokens":100,
      "model":"qwen","output":[
        {"id":"rs_00000000000000ab_0","type":"reasoning","summary":[],
         "content":[{"type":"reasoning_text","text":"because"}]},
        {"id":"msg_00000000000000ab_1","type":"message","status":"completed","role":"assistant",
         "content":[{"type":"output_text","text":"Sure.","annotations":[],"logprobs":[]}]},
        {"id":"fc_00000000000000ab_2","type":"function_call","status":"completed",
         "call_id":"call_1","name":"f","arguments":"{}"}],
      "parallel_tool_calls":true,"previous_response_id":null,
      "reasoning":{"effort":null,"summary":null},"store":false,"temperature":0.5,
      "text":{"format":{"type":"text"}},"tool_choice":"auto","tools":[],"top_p":null,
      "truncation":"disabled","usage":{"input_tokens":5,"input_tokens_details":{"cached_tokens":0},
        "output_tokens":7,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":12},
      "user":null,"metadata":{"k":"v"}})"));

  core::CompletionAggregator cut;
  for (const Chunk& c : {Text("a"), Finish("length")}) cut.Add(c);
  const json::value incomplete = json::parse(RenderResponse(head, cut.completion()));
  EXPECT_EQ(incomplete.at("status"), "incomplete");
  EXPECT_EQ(incomplete.at("incomplete_details").at("reason"), "max_output_tokens");
  EXPECT_EQ(incomplete.at("output").at(0).at("status"), "incomplete");
}

// ---- OpenAI's own Responses API upstream (core::NativeBody) ---------------------------------

TEST(DecodeResponsesRequest, KeepsTheValidatedBodyForANativeUpstreamWithoutMetadata) {
  const auto r = MustDecode(R"({"model":"m","input":[{"type":"reasoning","id":"rs_1",
      "encrypted_content":"gAAA","summary":[]},{"role":"user","content":"hi"}],
      "include":["reasoning.encrypted_content"],"metadata":{"k":"v"}})");
  EXPECT_EQ(r.completion.native.format, core::NativeBody::Format::kOpenAiResponses);
  EXPECT_EQ(json::parse(r.completion.native.json), json::parse(R"({"model":"m","input":[
      {"type":"reasoning","id":"rs_1","encrypted_content":"gAAA","summary":[]},
      {"role":"user","content":"hi"}],"include":["reasoning.encrypted_content"]})"))
      << "metadata is the caller's own: echoed, never sent upstream";
  ResponsesRequest refused;
  EXPECT_FALSE(
      DecodeResponsesRequest(R"({"model":"m","input":"x","previous_response_id":"r"})", refused)
          .ok());
  EXPECT_EQ(refused.completion.native.format, core::NativeBody::Format::kNone);
}

// OpenAI's events as a native decoder hands them over: on the chunks decoded from them.
std::string Frame(std::string_view type, std::string_view fields, int seq) {
  return "event: " + std::string(type) + "\ndata: {\"type\":\"" + std::string(type) + "\"," +
         std::string(fields) + (fields.empty() ? "" : ",") +
         "\"sequence_number\":" + std::to_string(seq) + "}\n\n";
}

Chunk Native(Chunk c, std::string frames) {
  c.native = std::move(frames);
  return c;
}

TEST(ResponsesStream, OpenAisOwnEventsAreForwardedWithTheGatewaysIdModelAndMetadata) {
  ResponseHead head = Head();
  head.echo.metadata_json = R"({"k":"v"})";
  ResponsesStreamEncoder enc(head);
  std::string out;
  constexpr std::string_view kUp =
      R"("response":{"id":"resp_up","object":"response","model":"gpt-4.1-2025-04-14",)";
  Chunk start;
  start.kind = Chunk::Kind::kStart;
  const std::string created =
      Frame("response.created", std::string(kUp) + R"("status":"in_progress","output":[]})", 0);
  const std::string rest =
      Frame("response.in_progress", std::string(kUp) + R"("status":"in_progress"})", 1) +
      Frame("response.output_item.added",
            R"("output_index":0,"item":{"id":"msg_up","type":"message","content":[]})", 2) +
      Frame("response.output_text.delta", R"("item_id":"msg_up","output_index":0,"delta":"Hi")", 3);
  const std::string completed =
      Frame("response.completed", std::string(kUp) + R"("status":"completed","usage":{}})", 4);
  enc.Encode(Native(start, created), out);
  enc.Encode(Native(Text("Hi"), rest), out);
  enc.Encode(Native(Finish("stop"), completed), out);
  enc.Encode(UsageChunk(1, 1), out);
  EXPECT_TRUE(enc.finished());
  enc.Done(out);
  const auto events = Events(out);
  EXPECT_THAT(Names(events),
              ElementsAre("response.created", "response.in_progress", "response.output_item.added",
                          "response.output_text.delta", "response.completed"));
  for (const std::size_t i : {0u, 1u, 4u}) {
    const json::object& r = events[i].second.at("response").as_object();
    EXPECT_EQ(r.at("id"), "resp_00000000000000ab");
    EXPECT_EQ(r.at("model"), "qwen");
    EXPECT_EQ(r.at("metadata"), json::parse(R"({"k":"v"})"));
  }
  EXPECT_EQ(events[1].second.at("response").at("status"), "in_progress");
  EXPECT_EQ(events[4].second.at("response").at("status"), "completed");
  // The other events go byte for byte.
  EXPECT_NE(out.find(rest.substr(rest.find("event: response.output_item.added"))),
            std::string::npos);
}

TEST(ResponsesStream, AFailureAfterOpenAisEventsContinuesTheirNumbering) {
  ResponsesStreamEncoder enc(Head());
  std::string out;
  Chunk start;
  start.kind = Chunk::Kind::kStart;
  enc.Encode(
      Native(start, Frame("response.created",
                          R"("response":{"id":"u","model":"m","status":"in_progress"})", 0) +
                        Frame("response.in_progress", R"("response":{"id":"u","model":"m"})", 1)),
      out);
  enc.Encode(Native(Text("par"), Frame("response.output_text.delta", R"("delta":"par")", 2)), out);
  Chunk error;
  error.kind = Chunk::Kind::kError;
  error.error =
      Status::Error(StatusCode::kBadUpstream, "connection lost", "upstream_connection_failed");
  enc.Encode(error, out);
  EXPECT_TRUE(enc.finished());
  const auto events = Events(out);  // checks sequence numbers 0, 1, 2, 3
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[3].first, "response.failed");
  EXPECT_EQ(events[3].second.at("response").at("error").at("code"), "upstream_connection_failed");
  std::string more;
  enc.Done(more);
  EXPECT_EQ(more, "");
}

TEST(RenderResponse, OpenAisOwnResponseObjectWithTheGatewaysIdModelAndMetadata) {
  ResponseHead head = Head();
  head.echo.metadata_json = R"({"k":"v"})";
  core::Completion answer;
  answer.native = R"({"id":"resp_up","object":"response","model":"o4-mini","status":"completed",
      "output":[{"type":"reasoning","id":"rs_up","encrypted_content":"gAAA","summary":[]}],
      "store":false})";
  EXPECT_EQ(json::parse(RenderResponse(head, answer)),
            json::parse(R"({"id":"resp_00000000000000ab","object":"response","model":"qwen",
      "status":"completed",
      "output":[{"type":"reasoning","id":"rs_up","encrypted_content":"gAAA","summary":[]}],
      "store":false,"metadata":{"k":"v"}})"));
  answer.native = "[not an object";
  EXPECT_EQ(json::parse(RenderResponse(head, answer)).at("object"), "response")
      << "what cannot be read is rendered from the chunks";
}

}  // namespace
}  // namespace meridian::http
