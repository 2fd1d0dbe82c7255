#include "gateway/cli/policy_cli.h"

#include <boost/json.hpp>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>

#include "config/policy_file.h"
#include "policy/decide.h"
#include "policy/diff.h"
#include "policy/explain.h"
#include "policy/lint.h"
#include "policy/request_json.h"
#include "policy/test_runner.h"

namespace meridian::cli {
namespace {

struct PolicyOptions {
  std::string file;
  std::string request;
  bool json = false;
  bool verbose = false;
  bool strict = false;
};

/// Prints every load error as FILE:LINE:COL: message; returns whether the load succeeded.
bool ReportLoad(const config::LoadedPolicy& loaded) {
  for (const auto& e : loaded.errors) std::cerr << config::FormatDiagnostic(e) << '\n';
  if (!loaded.errors.empty()) {
    std::cerr << loaded.errors.size() << (loaded.errors.size() == 1 ? " error" : " errors") << '\n';
  }
  return loaded.errors.empty();
}

std::string Count(std::size_t n, std::string_view noun) {
  return std::to_string(n) + " " + std::string(noun) + (n == 1 ? "" : "s");
}

int Check(const PolicyOptions& o) {
  auto loaded = config::LoadPolicyFile(o.file, /*with_tests=*/true);
  if (loaded.snapshot) {
    // Test vectors are part of what an operator keeps: a typo in one is an error now, not a
    // surprise when the tests run.
    std::vector<std::string> files;
    const auto problems = policy::ValidateTests(*loaded.snapshot, loaded.tests, &files);
    for (std::size_t i = 0; i < problems.size(); ++i) {
      loaded.errors.push_back({files[i], problems[i].pos, problems[i].message});
    }
  }
  if (!ReportLoad(loaded)) return 1;
  const auto& s = *loaded.snapshot;
  // Mistakes that compile: warnings, or errors with --strict.
  const policy::Diagnostics lint = policy::Lint(s);
  for (const auto& w : lint) {
    std::cerr << config::FormatDiagnostic(
                     {o.file, w.pos, std::string(o.strict ? "" : "warning: ") + w.message})
              << '\n';
  }
  if (o.strict && !lint.empty()) {
    std::cerr << Count(lint.size(), "error") << " (--strict)\n";
    return 1;
  }
  std::cout << o.file << ": OK (" << Count(s.providers.size(), "provider") << ", "
            << Count(s.guards.size(), "guard") << ", " << Count(s.routes.size(), "route") << ", "
            << Count(loaded.tests.size(), "test") << "; version " << s.version
            << (lint.empty() ? "" : "; " + Count(lint.size(), "warning")) << ")\n";
  return 0;
}

/// --request takes inline JSON, @FILE, or - for standard input.
bool ReadRequestText(const std::string& arg, std::string& text) {
  if (arg == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), {});
    return true;
  }
  if (!arg.empty() && arg.front() == '@') {
    std::ifstream in(arg.substr(1), std::ios::binary);
    if (!in) {
      std::cerr << "meridian: cannot read request file " << arg.substr(1) << '\n';
      return false;
    }
    text.assign(std::istreambuf_iterator<char>(in), {});
    return true;
  }
  text = arg;
  return true;
}

int Explain(const PolicyOptions& o) {
  auto loaded = config::LoadPolicyFile(o.file);
  if (!ReportLoad(loaded)) return 1;
  std::string text;
  if (!ReadRequestText(o.request, text)) return 1;
  boost::system::error_code ec;
  auto json = boost::json::parse(text, ec);
  if (ec) {
    std::cerr << "meridian: --request is not valid JSON: " << ec.message() << '\n';
    return 1;
  }
  auto [request, error] = policy::ParseRequestJson(json, *loaded.snapshot);
  if (!request) {
    std::cerr << "meridian: " << error << '\n';
    return 1;
  }
  const auto decision = policy::Decide(request->Attributes(), loaded.snapshot, request->unhealthy);
  if (o.json) {
    std::cout << boost::json::serialize(policy::ExplainJson(decision, request->ignored_signals))
              << '\n';
  } else {
    std::cout << policy::ExplainText(decision, request->ignored_signals);
  }
  return 0;
}

