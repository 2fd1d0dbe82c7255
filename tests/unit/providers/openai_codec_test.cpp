#include "providers/openai/openai_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "providers/common/sanitize.h"
#include "providers/common/sse_parser.h"
#include "providers/openai/chunk_scan.h"
#include "tests/unit/passthrough_members.h"
#include "tests/unit/providers/chunk_lines.h"

namespace meridian::providers::openai {
namespace {

namespace json = boost::json;
using core::Chunk;
using core::StatusCode;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// One line per chunk, so that whole streams compare as readable string lists.
std::string Describe(const Chunk& c) {
  return providers::testing::Describe(c, false);
}

std::vector<std::string> Lines(const std::vector<Chunk>& chunks) {
  return providers::testing::Lines(chunks, false);
}

struct Decoded {
  std::vector<Chunk> chunks;
  std::vector<std::string> lines;
  bool done = false;
  core::Status last_status;
};

// Runs raw SSE bytes through SseParser and the decoder, like the adapter will; `finish`
// simulates the connection closing afterwards.
Decoded DecodeSse(std::string_view sse, bool finish = false) {
  SseParser parser;
  std::vector<SseEvent> events;
  EXPECT_TRUE(parser.Feed(sse, events));
  EXPECT_TRUE(parser.Finish());
  OpenAiStreamDecoder decoder;
  Decoded d;
  for (const auto& e : events) {
    core::Status s = decoder.Decode(e.data, d.chunks);
    if (!s.ok()) d.last_status = s;
  }
  if (finish) {
    core::Status s = decoder.Finish(d.chunks);
    if (!s.ok()) d.last_status = s;
  }
  d.done = decoder.done();
  for (const auto& c : d.chunks) d.lines.push_back(Describe(c));
  return d;
}

// Wraps JSON payloads as SSE events ("data: <payload>\n\n").
std::string Sse(std::initializer_list<std::string_view> payloads) {
  std::string out;
  for (auto p : payloads) {
    out += "data: ";
    out += p;
    out += "\n\n";
  }
  return out;
}

std::string CodeStr(StatusCode c) {
  return std::to_string(static_cast<int>(c));
}

// --------------------------------------------------------------------------------------------
// Streaming

// §1.5 byte-level stream with include_usage [C].
constexpr std::string_view kOpenAiUsageStream =
    R"(data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}

data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}}

data: [DONE]

)";

TEST(OpenAiStreamDecoder, OpenAiStreamWithIncludeUsage) {
  const Decoded d = DecodeSse(kOpenAiUsageStream, /*finish=*/true);
  EXPECT_THAT(d.lines,
              ElementsAre("start chatcmpl-123 gpt-4o-mini 1694268190", "delta content=Hello",
                          "finish stop", "usage 9/1/10 reasoning=- cached=-"));
  EXPECT_TRUE(d.done);
  EXPECT_TRUE(d.last_status.ok());
}

TEST(OpenAiStreamDecoder, SpecExampleWithObfuscationAndFingerprint) {
  // §1.5 spec payloads [V]; the stream has no usage chunk and (here) no [DONE].
  const std::string sse = Sse({
      R"({"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini", "system_fingerprint": "fp_44709d6fcb", "choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"obfuscation":"r4N7vQ2m"})",
      R"({"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini", "system_fingerprint": "fp_44709d6fcb", "choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"obfuscation":"p9K3xT6w"})",
      R"({"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini", "system_fingerprint": "fp_44709d6fcb", "choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"obfuscation":""})",
  });
  const Decoded d = DecodeSse(sse, /*finish=*/true);
  EXPECT_THAT(d.lines, ElementsAre("start chatcmpl-123 gpt-4o-mini 1694268190",
                                   "delta content=Hello", "finish stop"));
  EXPECT_TRUE(d.last_status.ok()) << "a finished stream without [DONE] is not an error";
}

TEST(OpenAiStreamDecoder, ToolCallArgumentFragmentsAcrossChunks) {
  // Shape per §1.5 "Tool-call deltas" [C].
  const std::string sse = Sse({
      R"({"id":"chatcmpl-t1","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_abc123","type":"function","function":{"name":"get_current_weather","arguments":""}}]},"logprobs":null,"finish_reason":null}],"usage":null})",
      R"({"id":"chatcmpl-t1","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"location\""}}]},"logprobs":null,"finish_reason":null}],"usage":null})",
      R"({"id":"chatcmpl-t1","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":": \"Boston, MA\"}"}}]},"logprobs":null,"finish_reason":null}],"usage":null})",
      R"({"id":"chatcmpl-t1","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}],"usage":null})",
      "[DONE]",
  });
  const Decoded d = DecodeSse(sse);
  ASSERT_THAT(d.lines, ElementsAre("start chatcmpl-t1 gpt-4o 1741569952", "delta tool_calls",
                                   "delta tool_calls", "delta tool_calls", "finish tool_calls"));
  EXPECT_EQ(json::parse(d.chunks[1].tool_calls_json),
            json::parse(R"([{"index":0,"id":"call_abc123","type":"function",
                            "function":{"name":"get_current_weather","arguments":""}}])"));
  std::string arguments;
  for (std::size_t i = 1; i <= 3; ++i) {
    const json::value v = json::parse(d.chunks[i].tool_calls_json);
    ASSERT_TRUE(v.is_array());
    EXPECT_EQ(v.at(0).at("index").as_int64(), 0);
    arguments += v.at(0).at("function").at("arguments").as_string().c_str();
  }
  EXPECT_EQ(arguments, R"({"location": "Boston, MA"})");
}

TEST(OpenAiStreamDecoder, MidStreamErrorFrame) {
  // §1.6: an error payload after HTTP 200, then the connection closes.
  const std::string sse = Sse({
      R"({"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"logprobs":null,"finish_reason":null}]})",
      R"({"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}})",
      R"({"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"ignored"},"logprobs":null,"finish_reason":null}]})",
  });
  const Decoded d = DecodeSse(sse, /*finish=*/true);
  EXPECT_THAT(d.lines, ElementsAre("start chatcmpl-123 gpt-4o-mini 1694268190", "delta content=Hel",
                                   "error " + CodeStr(StatusCode::kBadUpstream) +
                                       " server_error retryable: The server had an error while "
                                       "processing your request. Sorry about that!"));
  EXPECT_TRUE(d.done);
  EXPECT_EQ(d.last_status.code, StatusCode::kBadUpstream);
}

TEST(OpenAiStreamDecoder, ErrorFrameRetryabilityAndReason) {
  struct Case {
    std::string_view payload;
    std::string reason;
    bool retryable;
  };
  const Case cases[] = {
      {R"({"error":{"message":"m","type":"invalid_request_error","param":null,"code":"context_length_exceeded"}})",
       "context_length_exceeded", false},
      {R"({"error":{"message":"m","type":"invalid_request_error","param":null,"code":null}})",
       "invalid_request_error", false},
      {R"({"error":{"message":"Overloaded","type":"overloaded_error"}})", "overloaded_error", true},
      {R"({"error":{"code":503,"message":"Loading model","type":"unavailable_error"}})",
       "unavailable_error", true},
      {R"({"error":{"code":500,"message":"boom"}})", "upstream_stream_error", true},
      {R"({"error":{"code":400,"message":"bad"}})", "upstream_stream_error", false},
      {R"({"error":"model runner has unexpectedly stopped"})", "upstream_stream_error", false},
      {R"({"object":"error","message":"m","type":"BadRequestError","param":null,"code":400,"error":{}})",
       "upstream_stream_error", false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.payload);
    OpenAiStreamDecoder decoder;
    std::vector<Chunk> out;
    const core::Status s = decoder.Decode(c.payload, out);
    ASSERT_EQ(out.size(), 1u) << "no kStart before an error";
    EXPECT_EQ(out[0].kind, Chunk::Kind::kError);
    EXPECT_EQ(s.code, StatusCode::kBadUpstream);
    EXPECT_EQ(s.reason, c.reason);
    EXPECT_EQ(s.retryable, c.retryable);
    EXPECT_EQ(out[0].error.reason, s.reason);
    EXPECT_FALSE(s.message.empty());
    EXPECT_TRUE(decoder.done());
  }
}

TEST(OpenAiStreamDecoder, ErrorMessageIsRedactedAndBounded) {
  OpenAiStreamDecoder decoder;
  std::vector<Chunk> out;
  const std::string payload = R"({"error":{"message":"Incorrect API key provided: sk-proj-)" +
                              std::string(2000, 'A') + R"(","type":"invalid_request_error"}})";
  const core::Status s = decoder.Decode(payload, out);
  EXPECT_THAT(s.message, Not(HasSubstr("sk-")));
  EXPECT_THAT(s.message, HasSubstr("[redacted]"));
  EXPECT_LE(s.message.size(), 512u);
}

