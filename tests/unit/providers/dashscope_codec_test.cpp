#include "providers/dashscope/dashscope_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "providers/common/sse_parser.h"
#include "tests/unit/passthrough_members.h"
#include "tests/unit/providers/chunk_lines.h"

namespace meridian::providers::dashscope {
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

Decoded DecodeSse(std::string_view sse, bool finish = false, bool incremental = true,
                  std::size_t split = std::string_view::npos) {
  DashScopeStreamDecoder decoder(incremental);
  return providers::testing::DecodeWith(decoder, sse, finish, split);
}

// ---------------------------------------------------------------------------------------
// Fixtures. §2.4 [V]: frames id:1, id:2 and id:15 of the official incremental stream (the
// reference elides frames 3-14 with "...", which is not part of the wire bytes).
constexpr std::string_view kIncrementalStream =
    "id:1\n"
    "event:result\n"
    ":HTTP_STATUS/200\n"
    "data:{\"output\":{\"choices\":[{\"message\":{\"content\":\"我是\",\"role\":\"assistant\"},"
    "\"finish_reason\":\"null\"}]},\"usage\":{\"total_tokens\":27,\"output_tokens\":1,\"input_"
    "tokens\":26,\"prompt_tokens_details\":{\"cached_tokens\":0}},\"request_id\":\"d30a9914-"
    "ac97-9102-b746-ce0cb35e3fa2\"}\n"
    "\n"
    "id:2\n"
    "event:result\n"
    ":HTTP_STATUS/200\n"
    "data:{\"output\":{\"choices\":[{\"message\":{\"content\":\"通义千\",\"role\":\"assistant\"}"
    ",\"finish_reason\":\"null\"}]},\"usage\":{\"total_tokens\":30,\"output_tokens\":4,"
    "\"input_tokens\":26,\"prompt_tokens_details\":{\"cached_tokens\":0}},\"request_id\":"
    "\"d30a9914-ac97-9102-b746-ce0cb35e3fa2\"}\n"
    "\n"
    "id:15\n"
    "event:result\n"
    ":HTTP_STATUS/200\n"
    "data:{\"output\":{\"choices\":[{\"message\":{\"content\":\"\",\"role\":\"assistant\"},"
    "\"finish_reason\":\"stop\"}]},\"usage\":{\"total_tokens\":92,\"output_tokens\":66,"
    "\"input_tokens\":26,\"prompt_tokens_details\":{\"cached_tokens\":0}},\"request_id\":"
    "\"d30a9914-ac97-9102-b746-ce0cb35e3fa2\"}\n"
    "\n";

const std::vector<std::string> kIncrementalExpected = {
    "start d30a9914-ac97-9102-b746-ce0cb35e3fa2  0",
    "delta content=我是",
    "delta content=通义千",
    "finish stop",
    "usage 26/66/92 reasoning=- cached=0",
};

// §2.4 [V] thinking frame (qwen3-max), followed by [C] frames of the same shape.
constexpr std::string_view kThinkingStream =
    "id:1\n"
    "event:result\n"
    ":HTTP_STATUS/200\n"
    "data:{\"output\":{\"choices\":[{\"message\":{\"content\":\"\",\"reasoning_content\":"
    "\"The\",\"role\":\"assistant\"},\"finish_reason\":\"null\"}]},\"usage\":{\"total_tokens\":"
    "290,\"output_tokens\":3,\"input_tokens\":287,\"output_tokens_details\":{\"reasoning_"
    "tokens\":1}},\"request_id\":\"a1959ad1-2637-4672-a21f-4d351371d254\"}\n"
    "\n"
    "id:2\n"
    "event:result\n"
    ":HTTP_STATUS/200\n"
    "data:{\"output\":{\"choices\":[{\"message\":{\"content\":\"Hi\",\"reasoning_content\":"
    "\"\",\"role\":\"assistant\"},\"finish_reason\":\"null\"}]},\"usage\":{\"total_tokens\":"
    "292,\"output_tokens\":5,\"input_tokens\":287,\"output_tokens_details\":{\"reasoning_"
    "tokens\":1}},\"request_id\":\"a1959ad1-2637-4672-a21f-4d351371d254\"}\n"
    "\n"
    "id:3\n"
    "event:result\n"
    ":HTTP_STATUS/200\n"
    "data:{\"output\":{\"choices\":[{\"message\":{\"content\":\"\",\"reasoning_content\":\"\","
    "\"role\":\"assistant\"},\"finish_reason\":\"length\"}]},\"usage\":{\"total_tokens\":300,"
    "\"output_tokens\":13,\"input_tokens\":287,\"output_tokens_details\":{\"reasoning_tokens\""
    ":4}},\"request_id\":\"a1959ad1-2637-4672-a21f-4d351371d254\"}\n"
    "\n";

// §2.5 [V]: error inside an HTTP 200 stream (request_id shortened in the reference too).
constexpr std::string_view kErrorStream =
    "id:1\n"
    "event:error\n"
    ":HTTP_STATUS/400\n"
    "data:{\"code\":\"InvalidParameter\",\"message\":\"Required parameter(AppId) missing or "
    "invalid, please check the request parameters.\",\"request_id\":\"d18bb1bc-…\"}\n"
    "\n";

// ---------------------------------------------------------------------------------------
// Request bodies

core::CompletionRequest BaseRequest() {
  core::CompletionRequest req;
  req.model = "alias";
  core::Message sys;
  sys.role = "system";
  sys.text = "You are a helpful assistant.";
  core::Message user;
  user.role = "user";
  user.text = "你是谁？";
  req.messages = {sys, user};
  return req;
}

TEST(DashScopeRequest, ReferenceStreamingExampleBody) {
  // §2.2 [V] streaming request body.
  constexpr std::string_view kExpected = R"({
    "model": "qwen-plus",
    "input":{
        "messages":[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "你是谁？"}
        ]
    },
    "parameters": {"result_format": "message", "incremental_output":true}
  })";
  EXPECT_EQ(json::parse(BuildGenerationRequestBody(BaseRequest(), "qwen-plus", true)),
            json::parse(kExpected));
}

