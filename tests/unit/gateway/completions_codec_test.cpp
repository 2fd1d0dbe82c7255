// The legacy Completions codec, as pure functions: a prompt onto the core request, and chunks
// back into text_completion objects and events.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/http/completions_request.h"
#include "gateway/http/completions_response.h"
#include "tests/unit/passthrough_members.h"

namespace meridian::http {
namespace {

namespace json = boost::json;
using core::Chunk;
using core::Status;
using core::StatusCode;
using ::testing::ElementsAre;

TEST(DecodeCompletionsRequest, APromptIsOneUserMessageWithOpenAisDefaultLength) {
  core::CompletionRequest r;
  ASSERT_TRUE(DecodeCompletionsRequest(
                  R"({"model":"m","prompt":["Say this is a test"],"temperature":0.1,
                      "stop":"\n","seed":3,"user":"u","stream":true,
                      "stream_options":{"include_usage":true},"echo":false,"n":1})",
                  r)
                  .ok());
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].role, "user");
  EXPECT_EQ(r.messages[0].text, "Say this is a test");
  EXPECT_EQ(r.max_tokens, 16);
  EXPECT_EQ(r.temperature, 0.1);
  EXPECT_THAT(r.stop, ElementsAre("\n"));
  EXPECT_EQ(r.user, "u");
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(meridian::testing::MembersJson(r), R"("seed":3)");
  ASSERT_TRUE(DecodeCompletionsRequest(R"({"model":"m","prompt":"x","max_tokens":99})", r).ok());
  EXPECT_EQ(r.max_tokens, 99);
}

TEST(DecodeCompletionsRequest, RefusesWhatAChatModelCannotHonour) {
  for (const auto& [body, param, reason] :
       std::vector<std::tuple<const char*, const char*, const char*>>{
           {R"({"model":"m"})", "prompt", "missing_required_parameter"},
           {R"({"prompt":"x"})", "model", "missing_required_parameter"},
           {R"({"model":"m","prompt":["a","b"]})", "prompt", "unsupported_parameter"},
           {R"({"model":"m","prompt":[[1,2]]})", "prompt[0]", "unsupported_parameter"},
           {R"({"model":"m","prompt":"x","echo":true})", "echo", "unsupported_parameter"},
           {R"({"model":"m","prompt":"x","suffix":"y"})", "suffix", "unsupported_parameter"},
           {R"({"model":"m","prompt":"x","logprobs":2})", "logprobs", "unsupported_parameter"},
           {R"({"model":"m","prompt":"x","n":2})", "n", "invalid_value"},
           {R"({"model":"m","prompt":"x","stream_options":{}})", "stream_options", "invalid_value"},
           {R"({"model":"m","prompt":"x","messages":[]})", "messages", "unknown_parameter"},
       }) {
    SCOPED_TRACE(body);
    core::CompletionRequest r;
    const Status s = DecodeCompletionsRequest(body, r);
    EXPECT_EQ(s.code, StatusCode::kInvalidArgument);
    EXPECT_EQ(s.param, param);
    EXPECT_EQ(s.reason, reason) << s.message;
    EXPECT_TRUE(r.messages.empty());
  }
}

TEST(CompletionsStream, TextCompletionEventsThenDone) {
  CompletionsStreamEncoder enc("cmpl-1", 7, "m", true);
  std::string out;
  Chunk text;
  text.content = "Hi";
  Chunk think;
  think.reasoning = "not shown";
  Chunk finish;
  finish.kind = Chunk::Kind::kFinish;
  finish.finish_reason = "length";
  Chunk usage;
  usage.kind = Chunk::Kind::kUsage;
  usage.usage.prompt_tokens = 2;
  usage.usage.completion_tokens = 1;
  for (const Chunk& c : {think, text, finish, usage}) enc.Encode(c, out);
  enc.Done(out);
  EXPECT_EQ(out,
            "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":7,\"model\":\"m\","
            "\"choices\":[{\"text\":\"Hi\",\"index\":0,\"logprobs\":null,\"finish_reason\":null}]}"
            "\n\n"
            "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":7,\"model\":\"m\","
            "\"choices\":[{\"text\":\"\",\"index\":0,\"logprobs\":null,\"finish_reason\":"
            "\"length\"}]}\n\n"
            "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":7,\"model\":\"m\","
            "\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":1,"
            "\"total_tokens\":3}}\n\n"
            "data: [DONE]\n\n");
  std::string late;
  enc.Error(Status::Error(StatusCode::kInternal, "x"), late);
  EXPECT_EQ(late, "");
}

TEST(RenderTextCompletion, OneChoiceWithUsage) {
  core::CompletionAggregator agg;
  Chunk text;
  text.content = "This is a test.";
  agg.Add(text);
  EXPECT_EQ(json::parse(RenderTextCompletion(agg.completion(), "cmpl-1", 7, "m")),
            json::parse(R"({"id":"cmpl-1","object":"text_completion","created":7,"model":"m",
              "choices":[{"text":"This is a test.","index":0,"logprobs":null,
                          "finish_reason":"stop"}],
              "usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}})"));
}

}  // namespace
}  // namespace meridian::http
