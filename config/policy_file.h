// Loading a policy file from disk: read, parse, compile. The only I/O of the policy path.
#pragma once

#include <string>
#include <vector>

#include "config/policy_yaml.h"
#include "policy/snapshot.h"
#include "policy/test_spec.h"

namespace meridian::config {

struct LoadedPolicy {
  policy::SnapshotPtr snapshot;  ///< null when errors is non-empty
  std::vector<FileDiagnostic> errors;
  std::vector<policy::TestCaseSpec> tests;  ///< in-file tests, then the sibling file's
  std::vector<std::string> test_files;      ///< files the tests came from
};

/// Reads and compiles `path`. With `with_tests`, also reads the tests in the file and in the
/// sibling `<stem>.tests.yaml` (when it exists) and reports their structural errors too.
LoadedPolicy LoadPolicyFile(const std::string& path, bool with_tests = false);

/// Compiles policy text that did not come from a file (e.g. the embedded default); `name`
/// is used in error messages.
LoadedPolicy LoadPolicyText(std::string_view text, const std::string& name);

/// The sibling tests file of a policy file: "dir/policy.yaml" -> "dir/policy.tests.yaml".
std::string SiblingTestsPath(const std::string& policy_path);

}  // namespace meridian::config
