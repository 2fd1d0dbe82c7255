#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/core/json_text.h"
#include "gateway/http/chat_request.h"
#include "gateway/http/chat_response.h"
#include "gateway/http/error_mapping.h"
#include "tests/unit/passthrough_members.h"

namespace meridian::http {
namespace {

namespace json = boost::json;
using core::AppendJsonString;
using core::Chunk;
using core::CompletionRequest;
using core::Status;
using core::StatusCode;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

json::value Parse(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  EXPECT_FALSE(ec) << "not valid JSON: " << ec.message() << "\n" << text;
  return v;
}

CompletionRequest MustDecode(std::string_view body) {
  CompletionRequest r;
  const Status s = DecodeChatRequest(body, r);
  EXPECT_TRUE(s.ok()) << s.message << " (param " << s.param << ")";
  return r;
}

Status DecodeError(std::string_view body) {
  CompletionRequest r;
  return DecodeChatRequest(body, r);
}

// Splits an SSE byte stream into its `data:` payloads, checking the framing as it goes.
std::vector<std::string> Events(std::string_view stream) {
  std::vector<std::string> out;
  while (!stream.empty()) {
    EXPECT_TRUE(stream.starts_with("data: ")) << stream;
    const auto end = stream.find("\n\n");
    EXPECT_NE(end, std::string_view::npos) << stream;
    if (end == std::string_view::npos) break;
    const std::string_view payload = stream.substr(6, end - 6);
    EXPECT_EQ(payload.find('\n'), std::string_view::npos) << "one line per event";
    out.emplace_back(payload);
    stream.remove_prefix(end + 2);
  }
  return out;
}

// -----------------------------------------------------------------------------------------
// Request decoding

TEST(DecodeChatRequest, ReferenceExampleStreaming) {
  // wire-protocols.md §1.3, verbatim.
  const auto r = MustDecode(R"({
    "model": "VAR_chat_model_id",
    "messages": [
      {
        "role": "developer",
        "content": "You are a helpful assistant."
      },
      {
        "role": "user",
        "content": "Hello!"
      }
    ],
    "stream": true
  })");
  EXPECT_EQ(r.model, "VAR_chat_model_id");
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].role, "developer");
  EXPECT_EQ(r.messages[0].text, "You are a helpful assistant.");
  EXPECT_EQ(r.messages[0].content_parts_json, "");
  EXPECT_FALSE(r.messages[0].content_null);
  EXPECT_EQ(r.messages[1].role, "user");
  EXPECT_EQ(r.messages[1].text, "Hello!");
  EXPECT_TRUE(r.stream);
  EXPECT_FALSE(r.include_usage);
  EXPECT_FALSE(r.TokenLimit());
  EXPECT_FALSE(r.temperature);
  EXPECT_FALSE(r.enable_thinking);
  EXPECT_TRUE(r.passthrough.empty());
}

TEST(DecodeChatRequest, ArrayContentKeepsRawPartsAndExtractsText) {
  // §1.3 array-content form.
  const std::string parts =
      R"([{"type":"text","text":"What's in this image?"},)"
      R"({"type":"image_url","image_url":{"url":"https://example.com/a.jpg"}}])";
  const auto r =
      MustDecode(R"({"model":"m","messages":[{"role":"user","content":)" + parts + "}]}");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].text, "What's in this image?");
  EXPECT_EQ(r.messages[0].content_parts_json, parts);  // compact input survives byte for byte
  EXPECT_EQ(Parse(r.messages[0].content_parts_json), Parse(parts));
}

TEST(DecodeChatRequest, TextPartsAreJoinedWithNewlines) {
  const auto r = MustDecode(R"({"model":"m","messages":[{"role":"user","content":[
      {"type":"text","text":"one"},
      {"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}},
      {"type":"text","text":"two"},
      {"type":"file","file":{"file_id":"f1"}}]}]})");
  EXPECT_EQ(r.messages[0].text, "one\ntwo");
  const json::value raw = Parse(r.messages[0].content_parts_json);
  ASSERT_TRUE(raw.is_array());
  EXPECT_EQ(raw.as_array().size(), 4u);
  EXPECT_EQ(raw.as_array()[1].at("input_audio").at("format"), "wav");
}

TEST(DecodeChatRequest, ToolCallingConversation) {
  const auto r = MustDecode(R"({"model":"m","messages":[
    {"role":"system","content":"sys"},
    {"role":"user","content":"weather in Boston?","name":"alice"},
    {"role":"assistant","content":null,"tool_calls":[{"id":"call_abc123","type":"function",
      "function":{"name":"get_current_weather","arguments":"{\n\"location\": \"Boston, MA\"\n}"}}]},
    {"role":"tool","tool_call_id":"call_abc123","content":"22C"},
    {"role":"assistant","tool_calls":[{"id":"c2","type":"function","function":{"name":"f","arguments":"{}"}}]},
    {"role":"function","name":"legacy","content":null}
  ],
  "tools":[{"type":"function","function":{"name":"get_current_weather","parameters":{"type":"object"}}}],
  "tool_choice":{"type":"function","function":{"name":"get_current_weather"}}})");
  ASSERT_EQ(r.messages.size(), 6u);
  EXPECT_EQ(r.messages[1].name, "alice");
  const auto& call = r.messages[2];
  EXPECT_TRUE(call.content_null);
  EXPECT_EQ(call.text, "");
  const json::value calls = Parse(call.tool_calls_json);
  EXPECT_EQ(calls.at(0).at("function").at("arguments"), "{\n\"location\": \"Boston, MA\"\n}");
  EXPECT_EQ(calls.at(0).at("id"), "call_abc123");
  EXPECT_EQ(r.messages[3].role, "tool");
  EXPECT_EQ(r.messages[3].tool_call_id, "call_abc123");
  EXPECT_EQ(r.messages[3].text, "22C");
  EXPECT_TRUE(r.messages[4].content_null);  // absent content on an assistant turn
  EXPECT_EQ(Parse(r.messages[4].tool_calls_json).at(0).at("id"), "c2");
  EXPECT_TRUE(r.messages[5].content_null);
  EXPECT_EQ(r.messages[5].name, "legacy");
  EXPECT_EQ(Parse(r.tools_json).at(0).at("function").at("name"), "get_current_weather");
  EXPECT_EQ(Parse(r.tool_choice_json).at("function").at("name"), "get_current_weather");
}

