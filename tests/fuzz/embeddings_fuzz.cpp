// libFuzzer: the embeddings codecs on arbitrary bytes. The first byte chooses what is fed the
// rest: the HTTP front end's request decoder (meridian::http::DecodeEmbeddingsRequest), the
// OpenAI-family or DashScope answer decoder (for 1 to 4 inputs), or the base64 float32 codec.
//
// Invariants (a violation traps):
//   - Request: a rejection is kInvalidArgument with a documented reason and leaves `out`
//     reset; an acceptance has op kEmbed, a model, 1..2048 inputs of one form (texts or token
//     ids), no empty input, and both upstream bodies are JSON objects; the rendered answer for
//     one vector per input is a JSON object with that many items. Deterministic.
//   - Answer: ok means kStart, exactly one kEmbedding per input in index order with finite
//     values, then at most one kUsage; a failure is exactly one kError chunk.
//   - Base64: what decodes re-encodes to a text that decodes to the same bits.
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "chunk_invariants.h"
#include "gateway/core/float_vector.h"
#include "gateway/http/embeddings_request.h"
#include "gateway/http/embeddings_response.h"
#include "providers/dashscope/dashscope_codec.h"
#include "providers/openai/openai_codec.h"

namespace {

namespace json = boost::json;
using meridian::core::Chunk;
using meridian::core::CompletionRequest;
using meridian::core::StatusCode;

json::value Parse(std::string_view text) {
  boost::system::error_code ec;
  json::parse_options opt;
  opt.max_depth = 1024;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec, {}, opt);
  return ec ? json::value(nullptr) : v;
}

void Request(std::string_view body) {
  CompletionRequest r;
  const auto s = meridian::http::DecodeEmbeddingsRequest(body, r);
  CompletionRequest again;
  const auto s2 = meridian::http::DecodeEmbeddingsRequest(body, again);
  MERIDIAN_FUZZ_CHECK(s.ok() == s2.ok() && s.param == s2.param && s.reason == s2.reason);
  if (!s.ok()) {
    MERIDIAN_FUZZ_CHECK(s.code == StatusCode::kInvalidArgument && !s.message.empty());
    MERIDIAN_FUZZ_CHECK(s.reason == "missing_required_parameter" || s.reason == "invalid_type" ||
                        s.reason == "invalid_value" || s.reason == "array_above_max_length" ||
                        s.reason == "empty_array" || s.reason == "invalid_json" ||
                        s.reason == "unknown_parameter");
    MERIDIAN_FUZZ_CHECK(r.model.empty() && r.embedding.size() == 0);
    return;
  }
  const auto& in = r.embedding;
  MERIDIAN_FUZZ_CHECK(r.op == meridian::core::Operation::kEmbed && !r.model.empty());
  MERIDIAN_FUZZ_CHECK(in.texts.empty() != in.tokens.empty());
  MERIDIAN_FUZZ_CHECK(in.size() >= 1 && in.size() <= meridian::http::kMaxEmbeddingInputs);
  for (const auto& t : in.texts) MERIDIAN_FUZZ_CHECK(!t.empty());
  for (const auto& t : in.tokens) {
    MERIDIAN_FUZZ_CHECK(!t.empty());
    for (std::int64_t id : t) MERIDIAN_FUZZ_CHECK(id >= 0 && id <= 2147483647);
  }
  if (in.dimensions) MERIDIAN_FUZZ_CHECK(*in.dimensions >= 1);
  namespace openai = meridian::providers::openai;
  MERIDIAN_FUZZ_CHECK(
      Parse(openai::BuildEmbeddingsRequestBody(r, "up", openai::OpenAiFlavor::kOpenAi))
          .is_object());
  if (in.tokens.empty()) {
    MERIDIAN_FUZZ_CHECK(
        Parse(meridian::providers::dashscope::BuildEmbeddingRequestBody(r, "up")).is_object());
  }
  meridian::core::Completion answer;
  for (std::size_t i = 0; i < in.size() && i < 64; ++i) {
    answer.embeddings[static_cast<std::int64_t>(i)] = {0.5f, -1.0f};
  }
  const json::value rendered = Parse(meridian::http::RenderEmbeddings(answer, r.model, in.base64));
  MERIDIAN_FUZZ_CHECK(rendered.is_object());
  MERIDIAN_FUZZ_CHECK(rendered.at("data").as_array().size() == answer.embeddings.size());
}

void Answer(std::string_view body, bool dashscope, std::size_t inputs) {
  std::vector<Chunk> out;
  const auto s = dashscope
                     ? meridian::providers::dashscope::DecodeEmbeddingResponse(body, inputs, out)
                     : meridian::providers::openai::DecodeEmbeddingsResponse(body, inputs, out);
  if (!s.ok()) {
    MERIDIAN_FUZZ_CHECK(out.size() == 1 && out[0].kind == Chunk::Kind::kError);
    return;
  }
  MERIDIAN_FUZZ_CHECK(out.size() == inputs + 1 || out.size() == inputs + 2);
  MERIDIAN_FUZZ_CHECK(out[0].kind == Chunk::Kind::kStart);
  for (std::size_t i = 0; i < inputs; ++i) {
    const Chunk& c = out[i + 1];
    MERIDIAN_FUZZ_CHECK(c.kind == Chunk::Kind::kEmbedding);
    MERIDIAN_FUZZ_CHECK(c.index == static_cast<std::int64_t>(i));
    for (float f : c.embedding) MERIDIAN_FUZZ_CHECK(std::isfinite(f));
  }
  if (out.size() == inputs + 2) MERIDIAN_FUZZ_CHECK(out.back().kind == Chunk::Kind::kUsage);
}

void Base64(std::string_view text) {
  std::vector<float> v;
  if (!meridian::core::DecodeFloat32Base64(text, v)) return;
  std::string again;
  meridian::core::AppendFloat32Base64(again, v);
  std::vector<float> back;
  MERIDIAN_FUZZ_CHECK(meridian::core::DecodeFloat32Base64(again, back));
  MERIDIAN_FUZZ_CHECK(back.size() == v.size());
  MERIDIAN_FUZZ_CHECK(v.empty() || std::memcmp(back.data(), v.data(), v.size() * 4) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t mode = data[0];
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (mode % 4) {
    case 0:
      Request(rest);
      break;
    case 1:
      Answer(rest, false, 1 + (mode >> 2) % 4);
      break;
    case 2:
      Answer(rest, true, 1 + (mode >> 2) % 4);
      break;
    default:
      Base64(rest);
      break;
  }
  return 0;
}
