// libFuzzer: the legacy Completions decoder of the HTTP front end on arbitrary bodies:
// meridian::http::DecodeCompletionsRequest (gateway/http/completions_request.h), and the
// text_completion rendered for what was accepted.
//
// Invariants (a violation traps):
//   - Rejection: kInvalidArgument with a message and a reason from the documented set; `out`
//     is reset.
//   - Acceptance: model non-empty; exactly one user message; max_tokens set (16 by default);
//     include_usage only with stream; passthrough members valid JSON; the OpenAI and DashScope
//     upstream bodies and the rendered text_completion are JSON objects.
//   - Decoding is deterministic.
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "chunk_invariants.h"
#include "gateway/http/completions_request.h"
#include "gateway/http/completions_response.h"
#include "providers/dashscope/dashscope_codec.h"
#include "providers/openai/openai_codec.h"

namespace {

namespace json = boost::json;
using meridian::core::CompletionRequest;
using meridian::core::StatusCode;

bool Parses(std::string_view text, json::kind kind, bool any = false) {
  boost::system::error_code ec;
  json::parse_options opt;
  opt.max_depth = 1024;
  const json::value v = json::parse(json::string_view(text.data(), text.size()), ec, {}, opt);
  return !ec && (any || v.kind() == kind);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  CompletionRequest r;
  const auto s = meridian::http::DecodeCompletionsRequest(body, r);
  CompletionRequest again;
  const auto s2 = meridian::http::DecodeCompletionsRequest(body, again);
  MERIDIAN_FUZZ_CHECK(s.ok() == s2.ok() && s.param == s2.param && s.reason == s2.reason);
  if (!s.ok()) {
    MERIDIAN_FUZZ_CHECK(s.code == StatusCode::kInvalidArgument && !s.message.empty());
    MERIDIAN_FUZZ_CHECK(s.reason == "missing_required_parameter" || s.reason == "invalid_type" ||
                        s.reason == "invalid_value" || s.reason == "array_above_max_length" ||
                        s.reason == "invalid_json" || s.reason == "unsupported_parameter" ||
                        s.reason == "unknown_parameter");
    MERIDIAN_FUZZ_CHECK(r.model.empty() && r.messages.empty());
    return 0;
  }
  MERIDIAN_FUZZ_CHECK(!r.model.empty() && r.messages.size() == 1 && r.max_tokens);
  MERIDIAN_FUZZ_CHECK(r.messages[0].role == "user" && r.messages[0].text == again.messages[0].text);
  if (r.include_usage) MERIDIAN_FUZZ_CHECK(r.stream);
  for (const auto& m : r.passthrough) MERIDIAN_FUZZ_CHECK(Parses(m.json, json::kind::null, true));
  namespace openai = meridian::providers::openai;
  MERIDIAN_FUZZ_CHECK(Parses(
      openai::BuildChatRequestBody(r, "upstream", openai::OpenAiFlavor::kCompatible, r.stream),
      json::kind::object));
  MERIDIAN_FUZZ_CHECK(
      Parses(meridian::providers::dashscope::BuildGenerationRequestBody(r, "qwen", r.stream),
             json::kind::object));
  meridian::core::CompletionAggregator answer;
  meridian::core::Chunk text;
  text.content = r.messages[0].text;
  answer.Add(text);
  MERIDIAN_FUZZ_CHECK(
      Parses(meridian::http::RenderTextCompletion(answer.completion(), "cmpl-0", 0, r.model),
             json::kind::object));
  return 0;
}
