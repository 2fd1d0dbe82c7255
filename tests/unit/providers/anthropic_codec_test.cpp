#include "providers/anthropic/anthropic_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "providers/common/sse_parser.h"
#include "tests/unit/passthrough_members.h"
#include "tests/unit/providers/chunk_lines.h"

namespace meridian::providers::anthropic {
namespace {

namespace json = boost::json;
using core::Chunk;
using core::StatusCode;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

using providers::testing::Describe;
using providers::testing::Lines;

using providers::testing::Decoded;

Decoded DecodeSse(std::string_view sse, bool finish = true,
                  std::size_t split = std::string_view::npos) {
  AnthropicStreamDecoder decoder;
  return providers::testing::DecodeWith(decoder, sse, finish, split);
}

std::string Crlf(std::string_view lf) {
  std::string out;
  for (char ch : lf) {
    if (ch == '\n') out += '\r';
    out += ch;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Fixtures

// §3.2 [V]: the docs' basic streaming example, byte for byte.
constexpr std::string_view kBasicStream =
    "event: message_start\n"
    "data: {\"type\": \"message_start\", \"message\": {\"id\": "
    "\"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY\", \"type\": \"message\", \"role\": "
    "\"assistant\", \"content\": [], \"model\": \"claude-3-5-sonnet-20241022\", "
    "\"stop_reason\": null, \"stop_sequence\": null, \"usage\": {\"input_tokens\": 25, "
    "\"output_tokens\": 1}}}\n"
    "\n"
    "event: content_block_start\n"
    "data: {\"type\": \"content_block_start\", \"index\": 0, \"content_block\": {\"type\": "
    "\"text\", \"text\": \"\"}}\n"
    "\n"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n"
    "\n"
    "event: content_block_delta\n"
    "data: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": "
    "\"text_delta\", \"text\": \"Hello\"}}\n"
    "\n"
    "event: content_block_delta\n"
    "data: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": "
    "\"text_delta\", \"text\": \"!\"}}\n"
    "\n"
    "event: content_block_stop\n"
    "data: {\"type\": \"content_block_stop\", \"index\": 0}\n"
    "\n"
    "event: message_delta\n"
    "data: {\"type\": \"message_delta\", \"delta\": {\"stop_reason\": \"end_turn\", "
    "\"stop_sequence\":null}, \"usage\": {\"output_tokens\": 15}}\n"
    "\n"
    "event: message_stop\n"
    "data: {\"type\": \"message_stop\"}\n"
    "\n";

const std::vector<std::string> kBasicExpected = {
    "start msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY claude-3-5-sonnet-20241022 0",
    "delta content=Hello",
    "delta content=!",
    "finish stop",
    "usage 25/15/40 reasoning=- cached=-",
};

// [C] A text block, a ping, then a tool_use block streamed with input_json_delta (event and
// field shapes per §3.2 / SDK RawContentBlockDelta; the docs' tool-use streaming example).
constexpr std::string_view kToolStream =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_014p7gG3wDgGV9EUtLvnow3U\","
    "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-opus-4-6\","
    "\"stop_sequence\":null,\"usage\":{\"input_tokens\":472,\"output_tokens\":2},\"content\":"
    "[],\"stop_reason\":null}}\n"
    "\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
    "\"text\":\"\"}}\n"
    "\n"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n"
    "\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"Okay, let me check.\"}}\n"
    "\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n"
    "\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":"
    "\"tool_use\",\"id\":\"toolu_01T1x1fJ34qAmk2tNTrN7Up6\",\"name\":\"get_weather\","
    "\"input\":{}}}\n"
    "\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":"
    "\"input_json_delta\",\"partial_json\":\"\"}}\n"
    "\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":"
    "\"input_json_delta\",\"partial_json\":\"{\\\"location\\\":\"}}\n"
    "\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":"
    "\"input_json_delta\",\"partial_json\":\" \\\"San Francisco, CA\\\"}\"}}\n"
    "\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":1}\n"
    "\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":"
    "\"tool_use\",\"id\":\"toolu_02\",\"name\":\"get_time\",\"input\":{}}}\n"
    "\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":"
    "\"input_json_delta\",\"partial_json\":\"{}\"}}\n"
    "\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":2}\n"
    "\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\","
    "\"stop_sequence\":null},\"usage\":{\"output_tokens\":89}}\n"
    "\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n"
    "\n";

const std::vector<std::string> kToolExpected = {
    "start msg_014p7gG3wDgGV9EUtLvnow3U claude-opus-4-6 0",
    "delta content=Okay, let me check.",
    R"(delta tool_calls=[{"index":0,"id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","type":"function","function":{"name":"get_weather","arguments":""}}])",
    R"(delta tool_calls=[{"index":0,"function":{"arguments":"{\"location\":"}}])",
    R"(delta tool_calls=[{"index":0,"function":{"arguments":" \"San Francisco, CA\"}"}}])",
    R"(delta tool_calls=[{"index":1,"id":"toolu_02","type":"function","function":{"name":"get_time","arguments":""}}])",
    R"(delta tool_calls=[{"index":1,"function":{"arguments":"{}"}}])",
    "finish tool_calls",
    "usage 472/89/561 reasoning=- cached=-",
};

