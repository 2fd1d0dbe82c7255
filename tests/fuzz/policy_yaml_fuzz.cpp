// libFuzzer: arbitrary bytes as a policy file → loader → compiler → tests → Decide.
// Must never crash, hang or leak; errors are fine.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/policy_yaml.h"
#include "policy/compile.h"
#include "policy/decide.h"
#include "policy/test_runner.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace meridian;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<config::FileDiagnostic> errors;
  auto doc = config::ParsePolicyYaml(text, "fuzz.yaml", errors);
  for (const auto& e : errors) (void)config::FormatDiagnostic(e);
  auto compiled = policy::Compile(doc.spec);
  if (!compiled.snapshot) return 0;
  (void)policy::RunTests(compiled.snapshot, doc.tests);
  policy::RequestAttributes request;
  request.tenant = "acme";
  if (!compiled.snapshot->model_names.empty()) request.model = compiled.snapshot->model_names[0];
  (void)policy::Decide(request, compiled.snapshot);
  return 0;
}
