// Decide semantics on small policies written for each rule of the reference's section 3.3.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "policy/explain.h"
#include "tests/unit/policy/policy_test_util.h"

namespace meridian::policy {
namespace {

using ::meridian::testing::DecideJson;
using ::meridian::testing::MustCompile;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Not;

std::vector<std::string> After(const Decision& d) {
  return ProviderIds(*d.snapshot, d.candidates_after);
}
std::vector<std::string> Before(const Decision& d) {
  return ProviderIds(*d.snapshot, d.candidates_before);
}

constexpr std::string_view kPolicy = R"(version: 1
settings: {unknown_region_as: CN, default_data_class: personal, region_restrictiveness: [CN, HK]}
region_groups: {mainland: [CN], eea: [EU, DE, FR]}
tenant_flags: [beta]
providers:
  - {id: cn-a, kind: sim, models: {qwen: q}, processing: [CN], zdr: true, capabilities: [tools]}
  - {id: cn-b, kind: sim, models: {qwen: q}, processing: [CN], zdr: false}
  - {id: sg, kind: sim, models: {qwen: q, gpt: g}, processing: {anywhere_except: [CN]}}
  - {id: eu, kind: sim, models: {gpt: g}, processing: [EU], zdr: true, capabilities: [tools]}
  - {id: global, kind: sim, models: {gpt: g, qwen: q}, processing: anywhere, zdr: true}
guards:
  - id: keep-cn
    when: {region: mainland, data_class: ">= personal"}
    narrow: {processing_within: [CN]}
  - id: zdr
    when: {tenant_flags: {require_zdr: true}}
    narrow: {zdr: true}
  - id: no-core
    when: {data_class: core}
    deny: Core data is never sent to a model.
routes:
  - id: beta-first
    when: {tenant: [acme], tenant_flags: {beta: true}}
    allow: [global]
  - id: acme-cn
    when: {tenant: [acme], region: mainland}
    allow: [cn-a, cn-b, sg, global]
    prefer: [cn-b]
  - id: acme-any
    when: {tenant: acme}
    allow: [sg, eu, global]
)";

class DecideTest : public ::testing::Test {
 protected:
  SnapshotPtr s_ = MustCompile(kPolicy);
};

TEST_F(DecideTest, DenyByDefaultWhenNoRouteMatches) {
  auto d = DecideJson(s_, R"({"tenant":"stranger","region":"US","model":"gpt"})");
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.ReasonCode(), "no_rule_matched");
  EXPECT_FALSE(d.MatchedRoute());
  EXPECT_THAT(After(d), IsEmpty());
}

TEST_F(DecideTest, FirstMatchingRouteWins) {
  auto d =
      DecideJson(s_, R"({"tenant":"acme","region":"US","model":"gpt","tenant_flags":["beta"]})");
  ASSERT_TRUE(d.allowed);
  EXPECT_EQ(d.MatchedRoute()->id, "beta-first");
  EXPECT_THAT(After(d), ElementsAre("global"));
}

TEST_F(DecideTest, PreferOrderThenAllowOrder) {
  auto d = DecideJson(s_, R"({"tenant":"acme","region":"CN","data_class":"none","model":"qwen"})");
  ASSERT_TRUE(d.allowed);
  EXPECT_THAT(Before(d), ElementsAre("cn-b", "cn-a", "sg", "global"));
  EXPECT_THAT(After(d), ElementsAre("cn-b", "cn-a", "sg", "global"));
  EXPECT_THAT(GuardIds(d), IsEmpty());
}

TEST_F(DecideTest, GuardsNarrowAndRecordWhyEachCandidateWasDropped) {
  auto d = DecideJson(s_, R"({"tenant":"acme","region":"CN","model":"qwen"})");
  ASSERT_TRUE(d.allowed);
  EXPECT_TRUE(d.data_class_defaulted);
  EXPECT_EQ(d.data_class, DataClass::kPersonal);
  EXPECT_THAT(GuardIds(d), ElementsAre("keep-cn"));
  EXPECT_THAT(After(d), ElementsAre("cn-b", "cn-a"));
  ASSERT_EQ(d.excluded.size(), 2u);
  EXPECT_EQ(s_->providers[d.excluded[0].provider].id, "sg");
  EXPECT_EQ(d.excluded[0].by, Exclusion::By::kGuard);
  EXPECT_EQ(s_->guards[d.excluded[0].guard].id, "keep-cn");
  EXPECT_EQ(s_->providers[d.excluded[1].provider].id, "global");
}

