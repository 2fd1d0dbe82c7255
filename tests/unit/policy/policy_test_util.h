// Helpers for policy tests: compile YAML text written inline in a test.
#pragma once

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "config/policy_yaml.h"
#include "policy/compile.h"
#include "policy/decide.h"
#include "policy/request_json.h"

namespace meridian::testing {

/// Compile errors of `yaml` as "LINE:COL: message" (structural errors fail the test).
inline std::vector<std::string> CompileErrors(std::string_view yaml) {
  std::vector<config::FileDiagnostic> parse_errors;
  auto doc = config::ParsePolicyYaml(yaml, "t.yaml", parse_errors);
  for (const auto& e : parse_errors) ADD_FAILURE() << "structural error: " << e.message;
  std::vector<std::string> out;
  for (const auto& e : policy::Compile(doc.spec).errors) {
    out.push_back(std::to_string(e.pos.line) + ":" + std::to_string(e.pos.column) + ": " +
                  e.message);
  }
  return out;
}

/// Compiles `yaml`, failing the test on any error.
inline policy::SnapshotPtr MustCompile(std::string_view yaml) {
  std::vector<config::FileDiagnostic> parse_errors;
  auto doc = config::ParsePolicyYaml(yaml, "t.yaml", parse_errors);
  for (const auto& e : parse_errors) ADD_FAILURE() << config::FormatDiagnostic(e);
  auto result = policy::Compile(doc.spec);
  for (const auto& e : result.errors) {
    ADD_FAILURE() << e.pos.line << ":" << e.pos.column << ": " << e.message;
  }
  return result.snapshot;
}

/// Decides a request given as JSON (the `policy explain --request` shape).
inline policy::Decision DecideJson(const policy::SnapshotPtr& s, std::string_view json) {
  auto [request, error] = policy::ParseRequestJson(boost::json::parse(json), *s);
  if (!request) {
    ADD_FAILURE() << "bad request: " << error;
    return {};
  }
  return policy::Decide(request->Attributes(), s, request->unhealthy);
}

}  // namespace meridian::testing
