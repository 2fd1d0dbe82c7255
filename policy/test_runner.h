// Runs an operator's test vectors against a compiled snapshot. Pure.
#pragma once

#include <string>
#include <vector>

#include "policy/diagnostic.h"
#include "policy/snapshot.h"
#include "policy/test_spec.h"

namespace meridian::policy {

struct TestFailure {
  std::string file;
  SourcePos pos;
  std::string name;
  std::vector<std::string> problems;  ///< "guards: expected [G1], got [G1, G2]"
};

struct TestReport {
  int passed = 0;
  int failed = 0;
  std::vector<TestFailure> failures;
};

/// Decides every test's request and compares each stated expectation. A test that states
/// no expectation fails: it could never catch a regression.
TestReport RunTests(const SnapshotPtr& snapshot, const std::vector<TestCaseSpec>& tests);

/// Problems a test has whatever the decision: an invalid request, no expectation, or an
/// expectation naming a provider, route, guard, decision or reason the policy cannot produce.
/// Each is positioned at the test (or the offending expectation). Used by `policy check`.
Diagnostics ValidateTests(const Snapshot& snapshot, const std::vector<TestCaseSpec>& tests,
                          std::vector<std::string>* files = nullptr);

}  // namespace meridian::policy