TEST_F(DecideTest, AllMatchingGuardsApply) {
  auto d = DecideJson(
      s_, R"({"tenant":"acme","region":"CN","model":"qwen","tenant_flags":["require_zdr"]})");
  ASSERT_TRUE(d.allowed);
  EXPECT_THAT(GuardIds(d), ElementsAre("keep-cn", "zdr"));
  EXPECT_THAT(After(d), ElementsAre("cn-a"));
}

TEST_F(DecideTest, DenyingGuardWinsAndIsNamed) {
  auto d = DecideJson(s_, R"({"tenant":"acme","region":"US","data_class":"core","model":"gpt"})");
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.ReasonCode(), "denied_by_guard:no-core");
  EXPECT_EQ(s_->guards[*d.deny_guard].deny_reason, "Core data is never sent to a model.");
}

TEST_F(DecideTest, UnknownRegionIsTreatedAsConfigured) {
  auto d = DecideJson(s_, R"({"tenant":"acme","model":"qwen"})");
  ASSERT_TRUE(d.allowed);
  EXPECT_EQ(d.region.ToString(), "CN");
  EXPECT_EQ(d.region_source, RegionSource::kUnknown);
  EXPECT_EQ(d.MatchedRoute()->id, "acme-cn");
  EXPECT_THAT(GuardIds(d), ElementsAre("keep-cn"));
}

TEST_F(DecideTest, EmptyAfterGuards) {
  auto d =
      DecideJson(s_, R"({"tenant":"acme","region":"DE","model":"gpt","tenant_flags":["require_zdr"],
                              "data_class":"personal"})");
  ASSERT_TRUE(d.allowed);  // eu and global have zdr
  d = DecideJson(s_, R"({"tenant":"acme","region":"CN","model":"qwen","tenant_flags":["beta"]})");
  // beta-first allows only `global`, which keep-cn removes.
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.ReasonCode(), "empty_after_guards");
  EXPECT_FALSE(d.Unavailable());
}

TEST_F(DecideTest, CapabilityUnavailableInAllowedSet) {
  auto d = DecideJson(s_, R"({"tenant":"acme","region":"CN","model":"gpt"})");
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.ReasonCode(), "capability_unavailable_in_allowed_set");
  d = DecideJson(s_, R"({"tenant":"acme","region":"CN","model":"no-such-alias"})");
  EXPECT_EQ(d.ReasonCode(), "capability_unavailable_in_allowed_set");
}

TEST_F(DecideTest, ProviderThatDoesNotStateACapabilityIsIneligible) {
  auto d = DecideJson(s_, R"({"tenant":"acme","region":"CN","model":"qwen","requires":["tools"]})");
  ASSERT_TRUE(d.allowed);
  EXPECT_THAT(After(d), ElementsAre("cn-a"));  // cn-b states no capabilities at all
}

// A model may state its own capabilities: an embedding model beside a provider's chat models
// serves embeddings, and the chat models do not.
TEST(DecideCapabilities, AModelsOwnCapabilitiesReplaceItsProviders) {
  const SnapshotPtr s = MustCompile(R"(version: 1
settings: {unknown_region_as: CN, default_data_class: personal}
providers:
  - id: ds
    kind: dashscope
    endpoint: https://dashscope.example/api/v1
    credential_env: K
    models: {chat: qwen-plus, embed: {upstream: text-embedding-v4, capabilities: [embeddings]}}
    capabilities: [tools]
    processing: [CN]
  - id: local
    kind: openai_compatible
    endpoint: http://127.0.0.1:1/v1
    models: {embed: {upstream: bge-m3, capabilities: [embeddings, tools]}}
    processing: [CN]
routes:
  - {id: all, allow: [ds, local]}
)");
  auto d =
      DecideJson(s, R"({"tenant":"t","region":"CN","model":"embed","requires":["embeddings"]})");
  ASSERT_TRUE(d.allowed);
  EXPECT_THAT(After(d), ElementsAre("ds", "local"));
  // The chat model does not embed; the embedding model on ds has no tools (its own list).
  d = DecideJson(s, R"({"tenant":"t","region":"CN","model":"chat","requires":["embeddings"]})");
  EXPECT_EQ(d.ReasonCode(), "capability_unavailable_in_allowed_set");
  d = DecideJson(s, R"({"tenant":"t","region":"CN","model":"embed","requires":["tools"]})");
  ASSERT_TRUE(d.allowed);
  EXPECT_THAT(After(d), ElementsAre("local"));
  d = DecideJson(s, R"({"tenant":"t","region":"CN","model":"chat","requires":["tools"]})");
  EXPECT_THAT(After(d), ElementsAre("ds"));
}