TEST(DecodeChatRequest, TypedFields) {
  const auto r = MustDecode(R"({"model":"qwen3","messages":[{"role":"user","content":"x"}],
    "stream":true,"stream_options":{"include_usage":true,"include_obfuscation":false},
    "max_tokens":100,"max_completion_tokens":50,"temperature":0.7,"top_p":1,
    "stop":["a","b"],"tool_choice":"required","user":"u-1"})");
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(r.max_tokens, 100);
  EXPECT_EQ(r.max_completion_tokens, 50);
  EXPECT_EQ(r.TokenLimit(), 50);
  EXPECT_EQ(r.temperature, 0.7);
  EXPECT_EQ(r.top_p, 1.0);
  EXPECT_THAT(r.stop, ElementsAre("a", "b"));
  EXPECT_EQ(r.tool_choice_json, R"("required")");
  EXPECT_EQ(r.user, "u-1");
  EXPECT_TRUE(r.passthrough.empty());  // include_obfuscation is not forwarded
}

TEST(DecodeChatRequest, StopAsStringAndNullsMeanDefault) {
  auto r = MustDecode(R"({"model":"m","messages":[{"role":"user","content":"x"}],"stop":"END"})");
  EXPECT_THAT(r.stop, ElementsAre("END"));
  r = MustDecode(R"({"model":"m","messages":[{"role":"user","content":"x"}],"stop":null,
    "stream":null,"stream_options":null,"max_tokens":null,"temperature":null,"top_p":null,
    "tools":null,"tool_choice":null,"user":null,"seed":null,"enable_thinking":null})");
  EXPECT_TRUE(r.stop.empty());
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.max_tokens);
  EXPECT_FALSE(r.temperature);
  EXPECT_EQ(r.tools_json, "");
  EXPECT_EQ(r.tool_choice_json, "");
  EXPECT_FALSE(r.enable_thinking);
  EXPECT_TRUE(r.passthrough.empty());
}

TEST(DecodeChatRequest, EmptyToolsArrayIsAbsent) {
  const auto r = MustDecode(R"({"model":"m","messages":[{"role":"assistant","content":"x",
    "tool_calls":[]}],"tools":[]})");
  EXPECT_EQ(r.tools_json, "");
  EXPECT_EQ(r.messages[0].tool_calls_json, "");
}

TEST(DecodeChatRequest, IntegralDecimalIsAnInteger) {
  const auto r =
      MustDecode(R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1e3})");
  EXPECT_EQ(r.max_tokens, 1000);
}

TEST(DecodeChatRequest, StreamOptionsOnlyWithStream) {
  for (const char* body : {
           R"({"model":"m","messages":[{"role":"user","content":"x"}],
               "stream_options":{"include_usage":true}})",
           R"({"model":"m","messages":[{"role":"user","content":"x"}],"stream":false,
               "stream_options":{"include_usage":true}})",
       }) {
    const Status s = DecodeError(body);
    EXPECT_EQ(s.code, StatusCode::kInvalidArgument);
    EXPECT_EQ(s.param, "stream_options");
    EXPECT_EQ(ToHttpError(s).status, 400u);
  }
  // Order does not matter: stream may come after stream_options.
  const auto r = MustDecode(R"({"model":"m","messages":[{"role":"user","content":"x"}],
      "stream_options":{"include_usage":true},"stream":true})");
  EXPECT_TRUE(r.include_usage);
  // A null stream_options is "not given", so it is fine without stream.
  MustDecode(R"({"model":"m","messages":[{"role":"user","content":"x"}],"stream_options":null})");
}

TEST(DecodeChatRequest, EnableThinkingSwitches) {
  auto r = MustDecode(R"({"model":"qwen3","messages":[{"role":"user","content":"x"}],
      "chat_template_kwargs":{"enable_thinking":false}})");
  EXPECT_EQ(r.enable_thinking, false);
  EXPECT_TRUE(r.passthrough.empty());  // consumed, not forwarded twice
  r = MustDecode(R"({"model":"qwen3","messages":[{"role":"user","content":"x"}],
      "enable_thinking":true})");
  EXPECT_EQ(r.enable_thinking, true);
  // The engine-native spelling wins over the DashScope one, wherever it appears.
  r = MustDecode(R"({"model":"qwen3","messages":[{"role":"user","content":"x"}],
      "chat_template_kwargs":{"enable_thinking":false},"enable_thinking":true})");
  EXPECT_EQ(r.enable_thinking, false);
  r = MustDecode(R"({"model":"qwen3","messages":[{"role":"user","content":"x"}],
      "chat_template_kwargs":{}})");
  EXPECT_FALSE(r.enable_thinking);
}

TEST(DecodeChatRequest, PassthroughKeepsKnownAndUnknownFields) {
  const std::string extras = R"({"seed":7,"n":1,"top_k":20,"min_p":0,"repetition_penalty":1.05,
      "presence_penalty":1.5,"frequency_penalty":-0.5,"logprobs":true,"top_logprobs":3,
      "response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object"}}},
      "reasoning_effort":"low","service_tier":"auto","safety_identifier":"hash",
      "prompt_cache_key":"k","parallel_tool_calls":false,"logit_bias":{"50256":-100},
      "metadata":{"a":"b"},"store":false,"modalities":["text"],"big":18446744073709551615,
      "neg":-3,"float":2.0,"esc":"q\"\\\u0001é","seed2":null})";
  std::string body = R"({"model":"m","messages":[{"role":"user","content":"x"}],)";
  body += extras.substr(1);
  const auto r = MustDecode(body);

  const json::value got = Parse("{" + meridian::testing::MembersJson(r) + "}");
  json::object want = Parse(extras).as_object();
  want.erase("seed2");  // nulls are dropped
  EXPECT_EQ(got, json::value(want));
  // Body order is kept and numbers keep a conventional spelling.
  EXPECT_THAT(meridian::testing::MembersJson(r),
              StartsWith(R"("seed":7,"n":1,"top_k":20,"min_p":0,"repetition_penalty":1.05,)"));
  EXPECT_THAT(meridian::testing::MembersJson(r), HasSubstr(R"("float":2.0,)"));
  EXPECT_THAT(meridian::testing::MembersJson(r), HasSubstr(R"("big":18446744073709551615,)"));
}

