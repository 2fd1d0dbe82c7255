// Semantic validation (names, values, references) with positions, and the version hash.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/policy/policy_test_util.h"

namespace meridian::policy {
namespace {

using ::meridian::testing::CompileErrors;
using ::meridian::testing::MustCompile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr std::string_view kValid = R"(version: 1
region_groups:
  mainland: [CN]
providers:
  - id: local
    kind: openai_compatible
    endpoint: http://127.0.0.1:8000/v1
    models: {qwen: Qwen/Qwen3-8B}
    processing: [CN]
routes:
  - id: all
    allow: [local]
)";

TEST(Compile, ValidPolicyCompiles) {
  auto s = MustCompile(kValid);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->providers.size(), 1u);
  EXPECT_THAT(s->version, ::testing::MatchesRegex("sha256:[0-9a-f]{16}"));
}

TEST(Compile, UnknownRegionCodesAreReportedWherever_TheyAppear) {
  auto errors = CompileErrors(R"(region_groups:
  mainland: [CN, XX]
providers:
  - id: local
    kind: sim
    models: {qwen: q}
    processing: [ZZ]
guards:
  - id: g
    when: {region: atlantis}
    narrow: {processing_within: [unknown]}
routes:
  - id: all
    allow: [local]
)");
  EXPECT_THAT(errors,
              ElementsAre(HasSubstr("2:18: region group 'mainland': unknown region code 'XX'"),
                          HasSubstr("7:18: provider 'local' processing: unknown region code "
                                    "or region group 'ZZ'"),
                          HasSubstr("10:20: region: unknown region code or region group "
                                    "'atlantis'"),
                          HasSubstr("11:34: guard 'g' processing within: 'unknown' never "
                                    "reaches a condition")));
}

TEST(Compile, UndefinedReferencesAreErrors) {
  auto errors = CompileErrors(R"(providers:
  - id: local
    kind: sim
    models: {qwen: q}
guards:
  - id: g
    when: {ref: nowhere, tenant_flags: {vip: true}, model: [gpt-9]}
    narrow: {providers: [ghost]}
routes:
  - id: r
    allow: [local, phantom]
    prefer: [spectre]
)");
  EXPECT_THAT(errors,
              ElementsAre(HasSubstr("ref: unknown condition 'nowhere'"),
                          HasSubstr("unknown tenant flag 'vip'"),
                          HasSubstr("model: no provider serves the alias 'gpt-9'"),
                          HasSubstr("8:26: guard 'g' providers: unknown provider 'ghost'"),
                          HasSubstr("11:20: route 'r' allow: unknown provider 'phantom'"),
                          HasSubstr("12:14: route 'r' prefer: unknown provider 'spectre'")));
}

TEST(Compile, MaxDurationIsAnyKindsCapWithinItsRange) {
  const auto s = MustCompile(R"(providers:
  - id: capped
    kind: sim
    models: {m: m}
    max_duration_ms: 1500
  - id: free
    kind: sim
    models: {m: m}
routes:
  - id: r
    allow: [capped, free]
)");
  EXPECT_EQ(s->providers[0].max_duration_ms, 1500);
  EXPECT_EQ(s->providers[1].max_duration_ms, 0);  // no cap
  for (const char* bad : {"0", "-5", "86400001"}) {
    EXPECT_THAT(CompileErrors(std::string("providers:\n  - id: p\n    kind: sim\n"
                                          "    models: {m: m}\n    max_duration_ms: ") +
                              bad + "\nroutes:\n  - id: r\n    allow: [p]\n"),
                ElementsAre(HasSubstr("5:22: provider 'p': max_duration_ms must be between 1 and "
                                      "86400000 (24 h)")))
        << bad;
  }
}

TEST(Compile, DuplicateIdsAndEmptyAllow) {
  auto errors = CompileErrors(R"(providers:
  - id: p
    kind: sim
    models: {m: m}
  - id: p
    kind: sim
    models: {m: m}
guards:
  - id: same
    deny: no
routes:
  - id: same
    allow: []
)");
  EXPECT_THAT(errors, ElementsAre(HasSubstr("5:9: duplicate provider id 'p'"),
                                  HasSubstr("12:5: route 'same': allow must list at least one"),
                                  HasSubstr("12:9: duplicate id 'same' (guard and route ids share "
                                            "one namespace; first used at line 9)")));
}

