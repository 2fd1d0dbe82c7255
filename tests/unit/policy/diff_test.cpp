// Policy diff and replay: every decision that changes between two policies, found and grouped;
// recorded decisions re-decided.
#include "policy/diff.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <string>

#include "config/policy_file.h"
#include "tests/unit/policy/policy_test_util.h"

namespace meridian::policy {
namespace {

using ::meridian::testing::MustCompile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr const char* kProviders = R"(providers:
  - {id: cn, kind: sim, models: {m: m}, processing: [CN]}
  - {id: hk, kind: sim, models: {m: m}, processing: [HK]}
)";

// Hand-computed: the space is 1 tenant x 4 regions (CN, HK, one no condition names, unknown)
// x 6 data classes x 2 models (m, and one neither serves) x 2 capability sets (none, and the
// capabilities neither provider has, which are one class) = 96 points. Moving HK into the
// mainland route changes the 24 HK points: 6 served by another rule and provider (model m,
// no capability asked for), 18 denied as before but by another rule.
TEST(PolicyDiff, MovingARegionToAnotherRouteChangesExactlyItsPoints) {
  const auto before = MustCompile(std::string(kProviders) + R"(routes:
  - {id: mainland, when: {region: [CN]}, allow: [cn]}
  - {id: hk, when: {region: [HK]}, allow: [hk]}
)");
  const auto after = MustCompile(std::string(kProviders) + R"(routes:
  - {id: mainland, when: {region: [CN, HK]}, allow: [cn]}
  - {id: hk, when: {region: [HK]}, allow: [hk]}
)");
  const DiffReport r = Diff(before, after);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.points, 96u);
  EXPECT_EQ(r.changed, 24u);
  ASSERT_EQ(r.groups.size(), 2u);
  EXPECT_EQ(r.groups[0].points, 18u);
  EXPECT_EQ(r.groups[1].points, 6u);
  EXPECT_LT(r.decided, r.points) << "points that cannot differ are decided once";
  const DiffGroup& served = r.groups[0].before.allowed ? r.groups[0] : r.groups[1];
  const DiffGroup& denied = r.groups[0].before.allowed ? r.groups[1] : r.groups[0];
  EXPECT_EQ(served.before.Summary(), "allow via hk -> [hk]");
  EXPECT_EQ(served.after.Summary(), "allow via mainland -> [cn]");
  EXPECT_THAT(served.what, ElementsAre("rule", "provider set"));
  EXPECT_EQ(denied.before.Summary(), "deny capability_unavailable_in_allowed_set (rule hk)");
  EXPECT_EQ(denied.after.Summary(), "deny capability_unavailable_in_allowed_set (rule mainland)");
  EXPECT_THAT(denied.what, ElementsAre("rule"));
  for (const RequestPoint& p : served.examples) {
    EXPECT_EQ(p.region, "HK");
    EXPECT_EQ(p.model, "m");
  }
  EXPECT_THAT(FormatDiff(r), HasSubstr("24 of 96 points change, in 2 group(s):"));
  // The reverse change is the same points, the other way round; a policy against itself: none.
  EXPECT_EQ(Diff(after, before).changed, 24u);
  EXPECT_EQ(Diff(before, before).changed, 0u);
}

TEST(PolicyDiff, AnotherPreferredProviderIsAChosenProviderChange) {
  const auto before = MustCompile(std::string(kProviders) + R"(routes:
  - {id: all, allow: [cn, hk]}
)");
  const auto after = MustCompile(std::string(kProviders) + R"(routes:
  - {id: all, allow: [cn, hk], prefer: [hk]}
)");
  const DiffReport r = Diff(before, after);
  // No region condition: 3 regions (CN, the policy's unknown_region_as; one it does not name;
  // unknown) x 6 classes for model m; the unknown model is denied either way.
  EXPECT_EQ(r.changed, 18u);
  ASSERT_EQ(r.groups.size(), 1u);
  EXPECT_THAT(r.groups[0].what, ElementsAre("chosen provider"));
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The example policy without its Greater Bay Area route: exactly the points that route decided
// change, and each now goes to the mainland route.
TEST(PolicyDiff, ExamplePolicyWithoutItsGbaRoute) {
  const std::string example =
      ReadFile(std::string(MERIDIAN_SOURCE_DIR) + "/config/examples/policy.yaml");
  const auto before = config::LoadPolicyText(example, "policy.yaml");
  ASSERT_TRUE(before.snapshot);
  const std::string cut =
      std::regex_replace(example, std::regex("  - id: acme-gba\n(    [^\n]*\n)+\n"), std::string());
  ASSERT_NE(cut, example);
  const auto after = config::LoadPolicyText(cut, "policy.yaml");
  ASSERT_TRUE(after.snapshot) << (after.errors.empty() ? "" : after.errors[0].message);
  const DiffReport r = Diff(before.snapshot, after.snapshot);
  ASSERT_EQ(r.error, "");
  EXPECT_GT(r.changed, 0u);
  std::size_t counted = 0;
  for (const DiffGroup& g : r.groups) {
    counted += g.points;
    // Guards are the same in both, so only what the GBA route decided can change.
    EXPECT_EQ(g.before.rule, "acme-gba") << g.before.Summary();
    EXPECT_EQ(g.after.rule, "acme-mainland") << g.after.Summary();
    for (const RequestPoint& p : g.examples) {
      EXPECT_EQ(p.tenant, "acme");
      EXPECT_EQ(p.region, "CN");
      EXPECT_FALSE(p.city.empty()) << p.Json();
    }
  }
  EXPECT_EQ(counted, r.changed);
  EXPECT_EQ(Diff(before.snapshot, before.snapshot).changed, 0u);
}

TEST(PolicyReplay, RecordedDecisionsAreReDecided) {
  const auto policy = MustCompile(std::string(kProviders) + R"(routes:
  - {id: mainland, when: {region: [CN, HK]}, allow: [cn]}
)");
  std::vector<ReplayRecord> records = {
      {"req-1", "acme", "CN", "personal", "m", true, "mainland", {"cn"}},
      {"req-2", "acme", "HK", "personal", "m", true, "hk", {"hk"}},
      {"req-3", "acme", "US", "personal", "m", true, "rest", {"hk"}},
  };
  const ReplayReport r = Replay(policy, records);
  EXPECT_EQ(r.records, 3u);
  EXPECT_EQ(r.changed, 2u);
  EXPECT_EQ(r.by_change.at("rule"), 1u);
  EXPECT_EQ(r.by_change.at("allow -> deny"), 1u);
  ASSERT_EQ(r.samples.size(), 2u);
  EXPECT_EQ(r.samples[0], "req-2: rule: was allow via hk -> [hk], now allow via mainland -> [cn]");
  EXPECT_THAT(r.samples[1], HasSubstr("req-3: allow -> deny"));
}

}  // namespace
}  // namespace meridian::policy
