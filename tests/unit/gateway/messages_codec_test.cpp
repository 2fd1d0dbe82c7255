// The Anthropic Messages API codec, as pure functions: request blocks onto the core request,
// and provider chunks back into the `message` object and Anthropic's event stream.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/http/messages_request.h"
#include "gateway/http/messages_response.h"
#include "tests/unit/passthrough_members.h"

namespace meridian::http {
namespace {

namespace json = boost::json;
using core::Chunk;
using core::Status;
using core::StatusCode;
using ::testing::ElementsAre;

core::CompletionRequest MustDecode(std::string_view body) {
  core::CompletionRequest r;
  const Status s = DecodeMessagesRequest(body, r);
  EXPECT_TRUE(s.ok()) << s.message << " (param " << s.param << ")";
  return r;
}

TEST(DecodeMessagesRequest, BlocksBecomeTheChatConversation) {
  const auto r = MustDecode(R"({"model":"claude","max_tokens":256,"stream":true,
      "system":[{"type":"text","text":"Be brief."},{"type":"text","text":"Use tools."}],
      "temperature":0.2,"top_k":40,"stop_sequences":["END"],"metadata":{"user_id":"u-9"},
      "thinking":{"type":"enabled","budget_tokens":1024},
      "tools":[{"name":"weather","description":"Look it up","input_schema":{"type":"object"}}],
      "tool_choice":{"type":"tool","name":"weather","disable_parallel_tool_use":true},
      "messages":[
        {"role":"user","content":[{"type":"text","text":"Weather?"},
          {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBO"}}]},
        {"role":"assistant","content":[{"type":"thinking","thinking":"hmm","signature":"s"},
          {"type":"text","text":"Checking."},
          {"type":"tool_use","id":"toolu_1","name":"weather","input":{"city":"Paris"}}]},
        {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"18C"},
          {"type":"text","text":"And tomorrow?"}]}]})");
  EXPECT_EQ(r.model, "claude");
  EXPECT_EQ(r.max_tokens, 256);
  EXPECT_TRUE(r.stream);
  EXPECT_EQ(r.temperature, 0.2);
  EXPECT_THAT(r.stop, ElementsAre("END"));
  EXPECT_EQ(r.user, "u-9");
  EXPECT_EQ(r.enable_thinking, true);
  EXPECT_EQ(json::parse(r.tools_json), json::parse(R"([{"type":"function","function":
      {"name":"weather","parameters":{"type":"object"},"description":"Look it up"}}])"));
  EXPECT_EQ(json::parse(r.tool_choice_json),
            json::parse(R"({"type":"function","function":{"name":"weather"}})"));
  EXPECT_EQ(meridian::testing::MembersJson(r), R"("top_k":40,"parallel_tool_calls":false)");
  const auto& m = r.messages;
  ASSERT_EQ(m.size(), 5u);
  EXPECT_EQ(m[0].role, "system");
  EXPECT_EQ(m[0].text, "Be brief.\nUse tools.");
  EXPECT_EQ(m[1].role, "user");
  EXPECT_EQ(m[1].text, "Weather?");
  EXPECT_EQ(json::parse(m[1].content_parts_json), json::parse(R"([{"type":"text","text":"Weather?"},
      {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBO"}}])"));
  EXPECT_EQ(m[2].role, "assistant");
  EXPECT_EQ(m[2].text, "Checking.");
  EXPECT_EQ(json::parse(m[2].tool_calls_json), json::parse(R"([{"id":"toolu_1","type":"function",
      "function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}}])"));
  EXPECT_EQ(m[3].role, "tool");
  EXPECT_EQ(m[3].tool_call_id, "toolu_1");
  EXPECT_EQ(m[3].text, "18C");
  EXPECT_EQ(m[4].role, "user");
  EXPECT_EQ(m[4].text, "And tomorrow?");
}

TEST(DecodeMessagesRequest, RefusesWhatAnthropicWouldAndWhatTheGatewayCannotHonour) {
  struct Case {
    const char* body;
    const char* param;
    const char* reason;
  };
  for (
      const Case& c : std::vector<Case>{
          {R"({"model":"m","messages":[{"role":"user","content":"x"}]})", "max_tokens",
           "missing_required_parameter"},
          {R"({"max_tokens":1,"messages":[{"role":"user","content":"x"}]})", "model",
           "missing_required_parameter"},
          {R"({"model":"m","max_tokens":1,"messages":[]})", "messages", "empty_array"},
          {R"({"model":"m","max_tokens":1,"messages":[{"role":"system","content":"x"}]})",
           "messages[0].role", "invalid_value"},
          {R"({"model":"m","max_tokens":1,"temperature":1.5,"messages":[{"role":"user","content":"x"}]})",
           "temperature", "invalid_value"},
          {R"({"model":"m","max_tokens":1,"inference_geo":"us","messages":[{"role":"user","content":"x"}]})",
           "inference_geo", "unsupported_parameter"},
          {R"({"model":"m","max_tokens":1,"tools":[{"type":"web_search_20250305","name":"w"}],"messages":[{"role":"user","content":"x"}]})",
           "tools[0].type", "unsupported_parameter"},
          {R"({"model":"m","max_tokens":1,"n":2,"messages":[{"role":"user","content":"x"}]})", "n",
           "unknown_parameter"},
          {R"({"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"document"}]}]})",
           "messages[0].content[0].type", "invalid_value"},
          {R"({"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]})",
           "messages[0].content[0].source.type", "unsupported_parameter"},
      }) {
    SCOPED_TRACE(c.body);
    core::CompletionRequest r;
    const Status s = DecodeMessagesRequest(c.body, r);
    EXPECT_EQ(s.code, StatusCode::kInvalidArgument);
    EXPECT_EQ(s.param, c.param);
    EXPECT_EQ(s.reason, c.reason) << s.message;
    EXPECT_TRUE(r.messages.empty());
  }
}

