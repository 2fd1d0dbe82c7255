// libFuzzer: the Anthropic Messages codec of the HTTP front end on arbitrary bodies:
// meridian::http::DecodeMessagesRequest (gateway/http/messages_request.h), and the message
// rendered for what was accepted.
//
// Invariants (a violation traps):
//   - Rejection: kInvalidArgument with a message and a reason from the documented set; `out`
//     is reset.
//   - Acceptance: model non-empty; max_tokens set; at least one message, each with a role;
//     every raw JSON fragment the provider codecs insert verbatim is valid JSON; the upstream
//     bodies built from it (OpenAI, DashScope) are JSON objects; the `message` rendered
//     around an answer is a JSON object.
//   - Decoding is deterministic.
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "chunk_invariants.h"
#include "gateway/http/messages_request.h"
#include "gateway/http/messages_response.h"
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
  const auto s = meridian::http::DecodeMessagesRequest(body, r);
  CompletionRequest again;
  const auto s2 = meridian::http::DecodeMessagesRequest(body, again);
  MERIDIAN_FUZZ_CHECK(s.ok() == s2.ok() && s.param == s2.param && s.reason == s2.reason);
  if (!s.ok()) {
    MERIDIAN_FUZZ_CHECK(s.code == StatusCode::kInvalidArgument && !s.message.empty());
    MERIDIAN_FUZZ_CHECK(s.reason == "missing_required_parameter" || s.reason == "invalid_type" ||
                        s.reason == "invalid_value" || s.reason == "empty_array" ||
                        s.reason == "array_above_max_length" || s.reason == "invalid_json" ||
                        s.reason == "unsupported_parameter" || s.reason == "unknown_parameter");
    MERIDIAN_FUZZ_CHECK(r.model.empty() && r.messages.empty());
    return 0;
  }
  MERIDIAN_FUZZ_CHECK(!r.model.empty() && r.max_tokens && !r.messages.empty());
  MERIDIAN_FUZZ_CHECK(r.messages.size() == again.messages.size());
  for (const auto& m : r.messages) {
    MERIDIAN_FUZZ_CHECK(!m.role.empty());
    if (!m.content_parts_json.empty())
      MERIDIAN_FUZZ_CHECK(Parses(m.content_parts_json, json::kind::array));
    if (!m.tool_calls_json.empty())
      MERIDIAN_FUZZ_CHECK(Parses(m.tool_calls_json, json::kind::array));
  }
  if (!r.tools_json.empty()) MERIDIAN_FUZZ_CHECK(Parses(r.tools_json, json::kind::array));
  if (!r.tool_choice_json.empty())
    MERIDIAN_FUZZ_CHECK(Parses(r.tool_choice_json, json::kind::null, true));
  for (const auto& m : r.passthrough) MERIDIAN_FUZZ_CHECK(Parses(m.json, json::kind::null, true));
  namespace openai = meridian::providers::openai;
  MERIDIAN_FUZZ_CHECK(
      Parses(openai::BuildChatRequestBody(r, "upstream", openai::OpenAiFlavor::kOpenAi, r.stream),
             json::kind::object));
  MERIDIAN_FUZZ_CHECK(
      Parses(meridian::providers::dashscope::BuildGenerationRequestBody(r, "qwen", r.stream),
             json::kind::object));
  meridian::core::CompletionAggregator answer;
  meridian::core::Chunk text;
  text.content = r.messages.back().text;
  text.tool_calls_json = r.messages.back().tool_calls_json;
  answer.Add(text);
  MERIDIAN_FUZZ_CHECK(Parses(meridian::http::RenderMessage({"msg_0", r.model}, answer.completion()),
                             json::kind::object));
  return 0;
}