// [C] Extended thinking (the docs' thinking streaming example shape): a thinking block with
// a signature_delta, then a text block; prompt caching counters in message_start.
constexpr std::string_view kThinkingStream =
    "event: message_start\n"
    "data: {\"type\": \"message_start\", \"message\": {\"id\": \"msg_01think\", \"type\": "
    "\"message\", \"role\": \"assistant\", \"content\": [], \"model\": \"claude-sonnet-4-5\", "
    "\"stop_reason\": null, \"stop_sequence\": null, \"usage\": {\"input_tokens\": 12, "
    "\"cache_creation_input_tokens\": 3, \"cache_read_input_tokens\": 100, \"output_tokens\": "
    "1}}}\n"
    "\n"
    "event: content_block_start\n"
    "data: {\"type\": \"content_block_start\", \"index\": 0, \"content_block\": {\"type\": "
    "\"thinking\", \"thinking\": \"\"}}\n"
    "\n"
    "event: content_block_delta\n"
    "data: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": "
    "\"thinking_delta\", \"thinking\": \"1071 = 2 × 462 + 147\"}}\n"
    "\n"
    "event: content_block_delta\n"
    "data: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": "
    "\"signature_delta\", \"signature\": \"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"
    "...\"}}\n"
    "\n"
    "event: content_block_stop\n"
    "data: {\"type\": \"content_block_stop\", \"index\": 0}\n"
    "\n"
    "event: content_block_start\n"
    "data: {\"type\": \"content_block_start\", \"index\": 1, \"content_block\": {\"type\": "
    "\"text\", \"text\": \"\"}}\n"
    "\n"
    "event: content_block_delta\n"
    "data: {\"type\": \"content_block_delta\", \"index\": 1, \"delta\": {\"type\": "
    "\"text_delta\", \"text\": \"The GCD is **21**.\"}}\n"
    "\n"
    "event: content_block_stop\n"
    "data: {\"type\": \"content_block_stop\", \"index\": 1}\n"
    "\n"
    "event: message_delta\n"
    "data: {\"type\": \"message_delta\", \"delta\": {\"stop_reason\": \"max_tokens\", "
    "\"stop_sequence\": null}, \"usage\": {\"output_tokens\": 7}}\n"
    "\n"
    "event: message_delta\n"
    "data: {\"type\": \"message_delta\", \"delta\": {}, \"usage\": {\"output_tokens\": 30}}\n"
    "\n"
    "event: message_stop\n"
    "data: {\"type\": \"message_stop\"}\n"
    "\n";

const std::vector<std::string> kThinkingExpected = {
    "start msg_01think claude-sonnet-4-5 0",   "delta reasoning=1071 = 2 × 462 + 147",
    "delta content=The GCD is **21**.",        "finish length",
    "usage 115/30/145 reasoning=- cached=100",
};

// §3.2: the error event [U: message text], after some content of a 200 stream.
constexpr std::string_view kErrorEvent =
    "event: error\n"
    "data: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": "
    "\"Overloaded\"}}\n"
    "\n";

std::string MidStreamError() {
  const std::string_view basic = kBasicStream;
  return std::string(basic.substr(0, basic.find("event: content_block_delta\ndata: {\"type\": "
                                                "\"content_block_delta\", \"index\": 0, "
                                                "\"delta\": {\"type\": \"text_delta\", "
                                                "\"text\": \"!\"}}"))) +
         std::string(kErrorEvent);
}

// ---------------------------------------------------------------------------------------
// Request bodies

core::Message Msg(std::string role, std::string text) {
  core::Message m;
  m.role = std::move(role);
  m.text = std::move(text);
  return m;
}

json::value Body(const core::CompletionRequest& req, bool stream = false,
                 std::int64_t default_max = 2048) {
  return json::parse(BuildMessagesRequestBody(req, "claude-opus-4-6", stream, default_max));
}

TEST(AnthropicRequest, ReferenceExampleBody) {
  // §3.1 [V] minus inference_geo (the gateway does not set it).
  core::CompletionRequest req;
  req.max_tokens = 1024;
  req.messages = {Msg("user", "Summarize the key points of this document.")};
  EXPECT_EQ(Body(req), json::parse(R"({
    "model": "claude-opus-4-6",
    "max_tokens": 1024,
    "messages": [{"role": "user", "content": "Summarize the key points of this document."}]
  })"));
}

TEST(AnthropicRequest, PathVersionAndDefaults) {
  EXPECT_EQ(kMessagesPath, "/v1/messages");
  EXPECT_EQ(kDefaultVersion, "2023-06-01");
  EXPECT_EQ(kDefaultMaxTokens, 4096);
}

TEST(AnthropicRequest, ImagesBecomeImageBlocksInPartOrder) {
  core::CompletionRequest req;
  core::Message m = Msg("user", "what is this? and this");
  m.content_parts_json =
      R"([{"type":"text","text":"what is this?"},)"
      R"({"type":"image_url","image_url":{"url":"https://img.example/a.png","detail":"low"}},)"
      R"({"type":"text","text":" and this"},)"
      R"({"type":"image_url","image_url":{"url":"data:image/webp;base64,UklGRg=="}}])";
  req.messages = {m};
  ASSERT_TRUE(CheckContentParts(req, "anth").ok());
  EXPECT_EQ(Body(req).at("messages"), json::parse(R"([{"role":"user","content":[
      {"type":"text","text":"what is this?"},
      {"type":"image","source":{"type":"url","url":"https://img.example/a.png"}},
      {"type":"text","text":" and this"},
      {"type":"image","source":{"type":"base64","media_type":"image/webp","data":"UklGRg=="}}]}])"));
  // Parts with only text keep the extracted text as one string, as before.
  m.content_parts_json = R"([{"type":"text","text":"a"},{"type":"text","text":"b"}])";
  m.text = "ab";
  req.messages = {m};
  EXPECT_EQ(Body(req).at("messages"), json::parse(R"([{"role":"user","content":"ab"}])"));
}

TEST(AnthropicRequest, PartsItCannotSendAreRefusedNamingThem) {
  for (const auto& [parts, param, what] :
       std::vector<std::tuple<const char*, const char*, const char*>>{
           {R"([{"type":"text","text":"x"},{"type":"input_audio","input_audio":{"data":"AA=="}}])",
            "messages[0].content[1].type", "input_audio"},
           {R"([{"type":"image_url","image_url":{"url":"data:image/bmp;base64,Qk0="}}])",
            "messages[0].content[0].image_url.url", "image/bmp"},
           {R"([{"type":"image_url","image_url":{"url":"ftp://img.example/a.png"}}])",
            "messages[0].content[0].image_url.url", "http(s)"},
           {R"([{"type":"file","file":{"file_data":"data:application/pdf;base64,JVBE"}}])",
            "messages[0].content[0].type", "'file'"},
       }) {
    SCOPED_TRACE(parts);
    core::CompletionRequest req;
    core::Message m = Msg("user", "x");
    m.content_parts_json = parts;
    req.messages = {m};
    const core::Status s = CheckContentParts(req, "anth");
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code, StatusCode::kInvalidArgument);
    EXPECT_EQ(s.reason, "unsupported_content_part");
    EXPECT_EQ(s.param, param);
    EXPECT_THAT(s.message, HasSubstr(what));
  }
}