TEST(Compile, PreferMustOrderOnlyAllowedProviders) {
  auto errors = CompileErrors(R"(providers:
  - {id: a, kind: sim, models: {m: m}}
  - {id: b, kind: sim, models: {m: m}}
routes:
  - id: r
    allow: [a]
    prefer: [b, a]
)");
  EXPECT_THAT(errors, ElementsAre(HasSubstr("7:14: route 'r': prefer lists 'b', which is not in "
                                            "allow")));
}

TEST(Compile, EndpointsMustBeHttpUrlsWithoutCredentials) {
  auto errors = CompileErrors(R"(providers:
  - {id: a, kind: openai_compatible, endpoint: "not a url", models: {m: m}}
  - {id: b, kind: openai_compatible, endpoint: "ftp://host/v1", models: {m: m}}
  - {id: c, kind: openai_compatible, endpoint: "https://user:pw@host/v1", models: {m: m}}
  - {id: d, kind: openai_compatible, models: {m: m}}
routes:
  - {id: r, allow: [a, b, c, d]}
)");
  EXPECT_THAT(errors, ElementsAre(HasSubstr("provider 'a': endpoint 'not a url' is not a valid "
                                            "absolute URL"),
                                  HasSubstr("provider 'b': endpoint must be an http:// or https:// "
                                            "URL, not 'ftp://'"),
                                  HasSubstr("provider 'c': endpoint must not carry credentials"),
                                  HasSubstr("provider 'd' needs an endpoint URL")));
}

TEST(Compile, CredentialEnvMustNameAVariableAndNeverEchoesASecret) {
  auto errors = CompileErrors(R"(providers:
  - id: oai
    kind: openai
    endpoint: https://api.openai.com/v1
    credential_env: sk-proj-Abc123SecretValue
    models: {gpt: gpt-4.1}
  - id: oai2
    kind: openai
    endpoint: https://api.openai.com/v1
    models: {gpt: gpt-4.1}
routes:
  - {id: r, allow: [oai, oai2]}
)");
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_THAT(errors[0], HasSubstr("5:21: provider 'oai': credential_env must be the NAME of an "
                                   "environment variable"));
  EXPECT_THAT(errors[0], Not(HasSubstr("Abc123")));
  EXPECT_THAT(errors[1], HasSubstr("provider 'oai2' needs credential_env"));
}

TEST(Compile, UnknownEnumValuesListTheChoices) {
  auto errors = CompileErrors(R"(providers:
  - id: p
    kind: bedrock
    endpoint: https://x.example/v1
    models: {m: m}
    cn_filing: pending
    eu_transfer_basis: hope
    capabilities: [telepathy]
guards:
  - id: g
    when: {mechanisms: {any_of: [handshake]}, consent: {verbal: true}, data_class: ">= secret"}
    narrow: {zdr: true}
routes:
  - {id: r, allow: [p]}
)");
  EXPECT_THAT(
      errors,
      ElementsAre(HasSubstr("3:11: unknown provider kind 'bedrock' (expected one of: "
                            "openai, azure_openai, dashscope, anthropic, "
                            "openai_compatible, sim)"),
                  HasSubstr("unknown cn_filing 'pending'"),
                  HasSubstr("unknown eu_transfer_basis 'hope'"),
                  HasSubstr("unknown capability 'telepathy'"),
                  HasSubstr("unknown mechanism 'handshake'"), HasSubstr("unknown consent 'verbal'"),
                  HasSubstr("data_class: expected a class such as")));
}

TEST(Compile, KindSpecificKeysOnlyForTheirKind) {
  auto errors = CompileErrors(R"(providers:
  - id: p
    kind: openai
    endpoint: https://api.openai.com/v1
    credential_env: OPENAI_API_KEY
    api_version: "2024-10-21"
    dashscope_region: mars
    models: {m: m}
routes:
  - {id: r, allow: [p]}
)");
  EXPECT_THAT(errors, ElementsAre(HasSubstr("'api_version' applies only to kind azure_openai"),
                                  HasSubstr("'dashscope_region' applies only to kind dashscope")));
}

