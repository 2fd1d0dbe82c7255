// libFuzzer: arbitrary bytes as an explain/test request against the example policy.
#include <boost/json/parse.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/policy_file.h"
#include "policy/decide.h"
#include "policy/explain.h"
#include "policy/request_json.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace meridian;
  static const policy::SnapshotPtr snapshot = [] {
    auto loaded = config::LoadPolicyFile(MERIDIAN_SOURCE_DIR "/config/examples/policy.yaml");
    if (!loaded.snapshot) std::abort();
    return loaded.snapshot;
  }();
  boost::system::error_code ec;
  auto json = boost::json::parse(std::string_view(reinterpret_cast<const char*>(data), size), ec);
  if (ec) return 0;
  auto [request, error] = policy::ParseRequestJson(json, *snapshot);
  if (!request) {
    if (error.empty()) std::abort();  // a refusal always names its field
    return 0;
  }
  auto decision = policy::Decide(request->Attributes(), snapshot, request->unhealthy);
  (void)policy::ExplainText(decision, request->ignored_signals);
  (void)policy::ExplainJson(decision);
  return 0;
}