MessageHead Head() {
  return MessageHead{"msg_00000000000000ab", "claude"};
}

Chunk Text(std::string s) {
  Chunk c;
  c.content = std::move(s);
  return c;
}

TEST(MessagesStream, AnthropicsEventsByteForByte) {
  MessagesStreamEncoder enc(Head());
  std::string out;
  Chunk think;
  think.reasoning = "hm";
  Chunk call;
  call.tool_calls_json =
      R"([{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\""}}])";
  Chunk more;
  more.tool_calls_json = R"([{"index":0,"function":{"arguments":":1}"}}])";
  Chunk finish;
  finish.kind = Chunk::Kind::kFinish;
  finish.finish_reason = "tool_calls";
  Chunk usage;
  usage.kind = Chunk::Kind::kUsage;
  usage.usage.prompt_tokens = 9;
  usage.usage.completion_tokens = 4;
  for (const Chunk& c : {think, Text("Hi"), call, more, finish, usage}) enc.Encode(c, out);
  enc.Done(out);
  EXPECT_EQ(out,
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":"
            "\"msg_00000000000000ab\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],"
            "\"model\":\"claude\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{"
            "\"input_tokens\":0,\"output_tokens\":0}}}\n\n"
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
            "\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n"
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
            "\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hm\"}}\n\n"
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,"
            "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,"
            "\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n"
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,"
            "\"content_block\":{\"type\":\"tool_use\",\"id\":\"call_1\",\"name\":\"f\","
            "\"input\":{}}}\n\n"
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,"
            "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\"\"}}\n\n"
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,"
            "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\":1}\"}}\n\n"
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n"
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
            "\"tool_use\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":9,"
            "\"output_tokens\":4}}\n\n"
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
  std::string more_out;
  enc.Error(Status::Error(StatusCode::kInternal, "x"), more_out);
  EXPECT_EQ(more_out, "");
}

TEST(MessagesStream, AFailureIsOneErrorEvent) {
  MessagesStreamEncoder enc(Head());
  std::string out;
  enc.Encode(Text("partial"), out);
  out.clear();
  enc.Error(
      Status::Error(StatusCode::kUnavailable, "every provider is down", "no_healthy_candidate"),
      out);
  EXPECT_EQ(out,
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
            "\"message\":\"every provider is down\",\"code\":\"no_healthy_candidate\"}}\n\n");
  EXPECT_TRUE(enc.finished());
}

// An Anthropic upstream's own events (the request went as the client's body) are forwarded as
// they came: only message_start's id and model become the gateway's; nothing is re-encoded,
// and nothing is added at the end.
TEST(MessagesStream, AnAnthropicUpstreamsOwnEventsPassThrough) {
  MessagesStreamEncoder enc(Head());
  std::string out;
  Chunk start;
  start.kind = Chunk::Kind::kStart;
  start.native =
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_up\","
      "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],"
      "\"usage\":{\"input_tokens\":3,\"cache_read_input_tokens\":7,\"output_tokens\":1}}}\n\n";
  Chunk think;
  think.reasoning = "hm";  // decoded for the gateway's own accounting, not re-encoded
  think.native =
      "event: ping\ndata: {\"type\":\"ping\"}\n\n"
      "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
      "\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
      "\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hm\"}}\n\n";
  Chunk finish;
  finish.kind = Chunk::Kind::kFinish;
  finish.finish_reason = "stop";
  finish.native =
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
      "\"delta\":{\"type\":\"signature_delta\",\"signature\":\"EqQBsig\"}}\n\n"
      "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
      "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
      "\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\n"
      "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
  Chunk usage;
  usage.kind = Chunk::Kind::kUsage;
  usage.usage.completion_tokens = 2;
  for (const Chunk& c : {start, think, finish, usage}) enc.Encode(c, out);
  enc.Done(out);
  const std::string expected_start =
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":"
      "\"msg_00000000000000ab\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\","
      "\"content\":[],\"usage\":{\"input_tokens\":3,\"cache_read_input_tokens\":7,"
      "\"output_tokens\":1}}}\n\n";
  EXPECT_EQ(out, expected_start + think.native + finish.native);
  EXPECT_TRUE(enc.finished());
  std::string after;
  enc.Error(Status::Error(StatusCode::kInternal, "x"), after);
  EXPECT_EQ(after, "");
}

