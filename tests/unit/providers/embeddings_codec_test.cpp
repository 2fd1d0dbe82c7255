// The vendors' embeddings codecs, as pure functions: request bodies and paths as each API
// documents them, answers into kEmbedding chunks in input order, and every way an answer
// can be unusable.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "providers/dashscope/dashscope_codec.h"
#include "providers/openai/openai_codec.h"
#include "tests/unit/providers/chunk_lines.h"

namespace meridian::providers {
namespace {

namespace json = boost::json;
using core::Chunk;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::Lines;

core::CompletionRequest Texts(std::vector<std::string> texts) {
  core::CompletionRequest r;
  r.op = core::Operation::kEmbed;
  r.model = "alias";
  r.embedding.texts = std::move(texts);
  return r;
}

TEST(OpenAiEmbeddings, RequestBodyAsksForFloatsWhateverTheClientAsked) {
  core::CompletionRequest r = Texts({"a \"quoted\" text", "b"});
  r.embedding.dimensions = 256;
  r.embedding.base64 = true;
  r.user = "u-1";
  EXPECT_EQ(openai::BuildEmbeddingsRequestBody(r, "text-embedding-3-small",
                                               openai::OpenAiFlavor::kOpenAi),
            R"({"model":"text-embedding-3-small","input":["a \"quoted\" text","b"],)"
            R"("encoding_format":"float","dimensions":256,"user":"u-1"})");
  // Local engines get no `user` (Ollama rejects it), and token ids as arrays.
  core::CompletionRequest t;
  t.op = core::Operation::kEmbed;
  t.embedding.tokens = {{1, 2}, {3}};
  t.user = "u-1";
  EXPECT_EQ(openai::BuildEmbeddingsRequestBody(t, "bge-m3", openai::OpenAiFlavor::kCompatible),
            R"({"model":"bge-m3","input":[[1,2],[3]],"encoding_format":"float"})");
}

TEST(OpenAiEmbeddings, PathsForEveryFlavor) {
  using openai::OpenAiFlavor;
  EXPECT_EQ(openai::EmbeddingsPath(OpenAiFlavor::kOpenAi, "/v1/", "m", ""), "/v1/embeddings");
  EXPECT_EQ(openai::EmbeddingsPath(OpenAiFlavor::kCompatible, "/v1", "m", ""), "/v1/embeddings");
  EXPECT_EQ(openai::EmbeddingsPath(OpenAiFlavor::kAzure, "", "emb-prod", "2024-10-21"),
            "/openai/deployments/emb-prod/embeddings?api-version=2024-10-21");
  EXPECT_EQ(openai::EmbeddingsPath(OpenAiFlavor::kAzure, "/openai/v1", "emb-prod", "2024-10-21"),
            "/openai/v1/embeddings");
}

TEST(OpenAiEmbeddings, DecodesVectorsInInputOrderWhateverOrderTheyCameIn) {
  std::vector<Chunk> out;
  ASSERT_TRUE(openai::DecodeEmbeddingsResponse(
                  R"({"object":"list","data":[
                       {"object":"embedding","index":1,"embedding":[0.5,-1]},
                       {"object":"embedding","index":0,"embedding":"AACAPwAAAMA="}],
                      "model":"text-embedding-3-small",
                      "usage":{"prompt_tokens":5,"total_tokens":5}})",
                  2, out)
                  .ok());
  EXPECT_THAT(Lines(out), ElementsAre("start  text-embedding-3-small 0", "embedding 0 [1 -2]",
                                      "embedding 1 [0.5 -1]", "usage 5/0/5 reasoning=- cached=-"));
  // Engines that leave out `index` (and usage) count by position.
  out.clear();
  ASSERT_TRUE(
      openai::DecodeEmbeddingsResponse(R"({"data":[{"embedding":[1]},{"embedding":[2]}]})", 2, out)
          .ok());
  EXPECT_THAT(Lines(out), ElementsAre("start   0", "embedding 0 [1]", "embedding 1 [2]"));
}