struct RequestCase {
  const char* name;
  bool stream;
  std::optional<bool> thinking;
  const char* expected_parameters;
};

TEST(DashScopeRequest, ParametersTable) {
  const RequestCase cases[] = {
      {"stream thinking on", true, true,
       R"({"result_format":"message","incremental_output":true,"max_tokens":64,
           "temperature":0.5,"top_p":0.9,"stop":["END"],"enable_thinking":true,"seed":7,
           "enable_search":false,"tools":[{"type":"function","function":{"name":"f"}}],
           "tool_choice":"auto"})"},
      {"stream thinking off", true, false,
       R"({"result_format":"message","incremental_output":true,"max_tokens":64,
           "temperature":0.5,"top_p":0.9,"stop":["END"],"enable_thinking":false,"seed":7,
           "enable_search":false,"tools":[{"type":"function","function":{"name":"f"}}],
           "tool_choice":"auto"})"},
      {"non-stream thinking on", false, true,
       R"({"result_format":"message","max_tokens":64,"temperature":0.5,"top_p":0.9,
           "stop":["END"],"enable_thinking":true,"seed":7,"enable_search":false,
           "tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"auto"})"},
      {"non-stream thinking unset", false, std::nullopt,
       R"({"result_format":"message","max_tokens":64,"temperature":0.5,"top_p":0.9,
           "stop":["END"],"seed":7,"enable_search":false,
           "tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"auto"})"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    core::CompletionRequest req = BaseRequest();
    req.max_tokens = 100;
    req.max_completion_tokens = 64;  // preferred
    req.temperature = 0.5;
    req.top_p = 0.9;
    req.stop = {"END"};
    req.enable_thinking = c.thinking;
    req.tools_json = R"([{"type":"function","function":{"name":"f"}}])";
    req.tool_choice_json = R"("auto")";
    req.user = "u1";
    req.passthrough = meridian::testing::Members(R"("seed":7,"n":2,"enable_search":false)");
    const json::value body = json::parse(BuildGenerationRequestBody(req, "qwen3-max", c.stream));
    EXPECT_EQ(body.at("model"), "qwen3-max");
    EXPECT_EQ(body.at("parameters"), json::parse(c.expected_parameters));
    EXPECT_EQ(body.as_object().size(), 3u) << "only model, input, parameters";
    EXPECT_EQ(body.at("input").as_object().size(), 1u);
  }
}

