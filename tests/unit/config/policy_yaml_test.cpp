#include "config/policy_yaml.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "config/yaml_json.h"

namespace meridian::config {
namespace {

using Strings = std::vector<std::string>;

std::string SourceDir() {
#ifdef MERIDIAN_SOURCE_DIR
  return MERIDIAN_SOURCE_DIR;
#else
  return "/work/main";
#endif
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// 1-based line of the first line of `text` that contains `needle` (0 if none); keeps the
// position checks on the example file independent of its exact layout.
std::uint32_t LineOf(const std::string& text, std::string_view needle) {
  std::istringstream in(text);
  std::string line;
  for (std::uint32_t n = 1; std::getline(in, line); ++n) {
    if (line.find(needle) != std::string::npos) {
      return n;
    }
  }
  return 0;
}

std::vector<std::string> Format(const std::vector<FileDiagnostic>& errors) {
  std::vector<std::string> out;
  out.reserve(errors.size());
  for (const FileDiagnostic& d : errors) {
    out.push_back(FormatDiagnostic(d));
  }
  return out;
}

std::vector<std::string> PolicyErrors(std::string_view yaml) {
  std::vector<FileDiagnostic> errors;
  ParsePolicyYaml(yaml, "p.yaml", errors);
  return Format(errors);
}

std::vector<std::string> TestsErrors(std::string_view yaml) {
  std::vector<FileDiagnostic> errors;
  ParseTestsYaml(yaml, "t.yaml", errors);
  return Format(errors);
}

std::vector<std::string> Values(const policy::StringList& list) {
  std::vector<std::string> out;
  out.reserve(list.size());
  for (const policy::LocatedString& s : list) {
    out.push_back(s.value);
  }
  return out;
}

constexpr std::string_view kProviderKeys =
    "id, kind, endpoint, credential_env, description, models, capabilities, processing, "
    "storage, on_prem, cn_filing, cn_filing_number, retention_days, zdr, trains_on_data, "
    "eu_transfer_basis, operator_jurisdiction, api_version, dashscope_region, "
    "anthropic_version, max_tokens_default, sim_tokens, sim_delay_ms, max_duration_ms, "
    "responses_api, on_echo_mismatch";

constexpr std::string_view kNarrowKeys =
    "providers, processing_within, processing_excludes, storage_within, cn_filing, "
    "eu_transfer_basis, zdr, on_prem, trains_on_data, max_retention_days";

const std::string kSecretMessage =
    ": secrets must not be written in the policy file: put the secret in an environment "
    "variable and name it with credential_env";

const std::string kEmptyNarrowMessage =
    ": narrow has no requirement (write at least one of: " + std::string(kNarrowKeys) + ")";

// --- The example policy ---

class PolicyYamlExampleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    text_ = ReadFile(SourceDir() + "/config/examples/policy.yaml");
    ASSERT_FALSE(text_.empty()) << "cannot read the example policy under " << SourceDir();
    doc_ = ParsePolicyYaml(text_, "policy.yaml", errors_);
  }

  const policy::ProviderSpec& Provider(std::string_view id) const {
    const auto it = std::find_if(doc_.spec.providers.begin(), doc_.spec.providers.end(),
                                 [&](const policy::ProviderSpec& p) { return p.id.value == id; });
    EXPECT_NE(it, doc_.spec.providers.end()) << id;
    return *it;
  }

  const policy::GuardSpec& Guard(std::string_view id) const {
    const auto it = std::find_if(doc_.spec.guards.begin(), doc_.spec.guards.end(),
                                 [&](const policy::GuardSpec& g) { return g.id.value == id; });
    EXPECT_NE(it, doc_.spec.guards.end()) << id;
    return *it;
  }