TEST(OpenAiEmbeddings, AnAnswerThatDoesNotGiveEachInputOneVectorIsTheProvidersFailure) {
  for (const auto& [body, inputs, reason] :
       std::vector<std::tuple<std::string_view, std::size_t, std::string_view>>{
           {"not json", 1, "upstream_invalid_json"},
           {R"({"object":"list"})", 1, "upstream_bad_embeddings"},
           {R"({"data":[{"embedding":[1]}]})", 2, "upstream_bad_embeddings"},
           {R"({"data":[{"embedding":[1]},{"embedding":[2]}]})", 1, "upstream_bad_embeddings"},
           {R"({"data":[{"index":0,"embedding":[1]},{"index":0,"embedding":[2]}]})", 2,
            "upstream_bad_embeddings"},
           {R"({"data":[{"index":-1,"embedding":[1]}]})", 1, "upstream_bad_embeddings"},
           {R"({"data":[{"embedding":["x"]}]})", 1, "upstream_bad_embeddings"},
           {R"({"data":[{"embedding":[1e999]}]})", 1, "upstream_bad_embeddings"},  // inf
           {R"({"data":[{"embedding":[1e300]}]})", 1, "upstream_bad_embeddings"},
           {R"({"data":[{"embedding":"AAC*"}]})", 1, "upstream_bad_embeddings"},
           {R"({"data":[{"embedding":{}}]})", 1, "upstream_bad_embeddings"},
           {R"({"error":{"message":"boom","type":"server_error"}})", 1, "server_error"},
       }) {
    SCOPED_TRACE(body);
    std::vector<Chunk> out;
    const core::Status s = openai::DecodeEmbeddingsResponse(body, inputs, out);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code, core::StatusCode::kBadUpstream);
    EXPECT_EQ(s.reason, reason);
    ASSERT_EQ(out.size(), 1u);  // nothing but the error: no partial answer
    EXPECT_EQ(out[0].kind, Chunk::Kind::kError);
  }
}

TEST(DashScopeEmbeddings, NativeBodyAndAnswer) {
  core::CompletionRequest r = Texts({"你好", "b"});
  r.embedding.dimensions = 512;
  r.user = "u-1";  // not a parameter of this API
  EXPECT_EQ(dashscope::BuildEmbeddingRequestBody(r, "text-embedding-v4"),
            R"({"model":"text-embedding-v4","input":{"texts":["你好","b"]},)"
            R"("parameters":{"dimension":512}})");
  EXPECT_EQ(dashscope::BuildEmbeddingRequestBody(Texts({"x"}), "text-embedding-v3"),
            R"({"model":"text-embedding-v3","input":{"texts":["x"]},"parameters":{}})");

  std::vector<Chunk> out;
  ASSERT_TRUE(dashscope::DecodeEmbeddingResponse(
                  R"({"output":{"embeddings":[
                       {"sparse_embedding":[],"embedding":[0.25,1],"text_index":1},
                       {"embedding":[-0.5,0],"text_index":0}]},
                      "usage":{"total_tokens":7},"request_id":"req-1"})",
                  2, out)
                  .ok());
  EXPECT_THAT(Lines(out), ElementsAre("start req-1  0", "embedding 0 [-0.5 0]",
                                      "embedding 1 [0.25 1]", "usage 7/0/7 reasoning=- cached=-"));
}

TEST(DashScopeEmbeddings, ErrorsAndUnusableAnswers) {
  std::vector<Chunk> out;
  core::Status s = dashscope::DecodeEmbeddingResponse(
      R"({"code":"InvalidParameter","message":"batch size is invalid","request_id":"r"})", 1, out);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message, HasSubstr("batch size is invalid"));
  for (std::string_view body :
       {R"({"output":{}})", R"({"output":{"embeddings":[]}})",
        R"({"output":{"embeddings":[{"text_index":3,"embedding":[1]}]}})",
        R"({"output":{"embeddings":[{"text_index":0,"embedding":null}]}})"}) {
    SCOPED_TRACE(body);
    out.clear();
    s = dashscope::DecodeEmbeddingResponse(body, 1, out);
    EXPECT_EQ(s.reason, "upstream_bad_embeddings");
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].kind, Chunk::Kind::kError);
  }
}

}  // namespace
}  // namespace meridian::providers
