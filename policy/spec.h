// The policy as written by an operator: plain data with source positions, produced by the
// YAML loader (config/) and turned into an immutable Snapshot by policy::Compile. Nothing here
// is validated beyond YAML structure and types: Compile checks names, references and values so
// that every error carries the FILE:LINE:COL of the offending node.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace meridian::policy {

/// 1-based line and column of a node in the policy file; 0 means "not known".
struct SourcePos {
  std::uint32_t line = 0;
  std::uint32_t column = 0;
  friend bool operator==(const SourcePos&, const SourcePos&) = default;
};

/// A value together with where it was written.
template <class T>
struct Located {
  T value{};
  SourcePos pos;
};

using LocatedString = Located<std::string>;
using StringList = std::vector<LocatedString>;

/// `processing:` / `storage:` of a provider. Either a list of region codes and region-group
/// names, or "anywhere" (optionally "anywhere except" some codes/groups).
struct LocationSpec {
  SourcePos pos;
  bool anywhere = false;
  StringList items;  ///< codes/groups; when `anywhere`, the exceptions
};

/// Condition of a guard or route. All keys present must hold (logical AND); an empty
/// condition always holds. Conditions on values the request does not carry (e.g. `meter`
/// when no meter is known) are false, so write permissions positively.
struct ConditionSpec {
  SourcePos pos;
  std::optional<StringList> region;         ///< codes or region-group names
  std::optional<StringList> city;           ///< city names or city-group names
  std::optional<LocatedString> data_class;  ///< e.g. ">= personal", "sensitive_personal"
  std::vector<std::pair<LocatedString, bool>> consent;       ///< consent name -> required value
  std::vector<std::pair<LocatedString, bool>> tenant_flags;  ///< flag name -> required value
  std::optional<StringList> mechanisms_any_of;               ///< tenant holds at least one of these
  std::optional<StringList> mechanisms_all_of;               ///< tenant holds all of these
  std::optional<StringList> mechanisms_none_of;              ///< tenant holds none of these
  std::optional<StringList> model;                           ///< requested model alias in this list
  std::optional<StringList> tenant;                          ///< tenant id in this list
  std::optional<LocatedString> meter_non_sensitive;          ///< e.g. "< 100000"
  std::optional<LocatedString> meter_sensitive;              ///< e.g. "< 10000"
  std::optional<StringList> requires_capability;             ///< request requires all of these
  std::vector<ConditionSpec> all;                            ///< every sub-condition holds
  std::vector<ConditionSpec> any;    ///< at least one sub-condition holds (empty list: key absent)
  bool has_any = false;              ///< `any:` was written (an empty `any:` never holds)
  std::vector<ConditionSpec> not_;   ///< zero or one element: the negated condition
  std::optional<LocatedString> ref;  ///< name of a condition under top-level `conditions:`
};

struct ModelSpec {
  LocatedString alias;     ///< name clients use
  LocatedString upstream;  ///< name the provider's API expects (model or deployment)
  /// `{upstream: NAME, capabilities: [...]}`: what this model offers, instead of the
  /// provider's capabilities (an embedding model beside chat models).
  std::optional<StringList> capabilities;
};