  std::string text_;
  std::vector<FileDiagnostic> errors_;
  PolicyDocument doc_;
};

TEST_F(PolicyYamlExampleTest, ParsesWithoutErrors) {
  EXPECT_EQ(Format(errors_), (Strings{}));
  const policy::PolicySpec& spec = doc_.spec;
  ASSERT_TRUE(spec.version.has_value());
  EXPECT_EQ(spec.version->value, 1);
  EXPECT_EQ(spec.pos, (policy::SourcePos{LineOf(text_, "version: 1"), 1}));
  EXPECT_EQ(spec.region_groups.size(), 3u);
  EXPECT_EQ(spec.city_groups.size(), 1u);
  EXPECT_EQ(spec.tenant_flags.size(), 3u);
  EXPECT_EQ(spec.conditions.size(), 2u);
  EXPECT_EQ(spec.providers.size(), 9u);
  EXPECT_EQ(spec.guards.size(), 10u);
  EXPECT_EQ(spec.routes.size(), 5u);
  EXPECT_TRUE(doc_.tests.empty());
}

TEST_F(PolicyYamlExampleTest, ReadsSettingsGroupsAndFlags) {
  const policy::PolicySpec& spec = doc_.spec;
  ASSERT_TRUE(spec.settings.unknown_region_as.has_value());
  EXPECT_EQ(spec.settings.unknown_region_as->value, "CN");
  ASSERT_TRUE(spec.settings.default_data_class.has_value());
  EXPECT_EQ(spec.settings.default_data_class->value, "personal");
  ASSERT_TRUE(spec.settings.region_restrictiveness.has_value());
  EXPECT_EQ(Values(*spec.settings.region_restrictiveness), (Strings{"CN", "HK", "MO"}));

  const policy::GroupSpec& eea = spec.region_groups[1];
  EXPECT_EQ(eea.name.value, "eea");
  EXPECT_EQ(eea.name.pos, (policy::SourcePos{LineOf(text_, "  eea: ["), 3}));
  EXPECT_EQ(eea.members.size(), 31u);
  EXPECT_EQ(eea.members.front().value, "EU");
  EXPECT_EQ(eea.members.front().pos, (policy::SourcePos{LineOf(text_, "  eea: ["), 9}));
  EXPECT_EQ(spec.city_groups[0].members.size(), 9u);

  EXPECT_EQ(spec.tenant_flags[0].name.value, "important_data_cloud_ok");
  ASSERT_TRUE(spec.tenant_flags[0].description.has_value());
  EXPECT_EQ(spec.tenant_flags[0].description->value.rfind("Tenant's assessment", 0), 0u);
}

TEST_F(PolicyYamlExampleTest, ReadsProviders) {
  const policy::ProviderSpec& onprem = Provider("onprem-qwen");
  EXPECT_EQ(onprem.pos, (policy::SourcePos{LineOf(text_, "- id: onprem-qwen"), 5}));
  EXPECT_EQ(onprem.id.pos, (policy::SourcePos{LineOf(text_, "- id: onprem-qwen"), 9}));
  EXPECT_EQ(onprem.kind.value, "openai_compatible");
  ASSERT_EQ(onprem.models.size(), 1u);
  EXPECT_EQ(onprem.models[0].alias.value, "qwen-plus");
  EXPECT_EQ(onprem.models[0].alias.pos, (policy::SourcePos{LineOf(text_, "qwen-plus: Qwen/"), 7}));
  EXPECT_EQ(onprem.models[0].upstream.value, "Qwen/Qwen3-32B");
  EXPECT_EQ(onprem.models[0].upstream.pos,
            (policy::SourcePos{LineOf(text_, "qwen-plus: Qwen/"), 18}));
  ASSERT_TRUE(onprem.capabilities.has_value());
  EXPECT_EQ(Values(*onprem.capabilities), (Strings{"tools", "thinking", "streaming"}));
  ASSERT_TRUE(onprem.on_prem.has_value());
  EXPECT_TRUE(onprem.on_prem->value);
  ASSERT_TRUE(onprem.retention_days.has_value());
  EXPECT_EQ(onprem.retention_days->value, 0);
  ASSERT_TRUE(onprem.trains_on_data.has_value());
  EXPECT_FALSE(onprem.trains_on_data->value);
  ASSERT_TRUE(onprem.cn_filing_number.has_value());
  EXPECT_EQ(onprem.cn_filing_number->value, "Beijing-Example-000000");

  const policy::ProviderSpec& intl = Provider("ds-intl");
  ASSERT_TRUE(intl.processing.has_value());
  EXPECT_TRUE(intl.processing->anywhere);
  EXPECT_EQ(Values(intl.processing->items), (Strings{"CN"}));
  ASSERT_TRUE(intl.storage.has_value());
  EXPECT_FALSE(intl.storage->anywhere);
  EXPECT_EQ(Values(intl.storage->items), (Strings{"SG"}));
  ASSERT_TRUE(intl.dashscope_region.has_value());
  EXPECT_EQ(intl.dashscope_region->value, "singapore");
  EXPECT_FALSE(intl.retention_days.has_value());

  const policy::ProviderSpec& hk = Provider("ds-hk");
  ASSERT_TRUE(hk.processing.has_value());
  EXPECT_TRUE(hk.processing->anywhere);
  EXPECT_TRUE(hk.processing->items.empty());

  const policy::ProviderSpec& az = Provider("az-eu-dz");
  ASSERT_TRUE(az.api_version.has_value());
  EXPECT_EQ(az.api_version->value, "2024-10-21");
  ASSERT_TRUE(az.zdr.has_value());
  EXPECT_TRUE(az.zdr->value);
  ASSERT_TRUE(az.endpoint.has_value());
  EXPECT_EQ(az.endpoint->value, "https://meridian-eu.openai.azure.com");
  ASSERT_TRUE(az.credential_env.has_value());
  EXPECT_EQ(az.credential_env->value, "AZURE_EU_API_KEY");

  const policy::ProviderSpec& anth = Provider("anth-us");
  ASSERT_TRUE(anth.anthropic_version.has_value());
  EXPECT_EQ(anth.anthropic_version->value, "2023-06-01");
  ASSERT_TRUE(anth.eu_transfer_basis.has_value());
  EXPECT_EQ(anth.eu_transfer_basis->value, "scc");
  ASSERT_TRUE(anth.operator_jurisdiction.has_value());
  EXPECT_EQ(anth.operator_jurisdiction->value, "US");
}

TEST_F(PolicyYamlExampleTest, ReadsGuards) {
  const policy::GuardSpec& g1 = Guard("G1");
  ASSERT_TRUE(g1.narrow.has_value());
  ASSERT_TRUE(g1.narrow->providers.has_value());
  EXPECT_EQ(Values(*g1.narrow->providers), (Strings{"onprem-qwen"}));
  EXPECT_FALSE(g1.deny.has_value());
  ASSERT_TRUE(g1.when.data_class.has_value());
  EXPECT_EQ(g1.when.data_class->value, ">= important");
  ASSERT_EQ(g1.when.tenant_flags.size(), 1u);
  EXPECT_EQ(g1.when.tenant_flags[0].first.value, "important_data_cloud_ok");
  EXPECT_FALSE(g1.when.tenant_flags[0].second);

  const policy::GuardSpec& g2 = Guard("G2");
  ASSERT_EQ(g2.when.not_.size(), 1u);
  ASSERT_TRUE(g2.when.not_[0].ref.has_value());
  EXPECT_EQ(g2.when.not_[0].ref->value, "allowed_export");
  const std::uint32_t not_line = LineOf(text_, "not: {ref: allowed_export}");
  EXPECT_EQ(g2.when.not_[0].pos, (policy::SourcePos{not_line, 12}));
  EXPECT_EQ(g2.when.not_[0].ref->pos, (policy::SourcePos{not_line, 18}));
  ASSERT_TRUE(g2.when.region.has_value());
  EXPECT_EQ(Values(*g2.when.region), (Strings{"mainland"}));
  ASSERT_TRUE(g2.narrow.has_value());
  ASSERT_TRUE(g2.narrow->processing_within.has_value());
  EXPECT_EQ(Values(*g2.narrow->processing_within), (Strings{"CN"}));

  const policy::GuardSpec& g4 = Guard("G4");
  ASSERT_TRUE(g4.when.mechanisms_any_of.has_value());
  EXPECT_EQ(Values(*g4.when.mechanisms_any_of), (Strings{"gba_sc"}));
  ASSERT_TRUE(g4.when.mechanisms_none_of.has_value());
  EXPECT_EQ(Values(*g4.when.mechanisms_none_of), (Strings{"cn_sa", "cn_scc_filed", "cn_cert"}));
  EXPECT_FALSE(g4.when.mechanisms_all_of.has_value());

  const policy::GuardSpec& g6 = Guard("G6");
  ASSERT_TRUE(g6.narrow.has_value());
  ASSERT_TRUE(g6.narrow->zdr.has_value());
  EXPECT_TRUE(g6.narrow->zdr->value);
  EXPECT_FALSE(g6.narrow->providers.has_value());

  const policy::GuardSpec& g7 = Guard("G7");
  ASSERT_TRUE(g7.narrow.has_value());
  ASSERT_TRUE(g7.narrow->processing_excludes.has_value());
  EXPECT_EQ(Values(*g7.narrow->processing_excludes), (Strings{"CN"}));

  const policy::GuardSpec& g8 = Guard("G8");
  EXPECT_FALSE(g8.narrow.has_value());
  ASSERT_TRUE(g8.deny.has_value());
  EXPECT_EQ(g8.deny->value.rfind("Sensitive personal information requires", 0), 0u);
  ASSERT_EQ(g8.when.consent.size(), 1u);
  EXPECT_EQ(g8.when.consent[0].first.value, "sensitive_separate");
  EXPECT_FALSE(g8.when.consent[0].second);
}

TEST_F(PolicyYamlExampleTest, ReadsNamedConditionsAndRoutes) {
  const policy::NamedConditionSpec& band = doc_.spec.conditions[0];
  EXPECT_EQ(band.name.value, "mechanism_covers_band");
  EXPECT_EQ(band.name.pos, (policy::SourcePos{LineOf(text_, "  mechanism_covers_band:"), 3}));
  EXPECT_TRUE(band.condition.has_any);
  ASSERT_EQ(band.condition.any.size(), 4u);
  const policy::ConditionSpec& contract = band.condition.any[1];
  ASSERT_EQ(contract.all.size(), 2u);
  ASSERT_TRUE(contract.all[1].meter_sensitive.has_value());
  EXPECT_EQ(contract.all[1].meter_sensitive->value, "< 10000");
  const policy::ConditionSpec& exemption = band.condition.any[2];
  ASSERT_EQ(exemption.all.size(), 3u);
  ASSERT_TRUE(exemption.all[1].meter_non_sensitive.has_value());
  EXPECT_EQ(exemption.all[1].meter_non_sensitive->value, "< 100000");
  EXPECT_FALSE(exemption.all[1].meter_sensitive.has_value());

  const policy::NamedConditionSpec& exported = doc_.spec.conditions[1];
  EXPECT_EQ(exported.name.value, "allowed_export");
  EXPECT_FALSE(exported.condition.has_any);
  ASSERT_EQ(exported.condition.all.size(), 4u);
  ASSERT_TRUE(exported.condition.all[2].ref.has_value());
  EXPECT_EQ(exported.condition.all[2].ref->value, "mechanism_covers_band");

  const policy::RouteSpec& gba = doc_.spec.routes[0];
  EXPECT_EQ(gba.id.value, "acme-gba");
  ASSERT_TRUE(gba.description.has_value());
  ASSERT_TRUE(gba.when.tenant.has_value());
  EXPECT_EQ(Values(*gba.when.tenant), (Strings{"acme"}));
  ASSERT_TRUE(gba.when.city.has_value());
  EXPECT_EQ(Values(*gba.when.city), (Strings{"gba_cities"}));
  EXPECT_EQ(Values(gba.allow), (Strings{"ds-hk", "ds-cn", "onprem-qwen"}));
  EXPECT_EQ(Values(gba.prefer), (Strings{"ds-hk", "ds-cn", "onprem-qwen"}));
  EXPECT_TRUE(doc_.spec.routes[1].prefer.empty());
  EXPECT_FALSE(doc_.spec.routes[4].when.region.has_value());
}

// --- Reading details ---

TEST(PolicyYamlTest, ReadsEveryConditionKey) {
  std::vector<FileDiagnostic> errors;
  const PolicyDocument doc = ParsePolicyYaml(R"(conditions:
  c:
    region: CN
    city: [shenzhen]
    data_class: personal
    consent: {a: true, b: false}
    tenant_flags: {ciio: true}
    mechanisms: {any_of: x, all_of: [y], none_of: [z]}
    model: m
    tenant: [t1, t2]
    meter: {non_sensitive: 100000, sensitive: "< 10000"}
    requires: [tools, vision]
    all: [{ref: a}]
    any: []
    not: {region: US}
    ref: other
)",
                                             "p.yaml", errors);
  ASSERT_EQ(Format(errors), (Strings{}));
  ASSERT_EQ(doc.spec.conditions.size(), 1u);
  const policy::ConditionSpec& c = doc.spec.conditions[0].condition;
  EXPECT_EQ(c.pos, (policy::SourcePos{3, 5}));
  ASSERT_TRUE(c.region.has_value());
  EXPECT_EQ(Values(*c.region), (Strings{"CN"}));
  EXPECT_EQ(c.region->front().pos, (policy::SourcePos{3, 13}));
  EXPECT_EQ(Values(c.city.value()), (Strings{"shenzhen"}));
  EXPECT_EQ(c.data_class.value().value, "personal");
  ASSERT_EQ(c.consent.size(), 2u);
  EXPECT_EQ(c.consent[0].first.value, "a");
  EXPECT_EQ(c.consent[0].first.pos, (policy::SourcePos{6, 15}));
  EXPECT_TRUE(c.consent[0].second);
  EXPECT_FALSE(c.consent[1].second);
  ASSERT_EQ(c.tenant_flags.size(), 1u);
  EXPECT_EQ(Values(c.mechanisms_any_of.value()), (Strings{"x"}));
  EXPECT_EQ(Values(c.mechanisms_all_of.value()), (Strings{"y"}));
  EXPECT_EQ(Values(c.mechanisms_none_of.value()), (Strings{"z"}));
  EXPECT_EQ(Values(c.model.value()), (Strings{"m"}));
  EXPECT_EQ(Values(c.tenant.value()), (Strings{"t1", "t2"}));
  EXPECT_EQ(c.meter_non_sensitive.value().value, "100000");
  EXPECT_EQ(c.meter_sensitive.value().value, "< 10000");
  EXPECT_EQ(Values(c.requires_capability.value()), (Strings{"tools", "vision"}));
  ASSERT_EQ(c.all.size(), 1u);
  EXPECT_EQ(c.all[0].ref.value().value, "a");
  EXPECT_TRUE(c.has_any);
  EXPECT_TRUE(c.any.empty());
  ASSERT_EQ(c.not_.size(), 1u);
  EXPECT_EQ(Values(c.not_[0].region.value()), (Strings{"US"}));
  EXPECT_EQ(c.ref.value().value, "other");
}

