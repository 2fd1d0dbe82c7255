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

  explicit HealthTracker(std::size_t providers) : failures_(providers), open_until_ns_(providers) {}

  /// Providers whose circuit is open at `now`, as the policy's health input.
  policy::ProviderSet Unhealthy(std::chrono::steady_clock::time_point now) const;
  void RecordSuccess(policy::ProviderIndex p) { failures_[p].store(0, std::memory_order_relaxed); }
  /// True when this failure opened the circuit.
  bool RecordFailure(policy::ProviderIndex p, std::chrono::steady_clock::time_point now);
  /// Opens the circuit now, for kOpenFor (a provider that rejected the gateway's key).
  void Trip(policy::ProviderIndex p, std::chrono::steady_clock::time_point now);
  /// Marks a provider down for good (e.g. its credential is missing).
  void Disable(policy::ProviderIndex p) {
    open_until_ns_[p].store(std::numeric_limits<std::int64_t>::max(), std::memory_order_relaxed);
  }

 private:
  std::vector<std::atomic<std::uint32_t>> failures_;
  std::vector<std::atomic<std::int64_t>> open_until_ns_;
};

struct RoutingTable {
  policy::SnapshotPtr policy;
  std::vector<std::optional<providers::Endpoint>> endpoints;  ///< by provider index
  std::vector<std::string> credentials;                       ///< by provider index; secret
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
