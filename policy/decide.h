// Decide: the pure policy function. Same inputs, same decision; no clocks, no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "policy/model.h"
#include "policy/regions.h"
#include "policy/snapshot.h"

namespace meridian::policy {

/// What the policy may look at, established by the front end from trusted sources only.
/// Views: the caller keeps the strings alive for the duration of the call.
struct RequestAttributes {
  std::string_view tenant;
  std::optional<RegionCode> region;  ///< nullopt: unknown (settings.unknown_region_as applies)
  RegionSource region_source = RegionSource::kUnknown;
  std::string_view city;                ///< lower-case city name, empty if unknown
  std::optional<DataClass> data_class;  ///< nullopt: settings.default_data_class
  std::uint32_t consent = 0;            ///< Bit(Consent) mask
  std::span<const std::string> tenant_flags;
  std::uint32_t mechanisms = 0;                      ///< Bit(Mechanism) mask
  std::optional<std::uint64_t> meter_non_sensitive;  ///< individuals exported since 1 Jan
  std::optional<std::uint64_t> meter_sensitive;
  std::string_view model;                   ///< client-facing model alias
  std::uint32_t required_capabilities = 0;  ///< Bit(Capability) mask the request needs
};

enum class Reason : std::uint8_t {
  kNone,  ///< allowed
  kNoRuleMatched,
  kDeniedByGuard,
  kEmptyAfterGuards,
  kCapabilityUnavailable,
};

/// Why a candidate of the matched route was dropped.
struct Exclusion {
  enum class By : std::uint8_t { kGuard, kCapability, kHealth };
  ProviderIndex provider = 0;
  By by = By::kGuard;
  std::uint16_t guard = 0;  ///< index into snapshot->guards when by == kGuard
};

/// The explainable result of Decide. Holds the snapshot it was made on, so names can be
/// rendered and in-flight requests keep their policy across a reload.
struct Decision {
  SnapshotPtr snapshot;
  bool allowed = false;
  Reason reason = Reason::kNone;
  std::optional<std::uint16_t> route;            ///< matched route (index into snapshot->routes)
  std::optional<std::uint16_t> deny_guard;       ///< the guard that denied
  std::vector<std::uint16_t> guards_applied;     ///< matching guards, in evaluation order
  std::vector<ProviderIndex> candidates_before;  ///< the route's allow set in prefer order
  std::vector<ProviderIndex> candidates_after;   ///< final ordered candidates (allowed only)
  std::vector<Exclusion> excluded;               ///< one entry per dropped candidate
  RegionCode region = *RegionCode::Parse("CN");  ///< the region the policy applied
  RegionSource region_source = RegionSource::kUnknown;
  DataClass data_class = DataClass::kPersonal;  ///< the class the policy applied
  bool data_class_defaulted = false;

  /// "no_rule_matched", "denied_by_guard:<id>", "empty_after_guards",
  /// "capability_unavailable_in_allowed_set"; empty when allowed.
  std::string ReasonCode() const;
  /// True when the candidates left by guards and capability were all unhealthy: an outage,
  /// not a policy refusal (front ends answer 503, not 403).
  bool Unavailable() const;
  const Provider* Chosen() const {
    return candidates_after.empty() ? nullptr : &snapshot->providers[candidates_after.front()];
  }
  const Route* MatchedRoute() const { return route ? &snapshot->routes[*route] : nullptr; }
};

/// Decides which providers may serve a request. `unhealthy` marks providers the caller knows
/// to be down (circuit open); they are dropped last, after guards and capability.
Decision Decide(const RequestAttributes& request, const SnapshotPtr& snapshot,
                const ProviderSet& unhealthy = {});

/// Resolves the user's region from trusted signals: agreeing signals give that region;
/// conflicting ones give the most restrictive per settings.region_restrictiveness (ties and
/// unlisted regions: the policy's unknown_region_as). An empty list is unknown.
struct RegionSignal {
  RegionSource source;
  RegionCode region;
};
struct ResolvedRegion {
  std::optional<RegionCode> region;
  RegionSource source = RegionSource::kUnknown;
};
ResolvedRegion ResolveRegion(std::span<const RegionSignal> signals, const Settings& settings);

}  // namespace meridian::policy
