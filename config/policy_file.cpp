#include "config/policy_file.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <tuple>

#include "config/yaml_reader.h"
#include "policy/compile.h"

namespace meridian::config {
std::string SiblingTestsPath(const std::string& policy_path) {
  std::filesystem::path p(policy_path);
  return (p.parent_path() / (p.stem().string() + ".tests.yaml")).string();
}

namespace {

/// Compiles a parsed document into `out` (errors sorted by position).
void CompileInto(const PolicyDocument& doc, const std::string& path, LoadedPolicy& out);

}  // namespace

LoadedPolicy LoadPolicyText(std::string_view text, const std::string& name) {
  LoadedPolicy out;
  PolicyDocument doc = ParsePolicyYaml(text, name, out.errors);
  CompileInto(doc, name, out);
  return out;
}

LoadedPolicy LoadPolicyFile(const std::string& path, bool with_tests) {
  LoadedPolicy out;
  std::string text;
  if (!ReadFileText(path, "policy file", text, out.errors)) return out;
  PolicyDocument doc = ParsePolicyYaml(text, path, out.errors);
  if (with_tests) {
    if (!doc.tests.empty()) out.test_files.push_back(path);
    out.tests = std::move(doc.tests);
    const std::string sibling = SiblingTestsPath(path);
    std::error_code ec;
    if (sibling != path && std::filesystem::exists(sibling, ec)) {
      std::string tests_text;
      if (ReadFileText(sibling, "tests file", tests_text, out.errors)) {
        auto more = ParseTestsYaml(tests_text, sibling, out.errors);
        out.test_files.push_back(sibling);
        out.tests.insert(out.tests.end(), std::make_move_iterator(more.begin()),
                         std::make_move_iterator(more.end()));
      }
    }
  }
  CompileInto(doc, path, out);
  return out;
}

namespace {

void CompileInto(const PolicyDocument& doc, const std::string& path, LoadedPolicy& out) {
  // Compile even after structural errors so one run reports everything. A compile error
  // without a position comes from a value the loader already reported as missing: skip it.
  const bool structural_errors = !out.errors.empty();
  auto compiled = policy::Compile(doc.spec);
  for (auto& e : compiled.errors) {
    if (structural_errors && e.pos.line == 0) continue;
    out.errors.push_back({path, e.pos, std::move(e.message)});
  }
  std::stable_sort(out.errors.begin(), out.errors.end(), [](const auto& a, const auto& b) {
    return std::tie(a.file, a.pos.line, a.pos.column) < std::tie(b.file, b.pos.line, b.pos.column);
  });
  if (out.errors.empty()) out.snapshot = std::move(compiled.snapshot);
}

}  // namespace

}  // namespace meridian::config