TEST(PolicyYamlTest, AcceptsSingleStringsFlagNamesAndAliases) {
  std::vector<FileDiagnostic> errors;
  const PolicyDocument doc = ParsePolicyYaml(R"(region_groups:
  mainland: CN
tenant_flags:
  - plain_flag
  - name: described_flag
    description: has a description
providers:
  - id: sim-1
    kind: sim
    capabilities: streaming
    processing: {anywhere_except: CN}
    sim_tokens: 20
    sim_delay_ms: 0x10
eu: &eu [sim-1]
)",
                                             "p.yaml", errors);
  // The alias target above is an unknown key; below it is reused through *eu.
  ASSERT_EQ(Format(errors), (Strings{"p.yaml:14:1: unknown key 'eu' in the policy file "
                                     "(expected one of: version, settings, region_groups, "
                                     "city_groups, tenant_flags, conditions, providers, "
                                     "guards, routes, tests)"}));
  EXPECT_EQ(Values(doc.spec.region_groups.at(0).members), (Strings{"CN"}));
  ASSERT_EQ(doc.spec.tenant_flags.size(), 2u);
  EXPECT_EQ(doc.spec.tenant_flags[0].name.value, "plain_flag");
  EXPECT_EQ(doc.spec.tenant_flags[0].name.pos, (policy::SourcePos{4, 5}));
  EXPECT_FALSE(doc.spec.tenant_flags[0].description.has_value());
  EXPECT_EQ(doc.spec.tenant_flags[1].description.value().value, "has a description");
  const policy::ProviderSpec& sim = doc.spec.providers.at(0);
  EXPECT_EQ(Values(sim.capabilities.value()), (Strings{"streaming"}));
  EXPECT_TRUE(sim.processing.value().anywhere);
  EXPECT_EQ(Values(sim.processing.value().items), (Strings{"CN"}));
  EXPECT_EQ(sim.sim_tokens.value().value, 20);
  EXPECT_EQ(sim.sim_delay_ms.value().value, 16);

  errors.clear();
  const PolicyDocument aliased = ParsePolicyYaml(R"(routes:
  - id: r1
    allow: &eu [a, b]
  - id: r2
    allow: *eu
)",
                                                 "p.yaml", errors);
  ASSERT_EQ(Format(errors), (Strings{}));
  EXPECT_EQ(Values(aliased.spec.routes.at(1).allow), (Strings{"a", "b"}));
}

