// What the operator console stands on: the admin token as a browser sends it, the reload
// history and its lazily computed diffs, the meter against its next boundary.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <boost/json.hpp>
#include <string>

#include "config/policy_file.h"
#include "gateway/admin_auth.h"
#include "gateway/gateway_state.h"
#include "gateway/meter.h"

namespace meridian::gateway {
namespace {

std::string Base64(std::string_view s) {
  std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

constexpr std::string_view kToken = "0123456789abcdef-console";

TEST(AdminTokenBasic, TheTokenAsTheBasicPasswordOnlyWhereAllowed) {
  const AdminToken t = AdminToken::FromSecret(kToken);
  const std::string basic = "Basic " + Base64("operator:" + std::string(kToken));
  EXPECT_EQ(t.Verify(basic, 1, true), AdminToken::Check::kOk);
  EXPECT_EQ(t.Verify("basic " + Base64(":" + std::string(kToken)), 1, true),
            AdminToken::Check::kOk);  // any user name, none included; the scheme in any case
  // Not where Basic is not allowed (anything that changes state).
  EXPECT_EQ(t.Verify(basic, 1, false), AdminToken::Check::kInvalid);
  // The bearer form works either way.
  EXPECT_EQ(t.Verify("Bearer " + std::string(kToken), 1, true), AdminToken::Check::kOk);
  EXPECT_EQ(t.Verify("Bearer " + std::string(kToken), 1, false), AdminToken::Check::kOk);
  for (const std::string& bad : {
           "Basic " + Base64("operator:wrong-token-0123456789"),
           "Basic " + Base64(std::string(kToken)),  // no colon: no password
           "Basic " + Base64("operator:" + std::string(kToken) + "x"),
           "Basic " + Base64(std::string(kToken) + ":"),  // the token as the user name
           std::string("Basic not*base64"),
           std::string("Basic abc"),  // not a multiple of four
           "Basic " + Base64("operator:" + std::string(kToken)).substr(1),
       }) {
    EXPECT_EQ(t.Verify(bad, 1, true), AdminToken::Check::kInvalid) << bad;
  }
  EXPECT_EQ(t.Verify(basic, 2, true), AdminToken::Check::kInvalid);  // two Authorization headers
  EXPECT_EQ(t.Verify("", 0, true), AdminToken::Check::kMissing);
}

policy::SnapshotPtr Policy(std::string_view routes) {
  const std::string text = std::string(R"(version: 1
providers:
  - {id: cn, kind: sim, models: {m: m}, processing: [CN]}
  - {id: hk, kind: sim, models: {m: m}, processing: [HK]}
routes:
)") + std::string(routes);
  auto loaded = config::LoadPolicyText(text, "policy.yaml");
  EXPECT_TRUE(loaded.snapshot) << (loaded.errors.empty() ? "" : loaded.errors[0].message);
  return loaded.snapshot;
}

TEST(ReloadHistory, KeepsTheLastEntriesAndComputesEachDiffOnce) {
  ReloadHistory h;
  const auto a = Policy("  - {id: r, when: {region: [CN]}, allow: [cn]}\n");
  const auto b = Policy("  - {id: r, when: {region: [CN, HK]}, allow: [cn]}\n");
  ReloadResult loaded;
  loaded.ok = loaded.changed = loaded.policy_changed = true;
  h.Add("start", 1, loaded, nullptr, a);
  h.Add("SIGHUP", 2, loaded, a, b);
  ReloadResult refused;
  refused.errors = {"policy.yaml:1:1: nope"};
  h.Add("admin", 3, refused, nullptr, b);
  int computed = 0;
  auto compute = [&](const ReloadHistory::Entry& e) {
    ++computed;
    return e.before->version + " -> " + e.after->version;
  };
  EXPECT_EQ(h.Diff(1, compute), a->version + " -> " + b->version);
  EXPECT_EQ(h.Diff(1, compute), a->version + " -> " + b->version);
  EXPECT_EQ(computed, 1);
  EXPECT_EQ(h.Diff(0, compute), std::nullopt);  // the start changed nothing it could diff
  EXPECT_EQ(h.Diff(2, compute), std::nullopt);  // refused
  EXPECT_EQ(h.Diff(9, compute), std::nullopt);  // no such entry
  ASSERT_EQ(h.List().size(), 3u);
  EXPECT_EQ(h.List()[2].result.errors, refused.errors);
  for (int i = 0; i < 30; ++i) h.Add("admin", 10 + i, loaded, a, b);
  const auto kept = h.List();
  ASSERT_EQ(kept.size(), ReloadHistory::kKept);
  EXPECT_EQ(kept.front().n, 33u - ReloadHistory::kKept);
  EXPECT_EQ(kept.back().n, 32u);
  EXPECT_EQ(h.Find(1), std::nullopt);
  EXPECT_EQ(h.Diff(1, compute), std::nullopt);  // forgotten with its entry
  EXPECT_TRUE(h.Diff(32, compute).has_value());
  EXPECT_EQ(computed, 2);
}

TEST(MeterReport, NextBoundaryIsTheLawsBandOrThePolicysThreshold) {
  const auto s = Policy(R"(  - id: small
    when: {region: [CN], meter: {non_sensitive: "< 5000"}}
    allow: [hk]
  - {id: r, allow: [cn]}
)");
  std::vector<MeterRow> rows(2);
  rows[0].tenant = "acme";
  rows[0].counts.non_sensitive = 4999;
  rows[0].counts.sensitive = 10'000;
  rows[1].tenant = "globex";
  rows[1].counts.status =
      core::Status::Error(core::StatusCode::kUnavailable, "redis down", "store_unavailable");
  const boost::json::value j = boost::json::parse(MeterReportJson(2026, rows, s.get()));
  const auto& acme = j.at("tenants").at(0);
  EXPECT_EQ(acme.at("non_sensitive_next"), 5000);  // the policy's condition changes there
  EXPECT_EQ(acme.at("non_sensitive_band"), "below 100000");
  EXPECT_FALSE(acme.as_object().contains("sensitive_next"));  // past the law's only band
  EXPECT_EQ(j.at("tenants").at(1).at("error"), "redis down");
  // Without the policy (meridian meter export): the counts and bands only.
  const boost::json::value plain = boost::json::parse(MeterReportJson(2026, rows));
  EXPECT_FALSE(plain.at("tenants").at(0).as_object().contains("non_sensitive_next"));
}

}  // namespace
}  // namespace meridian::gateway