TEST(DashScopeRequest, MessagesAreStringContent) {
  core::CompletionRequest req;
  core::Message user;
  user.role = "user";
  user.text = "describe \"this\"\n";
  user.content_parts_json =
      R"([{"type":"text","text":"describe "},{"type":"text","text":"\"this\"\n"}])";
  core::Message call;
  call.role = "assistant";
  call.content_null = true;
  call.tool_calls_json =
      R"([{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}])";
  core::Message tool;
  tool.role = "tool";
  tool.text = "42";
  tool.tool_call_id = "c1";
  tool.name = "f";
  req.messages = {user, call, tool};
  const json::value body = json::parse(BuildGenerationRequestBody(req, "qwen-plus", false));
  EXPECT_EQ(body.at("input").at("messages"), json::parse(R"([
      {"role":"user","content":"describe \"this\"\n"},
      {"role":"assistant","content":"","tool_calls":[{"id":"c1","type":"function",
        "function":{"name":"f","arguments":"{}"}}]},
      {"role":"tool","content":"42","name":"f","tool_call_id":"c1"}])"));
  EXPECT_EQ(body.at("parameters"), json::parse(R"({"result_format":"message"})"));
}

TEST(DashScopeRequest, AnImageSendsEveryMessageAsMultimodalItems) {
  core::CompletionRequest req;
  core::Message system;
  system.role = "system";
  system.text = "Be brief.";
  core::Message user;
  user.role = "user";
  user.text = "what is it?";
  user.content_parts_json =
      R"([{"type":"text","text":"what is it?"},)"
      R"({"type":"image_url","image_url":{"url":"https://img.example/a.png","detail":"high"}}])";
  req.messages = {system, user};
  ASSERT_TRUE(NeedsMultimodal(req));
  ASSERT_TRUE(CheckContentParts(req, "ds").ok());
  EXPECT_EQ(kMultimodalPath, "/api/v1/services/aigc/multimodal-generation/generation");
  const json::value body = json::parse(BuildGenerationRequestBody(req, "qwen-vl-max", true));
  EXPECT_EQ(body.at("input").at("messages"), json::parse(R"([
      {"role":"system","content":[{"text":"Be brief."}]},
      {"role":"user","content":[{"text":"what is it?"},{"image":"https://img.example/a.png"}]}])"));

  // Answers carry content as items too, in a body and in each frame.
  std::vector<Chunk> out;
  ASSERT_TRUE(DecodeGenerationResponse(
                  R"({"output":{"choices":[{"finish_reason":"stop","message":{"role":"assistant",
                      "content":[{"text":"A red "},{"text":"apple."}]}}]},
                      "usage":{"input_tokens":1271,"output_tokens":4,"image_tokens":1247},
                      "request_id":"r1"})",
                  out)
                  .ok());
  EXPECT_THAT(Lines(out), ::testing::Contains("delta content=A red apple."));
  const Decoded d = DecodeSse(
      "id:1\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":"
      "{\"content\":[{\"text\":\"A red\"}],\"role\":\"assistant\"},\"finish_reason\":\"null\"}]},"
      "\"request_id\":\"r2\"}\n\n"
      "id:2\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":"
      "{\"content\":[],\"role\":\"assistant\"},\"finish_reason\":\"stop\"}]},"
      "\"request_id\":\"r2\"}\n\n",
      /*finish=*/true);
  EXPECT_THAT(d.lines, ::testing::Contains("delta content=A red"));
  EXPECT_THAT(d.lines, ::testing::Contains("finish stop"));

  // What it cannot send is refused, naming the part.
  user.content_parts_json = R"([{"type":"input_audio","input_audio":{"data":"AA=="}}])";
  req.messages = {user};
  EXPECT_EQ(CheckContentParts(req, "ds").param, "messages[0].content[0].type");
  user.content_parts_json = R"([{"type":"image_url","image_url":{"url":"ftp://x/a.png"}}])";
  req.messages = {user};
  EXPECT_EQ(CheckContentParts(req, "ds").param, "messages[0].content[0].image_url.url");
}