struct ProviderSpec {
  SourcePos pos;
  LocatedString id;
  LocatedString kind;  ///< openai, azure_openai, dashscope, anthropic, openai_compatible, sim
  std::optional<LocatedString> endpoint;        ///< absolute http(s) URL; absent only for sim
  std::optional<LocatedString> credential_env;  ///< NAME of the environment variable
  std::vector<ModelSpec> models;
  /// tools, vision, thinking, streaming, json_mode, embeddings
  std::optional<StringList> capabilities;
  std::optional<LocationSpec> processing;
  std::optional<LocationSpec> storage;
  std::optional<Located<bool>> on_prem;
  std::optional<LocatedString> cn_filing;  ///< filed | registered | none
  std::optional<LocatedString> cn_filing_number;
  std::optional<Located<std::int64_t>> retention_days;
  std::optional<Located<bool>> zdr;
  std::optional<Located<bool>> trains_on_data;
  std::optional<LocatedString> eu_transfer_basis;  ///< eea | adequacy | scc | none
  std::optional<LocatedString> operator_jurisdiction;
  std::optional<LocatedString> description;
  // Kind-specific settings.
  std::optional<LocatedString> api_version;        ///< azure_openai
  std::optional<LocatedString> dashscope_region;   ///< dashscope: beijing, singapore, ...
  std::optional<LocatedString> anthropic_version;  ///< anthropic
  std::optional<Located<std::int64_t>>
      max_tokens_default;                                ///< anthropic: when the request sets none
  std::optional<Located<std::int64_t>> sim_tokens;       ///< sim: tokens per answer
  std::optional<Located<std::int64_t>> sim_delay_ms;     ///< sim: pause between tokens
  std::optional<Located<std::int64_t>> max_duration_ms;  ///< any kind: one attempt's total time
  std::optional<Located<bool>> responses_api;     ///< openai, openai_compatible: /v1/responses
  std::optional<LocatedString> on_echo_mismatch;  ///< alert (default) | quarantine
};

struct NarrowSpec {
  SourcePos pos;
  std::optional<StringList> providers;                      ///< candidate id in this list
  std::optional<StringList> processing_within;              ///< processing ⊆ these codes/groups
  std::optional<StringList> processing_excludes;            ///< processing ∩ these = ∅
  std::optional<StringList> storage_within;                 ///< storage ⊆ these codes/groups
  std::optional<StringList> cn_filing;                      ///< cn_filing ∈ these
  std::optional<StringList> eu_transfer_basis;              ///< eu_transfer_basis ∈ these
  std::optional<Located<bool>> zdr;                         ///< zdr == value
  std::optional<Located<bool>> on_prem;                     ///< on_prem == value
  std::optional<Located<bool>> trains_on_data;              ///< trains_on_data == value
  std::optional<Located<std::int64_t>> max_retention_days;  ///< retention_days <= value
};

struct GuardSpec {
  SourcePos pos;
  LocatedString id;
  std::optional<LocatedString> description;
  ConditionSpec when;
  std::optional<NarrowSpec> narrow;   ///< exactly one of narrow / deny
  std::optional<LocatedString> deny;  ///< the reason shown to the caller
};

struct RouteSpec {
  SourcePos pos;
  LocatedString id;
  std::optional<LocatedString> description;
  ConditionSpec when;
  StringList allow;   ///< provider ids; must be non-empty
  StringList prefer;  ///< optional order; ids must be in `allow`; the rest follow in allow order
};

struct GroupSpec {
  LocatedString name;
  StringList members;
};

struct NamedConditionSpec {
  LocatedString name;
  ConditionSpec condition;
};

struct DeclaredFlagSpec {
  LocatedString name;
  std::optional<LocatedString> description;
};

struct SettingsSpec {
  std::optional<LocatedString> unknown_region_as;   ///< default "CN"
  std::optional<LocatedString> default_data_class;  ///< default "personal"
  /// The class an image (or audio/video) part implies: it cannot be scanned. Default
  /// "personal"; "none" is refused (a photo can always show a person).
  std::optional<LocatedString> image_data_class;
  /// Most restrictive first; used when trusted region signals conflict. When none of the
  /// conflicting regions is listed, the result is unknown_region_as. Default
  /// [unknown_region_as].
  std::optional<StringList> region_restrictiveness;
};

struct PolicySpec {
  SourcePos pos;
  std::optional<Located<std::int64_t>> version;  ///< schema version; must be 1
  SettingsSpec settings;
  std::vector<GroupSpec> region_groups;
  std::vector<GroupSpec> city_groups;
  std::vector<DeclaredFlagSpec> tenant_flags;  ///< custom flags beyond the built-in ones
  std::vector<NamedConditionSpec> conditions;
  std::vector<ProviderSpec> providers;
  std::vector<GuardSpec> guards;
  std::vector<RouteSpec> routes;
};

}  // namespace meridian::policy