TEST(AnthropicRequest, SystemAndDeveloperAreLifted) {
  core::CompletionRequest req;
  req.messages = {Msg("system", "You are terse."), Msg("user", "hi"), Msg("developer", ""),
                  Msg("developer", "Answer in French.")};
  const json::value body = Body(req);
  EXPECT_EQ(body.at("system"), "You are terse.\n\nAnswer in French.");
  EXPECT_EQ(body.at("messages"), json::parse(R"([{"role":"user","content":"hi"}])"));

  req.messages = {Msg("system", ""), Msg("user", "hi")};
  EXPECT_FALSE(Body(req).as_object().contains("system"));
}

TEST(AnthropicRequest, MaxTokensSources) {
  struct Case {
    std::optional<std::int64_t> max_tokens;
    std::optional<std::int64_t> max_completion_tokens;
    std::int64_t default_max;
    std::int64_t expected;
  };
  const Case cases[] = {
      {std::nullopt, std::nullopt, 2048, 2048},  // config default
      {std::nullopt, std::nullopt, 0, kDefaultMaxTokens},
      {std::nullopt, std::nullopt, -5, kDefaultMaxTokens},
      {300, std::nullopt, 2048, 300},
      {300, 200, 2048, 200},  // max_completion_tokens preferred
  };
  for (const auto& c : cases) {
    core::CompletionRequest req;
    req.messages = {Msg("user", "x")};
    req.max_tokens = c.max_tokens;
    req.max_completion_tokens = c.max_completion_tokens;
    EXPECT_EQ(Body(req, false, c.default_max).at("max_tokens"), c.expected);
  }
}

TEST(AnthropicRequest, SamplingStopSequencesAndStream) {
  core::CompletionRequest req;
  req.messages = {Msg("user", "x")};
  req.max_tokens = 64;
  req.temperature = 0.5;
  req.top_p = 0.25;
  req.stop = {"END", "\n\nHuman:"};
  req.user = "u1";
  req.passthrough = meridian::testing::Members(R"("seed":7,"n":1)");
  req.enable_thinking = false;
  EXPECT_EQ(Body(req, true), json::parse(R"({
    "model":"claude-opus-4-6","max_tokens":64,"messages":[{"role":"user","content":"x"}],
    "temperature":0.5,"top_p":0.25,"stop_sequences":["END","\n\nHuman:"],"stream":true})"));
  const json::value plain = Body(req, false);
  EXPECT_FALSE(plain.as_object().contains("stream"));
  EXPECT_FALSE(plain.as_object().contains("stop"));
}

TEST(AnthropicRequest, ToolConversationAndAlternation) {
  core::CompletionRequest req;
  req.max_tokens = 100;
  core::Message call = Msg("assistant", "Let me look.");
  call.tool_calls_json =
      R"([{"id":"toolu_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},)"
      R"({"id":"toolu_2","type":"function","function":{"name":"now","arguments":""}}])";
  core::Message r1 = Msg("tool", "18C");
  r1.tool_call_id = "toolu_1";
  core::Message r2 = Msg("tool", "");
  r2.tool_call_id = "toolu_2";
  core::Message bare_call;
  bare_call.role = "assistant";
  bare_call.content_null = true;
  bare_call.tool_calls_json =
      R"([{"id":"toolu_3","type":"function","function":{"name":"f","arguments":"not json"}}])";
  core::Message r3 = Msg("tool", "done");
  r3.tool_call_id = "toolu_3";
  core::Message named = Msg("user", "second");
  named.name = "bob";
  req.messages = {Msg("system", "S"),
                  Msg("user", "first"),
                  named,  // consecutive user turns are merged
                  call,
                  r1,
                  r2,
                  Msg("user", "and tomorrow?"),  // shares the tool_result turn
                  bare_call,
                  r3,
                  Msg("assistant", "ok"),
                  Msg("assistant", "")};
  EXPECT_EQ(Body(req).at("messages"), json::parse(R"([
    {"role":"user","content":[{"type":"text","text":"first"},{"type":"text","text":"second"}]},
    {"role":"assistant","content":[
      {"type":"text","text":"Let me look."},
      {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}},
      {"type":"tool_use","id":"toolu_2","name":"now","input":{}}]},
    {"role":"user","content":[
      {"type":"tool_result","tool_use_id":"toolu_1","content":"18C"},
      {"type":"tool_result","tool_use_id":"toolu_2"},
      {"type":"text","text":"and tomorrow?"}]},
    {"role":"assistant","content":[{"type":"tool_use","id":"toolu_3","name":"f","input":{}}]},
    {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_3","content":"done"}]},
    {"role":"assistant","content":"ok"}])"));
}

TEST(AnthropicRequest, EmptyTurnAndUnknownRole) {
  core::CompletionRequest req;
  req.messages = {Msg("user", ""), Msg("assistant", "a"), Msg("function", "f-out")};
  EXPECT_EQ(Body(req).at("messages"), json::parse(R"([
    {"role":"user","content":""},{"role":"assistant","content":"a"},
    {"role":"user","content":"f-out"}])"));
}

TEST(AnthropicRequest, ToolsAndToolChoiceTable) {
  core::CompletionRequest req;
  req.messages = {Msg("user", "x")};
  req.tools_json =
      R"([{"type":"function","function":{"name":"get_weather","description":"Weather now",)"
      R"("parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}},)"
      R"({"type":"function","function":{"name":"noargs"}},)"
      R"({"type":"code_interpreter"}])";
  const json::value expected_tools = json::parse(R"([
    {"name":"get_weather","description":"Weather now","input_schema":{"type":"object",
      "properties":{"city":{"type":"string"}},"required":["city"]}},
    {"name":"noargs","input_schema":{"type":"object"}}])");
  struct Case {
    const char* choice;
    const char* expected;  // nullptr: no tool_choice member
  };
  const Case cases[] = {
      {"", nullptr},
      {R"("auto")", R"({"type":"auto"})"},
      {R"("none")", R"({"type":"none"})"},
      {R"("required")", R"({"type":"any"})"},
      {R"({"type":"function","function":{"name":"get_weather"}})",
       R"({"type":"tool","name":"get_weather"})"},
      {R"("sometimes")", nullptr},
      {R"({"type":"function"})", nullptr},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.choice);
    req.tool_choice_json = c.choice;
    const json::value body = Body(req);
    EXPECT_EQ(body.at("tools"), expected_tools);
    if (c.expected == nullptr) {
      EXPECT_FALSE(body.as_object().contains("tool_choice"));
    } else {
      EXPECT_EQ(body.at("tool_choice"), json::parse(c.expected));
    }
  }
  // No usable tool: neither tools nor tool_choice are sent.
  for (const char* tools : {"", "[]", "not json", R"([{"type":"code_interpreter"}])"}) {
    SCOPED_TRACE(tools);
    req.tools_json = tools;
    req.tool_choice_json = R"("required")";
    const json::value body = Body(req);
    EXPECT_FALSE(body.as_object().contains("tools"));
    EXPECT_FALSE(body.as_object().contains("tool_choice"));
  }
}

