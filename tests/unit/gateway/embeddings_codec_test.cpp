// The Embeddings codec, as pure functions: every `input` form onto the core request, and
// vectors back into OpenAI's list of embedding objects (float arrays or base64 float32).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cmath>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "gateway/core/float_vector.h"
#include "gateway/http/embeddings_request.h"
#include "gateway/http/embeddings_response.h"

namespace meridian::http {
namespace {

namespace json = boost::json;
using ::testing::ElementsAre;

TEST(DecodeEmbeddingsRequest, EveryInputFormOpenAiAccepts) {
  core::CompletionRequest r;
  ASSERT_TRUE(DecodeEmbeddingsRequest(R"({"model":"e","input":"hello"})", r).ok());
  EXPECT_EQ(r.op, core::Operation::kEmbed);
  EXPECT_EQ(r.model, "e");
  EXPECT_THAT(r.embedding.texts, ElementsAre("hello"));
  EXPECT_TRUE(r.embedding.tokens.empty());
  EXPECT_FALSE(r.embedding.base64);
  EXPECT_FALSE(r.stream);

  ASSERT_TRUE(DecodeEmbeddingsRequest(
                  R"({"model":"e","input":["a","b c"],"dimensions":256,
                      "encoding_format":"base64","user":"u-1"})",
                  r)
                  .ok());
  EXPECT_THAT(r.embedding.texts, ElementsAre("a", "b c"));
  EXPECT_EQ(r.embedding.dimensions, 256);
  EXPECT_TRUE(r.embedding.base64);
  EXPECT_EQ(r.user, "u-1");
  EXPECT_EQ(r.embedding.size(), 2u);

  // One input as token ids, and several (LangChain's OpenAIEmbeddings sends these).
  ASSERT_TRUE(DecodeEmbeddingsRequest(R"({"model":"e","input":[1,2,3]})", r).ok());
  EXPECT_TRUE(r.embedding.texts.empty());
  ASSERT_EQ(r.embedding.tokens.size(), 1u);
  EXPECT_THAT(r.embedding.tokens[0], ElementsAre(1, 2, 3));
  ASSERT_TRUE(DecodeEmbeddingsRequest(R"({"model":"e","input":[[5],[6,7]],
                                          "encoding_format":"float","dimensions":null})",
                                      r)
                  .ok());
  ASSERT_EQ(r.embedding.tokens.size(), 2u);
  EXPECT_THAT(r.embedding.tokens[1], ElementsAre(6, 7));
  EXPECT_FALSE(r.embedding.dimensions);
  EXPECT_EQ(r.embedding.size(), 2u);
}