TEST(PolicyYamlTest, EmptySectionsAreEmpty) {
  std::vector<FileDiagnostic> errors;
  const PolicyDocument doc =
      ParsePolicyYaml("version: 1\nguards:\nroutes:\ntests:\n", "p.yaml", errors);
  EXPECT_EQ(Format(errors), (Strings{}));
  EXPECT_TRUE(doc.spec.guards.empty());
}

// --- Errors, one class at a time ---

TEST(PolicyYamlErrorTest, EmptyFile) {
  EXPECT_EQ(PolicyErrors(""), (Strings{"p.yaml: the policy file is empty"}));
  EXPECT_EQ(PolicyErrors("# only a comment\n"), (Strings{"p.yaml: the policy file is empty"}));
  EXPECT_EQ(TestsErrors(""), (Strings{"t.yaml: the tests file is empty"}));
}

TEST(PolicyYamlErrorTest, TopLevelNotAMapping) {
  EXPECT_EQ(PolicyErrors("- a\n- b\n"),
            (Strings{"p.yaml:1:1: expected a mapping at the top level"}));
  EXPECT_EQ(PolicyErrors("just text\n"),
            (Strings{"p.yaml:1:1: expected a mapping at the top level"}));
}

TEST(PolicyYamlErrorTest, SecondDocument) {
  EXPECT_EQ(PolicyErrors("version: 1\n---\nversion: 2\n"),
            (Strings{"p.yaml:3:1: the policy file must hold a single YAML document, but a "
                     "second one starts here (after '---')"}));
  EXPECT_EQ(PolicyErrors("version: 1\n---\n"), (Strings{}));
}

