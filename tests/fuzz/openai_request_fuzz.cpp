// libFuzzer: the HTTP front end's OpenAI Chat Completions request decoder,
// meridian::http::DecodeChatRequest (gateway/http/chat_request.h), on arbitrary bodies.
//
// Invariants (a violation traps):
//   - Rejection: kInvalidArgument with a non-empty message and an OpenAI-style reason from
//     the documented set; `param` names the field for every rejection except malformed JSON
//     (and a body that is not a JSON object: there is no field to name); `out` is reset (no
//     half-decoded request is handed back).
//   - Acceptance: model non-empty; 1..kMaxMessages messages, each with a role; at most
//     kMaxStopSequences stop sequences; include_usage only with stream; every raw JSON
//     fragment (tools, tool_choice, content parts, tool_calls, passthrough members) is valid
//     JSON of the right kind — the provider codecs insert them verbatim.
//   - The upstream request bodies built from an accepted request (OpenAI, Azure, compatible;
//     DashScope native; streaming and not) are valid JSON objects.
//   - Decoding is deterministic.
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "chunk_invariants.h"
#include "gateway/http/chat_request.h"
#include "providers/dashscope/dashscope_codec.h"
#include "providers/openai/openai_codec.h"

namespace {

namespace json = boost::json;
using meridian::core::CompletionRequest;
using meridian::core::Status;
using meridian::core::StatusCode;

bool ParsesAs(std::string_view text, json::kind kind) {
  boost::system::error_code ec;
  json::parse_options opt;
  opt.max_depth = 1024;
  const json::value v = json::parse(json::string_view(text.data(), text.size()), ec, {}, opt);
  return !ec && v.kind() == kind;
}

bool ParsesAny(std::string_view text) {
  boost::system::error_code ec;
  json::parse_options opt;
  opt.max_depth = 1024;
  (void)json::parse(json::string_view(text.data(), text.size()), ec, {}, opt);
  return !ec;
}

// True when the body is a JSON object none of whose members is named "" (a member named ""
// is rejected with param "", which does name it).
bool RootIsObjectWithNamedMembers(std::string_view body) {
  boost::system::error_code ec;
  json::parse_options opt;
  opt.max_depth = meridian::http::kMaxJsonDepth;
  const json::value v = json::parse(json::string_view(body.data(), body.size()), ec, {}, opt);
  return !ec && v.is_object() && !v.get_object().contains("");
}

void CheckRejection(std::string_view body, const Status& s, const CompletionRequest& out) {
  MERIDIAN_FUZZ_CHECK(!s.ok());
  MERIDIAN_FUZZ_CHECK(s.code == StatusCode::kInvalidArgument);
  MERIDIAN_FUZZ_CHECK(!s.message.empty());
  MERIDIAN_FUZZ_CHECK(s.reason == "missing_required_parameter" || s.reason == "invalid_type" ||
                      s.reason == "invalid_value" || s.reason == "empty_array" ||
                      s.reason == "array_above_max_length" || s.reason == "invalid_json");
  if (s.reason == "invalid_json") {
    MERIDIAN_FUZZ_CHECK(s.param.empty());  // documented: malformed JSON has no param
  } else if (RootIsObjectWithNamedMembers(body)) {
    MERIDIAN_FUZZ_CHECK(!s.param.empty());  // every field rejection names the field
  }
  MERIDIAN_FUZZ_CHECK(out.model.empty() && out.messages.empty() && out.stop.empty() &&
                      out.passthrough.empty() && out.tools_json.empty());
}

void CheckAccepted(const CompletionRequest& r) {
  MERIDIAN_FUZZ_CHECK(!r.model.empty());
  MERIDIAN_FUZZ_CHECK(!r.messages.empty());
  MERIDIAN_FUZZ_CHECK(r.messages.size() <= meridian::http::kMaxMessages);
  MERIDIAN_FUZZ_CHECK(r.stop.size() <= meridian::http::kMaxStopSequences);
  if (r.include_usage) MERIDIAN_FUZZ_CHECK(r.stream);
  for (const auto& m : r.messages) {
    MERIDIAN_FUZZ_CHECK(!m.role.empty());
    if (!m.content_parts_json.empty())
      MERIDIAN_FUZZ_CHECK(ParsesAs(m.content_parts_json, json::kind::array));
    if (!m.tool_calls_json.empty())
      MERIDIAN_FUZZ_CHECK(ParsesAs(m.tool_calls_json, json::kind::array));
  }
  if (!r.tools_json.empty()) MERIDIAN_FUZZ_CHECK(ParsesAs(r.tools_json, json::kind::array));
  if (!r.tool_choice_json.empty()) MERIDIAN_FUZZ_CHECK(ParsesAny(r.tool_choice_json));
  for (const auto& m : r.passthrough) MERIDIAN_FUZZ_CHECK(ParsesAny(m.json));

  // What the adapters send upstream must be valid JSON.
  namespace openai = meridian::providers::openai;
  for (const bool stream : {false, true}) {
    for (const auto flavor : {openai::OpenAiFlavor::kOpenAi, openai::OpenAiFlavor::kAzure,
                              openai::OpenAiFlavor::kCompatible}) {
      MERIDIAN_FUZZ_CHECK(ParsesAs(
          openai::BuildChatRequestBody(r, "upstream-model", flavor, stream), json::kind::object));
    }
    MERIDIAN_FUZZ_CHECK(
        ParsesAs(meridian::providers::dashscope::BuildGenerationRequestBody(r, "qwen-plus", stream),
                 json::kind::object));
  }
}

bool SameRequest(const CompletionRequest& a, const CompletionRequest& b) {
  if (a.messages.size() != b.messages.size()) return false;
  for (std::size_t i = 0; i < a.messages.size(); ++i) {
    const auto& x = a.messages[i];
    const auto& y = b.messages[i];
    if (x.role != y.role || x.text != y.text || x.content_parts_json != y.content_parts_json ||
        x.content_null != y.content_null || x.name != y.name || x.tool_call_id != y.tool_call_id ||
        x.tool_calls_json != y.tool_calls_json)
      return false;
  }
  return a.model == b.model && a.stream == b.stream && a.include_usage == b.include_usage &&
         a.max_tokens == b.max_tokens && a.max_completion_tokens == b.max_completion_tokens &&
         a.stop == b.stop && a.tools_json == b.tools_json &&
         a.tool_choice_json == b.tool_choice_json && a.user == b.user &&
         a.enable_thinking == b.enable_thinking && a.passthrough == b.passthrough;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  CompletionRequest out;
  out.model = "stale";  // DecodeChatRequest must overwrite `out`
  out.messages.emplace_back();
  const Status s = meridian::http::DecodeChatRequest(body, out);
  if (!s.ok()) {
    CheckRejection(body, s, out);
    return 0;
  }
  CheckAccepted(out);
  CompletionRequest again;
  MERIDIAN_FUZZ_CHECK(meridian::http::DecodeChatRequest(body, again).ok());
  MERIDIAN_FUZZ_CHECK(SameRequest(out, again));
  return 0;
}