TEST(DecodeEmbeddingsRequest, RefusesEveryMalformedFieldNamingIt) {
  const std::string many = [] {
    std::string s = R"({"model":"e","input":[)";
    for (std::size_t i = 0; i <= kMaxEmbeddingInputs; ++i) s += i == 0 ? "\"x\"" : ",\"x\"";
    return s + "]}";
  }();
  for (const auto& [body, param, reason] :
       std::vector<std::tuple<std::string, const char*, const char*>>{
           {R"({"model":"e"})", "input", "missing_required_parameter"},
           {R"({"input":"x"})", "model", "missing_required_parameter"},
           {R"({"model":"e","input":""})", "input", "invalid_value"},
           {R"({"model":"e","input":[]})", "input", "empty_array"},
           {R"({"model":"e","input":null})", "input", "invalid_type"},
           {R"({"model":"e","input":7})", "input", "invalid_type"},
           {R"({"model":"e","input":["a",""]})", "input[1]", "invalid_value"},
           {R"({"model":"e","input":["a",1]})", "input[1]", "invalid_type"},
           {R"({"model":"e","input":[[1],"a"]})", "input[1]", "invalid_type"},
           {R"({"model":"e","input":[[1],[]]})", "input[1]", "empty_array"},
           {R"({"model":"e","input":[1,-2]})", "input[1]", "invalid_value"},
           {R"({"model":"e","input":[1,2.5]})", "input[1]", "invalid_type"},
           {R"({"model":"e","input":[[1,4294967296]]})", "input[0][1]", "invalid_value"},
           {R"({"model":"e","input":[{"text":"a"}]})", "input[0]", "invalid_type"},
           {R"({"model":"e","input":"x","dimensions":0})", "dimensions", "invalid_value"},
           {R"({"model":"e","input":"x","dimensions":"8"})", "dimensions", "invalid_type"},
           {R"({"model":"e","input":"x","encoding_format":"int8"})", "encoding_format",
            "invalid_value"},
           {R"({"model":"e","input":"x","user":5})", "user", "invalid_type"},
           {R"({"model":"e","input":"x","stream":true})", "stream", "unknown_parameter"},
           {many, "input", "array_above_max_length"},
       }) {
    SCOPED_TRACE(body.substr(0, 80));
    core::CompletionRequest r;
    const core::Status s = DecodeEmbeddingsRequest(body, r);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code, core::StatusCode::kInvalidArgument);
    EXPECT_EQ(s.param, param);
    EXPECT_EQ(s.reason, reason);
    EXPECT_TRUE(r.embedding.texts.empty() && r.embedding.tokens.empty());  // nothing half-decoded
  }
  core::CompletionRequest r;
  EXPECT_EQ(DecodeEmbeddingsRequest("[1]", r).reason, "invalid_type");
  EXPECT_EQ(DecodeEmbeddingsRequest("{", r).reason, "invalid_json");
}

TEST(RenderEmbeddings, FloatArraysInInputOrderWithTheAliasAndUsage) {
  core::Completion answer;
  answer.embeddings[1] = {0.5f, -1.0f};
  answer.embeddings[0] = {0.1f, 3e-8f};
  answer.usage.prompt_tokens = 4;
  answer.usage.total_tokens = 4;
  answer.has_usage = true;
  EXPECT_EQ(RenderEmbeddings(answer, "embed-small", false),
            R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,3e-08]},)"
            R"({"object":"embedding","index":1,"embedding":[0.5,-1]}],"model":"embed-small",)"
            R"("usage":{"prompt_tokens":4,"total_tokens":4}})");
  // Every float reads back exactly (shortest round-trip form).
  const json::value v = json::parse(RenderEmbeddings(answer, "m", false));
  EXPECT_EQ(static_cast<float>(v.at("data").at(0).at("embedding").at(0).as_double()), 0.1f);
}

TEST(RenderEmbeddings, Base64IsLittleEndianFloat32AsOpenAiSends) {
  core::Completion answer;
  answer.embeddings[0] = {1.0f, -2.0f};
  const json::value v = json::parse(RenderEmbeddings(answer, "m", true));
  // 1.0f = 00 00 80 3f, -2.0f = 00 00 00 c0 (little-endian).
  EXPECT_EQ(v.at("data").at(0).at("embedding").as_string(), "AACAPwAAAMA=");
}

TEST(Float32Base64, RoundTripsEveryLengthAndRefusesWhatIsNotBase64) {
  std::vector<float> v;
  for (int n = 0; n < 9; ++n) {
    std::string text;
    core::AppendFloat32Base64(text, v);
    std::vector<float> back;
    ASSERT_TRUE(core::DecodeFloat32Base64(text, back)) << text;
    EXPECT_EQ(back, v);
    v.push_back(static_cast<float>(n) * -0.37f + std::numeric_limits<float>::denorm_min());
  }
  std::vector<float> out;
  EXPECT_FALSE(core::DecodeFloat32Base64("AACAPw", out));    // not padded
  EXPECT_FALSE(core::DecodeFloat32Base64("AACA", out));      // 3 bytes: not a float
  EXPECT_FALSE(core::DecodeFloat32Base64("AA=APwAA", out));  // padding inside
  EXPECT_FALSE(core::DecodeFloat32Base64("AAC*Pw==", out));  // outside the alphabet
  EXPECT_TRUE(core::DecodeFloat32Base64("", out));
  EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace meridian::http