TEST(PolicyYamlErrorTest, MalformedYaml) {
  EXPECT_EQ(PolicyErrors("version: 1\nsettings:\n  a: b: c\n"),
            (Strings{"p.yaml:3:7: invalid YAML: illegal map value"}));
  EXPECT_EQ(PolicyErrors("version: 1\nproviders: [a\nguards: []\n"),
            (Strings{"p.yaml:3:7: invalid YAML: end of sequence flow not found"}));
  EXPECT_EQ(PolicyErrors("a: [1\n"),
            (Strings{"p.yaml:2:1: invalid YAML: end of sequence flow not found"}));
}

TEST(PolicyYamlErrorTest, UnknownKey) {
  EXPECT_EQ(PolicyErrors("providers:\n  - id: a\n    kind: sim\n    colour: red\n"),
            (Strings{"p.yaml:4:5: unknown key 'colour' in provider (expected one of: " +
                     std::string(kProviderKeys) + ")"}));
  EXPECT_EQ(
      PolicyErrors("guards:\n  - id: g\n    narrow: {zdrr: true}\n"),
      (Strings{"p.yaml:3:14: unknown key 'zdrr' in narrow; did you mean 'zdr'? (expected one of: " +
               std::string(kNarrowKeys) + ")"}));
  EXPECT_EQ(PolicyErrors("conditions:\n  c: {mechanisms: {one_of: [x]}}\n"),
            (Strings{"p.yaml:2:20: unknown key 'one_of' in mechanisms; did you mean 'none_of'? "
                     "(expected one of: "
                     "any_of, all_of, none_of)"}));
  EXPECT_EQ(
      PolicyErrors("settings:\n  default_region: CN\n"),
      (Strings{
          "p.yaml:2:3: unknown key 'default_region' in settings (expected one "
          "of: unknown_region_as, default_data_class, image_data_class, region_restrictiveness)"}));
}

TEST(PolicyYamlErrorTest, DuplicateKey) {
  EXPECT_EQ(PolicyErrors("providers:\n  - id: a\n    kind: sim\n    id: b\n"),
            (Strings{"p.yaml:4:5: duplicate key 'id' (first written at line 2)"}));
  EXPECT_EQ(PolicyErrors("region_groups:\n  eu: [DE]\n  eu: [FR]\n"),
            (Strings{"p.yaml:3:3: duplicate key 'eu' (first written at line 2)"}));
  EXPECT_EQ(PolicyErrors("version: 1\nversion: 1\n"),
            (Strings{"p.yaml:2:1: duplicate key 'version' (first written at line 1)"}));
}

TEST(PolicyYamlErrorTest, WrongType) {
  EXPECT_EQ(PolicyErrors(R"(version: one
providers:
  - id: a
    kind: sim
    retention_days: thirty
    zdr: "true"
    description: [a]
    models: [a]
    capabilities: {a: b}
    sim_tokens: 1.5
guards: {id: g}
)"),
            (Strings{"p.yaml:1:10: 'version' must be an integer",
                     "p.yaml:5:21: 'retention_days' must be an integer",
                     "p.yaml:6:10: 'zdr' must be true or false",
                     "p.yaml:7:18: 'description' must be a string",
                     "p.yaml:8:13: 'models' must be a mapping",
                     "p.yaml:9:19: 'capabilities' must be a list of strings",
                     "p.yaml:10:17: 'sim_tokens' must be an integer",
                     "p.yaml:11:9: 'guards' must be a list"}));
}

TEST(PolicyYamlErrorTest, WrongTypeOfListItems) {
  EXPECT_EQ(PolicyErrors(R"(providers:
  - just-an-id
routes:
  - id: r
    allow: [a, [b]]
tenant_flags:
  - [x]
)"),
            (Strings{"p.yaml:2:5: each item of 'providers' must be a mapping",
                     "p.yaml:5:16: 'allow' must be a list of strings",
                     "p.yaml:7:5: each item of 'tenant_flags' must be a flag name or a "
                     "mapping with name and description"}));
}

TEST(PolicyYamlErrorTest, EmptyValuePointsAtItsKey) {
  // yaml-cpp places an empty value at the next token; the error belongs on the key's line.
  EXPECT_EQ(PolicyErrors("providers:\n  - id:\n    kind: sim\n"),
            (Strings{"p.yaml:2:5: 'id' must be a string"}));
}

TEST(PolicyYamlErrorTest, MissingRequiredKey) {
  EXPECT_EQ(PolicyErrors("providers:\n  - id: a\n    endpoint: http://x\n"),
            (Strings{"p.yaml:2:5: provider is missing required key 'kind'"}));
  EXPECT_EQ(PolicyErrors("routes:\n  - {id: r}\n"),
            (Strings{"p.yaml:2:5: route is missing required key 'allow'"}));
  EXPECT_EQ(PolicyErrors("tenant_flags:\n  - description: d\n"),
            (Strings{"p.yaml:2:5: tenant flag is missing required key 'name'"}));
}