TEST(OpenAiStreamDecoder, InvalidJson) {
  for (std::string_view bad : {"{\"id\":", "not json", "[1,2]", "\"str\"", "{\"a\":1}x"}) {
    SCOPED_TRACE(bad);
    OpenAiStreamDecoder decoder;
    std::vector<Chunk> out;
    const core::Status s = decoder.Decode(bad, out);
    EXPECT_EQ(s.code, StatusCode::kBadUpstream);
    EXPECT_EQ(s.message, "upstream sent invalid JSON in stream");
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].kind, Chunk::Kind::kError);
    EXPECT_TRUE(decoder.done());
  }
}

// vLLM with --reasoning-parser qwen3: `reasoning`, then a usage chunk with "choices": null
// (§5 quirk) [C].
constexpr std::string_view kVllmReasoningStream =
    R"(data: {"id":"chatcmpl-9f3c","object":"chat.completion.chunk","created":1750000000,"model":"Qwen/Qwen3-8B","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-9f3c","object":"chat.completion.chunk","created":1750000000,"model":"Qwen/Qwen3-8B","choices":[{"index":0,"delta":{"reasoning":"Okay, the user"},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-9f3c","object":"chat.completion.chunk","created":1750000000,"model":"Qwen/Qwen3-8B","choices":[{"index":0,"delta":{"reasoning":null,"content":"Hi!"},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-9f3c","object":"chat.completion.chunk","created":1750000000,"model":"Qwen/Qwen3-8B","choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"stop","stop_reason":null}]}

data: {"id":"chatcmpl-9f3c","object":"chat.completion.chunk","created":1750000000,"model":"Qwen/Qwen3-8B","choices":null,"usage":{"prompt_tokens":12,"total_tokens":42,"completion_tokens":30,"completion_tokens_details":{"reasoning_tokens":20},"prompt_tokens_details":null}}

data: [DONE]

)";

TEST(OpenAiStreamDecoder, VllmReasoningAndUsageWithNullChoices) {
  const Decoded d = DecodeSse(kVllmReasoningStream);
  EXPECT_THAT(d.lines, ElementsAre("start chatcmpl-9f3c Qwen/Qwen3-8B 1750000000",
                                   "delta reasoning=Okay, the user", "delta content=Hi!",
                                   "finish stop", "usage 12/30/42 reasoning=20 cached=-"));
  EXPECT_TRUE(d.done);
}

TEST(OpenAiStreamDecoder, UsageChunkWithoutChoicesKey) {
  const Decoded d = DecodeSse(Sse({
      R"({"id":"c1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"length"}]})",
      R"({"id":"c1","object":"chat.completion.chunk","created":5,"model":"m","usage":{"prompt_tokens":3,"completion_tokens":4,"prompt_tokens_details":{"cached_tokens":2}}})",
      "[DONE]",
  }));
  EXPECT_THAT(d.lines, ElementsAre("start c1 m 5", "delta content=x", "finish length",
                                   "usage 3/4/7 reasoning=- cached=2"));
}

TEST(OpenAiStreamDecoder, UsageOnlyChunkIsEmittedAtOnce) {
  // The front end can write usage before [DONE] arrives (or if it never does).
  OpenAiStreamDecoder decoder;
  std::vector<Chunk> out;
  ASSERT_TRUE(
      decoder
          .Decode(
              R"({"id":"c","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}],"usage":null})",
              out)
          .ok());
  ASSERT_TRUE(
      decoder
          .Decode(
              R"({"id":"c","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}})",
              out)
          .ok());
  EXPECT_THAT(Lines(out), ElementsAre("start c m 1", "delta content=x", "finish stop",
                                      "usage 1/2/3 reasoning=- cached=-"));
  EXPECT_FALSE(decoder.done());
  ASSERT_TRUE(decoder.Decode("[DONE]", out).ok());
  EXPECT_EQ(out.size(), 4u);
}

TEST(OpenAiStreamDecoder, LlamaCppReasoningContent) {
  // llama-server with --reasoning-format deepseek [C]; `timings` is an extra field.
  const Decoded d = DecodeSse(Sse({
      R"({"choices":[{"finish_reason":null,"index":0,"delta":{"role":"assistant","content":null}}],"created":1750000001,"id":"chatcmpl-ll","model":"qwen3-8b-q4_k_m.gguf","system_fingerprint":"b6000-00dc805","object":"chat.completion.chunk"})",
      R"({"choices":[{"finish_reason":null,"index":0,"delta":{"reasoning_content":"Let me think"}}],"created":1750000001,"id":"chatcmpl-ll","model":"qwen3-8b-q4_k_m.gguf","object":"chat.completion.chunk"})",
      R"({"choices":[{"finish_reason":null,"index":0,"delta":{"content":"Answer"}}],"created":1750000001,"id":"chatcmpl-ll","model":"qwen3-8b-q4_k_m.gguf","object":"chat.completion.chunk"})",
      R"({"choices":[{"finish_reason":"stop","index":0,"delta":{}}],"created":1750000001,"id":"chatcmpl-ll","model":"qwen3-8b-q4_k_m.gguf","object":"chat.completion.chunk","usage":{"completion_tokens":9,"prompt_tokens":11,"total_tokens":20},"timings":{"prompt_n":11,"predicted_ms":80.5}})",
      "[DONE]",
  }));
  EXPECT_THAT(d.lines, ElementsAre("start chatcmpl-ll qwen3-8b-q4_k_m.gguf 1750000001",
                                   "delta reasoning=Let me think", "delta content=Answer",
                                   "finish stop", "usage 11/9/20 reasoning=- cached=-"));
}

TEST(OpenAiStreamDecoder, DashScopeCompatibleMode) {
  // §2.6 [V] (the reasoning frame is the qwq-32b first frame, also [V]).
  const Decoded d = DecodeSse(Sse({
      R"({"choices":[{"delta":{"content":null,"role":"assistant","reasoning_content":""},"index":0,"logprobs":null,"finish_reason":null}],"object":"chat.completion.chunk","usage":null,"created":1741185359,"system_fingerprint":null,"model":"qwq-32b","id":"chatcmpl-6c2000e7-b744-9e61-bd03-fc4333d0e5d1"})",
      R"({"choices":[{"delta":{"content":null,"reasoning_content":"嗯"},"index":0,"logprobs":null,"finish_reason":null}],"object":"chat.completion.chunk","usage":null,"created":1741185359,"system_fingerprint":null,"model":"qwq-32b","id":"chatcmpl-6c2000e7-b744-9e61-bd03-fc4333d0e5d1"})",
      R"({"choices":[{"finish_reason":null,"delta":{"content":"我是","reasoning_content":null},"index":0,"logprobs":null}],"object":"chat.completion.chunk","usage":null,"created":1741185359,"system_fingerprint":null,"model":"qwq-32b","id":"chatcmpl-6c2000e7-b744-9e61-bd03-fc4333d0e5d1"})",
      R"({"choices":[{"finish_reason":"stop","delta":{"content":""},"index":0,"logprobs":null}],"object":"chat.completion.chunk","usage":null,"created":1741185359,"system_fingerprint":null,"model":"qwq-32b","id":"chatcmpl-6c2000e7-b744-9e61-bd03-fc4333d0e5d1"})",
      R"({"choices":[],"object":"chat.completion.chunk","usage":{"prompt_tokens":22,"completion_tokens":17,"total_tokens":39,"completion_tokens_details":{"reasoning_tokens":5}},"created":1741185359,"system_fingerprint":null,"model":"qwq-32b","id":"chatcmpl-6c2000e7-b744-9e61-bd03-fc4333d0e5d1"})",
      "[DONE]",
  }));
  EXPECT_THAT(d.lines,
              ElementsAre("start chatcmpl-6c2000e7-b744-9e61-bd03-fc4333d0e5d1 qwq-32b 1741185359",
                          "delta reasoning=嗯", "delta content=我是", "finish stop",
                          "usage 22/17/39 reasoning=5 cached=-"));
}

// §4: Azure's first chunk has "choices": [] with prompt annotations and empty id/model;
// filter annotations can come mid-stream; a filtered completion ends with content_filter [C].
constexpr std::string_view kAzureStream =
    R"(data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}}]}

data: {"choices":[{"content_filter_results":{},"delta":{"content":"","refusal":null,"role":"assistant"},"finish_reason":null,"index":0,"logprobs":null}],"created":1741569952,"id":"chatcmpl-AzUr3","model":"gpt-4o-2024-11-20","object":"chat.completion.chunk","system_fingerprint":"fp_ee1d74bde0"}

data: {"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}},"delta":{"content":"Once upon"},"finish_reason":null,"index":0,"logprobs":null}],"created":1741569952,"id":"chatcmpl-AzUr3","model":"gpt-4o-2024-11-20","object":"chat.completion.chunk","system_fingerprint":"fp_ee1d74bde0"}

data: {"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":true,"severity":"high"}},"delta":{},"finish_reason":null,"index":0,"logprobs":null}],"created":1741569952,"id":"chatcmpl-AzUr3","model":"gpt-4o-2024-11-20","object":"chat.completion.chunk","system_fingerprint":"fp_ee1d74bde0"}