TEST(DashScopeRequest, BadPassthroughIsDropped) {
  core::CompletionRequest req = BaseRequest();
  req.passthrough = {{"seed", ""}, {"enable_search", "tru"}};  // values that are not JSON
  const json::value body = json::parse(BuildGenerationRequestBody(req, "m", true));
  EXPECT_EQ(body.at("parameters"),
            json::parse(R"({"result_format":"message","incremental_output":true})"));
}

TEST(DashScopeRequest, PathAndHeaders) {
  EXPECT_EQ(kGenerationPath, "/api/v1/services/aigc/text-generation/generation");
  EXPECT_EQ(kSseHeaderName, "X-DashScope-SSE");
  EXPECT_EQ(kSseHeaderValue, "enable");
}

// ---------------------------------------------------------------------------------------
// Streaming

TEST(DashScopeStream, ReferenceIncrementalStream) {
  const Decoded d = DecodeSse(kIncrementalStream, /*finish=*/true);
  EXPECT_EQ(d.lines, kIncrementalExpected);
  EXPECT_TRUE(d.done);
  EXPECT_TRUE(d.last_status.ok());
}

TEST(DashScopeStream, EverySplitPointGivesIdenticalChunks) {
  for (std::size_t split = 0; split <= kIncrementalStream.size(); ++split) {
    const Decoded d = DecodeSse(kIncrementalStream, true, true, split);
    ASSERT_EQ(d.lines, kIncrementalExpected) << "split at " << split;
  }
  for (std::size_t split = 0; split <= kThinkingStream.size(); ++split) {
    ASSERT_EQ(DecodeSse(kThinkingStream, true, true, split).lines,
              DecodeSse(kThinkingStream, true).lines)
        << "split at " << split;
  }
}

TEST(DashScopeStream, CrlfLinesAndMissingStatusComment) {
  std::string crlf;
  for (char ch : kIncrementalStream) {
    if (ch == '\n') crlf += '\r';
    crlf += ch;
  }
  EXPECT_EQ(DecodeSse(crlf, true).lines, kIncrementalExpected);

  // Older captures (§2.4 [V, third-party] shape): no :HTTP_STATUS line, result_format text.
  constexpr std::string_view kOld =
      "id:1\nevent:result\ndata:{\"output\":{\"finish_reason\":\"null\",\"text\":\"你好\"},"
      "\"usage\":{\"total_tokens\":12,\"output_tokens\":1,\"input_tokens\":11},\"request_id\":"
      "\"db13\"}\n\n"
      "id:2\nevent:result\ndata:{\"output\":{\"finish_reason\":\"stop\",\"text\":\"！\"},"
      "\"usage\":{\"total_tokens\":18,\"output_tokens\":7,\"input_tokens\":11},\"request_id\":"
      "\"db13\"}\n\n";
  EXPECT_THAT(DecodeSse(kOld, true).lines,
              ElementsAre("start db13  0", "delta content=你好", "delta content=！", "finish stop",
                          "usage 11/7/18 reasoning=- cached=-"));
}

