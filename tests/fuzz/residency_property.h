// The residency property shared by the fuzz target request_scan_fuzz and the randomised unit
// test residency_property_test: plant a valid identifier into one string field of a valid
// Chat Completions request; then either the classifier (classifier::ScanRequest, what
// gateway::Admit runs) finds it, or NO upstream body that any provider codec builds from the
// request carries it. A field forwarded but not scanned breaks the property.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/classifier.h"
#include "gateway/http/chat_request.h"
#include "providers/anthropic/anthropic_codec.h"
#include "providers/dashscope/dashscope_codec.h"
#include "providers/openai/openai_codec.h"

namespace meridian::residency_property {

namespace json = boost::json;

/// A valid synthetic mainland resident ID (GB 11643 check char X).
inline constexpr std::string_view kPlant = "11010519491231002X";

enum class Outcome {
  kSkipped,     ///< not a valid request (before or after planting), or no string field
  kClassified,  ///< the plant was found
  kNotSent,     ///< not found, and no upstream body carries it
  kViolation,   ///< not found, yet an upstream body carries it
};

inline void CollectStrings(json::value& v, std::vector<json::string*>& out) {
  if (auto* s = v.if_string()) {
    out.push_back(s);
  } else if (auto* a = v.if_array()) {
    for (auto& e : *a) CollectStrings(e, out);
  } else if (auto* o = v.if_object()) {
    for (auto& m : *o) CollectStrings(m.value(), out);
  }
}

/// Every upstream body the provider codecs build from `r` (streaming and not).
inline std::vector<std::string> UpstreamBodies(const core::CompletionRequest& r) {
  namespace openai = providers::openai;
  std::vector<std::string> bodies;
  for (const bool stream : {false, true}) {
    for (const auto flavor : {openai::OpenAiFlavor::kOpenAi, openai::OpenAiFlavor::kAzure,
                              openai::OpenAiFlavor::kCompatible}) {
      bodies.push_back(openai::BuildChatRequestBody(r, "upstream-model", flavor, stream));
    }
    bodies.push_back(providers::dashscope::BuildGenerationRequestBody(r, "qwen-plus", stream));
    bodies.push_back(providers::anthropic::BuildMessagesRequestBody(r, "claude", stream, 1024));
  }
  return bodies;
}

/// Plants kPlant into string field number `pick` (modulo their count) of `body`, appended
/// after a space (or as the whole value when `replace`), and checks the property.
inline Outcome Check(std::string_view body, std::uint64_t pick, bool replace) {
  // A body that already holds the plant's digits (inside a longer run, say, where they are
  // rightly no ID) cannot tell where the plant went.
  if (body.find(kPlant) != std::string_view::npos) return Outcome::kSkipped;
  json::error_code ec;
  json::value v = json::parse(json::string_view(body.data(), body.size()), ec);
  if (ec || !v.is_object()) return Outcome::kSkipped;
  std::vector<json::string*> strings;
  CollectStrings(v, strings);
  if (strings.empty()) return Outcome::kSkipped;
  json::string& target = *strings[pick % strings.size()];
  const std::string planted =
      replace ? std::string(kPlant)
              : std::string(target.data(), target.size()) + " " + std::string(kPlant);
  target = json::string_view(planted.data(), planted.size());
  core::CompletionRequest r;
  if (!http::DecodeChatRequest(json::serialize(v), r).ok()) return Outcome::kSkipped;
  const classifier::RequestScan scan = classifier::ScanRequest(r);
  if ((scan.detectors_mask & policy::Bit(classifier::Detector::kCnResidentId)) != 0) {
    return Outcome::kClassified;
  }
  for (const std::string& b : UpstreamBodies(r)) {
    if (b.find(kPlant) != std::string::npos) return Outcome::kViolation;
  }
  return Outcome::kNotSent;
}

}  // namespace meridian::residency_property
