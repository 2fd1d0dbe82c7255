#include "gateway/cli/policy_cli.h"

#include <boost/json.hpp>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>

#include "config/policy_file.h"
#include "policy/decide.h"
#include "policy/explain.h"
#include "policy/request_json.h"
#include "policy/test_runner.h"

namespace meridian::cli {
namespace {

struct PolicyOptions {
  std::string file;
  std::string request;
  bool json = false;
  bool verbose = false;
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
  std::cout << o.file << ": OK (" << Count(s.providers.size(), "provider") << ", "
            << Count(s.guards.size(), "guard") << ", " << Count(s.routes.size(), "route") << ", "
            << Count(loaded.tests.size(), "test") << "; version " << s.version << ")\n";
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

}  // namespace

void AddPolicyCommands(CLI::App& app, std::function<int()>& run) {
  auto opts = std::make_shared<PolicyOptions>();
  auto* policy = app.add_subcommand("policy", "Check, explain and test policy files offline");
  policy->require_subcommand(1);

  auto* check = policy->add_subcommand(
      "check", "Validate a policy file (and its tests); print every error as FILE:LINE:COL");
  check->add_option("FILE", opts->file, "Policy file (YAML)")->required();
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
}

}  // namespace meridian::cli