TEST(DashScopeStream, ThinkingFramesAndReasoningUsage) {
  const Decoded d = DecodeSse(kThinkingStream, true);
  EXPECT_THAT(d.lines, ElementsAre("start a1959ad1-2637-4672-a21f-4d351371d254  0",
                                   "delta reasoning=The", "delta content=Hi", "finish length",
                                   "usage 287/13/300 reasoning=4 cached=-"));
  EXPECT_TRUE(d.last_status.ok());
}

TEST(DashScopeStream, FinishReasonNullForms) {
  // The string "null", JSON null and a missing finish_reason all mean "not finished".
  constexpr std::string_view kSse =
      "event:result\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"a\"},"
      "\"finish_reason\":\"null\"}]},\"request_id\":\"r\"}\n\n"
      "event:result\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"b\"},"
      "\"finish_reason\":null}]},\"request_id\":\"r\"}\n\n"
      "event:result\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"c\"}}]}}\n\n";
  const Decoded open = DecodeSse(kSse);
  EXPECT_THAT(open.lines,
              ElementsAre("start r  0", "delta content=a", "delta content=b", "delta content=c"));
  EXPECT_FALSE(open.done);
}

TEST(DashScopeStream, ToolCallsFinishAndEventsAfterFinishIgnored) {
  constexpr std::string_view kSse =
      "event:result\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"\",\"tool_"
      "calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":"
      "\"get\",\"arguments\":\"{}\"}}]},\"finish_reason\":\"tool_calls\"}]},\"request_id\":"
      "\"r\"}\n\n"
      "event:result\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"late\"},"
      "\"finish_reason\":\"stop\"}]}}\n\n";
  const Decoded d = DecodeSse(kSse, true);
  EXPECT_THAT(d.lines, ElementsAre("start r  0",
                                   "delta tool_calls=[{\"index\":0,\"id\":\"call_1\",\"type\":"
                                   "\"function\",\"function\":{\"name\":\"get\",\"arguments\":"
                                   "\"{}\"}}]",
                                   "finish tool_calls"));
  EXPECT_TRUE(d.last_status.ok());
}

TEST(DashScopeStream, CumulativeOutputEmitsOnlySuffix) {
  // §2.2: non-incremental streams repeat all text so far: ["我爱","我爱吃","我爱吃苹果"].
  constexpr std::string_view kSse =
      "event:result\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"我爱\"},"
      "\"finish_reason\":\"null\"}]},\"request_id\":\"r\"}\n\n"
      "event:result\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"我爱吃\"},"
      "\"finish_reason\":\"null\"}]},\"request_id\":\"r\"}\n\n"
      "event:result\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"我爱吃苹果\"},"
      "\"finish_reason\":\"stop\"}]},\"usage\":{\"output_tokens\":5,\"input_tokens\":3},"
      "\"request_id\":\"r\"}\n\n";
  EXPECT_THAT(DecodeSse(kSse, true, /*incremental=*/false).lines,
              ElementsAre("start r  0", "delta content=我爱", "delta content=吃",
                          "delta content=苹果", "finish stop", "usage 3/5/8 reasoning=- cached=-"));
  // In incremental mode nothing is stripped, even when a delta repeats the text so far.
  constexpr std::string_view kRepeat =
      "data:{\"output\":{\"choices\":[{\"message\":{\"content\":\"a\"}}]}}\n\n"
      "data:{\"output\":{\"choices\":[{\"message\":{\"content\":\"a\"}}]}}\n\n";
  EXPECT_THAT(DecodeSse(kRepeat).lines,
              ElementsAre("start   0", "delta content=a", "delta content=a"));
}

TEST(DashScopeStream, ErrorFrameInside200Stream) {
  const Decoded d = DecodeSse(kErrorStream, true);
  ASSERT_EQ(d.lines.size(), 1u);
  EXPECT_EQ(d.last_status.code, StatusCode::kInvalidArgument);
  EXPECT_EQ(d.last_status.reason, "invalid_parameter");
  EXPECT_FALSE(d.last_status.retryable);
  EXPECT_THAT(d.last_status.message, HasSubstr("Required parameter(AppId) missing"));
  EXPECT_TRUE(d.done);
}

