// Operator mistakes: warnings for policies that compile but cannot mean what they say, and
// "did you mean" in the errors for typos.
#include "policy/lint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "policy/suggest.h"
#include "tests/unit/policy/policy_test_util.h"

namespace meridian::policy {
namespace {

using ::meridian::testing::CompileErrors;
using ::meridian::testing::MustCompile;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<std::string> Warnings(std::string_view yaml) {
  const auto s = MustCompile(yaml);
  std::vector<std::string> out;
  if (!s) return out;
  for (const auto& d : Lint(*s)) {
    out.push_back(std::to_string(d.pos.line) + ":" + std::to_string(d.pos.column) + ": " +
                  d.message);
  }
  return out;
}

constexpr const char* kProviders = R"(providers:
  - {id: cn, kind: sim, models: {m: m}, processing: [CN]}
  - {id: us, kind: sim, models: {m: m}, processing: [US]}
)";

struct Case {
  const char* name;
  std::string yaml;
  std::vector<std::string> warnings;
};

TEST(Lint, CorpusOfPoliciesThatCompileButCannotMeanWhatTheySay) {
  const std::vector<Case> cases = {
      {"clean",
       std::string(kProviders) + R"(routes:
  - {id: cn-users, when: {region: [CN]}, allow: [cn]}
  - {id: rest, allow: [us]}
)",
       {}},
      {"no routes",
       std::string(kProviders) + "routes: []\n",
       {"0:0: the policy has no routes: every request is denied (no_rule_matched)",
        "2:5: provider 'cn' is allowed by no route: no request can reach it",
        "3:5: provider 'us' is allowed by no route: no request can reach it"}},
      {"route after an unconditional one",
       std::string(kProviders) + R"(routes:
  - {id: everyone, allow: [cn]}
  - {id: us-users, when: {region: [US]}, allow: [us]}
)",
       {"6:5: route 'us-users' can never match: route 'everyone' (line 5) comes first and "
        "matches every request (routes are tried in order; the first match decides)",
        "3:5: provider 'us' is allowed by no route that can match: no request can reach it"}},
      {"route with the same condition as an earlier one",
       std::string(kProviders) + R"(routes:
  - {id: a, when: {region: [CN, HK]}, allow: [cn]}
  - {id: b, when: {region: [HK, CN]}, allow: [us]}
  - {id: c, allow: [us]}
)",
       {"6:5: route 'b' can never match: route 'a' (line 5) comes first and matches every "
        "request this one would (routes are tried in order; the first match decides)"}},
      {"route whose condition never holds",
       std::string(kProviders) + R"(routes:
  - {id: never, when: {not: {}}, allow: [us]}
  - {id: rest, allow: [cn]}
)",
       {"5:5: route 'never' can never match: its condition holds for no request",
        "3:5: provider 'us' is allowed by no route that can match: no request can reach it"}},
      {"guard that never applies",
       std::string(kProviders) + R"(guards:
  - id: contradiction
    when: {all: [{region: [CN]}, {not: {region: [CN]}}]}
    deny: never
routes:
  - {id: rest, allow: [cn, us]}
)",
       {"5:5: guard 'contradiction' can never apply: its condition holds for no request"}},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Warnings(c.yaml), c.warnings) << c.name;
  }
}

TEST(Lint, TyposGetADidYouMean) {
  EXPECT_THAT(CompileErrors(std::string(kProviders) + "routes:\n  - {id: r, allow: [cm]}\n"),
              ElementsAre("5:21: route 'r' allow: unknown provider 'cm' (did you mean 'cn'?)"));
  EXPECT_THAT(CompileErrors(std::string(kProviders) +
                            "routes:\n  - {id: r, when: {region: [UK]}, allow: [cn]}\n"),
              ElementsAre("5:29: region: unknown region code or region group 'UK' (did you "
                          "mean 'GB'? the ISO 3166-1 code of the United Kingdom)"));
  EXPECT_THAT(CompileErrors(std::string(kProviders) +
                            "routes:\n  - {id: r, when: {region: [cn]}, allow: [cn]}\n"),
              ElementsAre("5:29: region: unknown region code or region group 'cn' (did you "
                          "mean 'CN'? region codes are upper case)"));
  EXPECT_EQ(ClosestName("procesing", {"processing", "storage"}), "processing");
  EXPECT_EQ(ClosestName("colour", {"processing", "storage"}), "");
  EXPECT_EQ(ClosestName("alow", {"allow", "when", "id"}), "allow");
  EXPECT_EQ(RegionHint("XX"), "");
}

}  // namespace
}  // namespace meridian::policy