TEST(AnthropicRequest, ThinkingBudgetTable) {
  struct Case {
    const char* name;
    std::optional<bool> enable;
    std::optional<std::int64_t> max_tokens;
    const char* tool_choice;
    std::optional<std::int64_t> budget;  // nullopt: no thinking member
  };
  const Case cases[] = {
      {"default cap 2048 → half", true, std::nullopt, "", 1024},
      {"cap 4096 → half", true, 4096, "", 2048},
      {"cap 1500 → minimum 1024", true, 1500, "", 1024},
      {"cap 1025 → minimum 1024", true, 1025, "", 1024},
      {"cap 1024 too small", true, 1024, "", std::nullopt},
      {"cap 100 too small", true, 100, "", std::nullopt},
      {"disabled", false, 4096, "", std::nullopt},
      {"unset", std::nullopt, 4096, "", std::nullopt},
      {"auto tools keep thinking", true, 4096, R"("auto")", 2048},
      {"forced any drops thinking", true, 4096, R"("required")", std::nullopt},
      {"forced tool drops thinking", true, 4096, R"({"type":"function","function":{"name":"f"}})",
       std::nullopt},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    core::CompletionRequest req;
    req.messages = {Msg("user", "x")};
    req.enable_thinking = c.enable;
    req.max_tokens = c.max_tokens;
    req.temperature = 0.7;
    req.top_p = 0.9;
    req.tools_json = R"([{"type":"function","function":{"name":"f"}}])";
    req.tool_choice_json = c.tool_choice;
    const json::object body = Body(req).as_object();
    if (c.budget) {
      EXPECT_EQ(body.at("thinking"), json::parse(R"({"type":"enabled","budget_tokens":)" +
                                                 std::to_string(*c.budget) + "}"));
      EXPECT_LT(*c.budget, body.at("max_tokens").as_int64());
      // Sampling the API rejects together with thinking is left out.
      EXPECT_FALSE(body.contains("temperature"));
      EXPECT_FALSE(body.contains("top_p"));
    } else {
      EXPECT_FALSE(body.contains("thinking"));
      EXPECT_EQ(body.at("temperature"), 0.7);
      EXPECT_EQ(body.at("top_p"), 0.9);
    }
  }
  core::CompletionRequest req;
  req.messages = {Msg("user", "x")};
  req.enable_thinking = true;
  req.top_p = 0.97;
  EXPECT_EQ(Body(req, false, 8000).at("top_p"), 0.97);  // allowed with thinking
  EXPECT_EQ(Body(req, false, 8000).at("thinking").at("budget_tokens"), 4000);
}

// ---------------------------------------------------------------------------------------
// Streaming

TEST(AnthropicStream, ReferenceBasicStream) {
  const Decoded d = DecodeSse(kBasicStream);
  EXPECT_EQ(d.lines, kBasicExpected);
  EXPECT_TRUE(d.done);
  EXPECT_TRUE(d.started);
  EXPECT_TRUE(d.last_status.ok());
}

TEST(AnthropicStream, ToolUseWithInputJsonDelta) {
  const Decoded d = DecodeSse(kToolStream);
  EXPECT_EQ(d.lines, kToolExpected);
  EXPECT_TRUE(d.last_status.ok());
  // Every tool_calls_json is an OpenAI delta array, and the argument fragments of each call
  // concatenate to the block's input JSON.
  SseParser parser;
  std::vector<SseEvent> events;
  ASSERT_TRUE(parser.Feed(kToolStream, events));
  AnthropicStreamDecoder decoder;
  std::vector<Chunk> chunks;
  for (const auto& e : events) ASSERT_TRUE(decoder.Decode(e, chunks).ok());
  std::string args[2];
  for (const Chunk& c : chunks) {
    if (c.tool_calls_json.empty()) continue;
    const json::value v = json::parse(c.tool_calls_json);
    ASSERT_EQ(v.as_array().size(), 1u);
    const json::object& item = v.as_array()[0].as_object();
    const std::int64_t index = item.at("index").as_int64();
    ASSERT_TRUE(index == 0 || index == 1);
    args[index] += json::value_to<std::string>(item.at("function").at("arguments"));
  }
  EXPECT_EQ(json::parse(args[0]), json::parse(R"({"location": "San Francisco, CA"})"));
  EXPECT_EQ(json::parse(args[1]), json::object());
}

TEST(AnthropicStream, ThinkingSignatureAndCachedUsage) {
  const Decoded d = DecodeSse(kThinkingStream);
  EXPECT_EQ(d.lines, kThinkingExpected);
  EXPECT_TRUE(d.last_status.ok());
}

TEST(AnthropicStream, EverySplitPointGivesIdenticalChunks) {
  const std::string mid_error = MidStreamError();
  const Decoded mid_whole = DecodeSse(mid_error);
  struct Fixture {
    std::string_view bytes;
    std::vector<std::string> expected;
  };
  const Fixture fixtures[] = {
      {kBasicStream, kBasicExpected},
      {kToolStream, kToolExpected},
      {kThinkingStream, kThinkingExpected},
      {mid_error, mid_whole.lines},
  };
  for (const auto& f : fixtures) {
    for (std::size_t split = 0; split <= f.bytes.size(); ++split) {
      ASSERT_EQ(DecodeSse(f.bytes, true, split).lines, f.expected) << "split at " << split;
    }
  }
}