data: {"choices":[{"content_filter_results":{},"delta":{},"finish_reason":"content_filter","index":0,"logprobs":null}],"created":1741569952,"id":"chatcmpl-AzUr3","model":"gpt-4o-2024-11-20","object":"chat.completion.chunk","system_fingerprint":"fp_ee1d74bde0","usage":null}

data: {"choices":[],"created":1741569952,"id":"chatcmpl-AzUr3","model":"gpt-4o-2024-11-20","object":"chat.completion.chunk","usage":{"completion_tokens":3,"prompt_tokens":20,"total_tokens":23,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}

data: [DONE]

)";

TEST(OpenAiStreamDecoder, AzureEmptyChoicesFirstChunkAndContentFilter) {
  const Decoded d = DecodeSse(kAzureStream);
  EXPECT_THAT(d.lines, ElementsAre("start chatcmpl-AzUr3 gpt-4o-2024-11-20 1741569952",
                                   "delta content=Once upon", "finish content_filter",
                                   "usage 20/3/23 reasoning=0 cached=0"));
}

TEST(OpenAiStreamDecoder, AzurePromptAnnotationAloneEmitsNothing) {
  OpenAiStreamDecoder decoder;
  std::vector<Chunk> out;
  EXPECT_TRUE(
      decoder
          .Decode(
              R"({"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[]})",
              out)
          .ok());
  EXPECT_THAT(out, IsEmpty());
  EXPECT_FALSE(decoder.started());
}

TEST(OpenAiStreamDecoder, OnlyChoiceIndexZeroIsForwarded) {
  const Decoded d = DecodeSse(Sse({
      R"({"id":"c","created":1,"model":"m","choices":[{"index":1,"delta":{"role":"assistant","content":"B"},"finish_reason":null},{"index":0,"delta":{"role":"assistant","content":"A"},"finish_reason":null}]})",
      R"({"id":"c","created":1,"model":"m","choices":[{"index":1,"delta":{},"finish_reason":"length"}]})",
      R"({"id":"c","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})",
      "[DONE]",
  }));
  EXPECT_THAT(d.lines, ElementsAre("start c m 1", "delta content=A", "finish stop"));
}

TEST(OpenAiStreamDecoder, UnknownFinishReasonPassesThroughAndFinishIsOnce) {
  const Decoded d = DecodeSse(Sse({
      R"({"id":"c","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"eos_token"}]})",
      R"({"id":"c","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"late"},"finish_reason":"stop"}]})",
      "[DONE]",
  }));
  EXPECT_THAT(d.lines, ElementsAre("start c m 1", "delta content=a", "finish eos_token"));
}

TEST(OpenAiStreamDecoder, UsageOnContentChunksIsEmittedOnceAtDone) {
  // Engines with continuous usage stats report cumulative usage on every chunk.
  const Decoded d = DecodeSse(Sse({
      R"({"id":"c","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}})",
      R"({"id":"c","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"b"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}})",
      "[DONE]",
  }));
  EXPECT_THAT(d.lines, ElementsAre("start c m 1", "delta content=a", "delta content=b",
                                   "finish stop", "usage 5/2/7 reasoning=- cached=-"));

  // Without [DONE], Finish flushes it.
  const Decoded f = DecodeSse(
      Sse({R"({"id":"c","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}})"}),
      /*finish=*/true);
  EXPECT_THAT(f.lines, ElementsAre("start c m 1", "delta content=a", "finish stop",
                                   "usage 5/1/6 reasoning=- cached=-"));
  EXPECT_TRUE(f.last_status.ok());
}

TEST(OpenAiStreamDecoder, DoneAndTruncation) {
  {
    OpenAiStreamDecoder decoder;
    std::vector<Chunk> out;
    EXPECT_TRUE(decoder.Decode("[DONE]", out).ok());
    EXPECT_TRUE(decoder.done());
    EXPECT_TRUE(
        decoder.Decode(R"({"id":"c","choices":[{"index":0,"delta":{"content":"x"}}]})", out).ok());
    EXPECT_TRUE(decoder.Finish(out).ok());
    EXPECT_THAT(out, IsEmpty());
  }
  {
    // Closed before anything: retryable (nothing reached the client).
    OpenAiStreamDecoder decoder;
    std::vector<Chunk> out;
    const core::Status s = decoder.Finish(out);
    EXPECT_EQ(s.reason, "upstream_truncated_stream");
    EXPECT_TRUE(s.retryable);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].kind, Chunk::Kind::kError);
  }
  {
    // Closed mid-answer: not retryable.
    const Decoded d = DecodeSse(
        Sse({R"({"id":"c","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]})"}),
        /*finish=*/true);
    ASSERT_EQ(d.lines.size(), 3u);
    EXPECT_EQ(d.chunks[2].kind, Chunk::Kind::kError);
    EXPECT_FALSE(d.last_status.retryable);
    EXPECT_EQ(d.last_status.code, StatusCode::kBadUpstream);
  }
}

TEST(OpenAiStreamDecoder, KeepAlivesAndRoleOnlyChunks) {
  OpenAiStreamDecoder decoder;
  std::vector<Chunk> out;
  EXPECT_TRUE(decoder.Decode("", out).ok());
  EXPECT_TRUE(decoder.Decode("  \n", out).ok());
  EXPECT_THAT(out, IsEmpty());
  EXPECT_TRUE(
      decoder
          .Decode(
              R"({"id":"c","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]})",
              out)
          .ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, Chunk::Kind::kStart);
  EXPECT_TRUE(decoder.started());
}

// --------------------------------------------------------------------------------------------
// Non-streaming

TEST(DecodeChatResponse, OpenAiExample) {
  // §1.4 [V].
  constexpr std::string_view kBody = R"({
  "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
  "object": "chat.completion",
  "created": 1741569952,
  "model": "gpt-5.4",
  "choices": [
    {
      "index": 0,
      "message": {
        "role": "assistant",
        "content": "Hello! How can I assist you today?",
        "refusal": null,
        "annotations": []
      },
      "logprobs": null,
      "finish_reason": "stop"
    }
  ],
  "usage": {
    "prompt_tokens": 19,
    "completion_tokens": 10,
    "total_tokens": 29,
    "prompt_tokens_details": {
      "cached_tokens": 0,
      "audio_tokens": 0
    },
    "completion_tokens_details": {
      "reasoning_tokens": 0,
      "audio_tokens": 0,
      "accepted_prediction_tokens": 0,
      "rejected_prediction_tokens": 0
    }
  },
  "service_tier": "default"
})";
  std::vector<Chunk> out;
  EXPECT_TRUE(DecodeChatResponse(kBody, out).ok());
  EXPECT_THAT(Lines(out),
              ElementsAre("start chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT gpt-5.4 1741569952",
                          "delta content=Hello! How can I assist you today?", "finish stop",
                          "usage 19/10/29 reasoning=0 cached=0"));
}

TEST(DecodeChatResponse, ToolCallVariant) {
  // §1.4 tool-call variant [V], completed around the abridged part.
  constexpr std::string_view kBody =
      R"({"id":"chatcmpl-abc","object":"chat.completion","created":1741569952,"model":"gpt-5.4","choices":[{"index":0,"message": {"role": "assistant", "content": null, "tool_calls": [{"id": "call_abc123", "type": "function", "function": {"name": "get_current_weather", "arguments": "{\n\"location\": \"Boston, MA\"\n}"}}]},"logprobs":null,"finish_reason": "tool_calls"}]})";
  std::vector<Chunk> out;
  EXPECT_TRUE(DecodeChatResponse(kBody, out).ok());
  ASSERT_THAT(Lines(out), ElementsAre("start chatcmpl-abc gpt-5.4 1741569952", "delta tool_calls",
                                      "finish tool_calls"));
  EXPECT_EQ(
      json::parse(out[1].tool_calls_json),
      json::parse(
          R"([{"id": "call_abc123", "type": "function", "function": {"name": "get_current_weather", "arguments": "{\n\"location\": \"Boston, MA\"\n}"}}])"));
}

TEST(DecodeChatResponse, ReasoningFieldsAndMissingFinishReason) {
  std::vector<Chunk> out;
  EXPECT_TRUE(
      DecodeChatResponse(
          R"({"id":"a","created":2,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"4","reasoning":"2+2"},"finish_reason":null}]})",
          out)
          .ok());
  EXPECT_THAT(Lines(out),
              ElementsAre("start a m 2", "delta content=4 reasoning=2+2", "finish stop"));
  out.clear();
  EXPECT_TRUE(
      DecodeChatResponse(
          R"({"id":"a","created":2,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"4","reasoning_content":"2+2"},"finish_reason":"stop"}]})",
          out)
          .ok());
  EXPECT_THAT(Lines(out),
              ElementsAre("start a m 2", "delta content=4 reasoning=2+2", "finish stop"));
}