TEST(DecodeChatRequest, DuplicateKeysLastWins) {
  const auto r = MustDecode(
      R"({"model":"a","model":"b","messages":[{"role":"user","content":"x"}],"seed":1,"seed":2})");
  EXPECT_EQ(r.model, "b");
  EXPECT_EQ(meridian::testing::MembersJson(r), R"("seed":2)");
}

TEST(DecodeChatRequest, UnicodeContentIsKept) {
  const auto r = MustDecode(
      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"h\\u00e9llo \xe4\xb8\x96 "
      "\\ud83d\\ude00\"}]}");
  EXPECT_EQ(r.messages[0].text, "h\xc3\xa9llo \xe4\xb8\x96 \xf0\x9f\x98\x80");
}

TEST(DecodeChatRequest, MalformedJson) {
  for (const char* body : {"", "{", R"({"model":"m",})", R"({"model":"m"} x)", "{'model':1}",
                           "{\"model\":\"\xff\"}", R"({"model":"m","messages":[{]})"}) {
    SCOPED_TRACE(body);
    const Status s = DecodeError(body);
    EXPECT_EQ(s.code, StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message, StartsWith("request body is not valid JSON: "));
    EXPECT_EQ(s.param, "");
    EXPECT_EQ(s.reason, "invalid_json");
  }
}

TEST(DecodeChatRequest, NonObjectBody) {
  for (const char* body : {"[]", "null", "\"x\"", "1"}) {
    const Status s = DecodeError(body);
    EXPECT_EQ(s.code, StatusCode::kInvalidArgument);
    EXPECT_EQ(s.param, "");
    EXPECT_THAT(s.message, HasSubstr("must be a JSON object"));
  }
}