TEST(AnthropicStream, FramingVariants) {
  // \r\n line ends, no space after the colon, comments: same chunks (§0).
  EXPECT_EQ(DecodeSse(Crlf(kBasicStream)).lines, kBasicExpected);
  std::string compact;
  std::string_view rest = kBasicStream;
  while (!rest.empty()) {
    const std::size_t nl = rest.find('\n');
    std::string line(rest.substr(0, nl + 1));
    rest.remove_prefix(nl + 1);
    if (line.starts_with("data: ")) line.erase(5, 1);
    if (line.starts_with("event: ")) line.erase(6, 1);
    if (line.starts_with("event:")) compact += ": keep-alive\n";
    compact += line;
  }
  ASSERT_NE(compact, kBasicStream);
  EXPECT_EQ(DecodeSse(compact).lines, kBasicExpected);
}

TEST(AnthropicStream, EventTypeFromDataWhenNoEventLine) {
  std::string no_names;
  std::string_view rest = kBasicStream;
  while (!rest.empty()) {
    const std::size_t nl = rest.find('\n');
    if (!rest.starts_with("event:")) no_names += rest.substr(0, nl + 1);
    rest.remove_prefix(nl + 1);
  }
  EXPECT_EQ(DecodeSse(no_names).lines, kBasicExpected);
}

TEST(AnthropicStream, ErrorEventAsFirstEventIsRetryable) {
  const Decoded d = DecodeSse(kErrorEvent);
  ASSERT_EQ(d.lines.size(), 1u);
  EXPECT_EQ(d.last_status.code, StatusCode::kUnavailable);
  EXPECT_EQ(d.last_status.reason, "upstream_overloaded");
  EXPECT_TRUE(d.last_status.retryable);
  EXPECT_EQ(d.last_status.message, "upstream error (overloaded_error): Overloaded");
  EXPECT_TRUE(d.done);
  EXPECT_FALSE(d.started);
}

TEST(AnthropicStream, ErrorEventMidStreamIsTerminalAndNotRetryable) {
  const Decoded d =
      DecodeSse(MidStreamError() +
                std::string(kBasicStream.substr(kBasicStream.find("event: message_delta"))));
  EXPECT_THAT(d.lines,
              ElementsAre("start msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY "
                          "claude-3-5-sonnet-20241022 0",
                          "delta content=Hello",
                          "error 12 upstream_overloaded: upstream error (overloaded_error): "
                          "Overloaded"));
  EXPECT_EQ(d.last_status.code, StatusCode::kUnavailable);
  EXPECT_FALSE(d.last_status.retryable);
  EXPECT_TRUE(d.done);
}

TEST(AnthropicStream, ErrorEventWithOtherTypesAndEmptyData) {
  const Decoded invalid = DecodeSse(
      "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
      "\"message\":\"prompt is too long\"}}\n\n");
  EXPECT_EQ(invalid.last_status.code, StatusCode::kInvalidArgument);
  EXPECT_FALSE(invalid.last_status.retryable);
  EXPECT_THAT(invalid.last_status.message, HasSubstr("prompt is too long"));
  // An error event whose data is not JSON still fails the stream.
  const Decoded empty = DecodeSse("event: error\ndata:\n\n");
  ASSERT_EQ(empty.lines.size(), 1u);
  EXPECT_EQ(empty.last_status.code, StatusCode::kBadUpstream);
  EXPECT_EQ(empty.last_status.reason, "upstream_error");
  // No event line, data type "error".
  const Decoded typed = DecodeSse(
      "data: {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"x\"}}"
      "\n\n");
  EXPECT_EQ(typed.last_status.code, StatusCode::kRateLimited);
  EXPECT_TRUE(typed.last_status.retryable);
}

TEST(AnthropicStream, TruncatedStream) {
  // Cut before message_stop (after message_delta): deltas then kError, no kFinish.
  const std::string_view cut = kBasicStream.substr(0, kBasicStream.find("event: message_stop"));
  const Decoded after = DecodeSse(cut);
  EXPECT_THAT(after.lines,
              ElementsAre("start msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY "
                          "claude-3-5-sonnet-20241022 0",
                          "delta content=Hello", "delta content=!",
                          "error 11 upstream_truncated_stream: upstream stream ended before "
                          "message_stop"));
  EXPECT_EQ(after.last_status.code, StatusCode::kBadUpstream);
  EXPECT_FALSE(after.last_status.retryable);
  EXPECT_TRUE(after.done);
  // Cut inside the message_stop event (no blank line yet): still truncated.
  const Decoded partial = DecodeSse(kBasicStream.substr(0, kBasicStream.size() - 1));
  EXPECT_EQ(partial.last_status.reason, "upstream_truncated_stream");
  // Without finish the decoder is simply not done yet.
  EXPECT_FALSE(DecodeSse(cut, /*finish=*/false).done);
  // Nothing at all: retryable.
  const Decoded empty = DecodeSse("");
  ASSERT_EQ(empty.lines.size(), 1u);
  EXPECT_EQ(empty.last_status.reason, "upstream_truncated_stream");
  EXPECT_TRUE(empty.last_status.retryable);
  // Finish after a complete stream or twice is a no-op.
  AnthropicStreamDecoder dec;
  std::vector<Chunk> out;
  EXPECT_EQ(dec.Finish(out).code, StatusCode::kBadUpstream);
  EXPECT_TRUE(dec.Finish(out).ok());
  EXPECT_EQ(out.size(), 1u);
}

TEST(AnthropicStream, InvalidJsonIsError) {
  for (std::string_view sse :
       {std::string_view("event: message_start\ndata: {\"type\": \"message_start\",\n\n"),
        std::string_view("event: content_block_delta\ndata: [1,2]\n\n")}) {
    const Decoded d = DecodeSse(sse);
    ASSERT_EQ(d.lines.size(), 1u);
    EXPECT_EQ(d.last_status.code, StatusCode::kBadUpstream);
    EXPECT_EQ(d.last_status.reason, "upstream_invalid_json");
    EXPECT_TRUE(d.done);
  }
  // After content: the error follows the content.
  const std::string bad =
      std::string(kBasicStream.substr(0, kBasicStream.find("event: ping"))) +
      "event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 0,\n\n";
  const Decoded d = DecodeSse(bad);
  ASSERT_EQ(d.lines.size(), 2u);
  EXPECT_EQ(d.last_status.reason, "upstream_invalid_json");
}