TEST(DashScopeStream, CodeWithoutOutputAfterContentIsError) {
  // Data payload with code/message (no event:error line), mid-stream moderation block.
  constexpr std::string_view kSse =
      "event:result\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"Hel\"},"
      "\"finish_reason\":\"null\"}]},\"request_id\":\"r\"}\n\n"
      "event:result\ndata:{\"code\":\"DataInspectionFailed\",\"message\":\"Output data may "
      "contain inappropriate content.\",\"request_id\":\"r\"}\n\n";
  const Decoded d = DecodeSse(kSse, true);
  ASSERT_EQ(d.lines.size(), 3u);
  EXPECT_EQ(d.lines[1], "delta content=Hel");
  EXPECT_EQ(d.last_status.code, StatusCode::kInvalidArgument);
  EXPECT_EQ(d.last_status.reason, "data_inspection_failed");
  EXPECT_THAT(d.last_status.message, HasSubstr("inappropriate content"));
}

TEST(DashScopeStream, ThrottlingErrorFrameIsRetryable) {
  constexpr std::string_view kSse =
      "id:1\nevent:error\n:HTTP_STATUS/429\ndata:{\"code\":\"Throttling.RateQuota\",\"message\":"
      "\"Requests rate limit exceeded, please try again later.\",\"request_id\":\"x\"}\n\n";
  const Decoded d = DecodeSse(kSse, true);
  EXPECT_EQ(d.last_status.code, StatusCode::kRateLimited);
  EXPECT_TRUE(d.last_status.retryable);
}

TEST(DashScopeStream, InvalidJsonIsError) {
  const Decoded d = DecodeSse("event:result\ndata:{\"output\":\n\n", true);
  ASSERT_EQ(d.lines.size(), 1u);
  EXPECT_EQ(d.last_status.reason, "upstream_invalid_json");
}

TEST(DashScopeStream, TruncatedStream) {
  // Cut after frame id:2: content was emitted, so not retryable.
  const std::string_view cut = kIncrementalStream.substr(0, kIncrementalStream.find("id:15"));
  const Decoded after = DecodeSse(cut, true);
  ASSERT_EQ(after.lines.size(), 4u);
  EXPECT_EQ(after.last_status.reason, "upstream_truncated_stream");
  EXPECT_EQ(after.last_status.code, StatusCode::kBadUpstream);
  EXPECT_FALSE(after.last_status.retryable);
  EXPECT_TRUE(after.done);
  // Nothing at all: retryable.
  const Decoded empty = DecodeSse("", true);
  ASSERT_EQ(empty.lines.size(), 1u);
  EXPECT_EQ(empty.last_status.reason, "upstream_truncated_stream");
  EXPECT_TRUE(empty.last_status.retryable);
  // Finish after a complete stream is a no-op.
  DashScopeStreamDecoder dec;
  std::vector<Chunk> out;
  EXPECT_TRUE(dec.Finish(out).code == StatusCode::kBadUpstream);
  EXPECT_TRUE(dec.Finish(out).ok());
  EXPECT_EQ(out.size(), 1u);
}

// ---------------------------------------------------------------------------------------
// Non-streaming

TEST(DashScopeResponse, ReferenceMessageBody) {
  // §2.3 [V] (content shortened in the reference to "…").
  constexpr std::string_view kBody = R"({
    "output": {
        "choices": [
            {
                "finish_reason": "stop",
                "message": {
                    "role": "assistant",
                    "content": "【民事起诉状】…"
                }
            }
        ]
    },
    "usage": {
        "total_tokens": 292,
        "output_tokens": 236,
        "input_tokens": 56
    },
    "request_id": "2ae6671b-9373-9c7d-a407-af2029b51659"
})";
  std::vector<Chunk> out;
  EXPECT_TRUE(DecodeGenerationResponse(kBody, out).ok());
  EXPECT_THAT(Lines(out), ElementsAre("start 2ae6671b-9373-9c7d-a407-af2029b51659  0",
                                      "delta content=【民事起诉状】…", "finish stop",
                                      "usage 56/236/292 reasoning=- cached=-"));
}

