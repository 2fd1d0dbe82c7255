// Test vectors an operator keeps in the policy file (`tests:`) or in a sibling
// `<name>.tests.yaml`: a request and the decision it must produce.
#pragma once

#include <boost/json/value.hpp>
#include <optional>
#include <string>
#include <vector>

#include "policy/spec.h"

namespace meridian::policy {

struct TestExpectSpec {
  SourcePos pos;
  std::optional<LocatedString> decision;  ///< allow | deny
  std::optional<LocatedString> provider;  ///< chosen provider (first candidate)
  std::optional<LocatedString> rule;      ///< matched route id
  std::optional<StringList> guards;       ///< guards applied, in order
  std::optional<LocatedString> reason;    ///< reason code of a denial
  std::optional<StringList> candidates;   ///< final ordered candidate list
};

struct TestCaseSpec {
  SourcePos pos;
  std::string file;  ///< file the test was written in (policy file or its sibling)
  LocatedString name;
  boost::json::value request;  ///< same shape as `meridian policy explain --request`
  SourcePos request_pos;
  TestExpectSpec expect;
};

}  // namespace meridian::policy