TEST(Compile, ResponsesApiDefaultsOnForOpenAiOnlyAndIsRefusedElsewhere) {
  const auto s = MustCompile(R"(providers:
  - {id: oai, kind: openai, endpoint: "https://api.openai.com/v1", credential_env: K,
     models: {m: m}}
  - {id: oai-chat, kind: openai, endpoint: "https://api.openai.com/v1", credential_env: K,
     models: {m: m}, responses_api: false}
  - {id: vllm, kind: openai_compatible, endpoint: "http://127.0.0.1:8000/v1", models: {m: m}}
  - {id: vllm-r, kind: openai_compatible, endpoint: "http://127.0.0.1:8000/v1", models: {m: m},
     responses_api: true}
  - {id: sim, kind: sim, models: {m: m}}
routes:
  - {id: r, allow: [oai, oai-chat, vllm, vllm-r, sim]}
)");
  ASSERT_EQ(s->providers.size(), 5u);
  EXPECT_TRUE(s->providers[0].responses_api);
  EXPECT_FALSE(s->providers[1].responses_api);
  EXPECT_FALSE(s->providers[2].responses_api);
  EXPECT_TRUE(s->providers[3].responses_api);
  EXPECT_FALSE(s->providers[4].responses_api);
  for (const char* kind : {"anthropic", "azure_openai", "dashscope", "sim"}) {
    EXPECT_THAT(CompileErrors(std::string("providers:\n  - id: p\n    kind: ") + kind +
                              "\n    models: {m: m}\n    responses_api: true\n"
                              "routes:\n  - id: r\n    allow: [p]\n"),
                ::testing::Contains(HasSubstr("provider 'p': 'responses_api' applies only to "
                                              "kinds openai and openai_compatible")))
        << kind;
  }
}

TEST(Compile, OnEchoMismatchIsAlertByDefaultOrQuarantine) {
  const auto s = MustCompile(R"(providers:
  - {id: a, kind: sim, models: {m: m}}
  - {id: b, kind: sim, models: {m: m}, on_echo_mismatch: alert}
  - {id: c, kind: sim, models: {m: m}, on_echo_mismatch: quarantine}
routes:
  - {id: r, allow: [a, b, c]}
)");
  ASSERT_EQ(s->providers.size(), 3u);
  EXPECT_FALSE(s->providers[0].quarantine_on_echo_mismatch);
  EXPECT_FALSE(s->providers[1].quarantine_on_echo_mismatch);
  EXPECT_TRUE(s->providers[2].quarantine_on_echo_mismatch);
  EXPECT_THAT(CompileErrors("providers:\n  - {id: p, kind: sim, models: {m: m}, "
                            "on_echo_mismatch: block}\nroutes:\n  - {id: r, allow: [p]}\n"),
              ::testing::Contains(HasSubstr(
                  "provider 'p': on_echo_mismatch must be alert or quarantine, not 'block'")));
}

TEST(Compile, ConditionCyclesAndBadComparisons) {
  auto errors = CompileErrors(R"(conditions:
  a: {ref: b}
  b: {ref: a}
providers:
  - {id: p, kind: sim, models: {m: m}}
routes:
  - id: r
    when: {ref: a, meter: {non_sensitive: "< lots"}}
    allow: [p]
)");
  EXPECT_THAT(errors, ElementsAre(HasSubstr("refers to itself"),
                                  HasSubstr("meter: expected a comparison with a whole number")));
}

TEST(Compile, UnsupportedVersion) {
  auto errors = CompileErrors(R"(version: 2
providers:
  - {id: p, kind: sim, models: {m: m}}
routes:
  - {id: r, allow: [p]}
)");
  EXPECT_THAT(errors, ElementsAre(HasSubstr("1:10: unsupported policy version 2")));
}

TEST(Compile, ProviderWithoutModelsAndEmptyLocation) {
  auto errors = CompileErrors(R"(providers:
  - id: p
    kind: sim
    processing: []
routes:
  - {id: r, allow: [p]}
)");
  EXPECT_THAT(errors, ElementsAre(HasSubstr("provider 'p' serves no models"),
                                  HasSubstr("processing is empty")));
}

// The version identifies what the policy means: formatting, comments, key order and tests do
// not change it; any semantic change does.
TEST(Version, IgnoresFormattingCommentsAndTests) {
  auto a = MustCompile(kValid);
  auto b = MustCompile(R"(# a comment
version: 1
routes:
  - {allow: [local], id: all}     # flow style, keys swapped
providers:
  - kind: openai_compatible
    id: local
    processing: [CN]
    models:
      qwen: Qwen/Qwen3-8B
    endpoint: "http://127.0.0.1:8000/v1"
region_groups: {mainland: [CN]}
tests:
  - name: x
    request: {tenant: t}
    expect: {decision: allow}
)");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->version, b->version);
}

TEST(Version, ChangesWithContent) {
  auto a = MustCompile(kValid);
  std::string changed(kValid);
  changed.replace(changed.find("[CN]\nroutes"), 4, "[HK]");
  auto b = MustCompile(changed);
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->version, b->version);
}

}  // namespace
}  // namespace meridian::policy
