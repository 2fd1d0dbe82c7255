// Everything a request needs from the loaded policy, swapped atomically as one unit on reload:
// the snapshot, each provider's parsed endpoint and resolved credential, and its health.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "policy/snapshot.h"
#include "providers/common/http_client.h"

namespace meridian::gateway {

/// Circuit breaker per provider: `kTripAfter` consecutive retryable failures open the circuit
/// for `kOpenFor`; the next success closes it. Lock-free; shared by all workers.
class HealthTracker {
 public:
  static constexpr std::uint32_t kTripAfter = 3;
  static constexpr std::chrono::seconds kOpenFor{10};
  static constexpr std::chrono::seconds kMaxOpenFor{300};  ///< cap on an upstream Retry-After

  /// Circuits are per (provider, model alias): three 429s for one model leave the provider's
  /// other models in rotation. Closed -> open (kTripAfter consecutive failures, or one
  /// credential rejection) -> half-open once the open period ends: one request is let through
  /// as a probe (Admit), others still route around it; its success closes the circuit, its
  /// failure opens it again.
  HealthTracker(std::size_t providers, std::size_t models)
      : models_(models + 1), slots_(providers * (models + 1)), disabled_(providers) {}

  /// Providers not to route `model` (a snapshot model index; nullopt for an unknown alias)
  /// to at `now`: disabled, open, or half-open with a probe already in flight.
  policy::ProviderSet Unhealthy(std::chrono::steady_clock::time_point now,
                                std::optional<std::uint32_t> model) const;
  /// Before an attempt: false when the circuit is open, or half-open and another request is
  /// its probe (this one then moves on to the next candidate).
  bool Admit(policy::ProviderIndex p, std::optional<std::uint32_t> model,
             std::chrono::steady_clock::time_point now);
  void RecordSuccess(policy::ProviderIndex p, std::optional<std::uint32_t> model);
  /// True when this failure opened the circuit (a failed probe always does). The open period
  /// is the upstream's Retry-After when it sent one (capped at kMaxOpenFor), else kOpenFor.
  bool RecordFailure(policy::ProviderIndex p, std::optional<std::uint32_t> model,
                     std::chrono::steady_clock::time_point now,
                     std::optional<std::uint32_t> retry_after_s = std::nullopt);
  /// Opens the circuit now (a provider that rejected the gateway's key).
  void Trip(policy::ProviderIndex p, std::optional<std::uint32_t> model,
            std::chrono::steady_clock::time_point now,
            std::optional<std::uint32_t> retry_after_s = std::nullopt);
  /// An attempt that proved nothing either way (the client went away, or the upstream judged
  /// the request itself): a probe it held is given back for the next request.
  void Abandon(policy::ProviderIndex p, std::optional<std::uint32_t> model) {
    At(p, model).probing.store(false, std::memory_order_relaxed);
  }
  enum class CircuitState : std::uint8_t { kClosed = 0, kHalfOpen = 1, kOpen = 2 };
  /// For metrics: a disabled provider is open.
  CircuitState State(policy::ProviderIndex p, std::optional<std::uint32_t> model,
                     std::chrono::steady_clock::time_point now) const;
  /// Marks a provider down for good, for every model (e.g. its credential is missing).
  void Disable(policy::ProviderIndex p) { disabled_[p].store(true, std::memory_order_relaxed); }

 private:
  struct Slot {
    std::atomic<std::uint32_t> failures{0};
    std::atomic<std::int64_t> open_until_ns{0};  ///< 0: closed; otherwise open until then
    std::atomic<bool> probing{false};            ///< half-open: a probe is in flight
  };
  Slot& At(policy::ProviderIndex p, std::optional<std::uint32_t> model) {
    return slots_[p * models_ + (model && *model + 1 < models_ ? *model : models_ - 1)];
  }
  const Slot& At(policy::ProviderIndex p, std::optional<std::uint32_t> model) const {
    return slots_[p * models_ + (model && *model + 1 < models_ ? *model : models_ - 1)];
  }
  std::size_t models_;  ///< model slots per provider (the last one: unknown alias)
  std::vector<Slot> slots_;
  std::vector<std::atomic<bool>> disabled_;
};

struct RoutingTable {
  policy::SnapshotPtr policy;
  std::vector<std::optional<providers::Endpoint>> endpoints;  ///< by provider index
  std::vector<std::string> credentials;                       ///< by provider index; secret
  /// What the adapters are told of each provider (by provider index).
  std::vector<providers::UpstreamProfile> profiles;
  std::unique_ptr<HealthTracker> health;
  std::vector<std::string> warnings;  ///< e.g. a credential variable that is not set

  /// Builds the table for a snapshot, reading each provider's credential from the
  /// environment. A provider whose variable is unset is disabled (and a warning recorded).
  /// With `simulate`, every provider is served by the built-in sim engine instead (its ids,
  /// models and residency attributes unchanged, so decisions are the same).
  static std::shared_ptr<const RoutingTable> Build(policy::SnapshotPtr snapshot,
                                                   bool simulate = false);
};

using RoutingTablePtr = std::shared_ptr<const RoutingTable>;

}  // namespace meridian::gateway
