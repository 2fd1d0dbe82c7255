// The residency matrix: what the example policy decides, region by region and class by class.
#include "policy/matrix.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <sstream>
#include <string>

#include "config/policy_file.h"
#include "tests/unit/policy/policy_test_util.h"

namespace meridian::policy {
namespace {

using ::meridian::testing::MustCompile;
using ::testing::Contains;
using ::testing::ElementsAre;

SnapshotPtr Example() {
  std::ifstream in(std::string(MERIDIAN_SOURCE_DIR) + "/config/examples/policy.yaml");
  std::ostringstream text;
  text << in.rdbuf();
  auto loaded = config::LoadPolicyText(text.str(), "policy.yaml");
  EXPECT_TRUE(loaded.snapshot);
  return loaded.snapshot;
}

const MatrixRow* Row(const Matrix& m, std::string_view region, std::string_view city = "") {
  for (const MatrixRow& r : m.rows) {
    if (r.region == region && r.city == city) return &r;
  }
  return nullptr;
}

const Outcome& Cell(const MatrixRow& r, std::string_view data_class) {
  for (const MatrixCell& c : r.cells) {
    if (c.data_class == data_class) return c.outcome;
  }
  static const Outcome none;
  ADD_FAILURE() << "no column " << data_class;
  return none;
}

TEST(ResidencyMatrix, ExamplePolicyRowsAreTheRegionsItTellsApart) {
  const Matrix m = ResidencyMatrix(Example(), "acme", "qwen-plus");
  std::vector<std::string> rows;
  for (const MatrixRow& r : m.rows) rows.push_back(r.region + (r.city.empty() ? "" : "/" + r.city));
  // EU stands for the EEA, the GBA cities share one row (under CN, and under unknown, which the
  // policy treats as CN), one code stands for every region no condition names.
  EXPECT_THAT(rows,
              ElementsAre("EU", "CN", "CN/dongguan", "HK", "AQ", "unknown", "unknown/dongguan"));
  const MatrixRow* eu = Row(m, "EU");
  ASSERT_NE(eu, nullptr);
  EXPECT_EQ(eu->codes.size(), 31u);
  EXPECT_THAT(eu->codes, Contains("DE"));
  const MatrixRow* gba = Row(m, "CN", "dongguan");
  ASSERT_NE(gba, nullptr);
  EXPECT_THAT(gba->cities, ElementsAre("dongguan", "foshan", "guangzhou", "huizhou", "jiangmen",
                                       "shenzhen", "zhaoqing", "zhongshan", "zhuhai"));
  EXPECT_TRUE(Row(m, "AQ")->unnamed);
  EXPECT_FALSE(Row(m, "CN")->unnamed);
}

TEST(ResidencyMatrix, ExamplePolicyCells) {
  const Matrix m = ResidencyMatrix(Example(), "acme", "qwen-plus");
  const MatrixRow& cn = *Row(m, "CN");
  ASSERT_EQ(cn.cells.size(), 6u);  // five classes and none stated
  EXPECT_TRUE(Cell(cn, "personal").allowed);
  EXPECT_EQ(Cell(cn, "personal").rule, "acme-mainland");
  EXPECT_THAT(Cell(cn, "personal").providers, ElementsAre("ds-cn", "onprem-qwen"));
  // Important data stays on premises (G1); sensitive data without consent is denied (G8).
  EXPECT_THAT(Cell(cn, "important").providers, ElementsAre("onprem-qwen"));
  EXPECT_FALSE(Cell(cn, "sensitive_personal").allowed);
  EXPECT_EQ(Cell(cn, "sensitive_personal").reason, "denied_by_guard:G8");
  // None stated is the policy's default_data_class, personal.
  EXPECT_EQ(Cell(cn, ""), Cell(cn, "personal"));
  // A GBA city: its own route, G2 keeps it in the mainland.
  const MatrixRow& gba = *Row(m, "CN", "dongguan");
  EXPECT_EQ(Cell(gba, "personal").rule, "acme-gba");
  EXPECT_THAT(Cell(gba, "personal").providers, ElementsAre("ds-cn", "onprem-qwen"));
  EXPECT_THAT(Cell(gba, "none").providers, ElementsAre("ds-hk", "ds-cn", "onprem-qwen"));
  // Hong Kong: G7 keeps it off what may touch the mainland.
  EXPECT_THAT(Cell(*Row(m, "HK"), "personal").providers, ElementsAre("ds-intl"));
  // No EU provider serves qwen-plus.
  EXPECT_EQ(Cell(*Row(m, "EU"), "none").reason, "capability_unavailable_in_allowed_set");
  const Matrix gpt = ResidencyMatrix(Example(), "acme", "gpt-4.1");
  EXPECT_THAT(Cell(*Row(gpt, "EU"), "personal").providers, Contains("az-eu-dz"));
  EXPECT_EQ(Cell(*Row(gpt, "EU"), "personal").providers.front(), "az-eu-dz");
}

TEST(ResidencyMatrix, AnotherTenantFallsThroughToNoRule) {
  const Matrix m = ResidencyMatrix(Example(), "globex", "qwen-plus");
  for (const MatrixRow& r : m.rows) {
    EXPECT_TRUE(r.city.empty()) << r.region << "/" << r.city;  // no route names a city for it
    for (const MatrixCell& c : r.cells) {
      // Guards come first: G8 denies sensitive data without consent whoever asks.
      EXPECT_EQ(c.outcome.reason,
                c.data_class == "sensitive_personal" ? "denied_by_guard:G8" : "no_rule_matched");
    }
  }
}

TEST(ResidencyMatrix, JsonNamesProvidersWithTheirProcessingLocation) {
  const auto s = MustCompile(R"(providers:
  - {id: cn, kind: sim, models: {m: m}, processing: [CN]}
  - {id: row, kind: sim, models: {m: m}, processing: {anywhere_except: [CN]}}
routes:
  - {id: mainland, when: {region: [CN]}, allow: [cn]}
  - {id: rest, allow: [row]}
)");
  const boost::json::value j = boost::json::parse(MatrixJson(ResidencyMatrix(s, "t", "m"), *s));
  EXPECT_EQ(j.at("tenant"), "t");
  EXPECT_EQ(j.at("providers").at(0).at("processing"), "{CN}");
  EXPECT_EQ(j.at("providers").at(1).at("processing"), "anywhere except {CN}");
  const auto& rows = j.at("rows").as_array();
  ASSERT_EQ(rows.size(), 3u);  // CN, a code no condition names, unknown
  EXPECT_EQ(rows[0].at("region"), "CN");
  EXPECT_EQ(rows[0].at("cells").at(1).at("class"), "personal");
  EXPECT_EQ(rows[0].at("cells").at(1).at("chosen"), "cn");
  EXPECT_EQ(rows[1].at("unnamed"), true);
  EXPECT_EQ(rows[1].at("cells").at(1).at("chosen"), "row");
  EXPECT_EQ(rows[2].at("region"), "unknown");
  EXPECT_EQ(rows[2].at("cells").at(1).at("chosen"), "cn");  // unknown_region_as: CN (default)
}

}  // namespace
}  // namespace meridian::policy
