#include "policy/regions.h"

#include <gtest/gtest.h>

namespace meridian::policy {
namespace {

RegionSet Set(std::initializer_list<std::string_view> codes) {
  RegionSet s;
  for (auto c : codes) s.set(RegionCode::Parse(c)->index());
  return s;
}

TEST(RegionCode, GreaterChinaCodesAreDistinct) {
  auto cn = RegionCode::Parse("CN");
  auto hk = RegionCode::Parse("HK");
  auto mo = RegionCode::Parse("MO");
  auto tw = RegionCode::Parse("TW");
  ASSERT_TRUE(cn && hk && mo && tw);
  EXPECT_NE(cn->index(), hk->index());
  EXPECT_NE(hk->index(), mo->index());
  EXPECT_NE(mo->index(), tw->index());
  EXPECT_EQ(tw->ToString(), "TW");
}

TEST(RegionCode, AcceptsIsoAlpha2AndEuOnly) {
  EXPECT_TRUE(RegionCode::Parse("EU"));
  EXPECT_TRUE(RegionCode::Parse("US"));
  EXPECT_TRUE(RegionCode::Parse("SG"));
  EXPECT_FALSE(RegionCode::Parse("XX"));  // not assigned
  EXPECT_FALSE(RegionCode::Parse("UK"));  // the ISO code is GB
  EXPECT_FALSE(RegionCode::Parse("cn"));
  EXPECT_FALSE(RegionCode::Parse("CHN"));
  EXPECT_FALSE(RegionCode::Parse(""));
  EXPECT_FALSE(RegionCode::Parse("C"));
  EXPECT_FALSE(RegionCode::Parse("C1"));
}

TEST(LocationSet, WithinFiniteSet) {
  const LocationSet cn{Set({"CN"}), false};
  const LocationSet cn_hk{Set({"CN", "HK"}), false};
  const LocationSet anywhere{{}, true};
  const LocationSet world_minus_cn{Set({"CN"}), true};
  EXPECT_TRUE(cn.Within(Set({"CN"})));
  EXPECT_TRUE(cn.Within(Set({"CN", "HK"})));
  EXPECT_FALSE(cn_hk.Within(Set({"CN"})));
  EXPECT_FALSE(anywhere.Within(Set({"CN", "HK"})));  // unbounded is never inside a finite set
  EXPECT_FALSE(world_minus_cn.Within(Set({"SG"})));
}

TEST(LocationSet, ExcludesFiniteSet) {
  const LocationSet cn{Set({"CN"}), false};
  const LocationSet sg{Set({"SG"}), false};
  const LocationSet anywhere{{}, true};
  const LocationSet world_minus_cn{Set({"CN"}), true};
  const LocationSet world_minus_cn_hk{Set({"CN", "HK"}), true};
  EXPECT_FALSE(cn.Excludes(Set({"CN"})));
  EXPECT_TRUE(sg.Excludes(Set({"CN"})));
  EXPECT_FALSE(anywhere.Excludes(Set({"CN"})));
  EXPECT_TRUE(world_minus_cn.Excludes(Set({"CN"})));
  EXPECT_FALSE(world_minus_cn.Excludes(Set({"CN", "HK"})));
  EXPECT_TRUE(world_minus_cn_hk.Excludes(Set({"CN", "HK"})));
}

TEST(LocationSet, Renders) {
  EXPECT_EQ((LocationSet{Set({"HK", "CN"}), false}).ToString(), "{CN, HK}");
  EXPECT_EQ((LocationSet{{}, true}).ToString(), "anywhere");
  EXPECT_EQ((LocationSet{Set({"CN"}), true}).ToString(), "anywhere except {CN}");
}

}  // namespace
}  // namespace meridian::policy