TEST(DecideCapabilities, ModelCapabilitiesAreCheckedWhenCompiled) {
  const std::string head =
      "version: 1\nsettings: {unknown_region_as: CN, default_data_class: personal}\n"
      "providers:\n";
  const std::string routes = "routes:\n  - {id: all, allow: [a]}\n";
  EXPECT_THAT(
      meridian::testing::CompileErrors(
          head +
          "  - {id: a, kind: anthropic, endpoint: https://x.example, credential_env: K,\n"
          "     models: {e: {upstream: u, capabilities: [embeddings]}}, processing: [US]}\n" +
          routes),
      ElementsAre(::testing::HasSubstr("'embeddings' cannot be served by kind anthropic")));
  EXPECT_THAT(meridian::testing::CompileErrors(
                  head + "  - {id: a, kind: sim, models: {e: {upstream: u, capabilities: [x]}}}\n" +
                  routes),
              ElementsAre(::testing::HasSubstr("capability")));
  auto structural = [&](const std::string& provider) {
    std::vector<config::FileDiagnostic> errors;
    (void)config::ParsePolicyYaml(head + provider + routes, "t.yaml", errors);
    std::vector<std::string> out;
    for (const auto& e : errors) out.push_back(e.message);
    return out;
  };
  EXPECT_THAT(structural("  - {id: a, kind: sim, models: {e: {capabilities: [tools]}}}\n"),
              ElementsAre("model 'e' is missing required key 'upstream'"));
  EXPECT_THAT(structural("  - {id: a, kind: sim, models: {e: {upstream: u, colour: red}}}\n"),
              ElementsAre(::testing::HasSubstr("unknown key 'colour' in model 'e'")));
}

TEST_F(DecideTest, ProviderMissingAnAttributeAGuardNeedsIsIneligible) {
  // `sg` does not state zdr: the zdr guard cannot know it is safe.
  auto d = DecideJson(
      s_, R"({"tenant":"acme","region":"US","model":"qwen","tenant_flags":["require_zdr"]})");
  ASSERT_TRUE(d.allowed);
  EXPECT_THAT(After(d), ElementsAre("global"));
}

TEST_F(DecideTest, UnhealthyCandidatesAreSkippedNeverReplaced) {
  auto d = DecideJson(s_, R"({"tenant":"acme","region":"CN","model":"qwen","unhealthy":["cn-b"]})");
  ASSERT_TRUE(d.allowed);
  EXPECT_THAT(After(d), ElementsAre("cn-a"));
  d = DecideJson(s_,
                 R"({"tenant":"acme","region":"CN","model":"qwen","unhealthy":["cn-a","cn-b"]})");
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.ReasonCode(), "empty_after_guards");
  EXPECT_TRUE(d.Unavailable());  // an outage: front ends answer 503, not 403
  EXPECT_THAT(After(d), IsEmpty());
}

TEST_F(DecideTest, DecisionKeepsItsSnapshotAlive) {
  auto d = DecideJson(s_, R"({"tenant":"acme","region":"CN","model":"qwen"})");
  const std::string version = s_->version;
  s_.reset();  // a reload swapped the policy while the request was in flight
  EXPECT_EQ(d.snapshot->version, version);
  EXPECT_EQ(d.Chosen()->id, "cn-b");
}

TEST_F(DecideTest, ExplainNamesRuleGuardsAndDroppedCandidates) {
  auto d = DecideJson(s_, R"({"tenant":"acme","region":"CN","model":"qwen"})");
  const std::string text = ExplainText(d);
  EXPECT_THAT(text, ::testing::HasSubstr("ALLOW -> cn-b"));
  EXPECT_THAT(text, ::testing::HasSubstr("acme-cn"));
  EXPECT_THAT(text, ::testing::HasSubstr("keep-cn: processing within {CN}"));
  EXPECT_THAT(text, ::testing::HasSubstr("- sg dropped by guard keep-cn"));
  const auto json = ExplainJson(d);
  EXPECT_EQ(json.at("matched_rule").as_string(), "acme-cn");
  EXPECT_EQ(json.at("policy_version").as_string(), s_->version);
  EXPECT_EQ(json.at("candidates_after").as_array().size(), 2u);
}

