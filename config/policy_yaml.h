// YAML → PolicySpec. Checks structure only (known keys, types, duplicates, required keys);
// names and values are checked by policy::Compile. Every error names FILE:LINE:COL and all
// errors of a file are reported in one run.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/file_diagnostic.h"
#include "policy/spec.h"
#include "policy/test_spec.h"

namespace meridian::config {

struct PolicyDocument {
  policy::PolicySpec spec;
  std::vector<policy::TestCaseSpec> tests;  ///< the file's own `tests:` section
};

/// Parses the text of a policy file. Appends every structural error to `errors`; the
/// returned document holds whatever could be read (callers stop when errors is non-empty).
PolicyDocument ParsePolicyYaml(std::string_view text, const std::string& file,
                               std::vector<FileDiagnostic>& errors);

/// Parses a tests-only file: its single top-level key is `tests:`.
std::vector<policy::TestCaseSpec> ParseTestsYaml(std::string_view text, const std::string& file,
                                                 std::vector<FileDiagnostic>& errors);

}  // namespace meridian::config