TEST(DecodeChatResponse, Failures) {
  struct Case {
    std::string_view body;
    std::string reason;
  };
  const Case cases[] = {
      {"<html>502</html>", "upstream_invalid_json"},
      {R"({"id":"a","choices":[]})", "upstream_no_choices"},
      {R"({"id":"a"})", "upstream_no_choices"},
      {R"({"error":{"message":"boom","type":"server_error","param":null,"code":null}})",
       "server_error"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.body);
    std::vector<Chunk> out;
    const core::Status s = DecodeChatResponse(c.body, out);
    EXPECT_EQ(s.code, StatusCode::kBadUpstream);
    EXPECT_EQ(s.reason, c.reason);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].kind, Chunk::Kind::kError);
  }
}

// --------------------------------------------------------------------------------------------
// Request bodies

core::CompletionRequest SampleRequest() {
  core::CompletionRequest r;
  r.model = "chat-default";
  core::Message dev;
  dev.role = "developer";
  dev.text = "You are a helpful assistant.";
  core::Message user;
  user.role = "user";
  user.text = "Hello!";
  user.name = "alice";
  r.messages = {dev, user};
  r.max_tokens = 100;
  r.temperature = 0.7;
  r.top_p = 0.9;
  r.stop = {"END", "\n\n"};
  r.user = "user-1234";
  r.enable_thinking = false;
  r.passthrough = meridian::testing::Members(R"("seed":7,"n":1)");
  return r;
}

json::value Parsed(const std::string& body) {
  json::error_code ec;
  json::value v = json::parse(body, ec);
  EXPECT_FALSE(ec) << body;
  return v;
}

TEST(BuildChatRequestBody, OpenAiStreaming) {
  const std::string body =
      BuildChatRequestBody(SampleRequest(), "gpt-4o-mini", OpenAiFlavor::kOpenAi, true);
  EXPECT_EQ(Parsed(body), json::parse(R"({
    "model": "gpt-4o-mini",
    "messages": [
      {"role": "developer", "content": "You are a helpful assistant."},
      {"role": "user", "content": "Hello!", "name": "alice"}
    ],
    "stream": true,
    "stream_options": {"include_usage": true},
    "max_completion_tokens": 100,
    "temperature": 0.7,
    "top_p": 0.9,
    "stop": ["END", "\n\n"],
    "user": "user-1234",
    "seed": 7,
    "n": 1
  })"))
      << body;
}

TEST(BuildChatRequestBody, AzureUsesMaxCompletionTokensAndNoThinking) {
  core::CompletionRequest r = SampleRequest();
  r.passthrough.clear();
  r.enable_thinking = true;
  const std::string body = BuildChatRequestBody(r, "gpt-4o-prod", OpenAiFlavor::kAzure, false);
  EXPECT_EQ(Parsed(body), json::parse(R"({
    "model": "gpt-4o-prod",
    "messages": [
      {"role": "developer", "content": "You are a helpful assistant."},
      {"role": "user", "content": "Hello!", "name": "alice"}
    ],
    "max_completion_tokens": 100,
    "temperature": 0.7,
    "top_p": 0.9,
    "stop": ["END", "\n\n"],
    "user": "user-1234"
  })"))
      << body;
}

TEST(BuildChatRequestBody, CompatibleUsesMaxTokensThinkingKwargsAndNoUser) {
  const std::string body =
      BuildChatRequestBody(SampleRequest(), "Qwen/Qwen3-8B", OpenAiFlavor::kCompatible, true);
  EXPECT_EQ(Parsed(body), json::parse(R"({
    "model": "Qwen/Qwen3-8B",
    "messages": [
      {"role": "developer", "content": "You are a helpful assistant."},
      {"role": "user", "content": "Hello!", "name": "alice"}
    ],
    "stream": true,
    "stream_options": {"include_usage": true},
    "max_tokens": 100,
    "temperature": 0.7,
    "top_p": 0.9,
    "stop": ["END", "\n\n"],
    "chat_template_kwargs": {"enable_thinking": false},
    "seed": 7,
    "n": 1
  })"))
      << body;

  core::CompletionRequest r = SampleRequest();
  r.enable_thinking.reset();
  r.max_completion_tokens = 50;  // preferred over max_tokens
  const json::value v = Parsed(BuildChatRequestBody(r, "q", OpenAiFlavor::kCompatible, false));
  EXPECT_FALSE(v.as_object().contains("chat_template_kwargs"));
  EXPECT_EQ(v.at("max_tokens").as_int64(), 50);
  EXPECT_FALSE(v.as_object().contains("stream"));
  EXPECT_FALSE(v.as_object().contains("stream_options"));
}

TEST(BuildChatRequestBody, RawFragmentsAreInsertedVerbatim) {
  core::CompletionRequest r;
  core::Message user;
  user.role = "user";
  user.text = "What's in this image?";
  // §1.3 array-content form [C].
  user.content_parts_json =
      R"([{"type":"text","text":"What's in this image?"},{"type":"image_url","image_url":{"url":"https://example.com/a.jpg"}}])";
  core::Message assistant;
  assistant.role = "assistant";
  assistant.content_null = true;
  assistant.tool_calls_json =
      R"([{"id": "call_abc123", "type": "function", "function": {"name": "get_current_weather", "arguments": "{\n\"location\": \"Boston, MA\"\n}"}}])";
  core::Message tool;
  tool.role = "tool";
  tool.tool_call_id = "call_abc123";
  tool.text = R"({"temp_c": 21})";
  r.messages = {user, assistant, tool};
  r.tools_json =
      R"([{"type":"function","function":{"name":"get_current_weather","description":"Get weather","parameters":{"type":"object","properties":{"location":{"type":"string"}},"required":["location"]}}}])";
  r.tool_choice_json = R"({"type":"function","function":{"name":"get_current_weather"}})";

  for (auto flavor : {OpenAiFlavor::kOpenAi, OpenAiFlavor::kAzure, OpenAiFlavor::kCompatible}) {
    const std::string body = BuildChatRequestBody(r, "m", flavor, false);
    EXPECT_THAT(body, HasSubstr(user.content_parts_json));
    EXPECT_THAT(body, HasSubstr(assistant.tool_calls_json));
    EXPECT_THAT(body, HasSubstr(r.tools_json));
    EXPECT_THAT(body, HasSubstr(r.tool_choice_json));
    EXPECT_EQ(Parsed(body), json::parse(R"({
      "model": "m",
      "messages": [
        {"role": "user", "content": [{"type":"text","text":"What's in this image?"},{"type":"image_url","image_url":{"url":"https://example.com/a.jpg"}}]},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_abc123", "type": "function", "function": {"name": "get_current_weather", "arguments": "{\n\"location\": \"Boston, MA\"\n}"}}]},
        {"role": "tool", "content": "{\"temp_c\": 21}", "tool_call_id": "call_abc123"}
      ],
      "tools": [{"type":"function","function":{"name":"get_current_weather","description":"Get weather","parameters":{"type":"object","properties":{"location":{"type":"string"}},"required":["location"]}}}],
      "tool_choice": {"type":"function","function":{"name":"get_current_weather"}}
    })"))
        << body;
  }
}

TEST(BuildChatRequestBody, StringsAreEscaped) {
  core::CompletionRequest r;
  core::Message m;
  m.role = "user";
  m.text = std::string(
               "quote\" backslash\\ nl\n tab\t cr\r ctl\x01\x1f del\x7f 你好 \xF0\x9F\x98\x80 ") +
           '\0' + "end";
  r.messages = {m};
  r.stop = {"</s>", "\"\\"};
  const json::value v = Parsed(BuildChatRequestBody(r, "mo\"del", OpenAiFlavor::kOpenAi, false));
  EXPECT_EQ(v.at("model").as_string(), "mo\"del");
  const json::string& text = v.at("messages").at(0).at("content").as_string();
  EXPECT_EQ(std::string_view(text.data(), text.size()), m.text);
  EXPECT_EQ(v.at("stop").at(1).as_string(), "\"\\");
}

TEST(BuildChatRequestBody, PassthroughDoesNotDuplicateKeys) {
  core::CompletionRequest r = SampleRequest();
  r.enable_thinking = true;
  r.passthrough = meridian::testing::Members(
      R"("stream_options":{"include_obfuscation":false,"include_usage":false},"chat_template_kwargs":{"enable_thinking":false,"custom":1},"model":"x","response_format":{"type":"json_object"})");

  json::value v = Parsed(BuildChatRequestBody(r, "q", OpenAiFlavor::kCompatible, true));
  EXPECT_EQ(v.at("stream_options"),
            json::parse(R"({"include_obfuscation":false,"include_usage":true})"));
  EXPECT_EQ(v.at("chat_template_kwargs"), json::parse(R"({"enable_thinking":true,"custom":1})"));
  EXPECT_EQ(v.at("model").as_string(), "q");
  EXPECT_EQ(v.at("response_format"), json::parse(R"({"type":"json_object"})"));

  v = Parsed(BuildChatRequestBody(r, "gpt", OpenAiFlavor::kOpenAi, false));
  EXPECT_FALSE(v.as_object().contains("chat_template_kwargs"));
  EXPECT_FALSE(v.as_object().contains("stream_options"));
  EXPECT_EQ(v.at("model").as_string(), "gpt");
  EXPECT_TRUE(v.as_object().contains("response_format"));

  // Duplicate keys would survive a re-parse; count them in the text instead.
  const std::string body = BuildChatRequestBody(r, "gpt", OpenAiFlavor::kOpenAi, true);
  EXPECT_EQ(body.find("\"model\""), body.rfind("\"model\""));
  EXPECT_EQ(body.find("\"stream_options\""), body.rfind("\"stream_options\""));
}