TEST(AnthropicStream, UnknownEventsAndDeltasAreIgnored) {
  const std::string_view basic = kBasicStream;
  const std::size_t ping = basic.find("event: ping");
  const std::string sse =
      std::string(basic.substr(0, ping)) +
      "event: future_event\ndata: {\"type\": \"future_event\", \"x\": 1}\n\n"
      "event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 0, "
      "\"delta\": {\"type\": \"citations_delta\", \"citation\": {\"type\": \"char_location\"}}}"
      "\n\n"
      "event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 0, "
      "\"delta\": {\"type\": \"future_delta\", \"text\": \"nope\"}}\n\n"
      "event: content_block_start\ndata: {\"type\": \"content_block_start\", \"index\": 5, "
      "\"content_block\": {\"type\": \"redacted_thinking\", \"data\": \"abc\"}}\n\n"
      "event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 5, "
      "\"delta\": {\"type\": \"input_json_delta\", \"partial_json\": \"{}\"}}\n\n"
      "data: \n\n" +
      std::string(basic.substr(ping)) +
      // Anything after message_stop is ignored.
      "event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 0, "
      "\"delta\": {\"type\": \"text_delta\", \"text\": \"late\"}}\n\n"
      "event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"api_error\"}}\n\n";
  const Decoded d = DecodeSse(sse);
  EXPECT_EQ(d.lines, kBasicExpected);
  EXPECT_TRUE(d.last_status.ok());
}

TEST(AnthropicStream, MessageStopWithoutDeltaOrUsage) {
  // No message_delta: finish "stop"; no usage anywhere: no kUsage. Content before
  // message_start gets an anonymous kStart.
  const Decoded d = DecodeSse(
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
      "\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n"
      "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
  EXPECT_THAT(d.lines, ElementsAre("start   0", "delta content=hi", "finish stop"));
  EXPECT_TRUE(d.done);
}

TEST(AnthropicStream, MessageDeltaInputUsageOverlaysMessageStart) {
  // Newer API versions repeat (cumulative) input counters in message_delta.
  const Decoded d = DecodeSse(
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\","
      "\"model\":\"c\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n"
      "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
      "\"refusal\"},\"usage\":{\"input_tokens\":8,\"cache_read_input_tokens\":2,"
      "\"output_tokens\":4}}\n\n"
      "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
  EXPECT_THAT(d.lines, ElementsAre("start m c 0", "finish content_filter",
                                   "usage 10/4/14 reasoning=- cached=2"));
}

// usage.inference_geo (where Anthropic says it ran) is the usage's processing echo, in the
// stream (message_start's usage, overlaid by message_delta's) and in a whole body.
TEST(AnthropicStream, InferenceGeoBecomesTheUsagesProcessingEcho) {
  AnthropicStreamDecoder decoder;
  std::vector<Chunk> out;
  auto feed = [&](const char* event, const char* data) {
    SseEvent e;
    e.event = event;
    e.data = data;
    ASSERT_TRUE(decoder.Decode(e, out).ok()) << data;
  };
  feed("message_start", R"({"type":"message_start","message":{"id":"m","model":"c",)"
                        R"("usage":{"input_tokens":5,"output_tokens":1,"inference_geo":"us"}}})");
  feed("message_delta", R"({"type":"message_delta","delta":{"stop_reason":"end_turn"},)"
                        R"("usage":{"output_tokens":4,"inference_geo":"global"}})");
  feed("message_stop", R"({"type":"message_stop"})");
  ASSERT_FALSE(out.empty());
  ASSERT_EQ(out.back().kind, Chunk::Kind::kUsage);
  EXPECT_EQ(out.back().usage.processing_echo, "inference_geo=global");

  std::vector<Chunk> body;
  ASSERT_TRUE(DecodeMessagesResponse(
                  R"({"id":"m","type":"message","role":"assistant","model":"c","content":[)"
                  R"({"type":"text","text":"Hi"}],"stop_reason":"end_turn","usage":)"
                  R"({"input_tokens":2,"output_tokens":1,"inference_geo":"us"}})",
                  body)
                  .ok());
  ASSERT_EQ(body.back().kind, Chunk::Kind::kUsage);
  EXPECT_EQ(body.back().usage.processing_echo, "inference_geo=us");
  // Said nothing: no echo.
  std::vector<Chunk> silent;
  ASSERT_TRUE(
      DecodeMessagesResponse(
          R"({"id":"m","model":"c","content":[],"usage":{"input_tokens":1,"output_tokens":1}})",
          silent)
          .ok());
  EXPECT_EQ(silent.back().usage.processing_echo, "");
}

// ---------------------------------------------------------------------------------------
// Non-streaming

TEST(AnthropicResponse, ReferenceMessageBody) {
  // §3.1 [C] SDK Message type.
  std::vector<Chunk> out;
  EXPECT_TRUE(
      DecodeMessagesResponse(
          R"({"id":"msg_...","type":"message","role":"assistant","model":"claude-...","content":[{"type":"text","text":"Hi!"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":15}})",
          out)
          .ok());
  EXPECT_THAT(Lines(out), ElementsAre("start msg_... claude-... 0", "delta content=Hi!",
                                      "finish stop", "usage 25/15/40 reasoning=- cached=-"));
}

TEST(AnthropicResponse, ThinkingTextAndToolUse) {
  std::vector<Chunk> out;
  EXPECT_TRUE(DecodeMessagesResponse(
                  R"({"id":"msg_2","type":"message","role":"assistant","model":"claude-opus-4-6",
              "content":[{"type":"thinking","thinking":"Need weather.","signature":"sig"},
                         {"type":"redacted_thinking","data":"xyz"},
                         {"type":"text","text":"Checking "},
                         {"type":"text","text":"now."},
                         {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}},
                         {"type":"tool_use","id":"toolu_2","name":"now","input":{}}],
              "stop_reason":"tool_use","stop_sequence":null,
              "usage":{"input_tokens":10,"cache_read_input_tokens":90,"output_tokens":20}})",
                  out)
                  .ok());
  EXPECT_THAT(
      Lines(out),
      ElementsAre(
          "start msg_2 claude-opus-4-6 0",
          R"(delta content=Checking now. reasoning=Need weather. tool_calls=[{"index":0,"id":"toolu_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},{"index":1,"id":"toolu_2","type":"function","function":{"name":"now","arguments":"{}"}}])",
          "finish tool_calls", "usage 100/20/120 reasoning=- cached=90"));
}