TEST(DashScopeResponse, TextFormatAndReasoning) {
  // §2.3 [V] result_format text.
  std::vector<Chunk> out;
  EXPECT_TRUE(
      DecodeGenerationResponse(
          R"({"output":{"finish_reason":"stop","text":"你好！很高兴为你提供帮助。"},"usage":{"total_tokens":18,"output_tokens":7,"input_tokens":11},"request_id":"db13c38b-4291-9f90-9117-a6be2d823ee5"})",
          out)
          .ok());
  EXPECT_THAT(Lines(out), ElementsAre("start db13c38b-4291-9f90-9117-a6be2d823ee5  0",
                                      "delta content=你好！很高兴为你提供帮助。", "finish stop",
                                      "usage 11/7/18 reasoning=- cached=-"));
  out.clear();
  EXPECT_TRUE(
      DecodeGenerationResponse(
          R"({"output":{"choices":[{"finish_reason":"null","message":{"content":"A","reasoning_content":"R"}}]},"usage":{"output_tokens":9,"input_tokens":1,"output_tokens_details":{"reasoning_tokens":4},"prompt_tokens_details":{"cached_tokens":0}},"request_id":"q"})",
          out)
          .ok());
  EXPECT_THAT(Lines(out), ElementsAre("start q  0", "delta content=A reasoning=R", "finish stop",
                                      "usage 1/9/10 reasoning=4 cached=0"));
}

TEST(DashScopeResponse, ErrorAndInvalidBodies) {
  std::vector<Chunk> out;
  core::Status s = DecodeGenerationResponse(
      R"({"code":"InternalError","message":"An internal error has occured, please try again later or contact service support.","request_id":"z"})",
      out);
  EXPECT_EQ(s.code, StatusCode::kUnavailable);
  EXPECT_TRUE(s.retryable);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, Chunk::Kind::kError);
  out.clear();
  EXPECT_EQ(DecodeGenerationResponse("not json", out).reason, "upstream_invalid_json");
  out.clear();
  EXPECT_EQ(DecodeGenerationResponse(R"({"request_id":"x"})", out).reason, "upstream_no_output");
  EXPECT_EQ(out.size(), 1u);
}

// ---------------------------------------------------------------------------------------
// Errors

std::string Body(std::string_view code, std::string_view message) {
  return std::string(R"({"code":")") + std::string(code) + R"(","message":")" +
         std::string(message) + R"(","request_id":"fb53c4ec-1c12-4fc4-a580-cdb7c3261fc1"})";
}

struct ErrorCase {
  int http;
  std::string body;
  StatusCode code;
  bool retryable;
  const char* reason;
};