int Test(const PolicyOptions& o) {
  auto loaded = config::LoadPolicyFile(o.file, /*with_tests=*/true);
  if (!ReportLoad(loaded)) return 1;
  if (loaded.tests.empty()) {
    std::cerr << "meridian: no tests in " << o.file << " or " << config::SiblingTestsPath(o.file)
              << '\n';
    std::cout << "0 passed, 0 failed\n";
    return 1;
  }
  const auto report = policy::RunTests(loaded.snapshot, loaded.tests);
  for (const auto& f : report.failures) {
    std::cout << "FAIL " << f.name << " (" << f.file << ':' << f.pos.line << ':' << f.pos.column
              << ")\n";
    for (const auto& p : f.problems) std::cout << "  " << p << '\n';
  }
  if (o.verbose) {
    for (const auto& t : loaded.tests) {
      const bool failed = std::any_of(report.failures.begin(), report.failures.end(),
                                      [&](const auto& f) { return f.name == t.name.value; });
      if (!failed) std::cout << "ok   " << t.name.value << '\n';
    }
  }
  std::cout << report.passed << " passed, " << report.failed << " failed\n";
  return report.failed == 0 ? 0 : 1;
}

struct ChangeOptions {  ///< policy diff and replay
  std::string before;
  std::string after;
  std::vector<std::string> audit;
  bool json = false;
};

int Diff(const ChangeOptions& o) {
  const auto before = config::LoadPolicyFile(o.before);
  const auto after = config::LoadPolicyFile(o.after);
  const bool ok = ReportLoad(before);
  if (!ReportLoad(after) || !ok) return 2;
  const policy::DiffReport report = policy::Diff(before.snapshot, after.snapshot);
  if (!report.error.empty()) {
    std::cerr << "meridian policy diff: " << report.error << '\n';
    return 2;
  }
  std::cout << (o.json ? policy::DiffJson(report) + "\n" : policy::FormatDiff(report));
  return report.changed == 0 ? 0 : 1;
}

// The audit lines of `files` as replay records (other lines, e.g. unparseable ones, counted).
bool ReadAuditRecords(const std::vector<std::string>& files, std::vector<policy::ReplayRecord>& out,
                      std::size_t& skipped) {
  namespace json = boost::json;
  for (const std::string& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) {
      std::cerr << "meridian policy replay: cannot read '" << f << "'\n";
      return false;
    }
    for (std::string line; std::getline(in, line);) {
      boost::system::error_code ec;
      const json::value v = json::parse(line, ec);
      const json::object* obj = ec ? nullptr : v.if_object();
      auto str = [&](const char* key) -> std::string {
        const json::value* x = obj->if_contains(key);
        return x != nullptr && x->is_string() ? std::string(x->get_string()) : std::string();
      };
      if (obj == nullptr || !obj->contains("request_id") || !obj->contains("allowed")) {
        ++skipped;
        continue;
      }
      policy::ReplayRecord r;
      r.request_id = str("request_id");
      r.tenant = str("tenant");
      r.region = str("region");
      r.data_class = str("effective_class");
      r.model = str("model");
      r.allowed = obj->at("allowed").is_bool() && obj->at("allowed").get_bool();
      r.rule = str("rule");
      if (const json::value* c = obj->if_contains("candidates"); c != nullptr && c->is_array()) {
        for (const json::value& id : c->get_array()) {
          if (id.is_string()) r.candidates.emplace_back(id.get_string());
        }
      }
      out.push_back(std::move(r));
    }
  }
  return true;
}