TEST(BuildChatRequestBody, UnparsablePassthroughIsAppendedVerbatim) {
  core::CompletionRequest r = SampleRequest();
  r.passthrough = {{"seed", ""}};  // a value that is not JSON
  const std::string body = BuildChatRequestBody(r, "m", OpenAiFlavor::kOpenAi, false);
  EXPECT_THAT(body, HasSubstr(R"(,"seed":})"));
}

TEST(BuildChatRequestBody, NonFiniteNumbersAreLeftOut) {
  core::CompletionRequest r = SampleRequest();
  r.temperature = std::numeric_limits<double>::quiet_NaN();
  r.top_p = std::numeric_limits<double>::infinity();
  const json::value v = Parsed(BuildChatRequestBody(r, "m", OpenAiFlavor::kOpenAi, false));
  EXPECT_FALSE(v.as_object().contains("temperature"));
  EXPECT_FALSE(v.as_object().contains("top_p"));
}

// --------------------------------------------------------------------------------------------
// Error mapping

struct ErrorCase {
  std::string name;
  int status;
  std::string body;
  std::string retry_after;
  std::string retry_after_ms;
  std::string should_retry;
  StatusCode code;
  bool retryable;
  std::optional<std::uint32_t> retry_after_s;
  std::string reason;
  std::string message;  // exact, unless empty
  std::string param;
};

TEST(MapUpstreamError, Table) {
  const std::string kOpenAi429 =
      R"({"error": {"message": "Rate limit reached for requests", "type": "requests", "param": null, "code": "rate_limit_exceeded"}})";
  const ErrorCase cases[] = {
      {"openai 429 retry-after", 429, kOpenAi429, "20", "", "", StatusCode::kRateLimited, true, 20,
       "upstream_rate_limited",
       "upstream returned HTTP 429 (rate_limit_exceeded): Rate limit reached for requests", ""},
      {"retry-after-ms wins, rounded up", 429, kOpenAi429, "20", "1500", "",
       StatusCode::kRateLimited, true, 2, "upstream_rate_limited", "", ""},
      {"retry-after-ms zero", 429, kOpenAi429, "", "0", "", StatusCode::kRateLimited, true, 0,
       "upstream_rate_limited", "", ""},
      {"retry-after fractional", 429, kOpenAi429, " 1.2 ", "", "", StatusCode::kRateLimited, true,
       2, "upstream_rate_limited", "", ""},
      {"retry-after http-date ignored", 429, kOpenAi429, "Wed, 21 Oct 2015 07:28:00 GMT", "", "",
       StatusCode::kRateLimited, true, std::nullopt, "upstream_rate_limited", "", ""},
      {"bad retry-after-ms falls back", 429, kOpenAi429, "3", "soon", "", StatusCode::kRateLimited,
       true, 3, "upstream_rate_limited", "", ""},
      {"negative retry-after ignored", 429, kOpenAi429, "-5", "", "", StatusCode::kRateLimited,
       true, std::nullopt, "upstream_rate_limited", "", ""},
      {"quota", 429,
       R"({"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}})",
       "", "", "", StatusCode::kRateLimited, true, std::nullopt, "upstream_rate_limited",
       "upstream returned HTTP 429 (insufficient_quota): You exceeded your current quota, "
       "please check your plan and billing details.",
       ""},
      {"x-should-retry false", 503, "", "", "", "false", StatusCode::kUnavailable, false,
       std::nullopt, "upstream_unavailable", "upstream returned HTTP 503", ""},
      {"x-should-retry true", 400, R"({"error":{"message":"try again","type":null}})", "", "",
       " True", StatusCode::kInvalidArgument, true, std::nullopt, "upstream_invalid_request",
       "try again", ""},
      {"openai 500", 500,
       R"({"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}})",
       "", "", "", StatusCode::kUnavailable, true, std::nullopt, "upstream_unavailable",
       "upstream returned HTTP 500 (server_error): The server had an error while processing "
       "your request. Sorry about that!",
       ""},
      {"llama.cpp 503 loading", 503,
       R"({"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}})", "",
       "", "", StatusCode::kUnavailable, true, std::nullopt, "upstream_unavailable",
       "upstream returned HTTP 503 (unavailable_error): Loading model", ""},
      {"502 html", 502, "<html><head><title>502 Bad Gateway</title></head></html>", "", "", "",
       StatusCode::kUnavailable, true, std::nullopt, "upstream_unavailable",
       "upstream returned HTTP 502", ""},
      {"anthropic-style 529", 529,
       R"({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})", "",
       "", "", StatusCode::kUnavailable, true, std::nullopt, "upstream_unavailable",
       "upstream returned HTTP 529 (overloaded_error): Overloaded", ""},
      {"504", 504, "", "", "", "", StatusCode::kUpstreamTimeout, true, std::nullopt,
       "upstream_timeout", "upstream returned HTTP 504", ""},
      {"408", 408, "", "7", "", "", StatusCode::kUpstreamTimeout, true, 7, "upstream_timeout",
       "upstream returned HTTP 408", ""},
      {"409", 409, "", "", "", "", StatusCode::kUnavailable, true, std::nullopt,
       "upstream_conflict", "upstream returned HTTP 409", ""},
      {"501", 501, "Not Implemented", "", "", "", StatusCode::kBadUpstream, true, std::nullopt,
       "upstream_server_error", "upstream returned HTTP 501: Not Implemented", ""},
      {"422 (vLLM validation)", 422, R"({"detail":"x"})", "", "", "", StatusCode::kInvalidArgument,
       false, std::nullopt, "upstream_invalid_request", "upstream rejected the request as invalid",
       ""},
      {"413", 413, "", "", "", "", StatusCode::kPayloadTooLarge, false, std::nullopt,
       "upstream_payload_too_large", "upstream returned HTTP 413", ""},
      {"200 is unexpected", 200, "", "", "", "", StatusCode::kBadUpstream, false, std::nullopt,
       "upstream_unexpected_status", "upstream returned HTTP 200", ""},
      {"openai 401 key", 401,
       R"({"error": {"message": "Incorrect API key provided: sk-proj-abcdEFGH1234********************wxyz. You can find your API key at https://platform.openai.com/account/api-keys.", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}})",
       "", "", "", StatusCode::kBadUpstream, false, std::nullopt, "upstream_unauthorized",
       "upstream rejected the gateway's credentials for this provider", ""},
      {"dashscope-compatible 401", 401,
       R"({"error": {"message": "Incorrect API key provided. ", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}})",
       "", "", "", StatusCode::kBadUpstream, false, std::nullopt, "upstream_unauthorized",
       "upstream rejected the gateway's credentials for this provider", ""},
      {"403 region", 403,
       R"({"error":{"message":"Country, region, or territory not supported","type":"request_forbidden","param":null,"code":"unsupported_country_region_territory"}})",
       "", "", "", StatusCode::kBadUpstream, false, std::nullopt, "upstream_forbidden",
       "upstream rejected the gateway's credentials for this provider", ""},
      {"mlx 404 plain text", 404, "Not Found", "", "", "", StatusCode::kBadUpstream, false,
       std::nullopt, "upstream_not_found", "upstream does not know the model or route", ""},
      {"vllm 404", 404,
       R"({"object":"error","message":"The model `gpt-4` does not exist.","type":"NotFoundError","param":null,"code":404})",
       "", "", "", StatusCode::kBadUpstream, false, std::nullopt, "upstream_not_found",
       "upstream does not know the model or route", ""},
      {"azure content filter 400", 400,
       R"({"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","type":null,"param":"prompt","code":"content_filter","status":400}})",
       "", "", "", StatusCode::kInvalidArgument, false, std::nullopt, "content_filter",
       "The response was filtered due to the prompt triggering Azure OpenAI's content "
       "management policy.",
       "prompt"},
      {"azure content filter without param", 400,
       R"({"error":{"message":"filtered","type":null,"param":null,"code":"content_filter"}})", "",
       "", "", StatusCode::kInvalidArgument, false, std::nullopt, "content_filter", "filtered",
       "prompt"},
      {"vllm old 400", 400,
       R"({"object":"error","message":"This model's maximum context length is 4096 tokens.","type":"BadRequestError","param":null,"code":400})",
       "", "", "", StatusCode::kInvalidArgument, false, std::nullopt, "BadRequestError",
       "This model's maximum context length is 4096 tokens.", ""},
      {"openai 400 with param", 400,
       R"({"error":{"message":"Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.","type":"invalid_request_error","param":"max_tokens","code":"unsupported_parameter"}})",
       "", "", "", StatusCode::kInvalidArgument, false, std::nullopt, "unsupported_parameter",
       "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
       "'max_completion_tokens' instead.",
       "max_tokens"},
      {"400 empty body", 400, "", "", "", "", StatusCode::kInvalidArgument, false, std::nullopt,
       "upstream_invalid_request", "upstream rejected the request as invalid", ""},
      {"ollama native error string", 400, R"({"error":"invalid model name"})", "", "", "",
       StatusCode::kInvalidArgument, false, std::nullopt, "upstream_invalid_request",
       "invalid model name", ""},
      {"dashscope native 400", 400,
       R"({"code":"InvalidParameter","message":"Required parameter(s) missing or invalid, please check the request parameters.","request_id":"fb53c4ec-1c12-4fc4-a580-cdb7c3261fc1"})",
       "", "", "", StatusCode::kInvalidArgument, false, std::nullopt, "InvalidParameter",
       "Required parameter(s) missing or invalid, please check the request parameters.", ""},
      {"400 key in message is redacted", 400,
       R"({"error":{"message":"Bad key sk-abc123def456 and 0123456789abcdef0123456789abcdef used","type":"invalid_request_error"}})",
       "", "", "", StatusCode::kInvalidArgument, false, std::nullopt, "invalid_request_error",
       "Bad key [redacted] and [redacted] used", ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const core::Status s =
        MapUpstreamError(c.status, c.body, c.retry_after, c.retry_after_ms, c.should_retry);
    EXPECT_EQ(s.code, c.code);
    EXPECT_EQ(s.retryable, c.retryable);
    EXPECT_EQ(s.retry_after_s, c.retry_after_s);
    EXPECT_EQ(s.reason, c.reason);
    if (!c.message.empty()) {
      EXPECT_EQ(s.message, c.message);
    }
    EXPECT_EQ(s.param, c.param);
    EXPECT_THAT(s.message, Not(HasSubstr("sk-")));
  }
}