std::string Nested(std::size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

TEST(DecodeChatRequest, NestingLimit) {
  const std::string prefix = R"({"model":"m","messages":[{"role":"user","content":"x"}],"x":)";
  // The body object is level 1, so the field may nest kMaxJsonDepth - 1 more levels.
  const auto r = MustDecode(prefix + Nested(kMaxJsonDepth - 1) + "}");
  EXPECT_EQ(meridian::testing::MembersJson(r), "\"x\":" + Nested(kMaxJsonDepth - 1));

  const Status s = DecodeError(prefix + Nested(kMaxJsonDepth) + "}");
  EXPECT_EQ(s.code, StatusCode::kInvalidArgument);
  EXPECT_EQ(s.param, "");
  EXPECT_THAT(s.message, HasSubstr("nesting deeper than 64"));

  EXPECT_EQ(DecodeError(std::string(100000, '[')).code, StatusCode::kInvalidArgument);
}

TEST(DecodeChatRequest, MessageCountLimit) {
  auto body = [](std::size_t n) {
    std::string b = R"({"model":"m","messages":[)";
    for (std::size_t i = 0; i < n; ++i) {
      if (i != 0) b += ',';
      b += R"({"role":"user","content":"x"})";
    }
    return b + "]}";
  };
  EXPECT_EQ(MustDecode(body(kMaxMessages)).messages.size(), kMaxMessages);
  const Status s = DecodeError(body(kMaxMessages + 1));
  EXPECT_EQ(s.param, "messages");
  EXPECT_EQ(s.reason, "array_above_max_length");
}

TEST(DecodeChatRequest, FailureLeavesNoPartialRequest) {
  CompletionRequest r;
  r.model = "stale";
  const Status s = DecodeChatRequest(
      R"({"model":"m","messages":[{"role":"user","content":"x"}],"temperature":9})", r);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(r.model, "");
  EXPECT_TRUE(r.messages.empty());
}

struct InvalidCase {
  const char* name;
  std::string body;
  std::string param;
  std::string reason;
};

std::string WithMessages(std::string_view messages, std::string_view extra = "") {
  std::string b = R"({"model":"m","messages":)";
  b += messages;
  b += extra;
  return b + "}";
}

std::string WithField(std::string_view field) {
  return WithMessages(R"([{"role":"user","content":"x"}])", std::string(",") + std::string(field));
}

class DecodeInvalid : public ::testing::TestWithParam<InvalidCase> {};

TEST_P(DecodeInvalid, RejectedWithParam) {
  const InvalidCase& c = GetParam();
  const Status s = DecodeError(c.body);
  EXPECT_EQ(s.code, StatusCode::kInvalidArgument) << c.body;
  EXPECT_EQ(s.param, c.param) << c.body;
  EXPECT_EQ(s.reason, c.reason) << c.body;
  EXPECT_FALSE(s.message.empty());
  EXPECT_EQ(ToHttpError(s).status, 400u);
  // The message names the field it is about, so humans can act on it.
  EXPECT_THAT(s.message, HasSubstr("'" + c.param + "'")) << s.message;
}

const char* kMissing = "missing_required_parameter";
const char* kType = "invalid_type";
const char* kValue = "invalid_value";

INSTANTIATE_TEST_SUITE_P(
    Fields, DecodeInvalid,
    ::testing::Values(
        InvalidCase{"model_missing", R"({"messages":[{"role":"user","content":"x"}]})", "model",
                    kMissing},
        InvalidCase{"model_number", R"({"model":1,"messages":[{"role":"user","content":"x"}]})",
                    "model", kType},
        InvalidCase{"model_null", R"({"model":null,"messages":[{"role":"user","content":"x"}]})",
                    "model", kType},
        InvalidCase{"model_empty", R"({"model":"","messages":[{"role":"user","content":"x"}]})",
                    "model", kValue},
        InvalidCase{"messages_missing", R"({"model":"m"})", "messages", kMissing},
        InvalidCase{"messages_object", WithMessages("{}"), "messages", kType},
        InvalidCase{"messages_empty", WithMessages("[]"), "messages", "empty_array"},
        InvalidCase{"message_not_object", WithMessages(R"([{"role":"user","content":"x"},"hi"])"),
                    "messages[1]", kType},
        InvalidCase{"role_missing", WithMessages(R"([{"content":"x"}])"), "messages[0].role",
                    kMissing},
        InvalidCase{"role_unknown", WithMessages(R"([{"role":"robot","content":"x"}])"),
                    "messages[0].role", kValue},
        InvalidCase{"role_number", WithMessages(R"([{"role":3,"content":"x"}])"),
                    "messages[0].role", kType},
        InvalidCase{"content_missing_user",
                    WithMessages(R"([{"role":"system","content":"s"},{"role":"user"}])"),
                    "messages[1].content", kMissing},
        InvalidCase{
            "content_null_user",
            WithMessages(R"([{"role":"user","content":"a"},{"role":"assistant","content":"b"},)"
                         R"({"role":"user","content":null}])"),
            "messages[2].content", kType},
        InvalidCase{"content_number", WithMessages(R"([{"role":"user","content":5}])"),
                    "messages[0].content", kType},
        InvalidCase{"content_object", WithMessages(R"([{"role":"user","content":{}}])"),
                    "messages[0].content", kType},
        InvalidCase{"content_empty_array", WithMessages(R"([{"role":"user","content":[]}])"),
                    "messages[0].content", "empty_array"},
        InvalidCase{"part_not_object", WithMessages(R"([{"role":"user","content":["x"]}])"),
                    "messages[0].content[0]", kType},
        InvalidCase{"part_type_missing",
                    WithMessages(R"([{"role":"user","content":[{"type":"text","text":"a"},)"
                                 R"({"text":"b"}]}])"),
                    "messages[0].content[1].type", kMissing},
        InvalidCase{"part_type_number", WithMessages(R"([{"role":"user","content":[{"type":1}]}])"),
                    "messages[0].content[0].type", kType},
        InvalidCase{"part_type_unknown",
                    WithMessages(R"([{"role":"user","content":[{"type":"text","text":"a"},)"
                                 R"({"type":"hologram","data":"b"}]}])"),
                    "messages[0].content[1].type", kValue},
        InvalidCase{"text_part_without_text",
                    WithMessages(R"([{"role":"user","content":[{"type":"text"}]}])"),
                    "messages[0].content[0].text", kMissing},
        InvalidCase{"text_part_text_number",
                    WithMessages(R"([{"role":"user","content":[{"type":"text","text":1}]}])"),
                    "messages[0].content[0].text", kType},
        InvalidCase{"name_number", WithMessages(R"([{"role":"user","content":"x","name":1}])"),
                    "messages[0].name", kType},
        InvalidCase{"tool_without_id", WithMessages(R"([{"role":"tool","content":"x"}])"),
                    "messages[0].tool_call_id", kMissing},
        InvalidCase{"tool_call_id_number",
                    WithMessages(R"([{"role":"tool","content":"x","tool_call_id":7}])"),
                    "messages[0].tool_call_id", kType},
        InvalidCase{"tool_calls_object",
                    WithMessages(R"([{"role":"assistant","content":null,"tool_calls":{}}])"),
                    "messages[0].tool_calls", kType},
        InvalidCase{"tool_calls_item",
                    WithMessages(R"([{"role":"assistant","content":null,"tool_calls":[1]}])"),
                    "messages[0].tool_calls[0]", kType},
        InvalidCase{"stream_string", WithField(R"("stream":"yes")"), "stream", kType},
        InvalidCase{"stream_options_bool", WithField(R"("stream":true,"stream_options":true)"),
                    "stream_options", kType},
        InvalidCase{"stream_options_without_stream",
                    WithField(R"("stream_options":{"include_usage":true})"), "stream_options",
                    kValue},
        InvalidCase{"include_usage_string",
                    WithField(R"("stream":true,"stream_options":{"include_usage":"y"})"),
                    "stream_options.include_usage", kType},
        InvalidCase{"max_tokens_zero", WithField(R"("max_tokens":0)"), "max_tokens", kValue},
        InvalidCase{"max_tokens_decimal", WithField(R"("max_tokens":1.5)"), "max_tokens", kType},
        InvalidCase{"max_tokens_string", WithField(R"("max_tokens":"5")"), "max_tokens", kType},
        InvalidCase{"max_completion_tokens_negative", WithField(R"("max_completion_tokens":-1)"),
                    "max_completion_tokens", kValue},
        InvalidCase{"temperature_high", WithField(R"("temperature":2.5)"), "temperature", kValue},
        InvalidCase{"temperature_negative", WithField(R"("temperature":-0.1)"), "temperature",
                    kValue},
        InvalidCase{"temperature_string", WithField(R"("temperature":"1")"), "temperature", kType},
        InvalidCase{"top_p_high", WithField(R"("top_p":1.01)"), "top_p", kValue},
        InvalidCase{"top_p_bool", WithField(R"("top_p":true)"), "top_p", kType},
        InvalidCase{"n_zero", WithField(R"("n":0)"), "n", kValue},
        InvalidCase{"n_too_big", WithField(R"("n":129)"), "n", kValue},
        InvalidCase{"n_decimal", WithField(R"("n":1.5)"), "n", kType},
        InvalidCase{"stop_number", WithField(R"("stop":1)"), "stop", kType},
        InvalidCase{"stop_too_many", WithField(R"("stop":["a","b","c","d","e"])"), "stop",
                    "array_above_max_length"},
        InvalidCase{"stop_item_number", WithField(R"("stop":["a",2])"), "stop[1]", kType},
        InvalidCase{"tools_object", WithField(R"("tools":{})"), "tools", kType},
        InvalidCase{"tools_item_string", WithField(R"("tools":["f"])"), "tools[0]", kType},
        InvalidCase{"tools_type_missing", WithField(R"("tools":[{"function":{"name":"f"}}])"),
                    "tools[0].type", kMissing},
        InvalidCase{"tools_function_missing", WithField(R"("tools":[{"type":"function"}])"),
                    "tools[0].function", kMissing},
        InvalidCase{"tools_function_name_missing",
                    WithField(R"("tools":[{"type":"function","function":{"name":"a"}},)"
                              R"({"type":"function","function":{}}])"),
                    "tools[1].function.name", kMissing},
        InvalidCase{"tool_choice_unknown", WithField(R"("tool_choice":"sometimes")"), "tool_choice",
                    kValue},
        InvalidCase{"tool_choice_number", WithField(R"("tool_choice":1)"), "tool_choice", kType},
        InvalidCase{"user_number", WithField(R"("user":1)"), "user", kType},
        InvalidCase{"enable_thinking_string", WithField(R"("enable_thinking":"no")"),
                    "enable_thinking", kType},
        InvalidCase{"chat_template_kwargs_array", WithField(R"("chat_template_kwargs":[])"),
                    "chat_template_kwargs", kType},
        InvalidCase{"chat_template_kwargs_thinking_string",
                    WithField(R"("chat_template_kwargs":{"enable_thinking":"off"})"),
                    "chat_template_kwargs.enable_thinking", kType},
        InvalidCase{"seed_string", WithField(R"("seed":"7")"), "seed", kType},
        InvalidCase{"presence_penalty_range", WithField(R"("presence_penalty":2.5)"),
                    "presence_penalty", kValue},
        InvalidCase{"frequency_penalty_string", WithField(R"("frequency_penalty":"0")"),
                    "frequency_penalty", kType},
        InvalidCase{"logprobs_number", WithField(R"("logprobs":1)"), "logprobs", kType},
        InvalidCase{"top_logprobs_range", WithField(R"("top_logprobs":21)"), "top_logprobs",
                    kValue},
        InvalidCase{"response_format_string", WithField(R"("response_format":"json")"),
                    "response_format", kType},
        InvalidCase{"reasoning_effort_number", WithField(R"("reasoning_effort":1)"),
                    "reasoning_effort", kType},
        InvalidCase{"safety_identifier_long",
                    WithField(R"("safety_identifier":")" + std::string(65, 'a') + "\""),
                    "safety_identifier", kValue},
        InvalidCase{"parallel_tool_calls_string", WithField(R"("parallel_tool_calls":"yes")"),
                    "parallel_tool_calls", kType},
        InvalidCase{"metadata_array", WithField(R"("metadata":[])"), "metadata", kType},
        InvalidCase{"temperature_overflow", WithField(R"("temperature":1e400)"), "temperature",
                    kValue},
        InvalidCase{"passthrough_overflow", WithField(R"("top_k":[1,-1e999])"), "top_k", kValue},
        InvalidCase{"tools_overflow",
                    WithField(R"("tools":[{"type":"function","function":{"name":"f","x":1e400}}])"),
                    "tools", kValue},
        InvalidCase{"parts_overflow",
                    WithMessages(R"([{"role":"user","content":[{"type":"image_url","v":1e400}]}])"),
                    "messages[0].content", kValue},
        InvalidCase{"modalities_string", WithField(R"("modalities":"text")"), "modalities", kType}),
    [](const ::testing::TestParamInfo<InvalidCase>& p) { return std::string(p.param.name); });