TEST(MessagesStream, AFailureAfterAnUpstreamsOwnEventsIsOneErrorEvent) {
  MessagesStreamEncoder enc(Head());
  std::string out;
  Chunk text;
  text.content = "Hi";
  text.native =
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"u\","
      "\"model\":\"m\"}}\n\n"
      "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
      "\"content_block\":{\"type\":\"text\",\"text\":\"Hi\"}}\n\n";
  enc.Encode(text, out);
  EXPECT_THAT(out, ::testing::StartsWith(
                       "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{"
                       "\"id\":\"msg_00000000000000ab\",\"model\":\"claude\"}}\n\n"));
  out.clear();
  Chunk plain;  // a later chunk without events adds nothing of its own
  plain.content = "ignored";
  enc.Encode(plain, out);
  EXPECT_EQ(out, "");
  enc.Error(Status::Error(StatusCode::kBadUpstream, "cut", "upstream_truncated_stream"), out);
  enc.Done(out);
  EXPECT_EQ(out,
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\","
            "\"message\":\"cut\",\"code\":\"upstream_truncated_stream\"}}\n\n");
}

TEST(RenderMessage, AnAnthropicUpstreamsOwnMessageWithTheGatewaysIdAndAlias) {
  core::CompletionAggregator agg;
  Chunk start;
  start.kind = Chunk::Kind::kStart;
  start.native = R"({"id":"msg_up","type":"message","role":"assistant","model":"claude-up",
      "content":[{"type":"thinking","thinking":"because","signature":"EqQBsig"},
                 {"type":"text","text":"Sure."}],
      "stop_reason":"end_turn","stop_sequence":null,
      "usage":{"input_tokens":4,"cache_creation_input_tokens":100,"output_tokens":2}})";
  Chunk text;
  text.content = "Sure.";
  for (const Chunk& c : {start, text}) agg.Add(c);
  json::value expected = json::parse(start.native);
  expected.as_object()["id"] = "msg_00000000000000ab";
  expected.as_object()["model"] = "claude";
  EXPECT_EQ(json::parse(RenderMessage(Head(), agg.completion())), expected);
}

TEST(DecodeMessagesRequest, KeepsTheValidatedBodyForAnAnthropicUpstream) {
  constexpr std::string_view kBody = R"({"model":"claude","max_tokens":9,"messages":[
      {"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral"}}]}]})";
  const auto r = MustDecode(kBody);
  EXPECT_EQ(r.native.format, core::NativeBody::Format::kAnthropicMessages);
  EXPECT_EQ(r.native.json, kBody);
  core::CompletionRequest refused;
  EXPECT_FALSE(DecodeMessagesRequest(R"({"model":"claude","max_tokens":9,"messages":[],"x":1})",
                                     refused)
                   .ok());
  EXPECT_EQ(refused.native.format, core::NativeBody::Format::kNone);
}

TEST(RenderMessage, ContentBlocksStopReasonAndUsage) {
  core::CompletionAggregator agg;
  Chunk think;
  think.reasoning = "because";
  Chunk call;
  call.tool_calls_json =
      R"([{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}])";
  Chunk finish;
  finish.kind = Chunk::Kind::kFinish;
  finish.finish_reason = "length";
  for (const Chunk& c : {think, Text("Sure."), call, finish}) agg.Add(c);
  EXPECT_EQ(json::parse(RenderMessage(Head(), agg.completion())), json::parse(R"({
      "id":"msg_00000000000000ab","type":"message","role":"assistant","model":"claude",
      "content":[{"type":"thinking","thinking":"because","signature":""},
                 {"type":"text","text":"Sure."},
                 {"type":"tool_use","id":"call_1","name":"f","input":{"a":1}}],
      "stop_reason":"max_tokens","stop_sequence":null,
      "usage":{"input_tokens":0,"output_tokens":0}})"));
}

TEST(ToAnthropicError, AnthropicsShapeAndTypes) {
  const HttpError e = ToAnthropicError(
      Status::Error(StatusCode::kPermissionDenied, "denied (guard G8)", "denied_by_guard:G8"));
  EXPECT_EQ(e.status, 403u);
  EXPECT_EQ(json::parse(e.body), json::parse(R"j({"type":"error","error":{"type":"permission_error",
      "message":"denied (guard G8)","code":"denied_by_guard:G8"
}
})j"));
  EXPECT_EQ(json::parse(ToAnthropicError(Status::Error(StatusCode::kUnauthenticated, "no")).body)
                .at("error")
                .at("type"),
            "authentication_error");
  EXPECT_EQ(ToAnthropicError(Status::Error(StatusCode::kNotFound, "no model")).status, 404u);
}

}  // namespace
}  // namespace meridian::http