TEST(PolicyYamlErrorTest, InlineSecret) {
  EXPECT_EQ(PolicyErrors("providers:\n  - id: a\n    kind: openai\n    api_key: sk-123\n"),
            (Strings{"p.yaml:4:5" + kSecretMessage}));
  EXPECT_EQ(PolicyErrors("providers:\n  - {id: a, kind: openai, API-Key: x, token: y}\n"),
            (Strings{"p.yaml:2:27" + kSecretMessage, "p.yaml:2:39" + kSecretMessage}));
}

TEST(PolicyYamlErrorTest, GuardEffects) {
  EXPECT_EQ(PolicyErrors(R"(guards:
  - id: both
    narrow: {zdr: true}
    deny: no
  - id: none
    when: {region: CN}
  - description: anonymous
)"),
            (Strings{"p.yaml:2:5: guard 'both' needs exactly one effect: narrow or deny",
                     "p.yaml:5:5: guard 'none' needs exactly one effect: narrow or deny",
                     "p.yaml:7:5: guard is missing required key 'id'",
                     "p.yaml:7:5: guard needs exactly one effect: narrow or deny"}));
}

TEST(PolicyYamlErrorTest, EmptyNarrow) {
  EXPECT_EQ(PolicyErrors("guards:\n  - id: g\n    narrow: {}\n"),
            (Strings{"p.yaml:3:13" + kEmptyNarrowMessage}));
  EXPECT_EQ(PolicyErrors("guards:\n  - id: g\n    narrow:\n"),
            (Strings{"p.yaml:3:5" + kEmptyNarrowMessage}));
}

TEST(PolicyYamlErrorTest, ConditionNotAMapping) {
  const std::string message =
      ": a condition must be a mapping, such as {region: CN} or {ref: NAME}";
  EXPECT_EQ(PolicyErrors(R"(guards:
  - id: g
    when: mainland
    deny: no
  - id: h
    when: {not: allowed_export, all: [x]}
    deny: no
conditions:
  c: [region]
)"),
            (Strings{"p.yaml:3:11" + message, "p.yaml:6:17" + message, "p.yaml:6:39" + message,
                     "p.yaml:9:6" + message}));
}

TEST(PolicyYamlErrorTest, MalformedLocation) {
  const std::string message =
      " must be a list of region codes, 'anywhere', or {anywhere_except: [...]}";
  EXPECT_EQ(PolicyErrors(R"(providers:
  - id: a
    kind: sim
    processing: CN
    storage: {anywhere_except: [CN], also: [HK]}
  - id: b
    kind: sim
    processing: {anywhere_but: [CN]}
    storage: [[CN]]
)"),
            (Strings{"p.yaml:4:17: 'processing'" + message, "p.yaml:5:14: 'storage'" + message,
                     "p.yaml:8:17: 'processing'" + message,
                     "p.yaml:9:15: 'storage' must be a list of strings"}));
}

TEST(PolicyYamlErrorTest, NonScalarKey) {
  EXPECT_EQ(PolicyErrors("? [a]\n: 1\n"),
            (Strings{"p.yaml:1:3: a key must be a name, not a list, mapping or empty value"}));
}

TEST(PolicyYamlErrorTest, MergeKey) {
  EXPECT_EQ(PolicyErrors("providers:\n  - &p {id: a, kind: sim}\n  - <<: *p\n    id: b\n"),
            (Strings{"p.yaml:3:5: YAML merge keys ('<<') are not supported: write the keys out",
                     "p.yaml:3:5: provider is missing required key 'kind'"}));
}

TEST(PolicyYamlErrorTest, TooDeepForTheParser) {
  EXPECT_EQ(PolicyErrors("a: " + std::string(3000, '[') + std::string(3000, ']') + "\n"),
            (Strings{"p.yaml:1:6004: invalid YAML: values are nested too deeply"}));
}

TEST(PolicyYamlErrorTest, AliasExpansionIsBounded) {
  // Six levels of tenfold aliases would expand to a million values.
  const std::vector<std::string> errors = PolicyErrors(R"(a: &a [x, x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
)");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("the file expands to more than 200000 values"), std::string::npos)
      << errors[0];
}