TEST(AnthropicResponse, EmptyContentAndMissingStopReason) {
  std::vector<Chunk> out;
  EXPECT_TRUE(DecodeMessagesResponse(R"({"id":"m","model":"c","content":[]})", out).ok());
  EXPECT_THAT(Lines(out), ElementsAre("start m c 0", "finish stop"));
}

TEST(AnthropicResponse, ErrorAndInvalidBodies) {
  std::vector<Chunk> out;
  core::Status s = DecodeMessagesResponse(
      R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})", out);
  EXPECT_EQ(s.code, StatusCode::kUnavailable);
  EXPECT_TRUE(s.retryable);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, Chunk::Kind::kError);
  out.clear();
  EXPECT_EQ(DecodeMessagesResponse("not json", out).reason, "upstream_invalid_json");
  ASSERT_EQ(out.size(), 1u);
  out.clear();
  EXPECT_EQ(DecodeMessagesResponse(R"({"id":"x","type":"message"})", out).reason,
            "upstream_no_output");
  EXPECT_EQ(out.size(), 1u);
}

// ---------------------------------------------------------------------------------------
// Stop reasons and errors

TEST(AnthropicStopReason, Table) {
  EXPECT_EQ(MapStopReason("end_turn"), "stop");
  EXPECT_EQ(MapStopReason("stop_sequence"), "stop");
  EXPECT_EQ(MapStopReason("pause_turn"), "stop");
  EXPECT_EQ(MapStopReason("max_tokens"), "length");
  EXPECT_EQ(MapStopReason("model_context_window_exceeded"), "length");
  EXPECT_EQ(MapStopReason("tool_use"), "tool_calls");
  EXPECT_EQ(MapStopReason("refusal"), "content_filter");
  EXPECT_EQ(MapStopReason("something_new"), "stop");
  EXPECT_EQ(MapStopReason(""), "stop");
}

std::string ErrBody(std::string_view type, std::string_view message) {
  return std::string(R"({"type":"error","error":{"type":")") + std::string(type) +
         R"(","message":")" + std::string(message) +
         R"("},"request_id":"req_018EeWyXxfu5pfWkrYcMdjWG"})";
}

struct ErrorCase {
  int http;
  std::string body;
  StatusCode code;
  bool retryable;
  const char* reason;
};

TEST(AnthropicError, MappingTable) {
  const ErrorCase cases[] = {
      // §3.3 [V] shape, one per documented type.
      {400, ErrBody("invalid_request_error", "max_tokens: Field required"),
       StatusCode::kInvalidArgument, false, "upstream_invalid_request"},
      {401, ErrBody("authentication_error", "invalid x-api-key"), StatusCode::kBadUpstream, false,
       "upstream_unauthorized"},
      {402, ErrBody("billing_error", "credit balance too low"), StatusCode::kBadUpstream, false,
       "upstream_billing"},
      {403, ErrBody("permission_error", "no access"), StatusCode::kBadUpstream, false,
       "upstream_forbidden"},
      {404,
       R"({"type": "error", "error": {"type": "not_found_error", "message": "The requested resource could not be found."}})",
       StatusCode::kBadUpstream, false, "upstream_not_found"},
      {413, ErrBody("request_too_large", "Request exceeds the maximum allowed number of bytes."),
       StatusCode::kPayloadTooLarge, false, "upstream_payload_too_large"},
      {429, ErrBody("rate_limit_error", "Number of request tokens has exceeded your limit."),
       StatusCode::kRateLimited, true, "upstream_rate_limited"},
      {500, ErrBody("api_error", "Internal server error"), StatusCode::kUnavailable, true,
       "upstream_unavailable"},
      {504, ErrBody("timeout_error", "Request timed out"), StatusCode::kUpstreamTimeout, true,
       "upstream_timeout"},
      {529, ErrBody("overloaded_error", "Overloaded"), StatusCode::kUnavailable, true,
       "upstream_overloaded"},
      // The type decides over the HTTP status.
      {400, ErrBody("overloaded_error", "x"), StatusCode::kUnavailable, true,
       "upstream_overloaded"},
      {409, ErrBody("invalid_request_error", "conflict"), StatusCode::kInvalidArgument, false,
       "upstream_invalid_request"},
      {0, ErrBody("rate_limit_error", "x"), StatusCode::kRateLimited, true,
       "upstream_rate_limited"},
      // HTTP fallback: unknown type or no JSON (Cloudflare/proxy pages).
      {413, "<html>413 Request Entity Too Large</html>", StatusCode::kPayloadTooLarge, false,
       "upstream_payload_too_large"},
      {529, "", StatusCode::kUnavailable, true, "upstream_overloaded"},
      {429, "", StatusCode::kRateLimited, true, "upstream_rate_limited"},
      {502, "<html>Bad Gateway</html>", StatusCode::kUnavailable, true, "upstream_unavailable"},
      {503, ErrBody("brand_new_error", "x"), StatusCode::kUnavailable, true,
       "upstream_unavailable"},
      {504, "", StatusCode::kUpstreamTimeout, true, "upstream_timeout"},
      {408, "", StatusCode::kUpstreamTimeout, true, "upstream_timeout"},
      {401, "", StatusCode::kBadUpstream, false, "upstream_unauthorized"},
      {403, "", StatusCode::kBadUpstream, false, "upstream_forbidden"},
      {402, "", StatusCode::kBadUpstream, false, "upstream_billing"},
      {404, "Not Found", StatusCode::kBadUpstream, false, "upstream_not_found"},
      {400, "garbage", StatusCode::kInvalidArgument, false, "upstream_invalid_request"},
      {422, ErrBody("brand_new_error", "x"), StatusCode::kBadUpstream, false,
       "upstream_client_error"},
      {0, ErrBody("brand_new_error", "x"), StatusCode::kBadUpstream, false, "upstream_error"},
      {0, "", StatusCode::kBadUpstream, false, "upstream_error"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::to_string(c.http) + " " + c.body);
    const core::Status s = MapAnthropicError(c.http, c.body);
    EXPECT_EQ(s.code, c.code);
    EXPECT_EQ(s.retryable, c.retryable);
    EXPECT_EQ(s.reason, c.reason);
    EXPECT_FALSE(s.message.empty());
    EXPECT_FALSE(s.retry_after_s.has_value());
  }
}