// -----------------------------------------------------------------------------------------
// JSON string escaping

std::string Quoted(std::string_view s) {
  std::string out;
  AppendJsonString(out, s);
  return out;
}

TEST(AppendJsonString, EscapesWhatJsonRequires) {
  EXPECT_EQ(Quoted(""), R"("")");
  EXPECT_EQ(Quoted("plain"), R"("plain")");
  EXPECT_EQ(Quoted("a\"b\\c/d"), R"("a\"b\\c/d")");
  EXPECT_EQ(Quoted("l1\nl2\r\t\b\f"), R"("l1\nl2\r\t\b\f")");
  EXPECT_EQ(Quoted(std::string_view("\x00\x01\x1f\x7f", 4)), "\"\\u0000\\u0001\\u001f\x7f\"");
}

TEST(AppendJsonString, KeepsUtf8AndRoundTrips) {
  const std::string text = "h\xc3\xa9llo \xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x98\x80 \"q\"\n";
  const std::string quoted = Quoted(text);
  EXPECT_EQ(quoted, "\"h\xc3\xa9llo \xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x98\x80 \\\"q\\\"\\n\"");
  EXPECT_EQ(Parse(quoted).as_string(), text);
}

TEST(AppendJsonString, ReplacesInvalidUtf8) {
  const std::string fffd = "\xef\xbf\xbd";
  struct Case {
    std::string in;
    std::string want;
  };
  for (const Case& c : std::vector<Case>{
           {"a\x80z", "a" + fffd + "z"},                     // lone continuation byte
           {"a\xc3", "a" + fffd},                            // truncated at the end
           {"\xe4\xb8z", fffd + fffd + "z"},                 // truncated in the middle
           {"\xc0\x80", fffd + fffd},                        // overlong NUL
           {"\xed\xa0\x80", fffd + fffd + fffd},             // UTF-16 surrogate
           {"\xf4\x90\x80\x80", fffd + fffd + fffd + fffd},  // above U+10FFFF
           {"\xff\xfe", fffd + fffd},
           {"ok\xf4\x8f\xbf\xbf", "ok\xf4\x8f\xbf\xbf"},  // U+10FFFF itself is fine
       }) {
    const std::string quoted = Quoted(c.in);
    EXPECT_EQ(quoted, "\"" + c.want + "\"");
    EXPECT_EQ(Parse(quoted).as_string(), c.want);
  }
}