TEST(PolicyYamlErrorTest, AliasCycleIsReportedNotFollowed) {
  const std::vector<std::string> errors = PolicyErrors("conditions:\n  c: &c {all: [*c, *c]}\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].rfind("p.yaml:", 0), 0u);
  EXPECT_NE(errors[0].find("values are nested more than 100 levels deep"), std::string::npos)
      << errors[0];
}

TEST(PolicyYamlErrorTest, ReportsEveryErrorInFileOrder) {
  EXPECT_EQ(PolicyErrors(R"(version: 1
settings:
  unknown_region_as: [CN]
providers:
  - id: a
    kind: openai
    password: hunter2
    zdr: sometimes
  - kind: sim
guards:
  - id: g
    narrow: {}
routes:
  - id: r
    allow: a
    allow: b
    weight: 3
tests:
  - name: t
    request: {region: CN}
)"),
            (Strings{"p.yaml:3:22: 'unknown_region_as' must be a string",
                     "p.yaml:7:5" + kSecretMessage, "p.yaml:8:10: 'zdr' must be true or false",
                     "p.yaml:9:5: provider is missing required key 'id'",
                     "p.yaml:12:13" + kEmptyNarrowMessage,
                     "p.yaml:16:5: duplicate key 'allow' (first written at line 15)",
                     std::string("p.yaml:17:5: unknown key 'weight' in route ") +
                         "(expected one of: id, description, when, allow, prefer)",
                     "p.yaml:19:5: test is missing required key 'expect'"}));
}

TEST(PolicyYamlErrorTest, AppendsToExistingErrors) {
  std::vector<FileDiagnostic> errors = {{"other.yaml", {9, 9}, "earlier"}};
  ParsePolicyYaml("version: x\n", "p.yaml", errors);
  EXPECT_EQ(Format(errors),
            (Strings{"other.yaml:9:9: earlier", "p.yaml:1:10: 'version' must be an integer"}));
}

// --- Tests sections and tests files ---

TEST(PolicyYamlTestsTest, ParsesTestsFile) {
  std::vector<FileDiagnostic> errors;
  const std::vector<policy::TestCaseSpec> tests = ParseTestsYaml(R"(tests:
  - name: mainland personal data stays home
    request:
      tenant: acme
      region: CN
      data_class: personal
      consent: {cross_border_separate: false}
      meter: {non_sensitive: 5000}
      model: "123"
    expect:
      decision: allow
      provider: ds-cn
      rule: acme-mainland
      guards: G2
      candidates: [ds-cn, onprem-qwen]
  - name: denied
    request: {}
    expect: {decision: deny, reason: guard_denied}
)",
                                                                 "policy.tests.yaml", errors);
  ASSERT_EQ(Format(errors), (Strings{}));
  ASSERT_EQ(tests.size(), 2u);
  const policy::TestCaseSpec& t = tests[0];
  EXPECT_EQ(t.file, "policy.tests.yaml");
  EXPECT_EQ(t.pos, (policy::SourcePos{2, 5}));
  EXPECT_EQ(t.name.value, "mainland personal data stays home");
  EXPECT_EQ(t.request_pos, (policy::SourcePos{4, 7}));
  EXPECT_EQ(boost::json::serialize(t.request),
            R"({"tenant":"acme","region":"CN","data_class":"personal",)"
            R"("consent":{"cross_border_separate":false},"meter":{"non_sensitive":5000},)"
            R"("model":"123"})");
  EXPECT_EQ(t.expect.pos, (policy::SourcePos{11, 7}));
  EXPECT_EQ(t.expect.decision.value().value, "allow");
  EXPECT_EQ(t.expect.provider.value().value, "ds-cn");
  EXPECT_EQ(t.expect.rule.value().value, "acme-mainland");
  EXPECT_EQ(Values(t.expect.guards.value()), (Strings{"G2"}));
  EXPECT_EQ(Values(t.expect.candidates.value()), (Strings{"ds-cn", "onprem-qwen"}));
  EXPECT_FALSE(t.expect.reason.has_value());
  EXPECT_TRUE(tests[1].request.is_object());
  EXPECT_TRUE(tests[1].request.as_object().empty());
  EXPECT_EQ(tests[1].expect.reason.value().value, "guard_denied");
}

TEST(PolicyYamlTestsTest, ReadsTestsInPolicyFile) {
  std::vector<FileDiagnostic> errors;
  const PolicyDocument doc = ParsePolicyYaml(
      "tests:\n  - name: t\n    request: {region: HK}\n    expect: {decision: deny}\n",
      "policy.yaml", errors);
  ASSERT_EQ(Format(errors), (Strings{}));
  ASSERT_EQ(doc.tests.size(), 1u);
  EXPECT_EQ(doc.tests[0].file, "policy.yaml");
  EXPECT_EQ(boost::json::serialize(doc.tests[0].request), R"({"region":"HK"})");
}

TEST(PolicyYamlTestsTest, TestsFileErrors) {
  EXPECT_EQ(TestsErrors("providers: []\n"),
            (Strings{"t.yaml:1:1: unknown key 'providers' in the tests file (expected one "
                     "of: tests)",
                     "t.yaml:1:1: the tests file is missing required key 'tests'"}));
  EXPECT_EQ(TestsErrors(R"(tests:
  - name: t
    request: [region, CN]
    expect: {decision: allow, winner: x}
  - name: u
    request: {region: CN, region: HK, nested: {a: 1, a: 2}}
    expect: deny
)"),
            (Strings{"t.yaml:3:14: 'request' must be a mapping",
                     std::string("t.yaml:4:31: unknown key 'winner' in expect (expected one of: ") +
                         "decision, provider, rule, guards, reason, candidates)",
                     "t.yaml:6:27: duplicate key 'region' (first written at line 6)",
                     "t.yaml:6:54: duplicate key 'a' (first written at line 6)",
                     "t.yaml:7:13: 'expect' must be a mapping"}));
  EXPECT_EQ(TestsErrors("tests: [\n"),
            (Strings{"t.yaml:2:1: invalid YAML: end of sequence flow not found"}));
}

TEST(PolicyYamlTest, FormatDiagnostic) {
  EXPECT_EQ(FormatDiagnostic({"a.yaml", {3, 7}, "boom"}), "a.yaml:3:7: boom");
  EXPECT_EQ(FormatDiagnostic({"a.yaml", {}, "boom"}), "a.yaml: boom");
}

// --- YamlToJson ---

std::string Json(std::string_view yaml) {
  return boost::json::serialize(YamlToJson(YAML::Load(std::string(yaml))));
}