TEST(ResolveRegion, AgreeingSignalsKeepTheirSource) {
  Settings st;
  st.region_restrictiveness = {*RegionCode::Parse("CN")};
  const RegionSignal signals[] = {{RegionSource::kTenantBinding, *RegionCode::Parse("US")},
                                  {RegionSource::kIngress, *RegionCode::Parse("US")}};
  auto r = ResolveRegion(signals, st);
  EXPECT_EQ(r.region->ToString(), "US");
  EXPECT_EQ(r.source, RegionSource::kTenantBinding);
}

TEST(ResolveRegion, ConflictTakesTheMostRestrictive) {
  Settings st;
  st.region_restrictiveness = {*RegionCode::Parse("CN"), *RegionCode::Parse("HK")};
  const RegionSignal signals[] = {{RegionSource::kIdpClaim, *RegionCode::Parse("US")},
                                  {RegionSource::kIngress, *RegionCode::Parse("HK")}};
  auto r = ResolveRegion(signals, st);
  EXPECT_EQ(r.region->ToString(), "HK");
  EXPECT_EQ(r.source, RegionSource::kConflict);
}

TEST(ResolveRegion, UnrankedConflictFallsBackToUnknownRegionAs) {
  Settings st;  // unknown_region_as CN
  st.region_restrictiveness = {*RegionCode::Parse("CN")};
  const RegionSignal signals[] = {{RegionSource::kIdpClaim, *RegionCode::Parse("US")},
                                  {RegionSource::kIngress, *RegionCode::Parse("DE")}};
  EXPECT_EQ(ResolveRegion(signals, st).region->ToString(), "CN");
  EXPECT_FALSE(ResolveRegion({}, st).region);
}

TEST_F(DecideTest, ClientHeaderIsNeverARegionSource) {
  auto [r, error] = ParseRequestJson(boost::json::parse(R"({"tenant":"acme","model":"gpt",
      "region_signals":[{"source":"client_header","region":"US"}]})"),
                                     *s_);
  ASSERT_TRUE(r) << error;
  EXPECT_FALSE(r->region);  // unknown, so treated as CN
  EXPECT_THAT(r->ignored_signals, ElementsAre("client_header US (untrusted)"));
}

TEST_F(DecideTest, IpGeolocationAloneEstablishesNothing) {
  auto [r, error] = ParseRequestJson(boost::json::parse(R"({"tenant":"acme",
      "region_signals":[{"source":"ip_geo","region":"US"}]})"),
                                     *s_);
  ASSERT_TRUE(r) << error;
  EXPECT_FALSE(r->region);
}

TEST_F(DecideTest, RequestFieldsAreValidatedByName) {
  EXPECT_EQ(ParseRequestJson(boost::json::parse(R"({"tenant":"acme","regoin":"CN"})"), *s_).error,
            "request.regoin: unknown field (did you mean 'region'?); the fields are tenant, "
            "region, region_signals, city, data_class, consent, tenant_flags, mechanisms, meter, "
            "model, requires, unhealthy");
  EXPECT_EQ(ParseRequestJson(boost::json::parse(R"({"region":"uk"})"), *s_).error,
            "request.region: unknown region code 'uk' (did you mean 'GB'? the ISO 3166-1 code "
            "of the United Kingdom)");
  EXPECT_EQ(ParseRequestJson(boost::json::parse(R"({"region":"XX"})"), *s_).error,
            "request.region: unknown region code 'XX'");
  EXPECT_EQ(ParseRequestJson(boost::json::parse(R"({"tenant_flags":["vip"]})"), *s_).error,
            "request.tenant_flags: unknown tenant flag 'vip'");
  EXPECT_EQ(ParseRequestJson(boost::json::parse(R"({"meter":{"sensitive":-1}})"), *s_).error,
            "request.meter.sensitive: must be a whole number of individuals");
  EXPECT_EQ(ParseRequestJson(boost::json::parse(R"({"unhealthy":["nope"]})"), *s_).error,
            "request.unhealthy: unknown provider 'nope'");
}

}  // namespace
}  // namespace meridian::policy
