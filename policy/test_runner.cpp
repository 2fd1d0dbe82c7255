#include "policy/test_runner.h"

#include <algorithm>

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

Diagnostics ValidateTests(const Snapshot& snapshot, const std::vector<TestCaseSpec>& tests,
                          std::vector<std::string>* files) {
  Diagnostics out;
  auto add = [&](const TestCaseSpec& t, SourcePos pos, std::string message) {
    out.push_back({pos, "test '" + t.name.value + "': " + std::move(message)});
    if (files != nullptr) files->push_back(t.file);
  };
  auto rule_exists = [&](std::string_view id) {
    return std::any_of(snapshot.routes.begin(), snapshot.routes.end(),
                       [&](const Route& r) { return r.id == id; });
  };
  auto guard_exists = [&](std::string_view id) {
    return std::any_of(snapshot.guards.begin(), snapshot.guards.end(),
                       [&](const Guard& g) { return g.id == id; });
  };
  for (const auto& t : tests) {
    if (auto parsed = ParseRequestJson(t.request, snapshot); !parsed.request) {
      add(t, t.request_pos, parsed.error);
    }
    const auto& e = t.expect;
    if (!e.decision && !e.provider && !e.rule && !e.guards && !e.reason && !e.candidates) {
      add(t, e.pos.line != 0 ? e.pos : t.pos, "expect states nothing to check");
    }
    if (e.decision && e.decision->value != "allow" && e.decision->value != "deny") {
      add(t, e.decision->pos, "expect.decision must be allow or deny");
    }
    if (e.provider && e.provider->value != "(none)" && !snapshot.FindProvider(e.provider->value)) {
      add(t, e.provider->pos, "expect.provider: unknown provider '" + e.provider->value + "'");
    }
    for (const auto& c : e.candidates.value_or(StringList{})) {
      if (!snapshot.FindProvider(c.value)) {
        add(t, c.pos, "expect.candidates: unknown provider '" + c.value + "'");
      }
    }
    if (e.rule && e.rule->value != "(none)" && !rule_exists(e.rule->value)) {
      add(t, e.rule->pos, "expect.rule: unknown route '" + e.rule->value + "'");
    }
    for (const auto& g : e.guards.value_or(StringList{})) {
      if (!guard_exists(g.value)) add(t, g.pos, "expect.guards: unknown guard '" + g.value + "'");
    }
    if (e.reason) {
      const std::string& r = e.reason->value;
      const bool known = r == "(none)" || r == "no_rule_matched" || r == "empty_after_guards" ||
                         r == "capability_unavailable_in_allowed_set" ||
                         (r.rfind("denied_by_guard:", 0) == 0 && guard_exists(r.substr(16)));
      if (!known)
        add(t, e.reason->pos, "expect.reason: '" + r + "' is not a reason this policy can give");
    }
  }
  return out;
}

TestReport RunTests(const SnapshotPtr& snapshot, const std::vector<TestCaseSpec>& tests) {
  TestReport report;
  for (const auto& t : tests) {
    std::vector<std::string> problems;
    auto [request, error] = ParseRequestJson(t.request, *snapshot);
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