TEST(PolicyYamlJsonTest, TypesPlainScalars) {
  EXPECT_EQ(Json("123"), "123");
  EXPECT_TRUE(YamlToJson(YAML::Load("123")).is_int64());
  EXPECT_EQ(Json("-7"), "-7");
  EXPECT_EQ(Json("+7"), "7");
  EXPECT_EQ(Json("0x1F"), "31");
  EXPECT_EQ(Json("0o17"), "15");
  EXPECT_TRUE(YamlToJson(YAML::Load("1.5")).is_double());
  EXPECT_EQ(YamlToJson(YAML::Load("1.5")).as_double(), 1.5);
  EXPECT_EQ(YamlToJson(YAML::Load("-2e3")).as_double(), -2000.0);
  EXPECT_EQ(YamlToJson(YAML::Load(".5")).as_double(), 0.5);
  EXPECT_TRUE(YamlToJson(YAML::Load("99999999999999999999")).is_double());
  EXPECT_EQ(Json("true"), "true");
  EXPECT_EQ(Json("False"), "false");
  EXPECT_EQ(Json("null"), "null");
  EXPECT_EQ(Json("~"), "null");
  EXPECT_EQ(Json("hello"), R"("hello")");
  EXPECT_EQ(Json("2024-10-21"), R"("2024-10-21")");
  EXPECT_EQ(Json("yes"), R"("yes")");
  EXPECT_EQ(Json(".inf"), R"(".inf")");
  EXPECT_EQ(Json("1e"), R"("1e")");
  EXPECT_EQ(Json("0x"), R"("0x")");
  EXPECT_EQ(Json("1_000"), R"("1_000")");
}

TEST(PolicyYamlJsonTest, QuotedAndTaggedScalarsStayStrings) {
  EXPECT_EQ(Json(R"("123")"), R"("123")");
  EXPECT_EQ(Json("'true'"), R"("true")");
  EXPECT_EQ(Json(R"("null")"), R"("null")");
  EXPECT_EQ(Json("!!str 5"), R"("5")");
}

TEST(PolicyYamlJsonTest, ConvertsCollections) {
  EXPECT_EQ(Json("{a: 1, b: [true, \"2\", ~], c: {d: x}, e: }"),
            R"({"a":1,"b":[true,"2",null],"c":{"d":"x"},"e":null})");
  EXPECT_EQ(Json("[]"), "[]");
  EXPECT_EQ(Json("{}"), "{}");
  EXPECT_EQ(Json("{a: 1, a: 2}"), R"({"a":1})");
}

TEST(PolicyYamlJsonTest, StopsAtSelfReferencingAlias) {
  // Must terminate: the cycle is cut at kMaxYamlDepth.
  const boost::json::value v = YamlToJson(YAML::Load("&a [*a]"));
  EXPECT_TRUE(v.is_array());
}

}  // namespace
}  // namespace meridian::config

namespace meridian::config {
namespace {

// yaml-cpp reads an unclosed quote to the end of the file; without this check the guards after
// it would silently disappear from the policy.
TEST(PolicyYamlErrorTest, UnclosedQuoteIsAnErrorNotASilentlyShorterPolicy) {
  const auto errors = PolicyErrors(R"(version: 1
guards:
  - id: G7
    narrow: {processing_excludes: [US]}
    description: "Hong Kong users
  - id: G8
    when: {data_class: sensitive_personal}
    deny: no consent
)");
  EXPECT_EQ(errors, (Strings{"p.yaml:5:18: quoted string is not closed: a closing \" is missing"}));
  EXPECT_EQ(PolicyErrors("settings:\n  unknown_region_as: 'CN\n  default_data_class: personal\n"),
            (Strings{"p.yaml:2:22: quoted string is not closed: a closing ' is missing"}));
}

TEST(PolicyYamlTest, MultiLineQuotedStringsIndentedDeeperAreFine) {
  EXPECT_EQ(PolicyErrors(R"(version: 1
guards:
  - id: g
    description: "a long text that
      continues here, with an escaped \" quote"
    deny: 'it''s denied'
)"),
            Strings{});
}

// `data_class: != none` unquoted is a YAML tag `!=` on `none`: it would silently mean `none`.
TEST(PolicyYamlErrorTest, UnexpectedTagIsAnError) {
  EXPECT_EQ(PolicyErrors("conditions:\n  c: {data_class: != none}\n"),
            (Strings{"p.yaml:2:19: unexpected YAML tag '!=': quote values that start with '!' "
                     "(e.g. \"!= none\")"}));
}

}  // namespace
}  // namespace meridian::config

namespace meridian::config {
namespace {

// yaml-cpp 0.7's LoadAll loops forever, allocating, on a document that is just ","; found by
// the policy_yaml_fuzz target. The loader must answer promptly with an error instead.
TEST(PolicyYamlErrorTest, StrayCommaDocumentDoesNotHang) {
  EXPECT_EQ(PolicyErrors(","), (Strings{"p.yaml:1:1: invalid YAML: no value could be read here"}));
  EXPECT_EQ(PolicyErrors("# header\n,# a comment\nversion: 1\n"),
            (Strings{"p.yaml:2:1: invalid YAML: no value could be read here"}));
}

TEST(PolicyYamlErrorTest, SecondDocumentAfterCommentsAndDirectives) {
  EXPECT_EQ(PolicyErrors("%YAML 1.2\n---\nversion: 1\n# note\n---\n\nversion: 2\n"),
            (Strings{"p.yaml:7:1: the policy file must hold a single YAML document, but a "
                     "second one starts here (after '---')"}));
  EXPECT_EQ(PolicyErrors("---\nversion: 1\n---\n# only a comment\n"), (Strings{}));
}

}  // namespace
}  // namespace meridian::config