// -----------------------------------------------------------------------------------------
// Streaming

// The §1.5 reference stream's identity.
constexpr std::string_view kId = "chatcmpl-123";
constexpr std::int64_t kCreated = 1694268190;
constexpr std::string_view kModel = "gpt-4o-mini";

Chunk Start() {
  Chunk c;
  c.kind = Chunk::Kind::kStart;
  c.id = "upstream-id";  // never shown to the client
  c.model = "upstream-model";
  c.created = 1;
  return c;
}

Chunk Content(std::string text) {
  Chunk c;
  c.kind = Chunk::Kind::kDelta;
  c.content = std::move(text);
  return c;
}

Chunk Reasoning(std::string text) {
  Chunk c;
  c.kind = Chunk::Kind::kDelta;
  c.reasoning = std::move(text);
  return c;
}

Chunk ToolCalls(std::string raw) {
  Chunk c;
  c.kind = Chunk::Kind::kDelta;
  c.tool_calls_json = std::move(raw);
  return c;
}

Chunk Finish(std::string reason) {
  Chunk c;
  c.kind = Chunk::Kind::kFinish;
  c.finish_reason = std::move(reason);
  return c;
}

Chunk UsageChunk(std::int64_t prompt, std::int64_t completion, std::int64_t total) {
  Chunk c;
  c.kind = Chunk::Kind::kUsage;
  c.usage.prompt_tokens = prompt;
  c.usage.completion_tokens = completion;
  c.usage.total_tokens = total;
  return c;
}

TEST(ChatStreamEncoder, ByteExactReferenceStreamWithUsage) {
  // wire-protocols.md §1.5, the include_usage byte stream, verbatim.
  const std::string want =
      R"(data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null})"
      "\n\n"
      R"(data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null})"
      "\n\n"
      R"(data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null})"
      "\n\n"
      R"(data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}})"
      "\n\n"
      "data: [DONE]\n\n";

  ChatStreamEncoder enc(kId, kCreated, kModel, /*include_usage=*/true);
  std::string out;
  enc.Encode(Start(), out);
  enc.Encode(Content("Hello"), out);
  enc.Encode(Finish("stop"), out);
  enc.Encode(UsageChunk(9, 1, 10), out);
  enc.Done(out);
  EXPECT_EQ(out, want);

  const auto events = Events(out);
  ASSERT_EQ(events.size(), 5u);
  for (std::size_t i = 0; i + 1 < events.size(); ++i) Parse(events[i]);
  EXPECT_EQ(events.back(), "[DONE]");
}

TEST(ChatStreamEncoder, WithoutIncludeUsage) {
  ChatStreamEncoder enc(kId, kCreated, kModel, /*include_usage=*/false);
  std::string out;
  enc.Encode(Start(), out);
  enc.Encode(Content("Hello"), out);
  enc.Encode(Finish("length"), out);
  enc.Encode(UsageChunk(9, 1, 10), out);  // not asked for: dropped
  enc.Done(out);
  EXPECT_EQ(
      out,
      R"(data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]})"
      "\n\n"
      R"(data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]})"
      "\n\n"
      R"(data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"length"}]})"
      "\n\n"
      "data: [DONE]\n\n");
}

TEST(ChatStreamEncoder, ReasoningContentDelta) {
  ChatStreamEncoder enc(kId, kCreated, kModel, false);
  std::string out;
  enc.Encode(Start(), out);
  out.clear();
  enc.Encode(Reasoning("Let me think."), out);
  Chunk both = Reasoning("r");
  both.content = "c";
  enc.Encode(both, out);
  const auto events = Events(out);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_THAT(events[0], HasSubstr(R"("delta":{"reasoning_content":"Let me think."},)"));
  EXPECT_THAT(events[1], HasSubstr(R"("delta":{"reasoning_content":"r","content":"c"},)"));
  EXPECT_EQ(Parse(events[1]).at("choices").at(0).at("delta").at("content"), "c");
}

TEST(ChatStreamEncoder, ToolCallsDeltaIsVerbatim) {
  ChatStreamEncoder enc(kId, kCreated, kModel, false);
  std::string out;
  enc.Encode(Start(), out);
  out.clear();
  const std::string raw =
      R"([{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}])";
  enc.Encode(ToolCalls(raw), out);
  enc.Encode(ToolCalls(R"([{"index":0,"function":{"arguments":"{\"a\":"}}])"), out);
  enc.Encode(Finish("tool_calls"), out);
  const auto events = Events(out);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(
      events[0],
      R"({"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"tool_calls":)" +
          raw + R"(},"logprobs":null,"finish_reason":null}]})");
  EXPECT_EQ(Parse(events[1])
                .at("choices")
                .at(0)
                .at("delta")
                .at("tool_calls")
                .at(0)
                .at("function")
                .at("arguments"),
            "{\"a\":");
  EXPECT_EQ(Parse(events[2]).at("choices").at(0).at("finish_reason"), "tool_calls");
}

TEST(ChatStreamEncoder, EmptyDeltaWritesNothing) {
  ChatStreamEncoder enc(kId, kCreated, kModel, true);
  std::string out;
  enc.Encode(Start(), out);
  const std::size_t after_start = out.size();
  enc.Encode(Content(""), out);
  EXPECT_EQ(out.size(), after_start);
}

TEST(ChatStreamEncoder, RoleChunkComesFirstExactlyOnce) {
  ChatStreamEncoder enc(kId, kCreated, kModel, false);
  std::string out;
  enc.Encode(Content("a"), out);  // no kStart from the provider
  enc.Encode(Start(), out);       // late or repeated start: no second role chunk
  enc.Encode(Content("b"), out);
  const auto events = Events(out);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_THAT(events[0], HasSubstr(R"("delta":{"role":"assistant","content":""})"));
  EXPECT_THAT(events[1], HasSubstr(R"("delta":{"content":"a"})"));
  EXPECT_THAT(events[2], HasSubstr(R"("delta":{"content":"b"})"));
}

