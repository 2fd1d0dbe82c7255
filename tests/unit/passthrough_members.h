// Passthrough members written and read as the JSON object members they stand for, so tests
// state them as a client would type them: "\"seed\":7,\"n\":1".
#pragma once

#include <boost/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/core/json_value.h"
#include "gateway/core/request.h"

namespace meridian::testing {

/// The members of the JSON object "{" + members_json + "}", values in their serialised form.
inline std::vector<core::PassthroughMember> Members(std::string_view members_json) {
  const boost::json::value v = boost::json::parse("{" + std::string(members_json) + "}");
  std::vector<core::PassthroughMember> out;
  for (const auto& kv : v.as_object()) {
    out.push_back({std::string(kv.key()), boost::json::serialize(kv.value())});
  }
  return out;
}

/// The request's passthrough members joined as object members: "\"seed\":7,\"n\":1".
inline std::string MembersJson(const core::CompletionRequest& r) {
  std::string out;
  for (const core::PassthroughMember& m : r.passthrough) {
    if (!out.empty()) out += ',';
    out += boost::json::serialize(boost::json::string(m.key));
    out += ':';
    out += m.json;
  }
  return out;
}

}  // namespace meridian::testing
