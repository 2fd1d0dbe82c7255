#include "policy/test_runner.h"

#include "policy/decide.h"
#include "policy/explain.h"
#include "policy/request_json.h"

namespace meridian::policy {
namespace {

std::string ListText(const std::vector<std::string>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) out += (i == 0 ? "" : ", ") + v[i];
  return out + "]";
}

void Check(std::vector<std::string>& problems, std::string_view what, const std::string& expected,
           const std::string& actual) {
  if (expected != actual) {
    problems.push_back(std::string(what) + ": expected " + expected + ", got " + actual);
  }
}

std::vector<std::string> Values(const StringList& list) {
  std::vector<std::string> out;
  for (const auto& s : list) out.push_back(s.value);
  return out;
}

}  // namespace

TestReport RunTests(const SnapshotPtr& snapshot, const std::vector<TestCaseSpec>& tests) {
  TestReport report;
  for (const auto& t : tests) {
    std::vector<std::string> problems;
    std::string error;
    auto request = ParseRequestJson(t.request, *snapshot, error);
    const auto& e = t.expect;
    if (!request) {
      problems.push_back("invalid request: " + error);
    } else if (!e.decision && !e.provider && !e.rule && !e.guards && !e.reason && !e.candidates) {
      problems.push_back("expect states nothing to check");
    } else {
      const Decision d = Decide(request->Attributes(), snapshot, request->unhealthy);
      const std::string none = "(none)";
      if (e.decision) {
        if (e.decision->value != "allow" && e.decision->value != "deny") {
          problems.push_back("expect.decision must be allow or deny, not '" + e.decision->value +
                             "'");
        } else {
          Check(problems, "decision", e.decision->value, d.allowed ? "allow" : "deny");
        }
      }
      if (e.provider)
        Check(problems, "provider", e.provider->value, d.allowed ? d.Chosen()->id : none);
      if (e.rule) {
        Check(problems, "rule", e.rule->value, d.route ? snapshot->routes[*d.route].id : none);
      }
      if (e.reason) {
        Check(problems, "reason", e.reason->value, d.allowed ? none : d.ReasonCode());
      }
      if (e.guards) Check(problems, "guards", ListText(Values(*e.guards)), ListText(GuardIds(d)));
      if (e.candidates) {
        Check(problems, "candidates", ListText(Values(*e.candidates)),
              ListText(ProviderIds(*snapshot, d.candidates_after)));
      }
    }
    if (problems.empty()) {
      ++report.passed;
    } else {
      ++report.failed;
      report.failures.push_back({t.file, t.pos, t.name.value, std::move(problems)});
    }
  }
  return report;
}

}  // namespace meridian::policy