TEST(MapUpstreamError, MessageIsBounded) {
  std::string words;
  for (int i = 0; i < 1000; ++i) words += "lorem ipsum ";
  const std::string body =
      R"({"error":{"message":")" + words + R"(","type":"invalid_request_error"}})";
  for (int status : {400, 429, 500}) {
    const core::Status s = MapUpstreamError(status, body, "", "", "");
    EXPECT_LE(s.message.size(), 512u) << status;
    EXPECT_FALSE(s.message.empty());
  }
  const core::Status huge = MapUpstreamError(429, "", "99999999999", "", "");
  EXPECT_EQ(huge.retry_after_s, std::numeric_limits<std::uint32_t>::max());
}

TEST(SanitizeUpstreamText, RedactsKeysKeepsOrdinaryText) {
  EXPECT_EQ(SanitizeUpstreamText("Incorrect API key provided: sk-proj-abc********xyz."),
            "Incorrect API key provided: [redacted].");
  EXPECT_EQ(SanitizeUpstreamText("Incorrect API key provided: sk-..."),
            "Incorrect API key provided: [redacted]...");
  // Azure keys are 32 hex digits; JWTs are long base64url runs.
  EXPECT_EQ(SanitizeUpstreamText("key 0a1b2c3d4e5f60718293a4b5c6d7e8f9 bad"), "key [redacted] bad");
  EXPECT_EQ(SanitizeUpstreamText("Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0"),
            "Bearer [redacted]");
  EXPECT_EQ(SanitizeUpstreamText("in organization org-AbCdEf123456GhIjKl789012 on tokens"),
            "in organization [redacted] on tokens");
  // Model names, URLs, request ids and ordinary words survive.
  for (std::string_view keep : {"The model `Qwen/Qwen3-30B-A3B-Instruct-2507` does not exist.",
                                "See https://platform.openai.com/account/api-keys for details.",
                                "request d30a9914-ac97-9102-b746-ce0cb35e3fa2 failed",
                                "internationalization is hard", "gpt-4o-mini-2024-07-18"}) {
    EXPECT_EQ(SanitizeUpstreamText(keep), keep);
  }
}

TEST(SanitizeUpstreamText, CleansControlCharactersAndInvalidUtf8) {
  EXPECT_EQ(SanitizeUpstreamText("  line1\r\n\tline2\x01  end \n"), "line1 line2 end");
  EXPECT_EQ(SanitizeUpstreamText("bad \xC3( \xED\xA0\x80 \xF0\x9F\x98\x80 ok"),
            "bad ?( ??? \xF0\x9F\x98\x80 ok");
  // Truncation never splits a UTF-8 sequence.
  const std::string s = SanitizeUpstreamText("ab你好", 4);
  EXPECT_EQ(s, "ab");
  EXPECT_EQ(SanitizeUpstreamText("ab你好", 5), "ab你");
}

// --------------------------------------------------------------------------------------------
// Paths

TEST(ChatPath, Variants) {
  struct Case {
    OpenAiFlavor flavor;
    std::string_view base;
    std::string_view model;
    std::string_view version;
    std::string_view want;
  };
  const Case cases[] = {
      {OpenAiFlavor::kOpenAi, "/v1", "gpt-4o", "", "/v1/chat/completions"},
      {OpenAiFlavor::kOpenAi, "/v1/", "gpt-4o", "", "/v1/chat/completions"},
      {OpenAiFlavor::kOpenAi, "", "gpt-4o", "", "/chat/completions"},
      {OpenAiFlavor::kCompatible, "/v1//", "Qwen/Qwen3-8B", "", "/v1/chat/completions"},
      {OpenAiFlavor::kCompatible, "/compatible-mode/v1", "qwen-plus", "",
       "/compatible-mode/v1/chat/completions"},
      {OpenAiFlavor::kAzure, "", "gpt-4o-prod", "2024-10-21",
       "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21"},
      {OpenAiFlavor::kAzure, "/", "gpt-4o-prod", "2025-04-01-preview",
       "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2025-04-01-preview"},
      {OpenAiFlavor::kAzure, "/openai/", "gpt-4o-prod", "2024-10-21",
       "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21"},
      {OpenAiFlavor::kAzure, "", "my dep/é", "2024-10-21",
       "/openai/deployments/my%20dep%2F%C3%A9/chat/completions?api-version=2024-10-21"},
      {OpenAiFlavor::kAzure, "", "gpt-4o-prod", "",
       "/openai/deployments/gpt-4o-prod/chat/completions"},
      {OpenAiFlavor::kAzure, "/openai/v1/", "gpt-4o-prod", "2024-10-21",
       "/openai/v1/chat/completions"},
      {OpenAiFlavor::kAzure, "/openai/v1", "gpt-4o-prod", "", "/openai/v1/chat/completions"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.base) + " " + std::string(c.model));
    EXPECT_EQ(ChatPath(c.flavor, c.base, c.model, c.version), c.want);
  }
}

// ---------------------------------------------------------------------------------------
// OpenAI's Responses API upstream (a Responses request to a provider with responses_api)

// The event sequence of OpenAI's API reference ("Streaming events") for a short text answer.
constexpr std::string_view kResponsesTextStream =
    "event: response.created\n"
    "data: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":"
    "\"resp_67c9\",\"object\":\"response\",\"created_at\":1741290958,\"status\":"
    "\"in_progress\",\"model\":\"gpt-4.1-2025-04-14\",\"output\":[],\"usage\":null}}\n"
    "\n"
    "event: response.in_progress\n"
    "data: {\"type\":\"response.in_progress\",\"sequence_number\":1,\"response\":{\"id\":"
    "\"resp_67c9\",\"status\":\"in_progress\",\"output\":[]}}\n"
    "\n"
    "event: response.output_item.added\n"
    "data: {\"type\":\"response.output_item.added\",\"sequence_number\":2,\"output_index\":0,"
    "\"item\":{\"id\":\"msg_67c9\",\"type\":\"message\",\"status\":\"in_progress\",\"role\":"
    "\"assistant\",\"content\":[]}}\n"
    "\n"
    "event: response.content_part.added\n"
    "data: {\"type\":\"response.content_part.added\",\"sequence_number\":3,\"item_id\":"
    "\"msg_67c9\",\"output_index\":0,\"content_index\":0,\"part\":{\"type\":\"output_text\","
    "\"text\":\"\",\"annotations\":[]}}\n"
    "\n"
    "event: response.output_text.delta\n"
    "data: {\"type\":\"response.output_text.delta\",\"sequence_number\":4,\"item_id\":"
    "\"msg_67c9\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hi\"}\n"
    "\n"
    "event: response.output_text.delta\n"
    "data: {\"type\":\"response.output_text.delta\",\"sequence_number\":5,\"item_id\":"
    "\"msg_67c9\",\"output_index\":0,\"content_index\":0,\"delta\":\" there\"}\n"
    "\n"
    "event: response.output_text.done\n"
    "data: {\"type\":\"response.output_text.done\",\"sequence_number\":6,\"item_id\":"
    "\"msg_67c9\",\"output_index\":0,\"content_index\":0,\"text\":\"Hi there\"}\n"
    "\n"
    "event: response.completed\n"
    "data: {\"type\":\"response.completed\",\"sequence_number\":7,\"response\":{\"id\":"
    "\"resp_67c9\",\"created_at\":1741290958,\"status\":\"completed\",\"model\":"
    "\"gpt-4.1-2025-04-14\",\"output\":[],\"usage\":{\"input_tokens\":37,"
    "\"input_tokens_details\":{\"cached_tokens\":5},\"output_tokens\":11,"
    "\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":48}}}\n"
    "\n";