TEST(ChatStreamEncoder, FinishWithoutReasonIsStop) {
  ChatStreamEncoder enc(kId, kCreated, kModel, false);
  std::string out;
  enc.Encode(Finish(""), out);
  const auto events = Events(out);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(Parse(events[1]).at("choices").at(0).at("finish_reason"), "stop");
}

TEST(ChatStreamEncoder, UsageDetailsWhenKnown) {
  ChatStreamEncoder enc(kId, kCreated, kModel, true);
  Chunk u = UsageChunk(19, 10, 0);  // total missing upstream: the sum is reported
  u.usage.reasoning_tokens = 4;
  u.usage.cached_tokens = 8;
  std::string out;
  enc.Encode(u, out);
  EXPECT_EQ(
      out,
      R"(data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":8},"completion_tokens_details":{"reasoning_tokens":4}}})"
      "\n\n");
}

TEST(ChatStreamEncoder, ErrorEventIsTerminalWithoutDone) {
  ChatStreamEncoder enc(kId, kCreated, kModel, true);
  std::string out;
  enc.Encode(Start(), out);
  enc.Encode(Content("partial"), out);
  out.clear();
  Status s = Status::Error(StatusCode::kBadUpstream, "upstream closed the stream", "upstream_eof");
  enc.Error(s, out);
  EXPECT_EQ(
      out,
      "data: "
      R"({"error":{"message":"upstream closed the stream","type":"server_error","param":null,"code":"upstream_eof"}})"
      "\n\n");
  EXPECT_EQ(out.find("[DONE]"), std::string::npos);
  EXPECT_EQ(out, "data: " + ErrorJson(s) + "\n\n");  // one writer for both paths

  // A kError chunk through Encode is the same event.
  Chunk c;
  c.kind = Chunk::Kind::kError;
  c.error = s;
  std::string via_encode;
  ChatStreamEncoder fresh(kId, kCreated, kModel, true);
  fresh.Encode(c, via_encode);
  EXPECT_EQ(via_encode, out);
  const json::value v = Parse(Events(out).at(0));
  EXPECT_EQ(v.at("error").at("type"), "server_error");
}

TEST(ChatStreamEncoder, ExactlyOneTerminalEvent) {
  const Status s = Status::Error(StatusCode::kUpstreamTimeout, "timed out");
  Chunk err;
  err.kind = Chunk::Kind::kError;
  err.error = s;

  // Provider reports the error as a chunk, then the router reports it again.
  ChatStreamEncoder enc(kId, kCreated, kModel, true);
  std::string out;
  enc.Encode(Start(), out);
  EXPECT_FALSE(enc.finished());
  enc.Encode(err, out);
  EXPECT_TRUE(enc.finished());
  const std::size_t size = out.size();
  enc.Error(s, out);
  enc.Done(out);
  enc.Encode(Content("late"), out);
  enc.Encode(UsageChunk(1, 1, 2), out);
  EXPECT_EQ(out.size(), size);
  ASSERT_EQ(Events(out).size(), 2u);

  ChatStreamEncoder done(kId, kCreated, kModel, false);
  std::string out2;
  done.Done(out2);
  done.Done(out2);
  done.Error(s, out2);
  EXPECT_EQ(out2, "data: [DONE]\n\n");
}

TEST(ChatStreamEncoder, EscapesEverythingItWrites) {
  ChatStreamEncoder enc("chatcmpl-\"x\"", 5, "al\\ias\n", false);
  std::string out;
  const std::string nasty =
      std::string("say \"hi\"\\\n\t\x01\x1f caf\xc3\xa9 \xf0\x9f\x98\x80 ") + "\xc3" + "</script>";
  enc.Encode(Content(nasty), out);
  enc.Encode(Reasoning("line1\r\nline2"), out);
  const auto events = Events(out);
  ASSERT_EQ(events.size(), 3u);
  const json::value v = Parse(events[1]);
  EXPECT_EQ(v.at("id"), "chatcmpl-\"x\"");
  EXPECT_EQ(v.at("model"), "al\\ias\n");
  EXPECT_EQ(v.at("choices").at(0).at("delta").at("content"),
            json::value(std::string("say \"hi\"\\\n\t\x01\x1f caf\xc3\xa9 \xf0\x9f\x98\x80 ") +
                        "\xef\xbf\xbd</script>"));
  EXPECT_EQ(Parse(events[2]).at("choices").at(0).at("delta").at("reasoning_content"),
            "line1\r\nline2");
}

// -----------------------------------------------------------------------------------------
// Non-streaming

TEST(CompletionAggregate, ByteExactSimpleAnswer) {
  core::CompletionAggregator agg;
  agg.Add(Start());
  agg.Add(Content("Hello! How can I "));
  agg.Add(Content("assist you today?"));
  agg.Add(Finish("stop"));
  agg.Add(UsageChunk(19, 10, 29));
  ASSERT_FALSE(agg.error());
  const std::string got = RenderChatCompletion(
      agg.completion(), "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", 1741569952, "gpt-5.4");
  EXPECT_EQ(
      got,
      R"({"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion","created":1741569952,"model":"gpt-5.4","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I assist you today?","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29}})");
  // Same values as the §1.4 reference response, field for field.
  const json::value v = Parse(got);
  EXPECT_EQ(v.at("choices").at(0).at("message").at("content"),
            "Hello! How can I assist you today?");
  EXPECT_TRUE(v.at("choices").at(0).at("logprobs").is_null());
}

TEST(CompletionAggregate, ReasoningAndUsageDetails) {
  core::CompletionAggregator agg;
  agg.Add(Reasoning("think "));
  agg.Add(Reasoning("hard"));
  agg.Add(Content("42"));
  Chunk u = UsageChunk(3, 7, 10);
  u.usage.reasoning_tokens = 5;
  agg.Add(u);
  const json::value v = Parse(RenderChatCompletion(agg.completion(), kId, kCreated, kModel));
  const auto& msg = v.at("choices").at(0).at("message");
  EXPECT_EQ(msg.at("reasoning_content"), "think hard");
  EXPECT_EQ(msg.at("content"), "42");
  EXPECT_EQ(v.at("choices").at(0).at("finish_reason"), "stop");
  EXPECT_EQ(v.at("usage").at("completion_tokens_details").at("reasoning_tokens"), 5);
  EXPECT_FALSE(v.at("usage").as_object().contains("prompt_tokens_details"));
}

