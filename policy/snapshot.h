// A compiled policy: immutable, shared between threads as SnapshotPtr, swapped atomically on
// reload. Names are resolved to indices and every guard's eligible provider set is computed at
// compile time, so Decide is a handful of bitset operations.
#pragma once

#include <bitset>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "policy/model.h"
#include "policy/regions.h"
#include "policy/spec.h"

namespace meridian::policy {

inline constexpr std::size_t kMaxProviders = 1024;
using ProviderSet = std::bitset<kMaxProviders>;
using ProviderIndex = std::uint16_t;

struct ModelMapping {
  std::string alias;
  std::string upstream;
  /// Bit(Capability) mask this model offers instead of the provider's; nullopt: the
  /// provider's.
  std::optional<std::uint32_t> capabilities;
};

/// A provider endpoint with its residency attributes. An attribute the file does not state
/// is nullopt: a guard that needs it makes the provider ineligible.
struct Provider {
  std::string id;
  ProviderKind kind = ProviderKind::kSim;
  std::string description;
  std::string endpoint;
  std::string credential_env;
  std::vector<ModelMapping> models;
  std::optional<std::uint32_t> capabilities;  ///< Bit(Capability) mask
  std::optional<LocationSet> processing;
  std::optional<LocationSet> storage;
  std::optional<bool> on_prem;
  std::optional<CnFiling> cn_filing;
  std::string cn_filing_number;
  std::optional<std::int64_t> retention_days;
  std::optional<bool> zdr;
  std::optional<bool> trains_on_data;
  std::optional<EuTransferBasis> eu_transfer_basis;
  std::string operator_jurisdiction;
  std::string api_version;                 ///< azure_openai
  std::string dashscope_region;            ///< dashscope
  std::string anthropic_version;           ///< anthropic
  std::int64_t max_tokens_default = 4096;  ///< anthropic: max_tokens when the request has none
  std::int64_t sim_tokens = 24;            ///< sim
  std::int64_t sim_delay_ms = 0;           ///< sim
  /// openai (default true), openai_compatible (default false): a Responses API request is
  /// sent to the upstream's own POST /v1/responses as the client's body, not translated.
  bool responses_api = false;
  /// Cap on one attempt's whole time, request sent to answer finished (0: none). Ends an
  /// upstream that drip-feeds bytes and so never trips the idle timeout.
  std::int64_t max_duration_ms = 0;
  /// `on_echo_mismatch: quarantine`: an answer saying it was processed outside `processing`
  /// takes the provider out of rotation until an operator releases it (gateway/
  /// residency_echo.h); false (`alert`, the default): the mismatch is reported only.
  bool quarantine_on_echo_mismatch = false;
  SourcePos pos;

  /// The upstream model name for a client-facing alias, or nullptr.
  const std::string* UpstreamModel(std::string_view alias) const {
    for (const auto& m : models) {
      if (m.alias == alias) return &m.upstream;
    }
    return nullptr;
  }
};

/// One node of a compiled condition tree (nodes live in Snapshot::nodes).
struct CondNode {
  enum class Kind : std::uint8_t {
    kTrue,
    kAll,                ///< children [a, a+b) of Snapshot::children
    kAny,                ///< children [a, a+b)
    kNot,                ///< child a
    kRegion,             ///< region in region_sets[a]
    kCity,               ///< city id in id_lists[a]
    kTenant,             ///< tenant id in id_lists[a]
    kModel,              ///< model id in id_lists[a]
    kDataClass,          ///< class <op> value
    kConsent,            ///< all bits of a set and no bit of b
    kFlags,              ///< all bits of a set and no bit of b
    kMechAnyOf,          ///< some bit of a
    kMechAllOf,          ///< all bits of a
    kMechNoneOf,         ///< no bit of a
    kMeterNonSensitive,  ///< known and meter <op> value
    kMeterSensitive,     ///< known and meter <op> value
    kRequires,           ///< request requires all capability bits of a
  };
  Kind kind = Kind::kTrue;
  CompareOp op = CompareOp::kEq;
  std::uint32_t a = 0;
  std::uint32_t b = 0;
  std::uint64_t value = 0;
};

struct Guard {
  std::string id;
  std::string description;
  std::uint32_t when = 0;  ///< root node of the condition
  bool deny = false;
  std::string deny_reason;
  std::string effect;    ///< human-readable effect, e.g. "processing within {CN}"
  ProviderSet eligible;  ///< providers a narrowing guard keeps (all for deny guards)
  SourcePos pos;
};

struct Route {
  std::string id;
  std::string description;
  std::uint32_t when = 0;
  ProviderSet allow;
  std::vector<ProviderIndex> order;  ///< prefer order, then the rest of allow in written order
  SourcePos pos;
};

struct Settings {
  RegionCode unknown_region_as = *RegionCode::Parse("CN");
  DataClass default_data_class = DataClass::kPersonal;
  DataClass image_data_class = DataClass::kPersonal;  ///< what an unscannable media part implies
  std::vector<RegionCode> region_restrictiveness;     ///< most restrictive first
};

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using NameIndex = std::unordered_map<std::string, std::uint32_t, StringHash, std::equal_to<>>;

/// Looks a name up without allocating; nullopt when absent.
inline std::optional<std::uint32_t> Lookup(const NameIndex& index, std::string_view name) {
  auto it = index.find(name);
  if (it == index.end()) return std::nullopt;
  return it->second;
}

struct Snapshot {
  std::string version;  ///< "sha256:<16 hex>" of the canonical content
  Settings settings;
  std::vector<Provider> providers;
  std::vector<Guard> guards;
  std::vector<Route> routes;

  // Condition trees.
  std::vector<CondNode> nodes;
  std::vector<std::uint32_t> children;
  std::vector<RegionSet> region_sets;
  std::vector<std::vector<std::uint32_t>> id_lists;  ///< sorted

  // Name tables.
  NameIndex provider_ids;
  NameIndex tenant_ids;  ///< tenants named in conditions
  NameIndex city_ids;    ///< cities named in conditions or city groups
  NameIndex model_ids;   ///< model aliases served by some provider
  std::vector<std::string> model_names;
  std::vector<ProviderSet> serving_model;  ///< by model id
  /// By model id, then Capability: the providers serving the model with that capability (the
  /// model's own capabilities where it states them, else its provider's).
  std::vector<std::vector<ProviderSet>> model_capability;
  std::vector<std::string> flag_names;  ///< bit i = flag_names[i]
  ProviderSet all_providers;

  std::optional<ProviderIndex> FindProvider(std::string_view id) const {
    if (auto i = Lookup(provider_ids, id)) return static_cast<ProviderIndex>(*i);
    return std::nullopt;
  }
  /// Bit mask of a tenant flag, or nullopt if the policy does not know the flag.
  std::optional<std::uint32_t> FlagBit(std::string_view name) const {
    for (std::size_t i = 0; i < flag_names.size(); ++i) {
      if (flag_names[i] == name) return 1u << i;
    }
    return std::nullopt;
  }
};

using SnapshotPtr = std::shared_ptr<const Snapshot>;

}  // namespace meridian::policy