// Reasoning summary, then a function call whose arguments arrive in pieces.
constexpr std::string_view kResponsesToolStream =
    "event: response.created\n"
    "data: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_t\","
    "\"created_at\":7,\"status\":\"in_progress\",\"model\":\"o4-mini\",\"output\":[]}}\n"
    "\n"
    "event: response.output_item.added\n"
    "data: {\"type\":\"response.output_item.added\",\"sequence_number\":1,\"output_index\":0,"
    "\"item\":{\"id\":\"rs_1\",\"type\":\"reasoning\",\"summary\":[]}}\n"
    "\n"
    "event: response.reasoning_summary_text.delta\n"
    "data: {\"type\":\"response.reasoning_summary_text.delta\",\"sequence_number\":2,"
    "\"item_id\":\"rs_1\",\"output_index\":0,\"summary_index\":0,\"delta\":\"look up\"}\n"
    "\n"
    "event: response.output_item.added\n"
    "data: {\"type\":\"response.output_item.added\",\"sequence_number\":3,\"output_index\":1,"
    "\"item\":{\"id\":\"fc_1\",\"type\":\"function_call\",\"status\":\"in_progress\","
    "\"arguments\":\"\",\"call_id\":\"call_abc\",\"name\":\"get_weather\"}}\n"
    "\n"
    "event: response.function_call_arguments.delta\n"
    "data: {\"type\":\"response.function_call_arguments.delta\",\"sequence_number\":4,"
    "\"item_id\":\"fc_1\",\"output_index\":1,\"delta\":\"{\\\"city\\\":\"}\n"
    "\n"
    "event: response.function_call_arguments.delta\n"
    "data: {\"type\":\"response.function_call_arguments.delta\",\"sequence_number\":5,"
    "\"item_id\":\"fc_1\",\"output_index\":1,\"delta\":\"\\\"Paris\\\"}\"}\n"
    "\n"
    "event: response.function_call_arguments.done\n"
    "data: {\"type\":\"response.function_call_arguments.done\",\"sequence_number\":6,"
    "\"item_id\":\"fc_1\",\"output_index\":1,\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}\n"
    "\n"
    "event: response.completed\n"
    "data: {\"type\":\"response.completed\",\"sequence_number\":7,\"response\":{\"id\":\"resp_t\","
    "\"created_at\":7,\"status\":\"completed\",\"model\":\"o4-mini\",\"usage\":{"
    "\"input_tokens\":20,\"output_tokens\":30,\"output_tokens_details\":{"
    "\"reasoning_tokens\":12},\"total_tokens\":50}}}\n"
    "\n";

Decoded DecodeResponses(std::string_view sse, bool finish = false,
                        std::size_t split = std::string_view::npos) {
  ResponsesStreamDecoder decoder;
  auto d = providers::testing::DecodeWith(decoder, sse, finish, split);
  return Decoded{{}, d.lines, d.done, d.last_status};
}

TEST(ResponsesUpstream, PathAndBody) {
  EXPECT_EQ(ResponsesPath("/v1"), "/v1/responses");
  EXPECT_EQ(ResponsesPath("/v1/"), "/v1/responses");
  EXPECT_EQ(ResponsesPath(""), "/responses");
  // The client's body as it came (reasoning items, include), the upstream model, store false.
  const std::string body = NativeResponsesRequestBody(
      R"({"model":"assistant","store":true,"include":["reasoning.encrypted_content"],
          "input":[{"type":"reasoning","id":"rs_1","encrypted_content":"gAAA","summary":[]},
                   {"role":"user","content":"hi"}],"reasoning":{"effort":"low"}})",
      "o4-mini");
  EXPECT_EQ(json::parse(body), json::parse(R"({"model":"o4-mini","store":false,
      "include":["reasoning.encrypted_content"],
      "input":[{"type":"reasoning","id":"rs_1","encrypted_content":"gAAA","summary":[]},
               {"role":"user","content":"hi"}],"reasoning":{"effort":"low"}})"));
  EXPECT_EQ(NativeResponsesRequestBody("[]", "m"), "");
  EXPECT_EQ(NativeResponsesRequestBody("{", "m"), "");
}

TEST(ResponsesUpstream, TextStreamAtEverySplit) {
  const std::vector<std::string> want = {"start resp_67c9 gpt-4.1-2025-04-14 1741290958",
                                         "delta content=Hi", "delta content= there", "finish stop",
                                         "usage 37/11/48 reasoning=0 cached=5"};
  for (std::size_t split = 0; split <= kResponsesTextStream.size(); ++split) {
    const Decoded d = DecodeResponses(kResponsesTextStream, true, split);
    ASSERT_EQ(d.lines, want) << "split " << split;
    EXPECT_TRUE(d.done);
    EXPECT_TRUE(d.last_status.ok());
  }
}

TEST(ResponsesUpstream, ReasoningAndFunctionCallStream) {
  const Decoded d = DecodeResponses(kResponsesToolStream, true);
  const auto call = ::testing::StartsWith("delta tool_calls=");
  EXPECT_THAT(d.lines,
              ElementsAre("start resp_t o4-mini 7", "delta reasoning=look up", call, call, call,
                          "finish tool_calls", "usage 20/30/50 reasoning=12 cached=-"));
  // The calls in chat-completions terms: header (id, name) then argument fragments.
  ResponsesStreamDecoder decoder;
  SseParser parser;
  std::vector<SseEvent> events;
  ASSERT_TRUE(parser.Feed(kResponsesToolStream, events));
  std::vector<Chunk> chunks;
  for (const auto& e : events) ASSERT_TRUE(decoder.Decode(e, chunks).ok());
  ASSERT_EQ(chunks.size(), 7u);
  EXPECT_EQ(json::parse(chunks[2].tool_calls_json), json::parse(R"([{"index":0,"id":"call_abc",
      "type":"function","function":{"name":"get_weather","arguments":""}}])"));
  EXPECT_EQ(json::parse(chunks[3].tool_calls_json),
            json::parse(R"([{"index":0,"function":{"arguments":"{\"city\":"}}])"));
  EXPECT_EQ(json::parse(chunks[4].tool_calls_json),
            json::parse(R"([{"index":0,"function":{"arguments":"\"Paris\"}"}}])"));
}

TEST(ResponsesUpstream, IncompleteFailedErrorAndTruncated) {
  const std::string created(
      kResponsesTextStream.substr(0, kResponsesTextStream.find("event: response.in_progress")));
  // max_output_tokens → length; content_filter → content_filter.
  for (const auto& [reason, finish] : {std::pair{"max_output_tokens", "finish length"},
                                       std::pair{"content_filter", "finish content_filter"}}) {
    const Decoded d =
        DecodeResponses(created +
                            "event: response.incomplete\ndata: {\"type\":\"response.incomplete\","
                            "\"response\":{\"id\":\"resp_67c9\",\"status\":\"incomplete\","
                            "\"incomplete_details\":{\"reason\":\"" +
                            reason + "\"},\"usage\":{\"input_tokens\":3,\"output_tokens\":4}}}\n\n",
                        true);
    EXPECT_THAT(d.lines, ElementsAre("start resp_67c9 gpt-4.1-2025-04-14 1741290958", finish,
                                     "usage 3/4/7 reasoning=- cached=-"));
    EXPECT_TRUE(d.done);
  }
  // response.failed after the start: its error, not retryable (the stream had begun).
  const Decoded failed = DecodeResponses(
      created +
          "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":"
          "{\"id\":\"resp_67c9\",\"status\":\"failed\",\"error\":{\"code\":"
          "\"server_error\",\"message\":\"The model failed\"}}}\n\n",
      true);
  ASSERT_EQ(failed.lines.size(), 2u);
  EXPECT_THAT(failed.lines[1], HasSubstr("server_error: The model failed"));
  EXPECT_THAT(failed.lines[1], Not(HasSubstr("retryable")));
  EXPECT_EQ(failed.last_status.code, StatusCode::kBadUpstream);
  // An `error` event before anything: retryable for a rate limit.
  const Decoded error = DecodeResponses(
      "event: error\ndata: {\"type\":\"error\",\"code\":\"rate_limit_exceeded\",\"message\":"
      "\"Slow down\",\"param\":null,\"sequence_number\":0}\n\n",
      true);
  ASSERT_EQ(error.lines.size(), 1u);
  EXPECT_THAT(error.lines[0], HasSubstr("rate_limit_exceeded retryable: Slow down"));
  // The connection closes before a terminal event.
  const Decoded cut = DecodeResponses(created, true);
  ASSERT_EQ(cut.lines.size(), 2u);
  EXPECT_THAT(cut.lines[1], HasSubstr("upstream_truncated_stream"));
  EXPECT_FALSE(DecodeResponses(created, false).done);
  // Invalid JSON.
  const Decoded bad = DecodeResponses("event: response.created\ndata: {nope\n\n", false);
  ASSERT_EQ(bad.lines.size(), 1u);
  EXPECT_THAT(bad.lines[0], HasSubstr("upstream_invalid_json"));
  EXPECT_TRUE(bad.done);
}