TEST(CompletionAggregate, MergesToolCallFragments) {
  core::CompletionAggregator agg;
  agg.Add(Start());
  agg.Add(ToolCalls(
      R"([{"index":0,"id":"call_abc123","type":"function","function":{"name":"get_current_weather","arguments":""}}])"));
  agg.Add(ToolCalls(R"([{"index":0,"function":{"arguments":"{\n\"location\": "}}])"));
  // A second parallel call starts, interleaved with the first one's tail.
  agg.Add(ToolCalls(
      R"([{"index":1,"id":"call_def","type":"function","function":{"name":"get_time","arguments":"{}"}},)"
      R"({"index":0,"function":{"arguments":"\"Boston, MA\"\n}"}}])"));
  agg.Add(ToolCalls(R"([{"index":0,"id":"ignored","function":{"name":"ignored"}}])"));
  agg.Add(Finish("tool_calls"));
  ASSERT_FALSE(agg.error());
  const std::string got = RenderChatCompletion(agg.completion(), kId, kCreated, kModel);
  EXPECT_EQ(
      got,
      R"({"id":"chatcmpl-123","object":"chat.completion","created":1694268190,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_abc123","type":"function","function":{"name":"get_current_weather","arguments":"{\n\"location\": \"Boston, MA\"\n}"}},{"id":"call_def","type":"function","function":{"name":"get_time","arguments":"{}"}}],"refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}})");
  const json::value v = Parse(got);
  // The §1.4 tool-call variant, exactly.
  EXPECT_EQ(
      v.at("choices").at(0).at("message").at("tool_calls").at(0),
      Parse(
          R"({"id": "call_abc123", "type": "function", "function": {"name": "get_current_weather", "arguments": "{\n\"location\": \"Boston, MA\"\n}"}})"));
}

TEST(CompletionAggregate, ToolCallsWithoutIndexOrIds) {
  core::CompletionAggregator agg;
  agg.Add(Content("Calling."));
  agg.Add(ToolCalls(R"([{"function":{"name":"a","arguments":{"x":1}}},)"
                    R"({"function":{"name":"b","arguments":"{}"}}])"));
  const json::value v = Parse(RenderChatCompletion(agg.completion(), kId, kCreated, kModel));
  const auto& msg = v.at("choices").at(0).at("message");
  EXPECT_EQ(msg.at("content"), "Calling.");  // text and tool calls together keep the text
  const auto& calls = msg.at("tool_calls").as_array();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].at("id"), "call_0");
  EXPECT_EQ(calls[0].at("type"), "function");
  EXPECT_EQ(calls[0].at("function").at("arguments"), R"({"x":1})");
  EXPECT_EQ(calls[1].at("id"), "call_1");
  EXPECT_EQ(v.at("choices").at(0).at("finish_reason"), "tool_calls");
}

TEST(CompletionAggregate, MalformedToolCallsIsBadUpstream) {
  for (const char* raw : {"{", R"({"index":0})", "[1]", R"([{"index":"x"}])"}) {
    core::CompletionAggregator agg;
    agg.Add(ToolCalls(raw));
    ASSERT_TRUE(agg.error()) << raw;
    EXPECT_EQ(agg.error()->code, StatusCode::kBadUpstream);
  }
}

TEST(CompletionAggregate, KeepsFirstError) {
  core::CompletionAggregator agg;
  agg.Add(Content("x"));
  Chunk e;
  e.kind = Chunk::Kind::kError;
  e.error = Status::Error(StatusCode::kUpstreamTimeout, "timed out");
  agg.Add(e);
  e.error = Status::Error(StatusCode::kInternal, "later");
  agg.Add(e);
  ASSERT_TRUE(agg.error());
  EXPECT_EQ(agg.error()->code, StatusCode::kUpstreamTimeout);
}

TEST(CompletionAggregate, AssigningAFreshOneStartsOver) {
  core::CompletionAggregator agg;
  agg.Add(Content("from the first provider"));
  agg.Add(ToolCalls("{"));
  ASSERT_TRUE(agg.error());
  agg = core::CompletionAggregator{};  // fallback to the next candidate
  agg.Add(Content("second"));
  EXPECT_FALSE(agg.error());
  EXPECT_EQ(Parse(RenderChatCompletion(agg.completion(), kId, kCreated, kModel))
                .at("choices")
                .at(0)
                .at("message")
                .at("content"),
            "second");
}

TEST(CompletionAggregate, EmptyAnswerIsEmptyString) {
  core::CompletionAggregator agg;
  agg.Add(Finish("length"));
  const json::value v = Parse(RenderChatCompletion(agg.completion(), kId, kCreated, kModel));
  EXPECT_EQ(v.at("choices").at(0).at("message").at("content"), "");
  EXPECT_EQ(v.at("choices").at(0).at("finish_reason"), "length");
  EXPECT_EQ(v.at("usage").at("total_tokens"), 0);
}

// -----------------------------------------------------------------------------------------
// Models

TEST(ModelsListJson, ListsAliases) {
  EXPECT_EQ(
      ModelsListJson({"qwen3-32b", "gpt-\"x\""}, 1700000000),
      R"({"object":"list","data":[{"id":"qwen3-32b","object":"model","created":1700000000,"owned_by":"meridian"},{"id":"gpt-\"x\"","object":"model","created":1700000000,"owned_by":"meridian"}]})");
  EXPECT_EQ(ModelsListJson({}, 0), R"({"object":"list","data":[]})");
  EXPECT_EQ(Parse(ModelsListJson({"a"}, 1)).at("data").at(0).at("id"), "a");
}

}  // namespace
}  // namespace meridian::http