int Replay(const ChangeOptions& o) {
  const auto loaded = config::LoadPolicyFile(o.after);
  if (!ReportLoad(loaded)) return 2;
  std::vector<policy::ReplayRecord> records;
  std::size_t skipped = 0;
  if (!ReadAuditRecords(o.audit, records, skipped)) return 2;
  const policy::ReplayReport r = policy::Replay(loaded.snapshot, records);
  if (o.json) {
    boost::json::object j;
    j["records"] = r.records;
    j["changed"] = r.changed;
    j["skipped_lines"] = skipped;
    boost::json::object by;
    for (const auto& [k, n] : r.by_change) by[k] = n;
    j["by_change"] = std::move(by);
    boost::json::array samples;
    for (const auto& x : r.samples) samples.emplace_back(x);
    j["samples"] = std::move(samples);
    std::cout << boost::json::serialize(j) << '\n';
  } else {
    std::cout << r.records << " recorded decision(s) replayed under " << o.after << " ("
              << loaded.snapshot->version << "): " << r.changed << " would change";
    if (skipped != 0) std::cout << "; " << skipped << " line(s) were not audit records";
    std::cout << '\n';
    for (const auto& [k, n] : r.by_change) std::cout << "  " << n << " " << k << '\n';
    for (const auto& x : r.samples) std::cout << "  e.g. " << x << '\n';
    std::cout << "(consent, tenant flags, mechanisms, the meter and required capabilities are "
                 "not in audit lines: replayed as none)\n";
  }
  return r.changed == 0 ? 0 : 1;
}

}  // namespace

void AddPolicyCommands(CLI::App& app, std::function<int()>& run) {
  auto opts = std::make_shared<PolicyOptions>();
  auto* policy = app.add_subcommand("policy", "Check, explain and test policy files offline");
  policy->require_subcommand(1);

  auto* check = policy->add_subcommand(
      "check", "Validate a policy file (and its tests); print every error as FILE:LINE:COL");
  check->add_option("FILE", opts->file, "Policy file (YAML)")->required();
  check->add_flag("--strict", opts->strict,
                  "Lint warnings (unreachable routes, guards that never apply, providers no route "
                  "allows, no routes) are errors: exit 1");
  check->callback([opts, &run] { run = [opts] { return Check(*opts); }; });

  auto* explain = policy->add_subcommand(
      "explain", "Decide one request and show why: rule, guards, candidates before and after");
  explain->add_option("FILE", opts->file, "Policy file (YAML)")->required();
  explain
      ->add_option(
          "--request", opts->request,
          "Request attributes as JSON, @FILE, or - for stdin. Example: "
          R"('{"tenant":"acme","region":"CN","data_class":"personal","model":"qwen-plus"}')")
      ->required();
  explain->add_flag("--json", opts->json, "Print the decision as JSON");
  explain->callback([opts, &run] { run = [opts] { return Explain(*opts); }; });

  auto* test = policy->add_subcommand(
      "test", "Run the test vectors in FILE and in its sibling <name>.tests.yaml");
  test->add_option("FILE", opts->file, "Policy file (YAML)")->required();
  test->add_flag("-v,--verbose", opts->verbose, "Also list the tests that passed");
  test->callback([opts, &run] { run = [opts] { return Test(*opts); }; });

  auto d = std::make_shared<ChangeOptions>();
  auto* diff = policy->add_subcommand(
      "diff",
      "Print every decision that changes from OLD to NEW, grouped and counted; exit 1 "
      "when any does (a CI gate)");
  diff->add_option("OLD", d->before, "The policy serving now")->required();
  diff->add_option("NEW", d->after, "The proposed policy")->required();
  diff->add_flag("--json", d->json, "Print the report as JSON");
  diff->callback([d, &run] { run = [d] { return Diff(*d); }; });

  auto rp = std::make_shared<ChangeOptions>();
  auto* replay = policy->add_subcommand(
      "replay",
      "Re-decide the requests recorded in audit files under NEW; exit 1 when any "
      "would change");
  replay->add_option("NEW", rp->after, "The proposed policy")->required();
  replay->add_option("--audit", rp->audit, "Audit files (audit.jsonl, audit.jsonl.1, ...)")
      ->required();
  replay->add_flag("--json", rp->json, "Print the report as JSON");
  replay->callback([rp, &run] { run = [rp] { return Replay(*rp); }; });
}

}  // namespace meridian::cli