TEST(AnthropicError, MessagesForwardedOrFixed) {
  EXPECT_EQ(MapAnthropicError(400, ErrBody("invalid_request_error", "max_tokens: Field required"))
                .message,
            "upstream returned HTTP 400 (invalid_request_error): max_tokens: Field required");
  EXPECT_EQ(MapAnthropicError(529, ErrBody("overloaded_error", "Overloaded")).message,
            "upstream returned HTTP 529 (overloaded_error): Overloaded");
  EXPECT_EQ(MapAnthropicError(413, "<html>big</html>").message, "upstream returned HTTP 413");
  // Credential, account and configuration problems: fixed text, upstream text not forwarded.
  for (const auto& [http, type] :
       {std::pair{401, "authentication_error"}, std::pair{403, "permission_error"},
        std::pair{402, "billing_error"}, std::pair{404, "not_found_error"}}) {
    const core::Status s =
        MapAnthropicError(http, ErrBody(type, "key sk-ant-api03-0a1b2c3d4e5f6a7b8c9d for org-x"));
    EXPECT_THAT(s.message, Not(HasSubstr("sk-ant")));
    EXPECT_THAT(s.message, Not(HasSubstr("org-x")));
    EXPECT_THAT(s.message, Not(HasSubstr(type)));
  }
  // Forwarded text is redacted.
  const core::Status param = MapAnthropicError(
      400, ErrBody("invalid_request_error", "bad key sk-0a1b2c3d4e5f60718293a4b5c6d7e8f9 here"));
  EXPECT_EQ(param.message,
            "upstream returned HTTP 400 (invalid_request_error): bad key [redacted] here");
}

TEST(AnthropicError, RetryAfterHeader) {
  const std::string body = ErrBody("rate_limit_error", "slow down");
  EXPECT_EQ(MapAnthropicError(429, body, "17").retry_after_s, 17u);
  EXPECT_EQ(MapAnthropicError(429, body, " 2.5 ").retry_after_s, 3u);
  EXPECT_EQ(MapAnthropicError(429, body, "0").retry_after_s, 0u);
  EXPECT_EQ(MapAnthropicError(529, ErrBody("overloaded_error", "x"), "30").retry_after_s, 30u);
  EXPECT_FALSE(MapAnthropicError(429, body, "Wed, 21 Oct 2026 07:28:00 GMT").retry_after_s);
  EXPECT_FALSE(MapAnthropicError(429, body, "-1").retry_after_s);
  EXPECT_FALSE(MapAnthropicError(429, body, "").retry_after_s);
  EXPECT_FALSE(MapAnthropicError(429, body).retry_after_s);
  // Not retryable: no retry hint.
  EXPECT_FALSE(MapAnthropicError(400, ErrBody("invalid_request_error", "x"), "17").retry_after_s);
}

// ---------------------------------------------------------------------------------------
// The client's own Messages body (POST /v1/messages to an Anthropic provider)

TEST(AnthropicNative, TheClientsBodyGoesAsItCameWithTheUpstreamModel) {
  const std::string body = NativeMessagesRequestBody(
      R"({"model":"claude","max_tokens":9,"thinking":{"type":"enabled","budget_tokens":1024},
          "messages":[{"role":"assistant","content":[
            {"type":"thinking","thinking":"t","signature":"EqQBsig"},
            {"type":"text","text":"x","cache_control":{"type":"ephemeral","ttl":"1h"}}]}]})",
      "claude-sonnet-4-5");
  EXPECT_EQ(json::parse(body), json::parse(R"({"model":"claude-sonnet-4-5","max_tokens":9,
      "thinking":{"type":"enabled","budget_tokens":1024},
      "messages":[{"role":"assistant","content":[
        {"type":"thinking","thinking":"t","signature":"EqQBsig"},
        {"type":"text","text":"x","cache_control":{"type":"ephemeral","ttl":"1h"}}]}]})"));
  EXPECT_EQ(NativeMessagesRequestBody("[1]", "m"), "");
  EXPECT_EQ(NativeMessagesRequestBody("{", "m"), "");
}

// Decoded as usual for the gateway's accounting, and every event carried, in order, on the
// chunks: their concatenation is the stream as it came, at every split of the bytes.
TEST(AnthropicNative, EveryEventRidesOnTheChunksAtEverySplit) {
  for (const std::string_view stream : {kBasicStream, kThinkingStream, kToolStream}) {
    for (std::size_t split = 0; split <= stream.size(); ++split) {
      SseParser parser;
      std::vector<SseEvent> events;
      ASSERT_TRUE(parser.Feed(stream.substr(0, split), events));
      ASSERT_TRUE(parser.Feed(stream.substr(split), events));
      AnthropicStreamDecoder native(true);
      AnthropicStreamDecoder plain;
      std::vector<Chunk> chunks;
      std::vector<Chunk> expected;
      for (const auto& e : events) {
        ASSERT_TRUE(native.Decode(e, chunks).ok());
        ASSERT_TRUE(plain.Decode(e, expected).ok());
      }
      ASSERT_TRUE(native.done());
      std::string carried;
      ASSERT_EQ(chunks.size(), expected.size());
      for (std::size_t i = 0; i < chunks.size(); ++i) {
        EXPECT_EQ(Describe(chunks[i]), Describe(expected[i]));
        carried += chunks[i].native;
      }
      EXPECT_EQ(carried, stream) << "split " << split;
      ASSERT_FALSE(chunks.empty());
      EXPECT_TRUE(chunks.front().native.starts_with("event: message_start\n"));
      EXPECT_TRUE(chunks.back().native.empty() || chunks.back().kind == Chunk::Kind::kFinish);
    }
  }
}

TEST(AnthropicNative, AnErrorEventIsNotCarried) {
  SseParser parser;
  std::vector<SseEvent> events;
  ASSERT_TRUE(parser.Feed(MidStreamError(), events));
  AnthropicStreamDecoder decoder(true);
  std::vector<Chunk> chunks;
  for (const auto& e : events) (void)decoder.Decode(e, chunks);
  ASSERT_FALSE(chunks.empty());
  EXPECT_EQ(chunks.back().kind, Chunk::Kind::kError);
  EXPECT_EQ(chunks.back().native, "");
  for (const Chunk& c : chunks) EXPECT_THAT(c.native, Not(HasSubstr("event: error")));
}

}  // namespace
}  // namespace meridian::providers::anthropic