// Every event rides, in order, on the chunks decoded from it or after it: their
// concatenation is the stream as it came, at every split of the bytes.
TEST(ResponsesUpstream, EveryEventRidesOnTheChunks) {
  for (const std::string_view stream : {kResponsesTextStream, kResponsesToolStream}) {
    for (std::size_t split = 0; split <= stream.size(); ++split) {
      SseParser parser;
      std::vector<SseEvent> events;
      ASSERT_TRUE(parser.Feed(stream.substr(0, split), events));
      ASSERT_TRUE(parser.Feed(stream.substr(split), events));
      ResponsesStreamDecoder decoder;
      std::vector<Chunk> chunks;
      for (const auto& e : events) ASSERT_TRUE(decoder.Decode(e, chunks).ok());
      ASSERT_TRUE(decoder.done());
      std::string carried;
      for (const Chunk& c : chunks) carried += c.native;
      EXPECT_EQ(carried, stream) << "split " << split;
      ASSERT_FALSE(chunks.empty());
      EXPECT_TRUE(chunks.front().native.starts_with("event: response.created\n"));
    }
  }
}

TEST(ResponsesUpstream, NonStreamingBody) {
  constexpr std::string_view kBody = R"({"id":"resp_b","object":"response","created_at":9,
      "status":"completed","model":"o4-mini","output":[
        {"id":"rs_1","type":"reasoning","summary":[{"type":"summary_text","text":"plan"}]},
        {"id":"msg_1","type":"message","role":"assistant","content":[
          {"type":"output_text","text":"Hello","annotations":[]}]},
        {"id":"fc_1","type":"function_call","call_id":"call_1","name":"f","arguments":"{}"}],
      "usage":{"input_tokens":5,"output_tokens":6,"total_tokens":11}})";
  std::vector<Chunk> chunks;
  ASSERT_TRUE(DecodeResponsesBody(kBody, chunks).ok());
  EXPECT_THAT(Lines(chunks),
              ElementsAre("start resp_b o4-mini 9", "delta content=Hello reasoning=plan tool_calls",
                          "finish tool_calls", "usage 5/6/11 reasoning=- cached=-"));
  EXPECT_EQ(chunks.front().native, kBody);
  EXPECT_EQ(json::parse(chunks[1].tool_calls_json), json::parse(R"([{"index":0,"id":"call_1",
      "type":"function","function":{"name":"f","arguments":"{}"}}])"));

  for (const std::string_view bad :
       {std::string_view("{"), std::string_view(R"({"id":"r","status":"completed"})"),
        std::string_view(R"({"id":"r","status":"failed","error":{"code":"server_error",
            "message":"boom"},"output":[]})"),
        std::string_view(R"({"error":{"message":"no","type":"invalid_request_error"}})")}) {
    std::vector<Chunk> out;
    EXPECT_FALSE(DecodeResponsesBody(bad, out).ok()) << bad;
    ASSERT_EQ(out.size(), 1u) << bad;
    EXPECT_EQ(out[0].kind, Chunk::Kind::kError);
  }
}

}  // namespace
}  // namespace meridian::providers::openai

namespace meridian::providers::openai {
namespace {

// The DOM-free scanner: the steady-state content chunk is recognised and decoded; anything
// else is declined, for the full decoder.
TEST(ScanContentChunk, RecognisesContentDeltasAndDecodesTheirText) {
  EXPECT_EQ(ScanContentChunk(
                R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1796400000,)"
                R"("model":"gpt-4.1","system_fingerprint":"fp_x","service_tier":null,)"
                R"("obfuscation":"q1","usage":null,"choices":[{"index":0,"delta":)"
                R"({"content":"Hello"},"logprobs":null,"finish_reason":null}]})"),
            "Hello");
  EXPECT_EQ(
      ScanContentChunk(R"( { "choices" : [ { "delta" : { "content" : "a\"b\\c\/d\n" } } ] } )"),
      "a\"b\\c/d\n");
  EXPECT_EQ(ScanContentChunk(R"({"choices":[{"delta":{"content":"\u4f60\u597d\ud83d\ude00"}}]})"),
            "你好😀");
  EXPECT_EQ(ScanContentChunk(R"({"choices":[{"delta":{"content":"你好，世界"}}]})"), "你好，世界");
  EXPECT_EQ(
      ScanContentChunk(R"({"choices":[{"index":0,"delta":{"content":null,"role":"assistant"}}]})"),
      "");
  EXPECT_EQ(ScanContentChunk(R"({"choices":[{"delta":{}}]})"), "");
  EXPECT_EQ(ScanContentChunk(R"({"\u0063hoices":[{"delta":{"content":"k"}}]})"), "k");
}

TEST(ScanContentChunk, DeclinesEveryOtherShape) {
  for (const char* payload : {
           R"({"choices":[{"delta":{"content":"a"},"finish_reason":"stop"}]})",
           R"({"choices":[{"delta":{"reasoning_content":"think"}}]})",
           R"({"choices":[{"delta":{"tool_calls":[]}}]})",
           R"({"choices":[{"delta":{"content":"a"}},{"index":1,"delta":{"content":"b"}}]})",
           R"({"choices":[{"index":1,"delta":{"content":"b"}}]})",
           R"({"choices":[{"index":-0,"delta":{"content":"b"}}]})",
           R"({"choices":[{"index":0.0,"delta":{"content":"b"}}]})",
           R"({"choices":[{"delta":{"content":"a","content":"b"}}]})",
           R"({"choices":[{"delta":{"content":"a"}}],"choices":[]})",
           R"({"choices":[],"usage":{"prompt_tokens":1}})",
           R"({"choices":[{"delta":{"content":"a"}}],"usage":{"prompt_tokens":1}})",
           R"({"choices":[{"delta":{"content":"a"}}],"error":null})",
           R"({"choices":[{"delta":{"content":"a"}}],"x_vendor":1})",
           R"({"choices":[{"delta":{"content":"a"}}]} x)",
           R"({"choices":[{"delta":{"content":"a"}}],})",
           R"({"choices":[{"delta":{"content":"a\x"}}]})",
           R"({"choices":[{"delta":{"content":"\ud83d"}}]})",
           R"({"choices":[{"delta":{"content":"\ude00"}}]})",
           R"({"created":01,"choices":[{"delta":{"content":"a"}}]})",
           R"({"created":1.5,"choices":[{"delta":{"content":"a"}}]})",
           R"({"choices":[{"delta":{"content":"a"}}])",
           R"({"choices":[{"delta":null}]})",
           R"({"choices":[{}]})",
           R"({"model":"m"})",
           "{\"choices\":[{\"delta\":{\"content\":\"tab\there\"}}]}",
           "{\"choices\":[{\"delta\":{\"content\":\"\xc3\x28\"}}]}",      // invalid UTF-8
           "{\"choices\":[{\"delta\":{\"content\":\"\xc0\xaf\"}}]}",      // overlong
           "{\"choices\":[{\"delta\":{\"content\":\"\xed\xa0\x80\"}}]}",  // a surrogate
           "",
           "[DONE]",
       }) {
    EXPECT_EQ(ScanContentChunk(payload), std::nullopt) << payload;
  }
}

// What the stream decoder makes of a stream is the same with the scanner as without it.
TEST(OpenAiStreamDecoder, TheScannerDecodesAStreamAsTheFullDecoderDoes) {
  const std::vector<std::string> payloads = {
      R"({"id":"c1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]})",
      R"({"id":"c1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]})",
      R"({"id":"c1","choices":[{"index":0,"delta":{"content":"lo \u4f60"},"finish_reason":null}]})",
      R"({"id":"c1","choices":[{"index":0,"delta":{"reasoning_content":"hm"}}]})",
      R"({"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})",
      R"({"id":"c1","choices":[{"index":0,"delta":{"content":"after the finish"}}]})",
      R"({"id":"c1","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}})",
      "[DONE]"};
  OpenAiStreamDecoder scanned;
  OpenAiStreamDecoder full(/*full_decode_only=*/true);
  std::vector<Chunk> a, b;
  for (const auto& p : payloads) {
    ASSERT_TRUE(scanned.Decode(p, a).ok());
    ASSERT_TRUE(full.Decode(p, b).ok());
  }
  EXPECT_EQ(testing::Lines(a), testing::Lines(b));
  EXPECT_THAT(testing::Lines(a), ::testing::Contains(::testing::HasSubstr("lo 你")));
}

}  // namespace
}  // namespace meridian::providers::openai