TEST(DashScopeError, MappingTable) {
  const ErrorCase cases[] = {
      {401, R"({
    "code":"InvalidApiKey",
    "message":"Invalid API-key provided.",
    "request_id":"fb53c4ec-1c12-4fc4-a580-cdb7c3261fc1"
})",
       StatusCode::kBadUpstream, false, "upstream_unauthorized"},
      {400,
       Body("InvalidParameter",
            "Required parameter(s) missing or invalid, please check the request parameters."),
       StatusCode::kInvalidArgument, false, "invalid_parameter"},
      {400, Body("DataInspectionFailed", "Input or output data may contain inappropriate content."),
       StatusCode::kInvalidArgument, false, "data_inspection_failed"},
      {400, Body("data_inspection_failed", "Input data may contain inappropriate content."),
       StatusCode::kInvalidArgument, false, "data_inspection_failed"},
      {400, Body("Arrearage", "Access denied, plesase make sure your account is in good standing."),
       StatusCode::kBadUpstream, false, "upstream_arrearage"},
      {400,
       Body("invalid_parameter_error",
            "This model only support stream mode, please enable the stream parameter to "
            "access the model."),
       StatusCode::kInvalidArgument, false, "invalid_parameter"},
      {403, Body("AccessDenied", "Access denied."), StatusCode::kBadUpstream, false,
       "upstream_forbidden"},
      {403, Body("AccessDenied.Unpurchased", "Access denied."), StatusCode::kBadUpstream, false,
       "upstream_forbidden"},
      {408, Body("RequestTimeOut", "Request timed out, please try again later."),
       StatusCode::kUpstreamTimeout, true, "upstream_timeout"},
      {413, Body("BadRequest.TooLarge", ""), StatusCode::kPayloadTooLarge, false,
       "upstream_payload_too_large"},
      {429, Body("Throttling", "Requests throttling triggered."), StatusCode::kRateLimited, true,
       "upstream_rate_limited"},
      {429, Body("Throttling.RateQuota", "Requests rate limit exceeded, please try again later."),
       StatusCode::kRateLimited, true, "upstream_rate_limited"},
      {429,
       Body("Throttling.AllocationQuota",
            "Allocated quota exceeded, please increase your quota limit."),
       StatusCode::kRateLimited, true, "upstream_rate_limited"},
      {500,
       Body("InternalError",
            "An internal error has occured, please try again later or contact service support."),
       StatusCode::kUnavailable, true, "upstream_unavailable"},
      {500, Body("InternalError.Algo", "x"), StatusCode::kUnavailable, true,
       "upstream_unavailable"},
      {502, "<html>Bad Gateway</html>", StatusCode::kUnavailable, true, "upstream_unavailable"},
      {504, "", StatusCode::kUpstreamTimeout, true, "upstream_timeout"},
      {404, "", StatusCode::kBadUpstream, false, "upstream_not_found"},
      {409, Body("Conflict", "x"), StatusCode::kBadUpstream, false, "upstream_client_error"},
      {400, "garbage", StatusCode::kInvalidArgument, false, "upstream_invalid_request"},
      {0, Body("SomethingNew", "x"), StatusCode::kBadUpstream, false, "upstream_error"},
      {0, Body("Throttling", "x"), StatusCode::kRateLimited, true, "upstream_rate_limited"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::to_string(c.http) + " " + c.body);
    const core::Status s = MapDashScopeError(c.http, c.body);
    EXPECT_EQ(s.code, c.code);
    EXPECT_EQ(s.retryable, c.retryable);
    EXPECT_EQ(s.reason, c.reason);
    EXPECT_FALSE(s.message.empty());
  }
}

TEST(DashScopeError, DataInspectionMessageReachesClient) {
  const core::Status s = MapDashScopeError(
      400, Body("DataInspectionFailed", "Input or output data may contain inappropriate content."));
  EXPECT_EQ(s.message,
            "upstream content moderation rejected the request: Input or output data may contain "
            "inappropriate content.");
  EXPECT_EQ(s.param, "messages");
}

TEST(DashScopeError, KeysAreNeverEchoed) {
  // Credential errors get a fixed message, whatever the upstream said.
  const core::Status key = MapDashScopeError(
      401, Body("InvalidApiKey", "Invalid API-key provided: sk-0a1b2c3d4e5f6a7b"));
  EXPECT_THAT(key.message, Not(HasSubstr("sk-")));
  EXPECT_THAT(key.message, Not(HasSubstr("0a1b2c")));
  // Forwarded messages are redacted.
  const core::Status param = MapDashScopeError(
      400, Body("InvalidParameter", "bad key sk-0a1b2c3d4e5f60718293a4b5c6d7e8f9 in header"));
  EXPECT_THAT(param.message, HasSubstr("[redacted]"));
  EXPECT_THAT(param.message, Not(HasSubstr("0a1b2c3d")));
  EXPECT_EQ(param.message,
            "upstream returned HTTP 400 (InvalidParameter): bad key [redacted] in header");
}

}  // namespace
}  // namespace meridian::providers::dashscope
