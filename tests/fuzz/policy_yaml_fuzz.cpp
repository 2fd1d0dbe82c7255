// libFuzzer: arbitrary bytes as a policy file, through the real loader entry point
// (config::LoadPolicyText: parse -> compile -> sorted diagnostics, exactly what `meridian`
// and the embedded default use), then the file's own tests and Decide on the snapshot.
// Must never crash, hang or leak; errors are fine. Invariants (a violation traps):
//   - a snapshot exactly when there are no errors;
//   - every diagnostic names the file, has a message and formats to "fuzz.yaml...";
//   - diagnostics are sorted by position.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <tuple>

#include "chunk_invariants.h"  // MERIDIAN_FUZZ_CHECK
#include "config/policy_file.h"
#include "config/policy_yaml.h"
#include "policy/decide.h"
#include "policy/test_runner.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace meridian;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto loaded = config::LoadPolicyText(text, "fuzz.yaml");
  MERIDIAN_FUZZ_CHECK((loaded.snapshot != nullptr) == loaded.errors.empty());
  for (std::size_t i = 0; i < loaded.errors.size(); ++i) {
    const auto& e = loaded.errors[i];
    MERIDIAN_FUZZ_CHECK(e.file == "fuzz.yaml");
    MERIDIAN_FUZZ_CHECK(!e.message.empty());
    MERIDIAN_FUZZ_CHECK(config::FormatDiagnostic(e).rfind("fuzz.yaml", 0) == 0);
    if (i > 0) {
      const auto& p = loaded.errors[i - 1];
      MERIDIAN_FUZZ_CHECK(std::tie(p.pos.line, p.pos.column) <= std::tie(e.pos.line, e.pos.column));
    }
  }
  if (!loaded.snapshot) return 0;

  // The in-file `tests:` section (LoadPolicyText does not return tests; LoadPolicyFile reads
  // them with the same parser).
  std::vector<config::FileDiagnostic> errors;
  const auto doc = config::ParsePolicyYaml(text, "fuzz.yaml", errors);
  MERIDIAN_FUZZ_CHECK(errors.empty());
  (void)policy::RunTests(loaded.snapshot, doc.tests);

  policy::RequestAttributes request;
  request.tenant = "acme";
  if (!loaded.snapshot->model_names.empty()) request.model = loaded.snapshot->model_names[0];
  (void)policy::Decide(request, loaded.snapshot);
  return 0;
}
