#include "gateway/routing_table.h"

#include <cstdlib>

namespace meridian::gateway {
namespace {

std::int64_t Nanos(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

policy::ProviderSet HealthTracker::Unhealthy(std::chrono::steady_clock::time_point now) const {
  policy::ProviderSet out;
  const std::int64_t n = Nanos(now);
  for (std::size_t i = 0; i < open_until_ns_.size(); ++i) {
    if (open_until_ns_[i].load(std::memory_order_relaxed) > n) out.set(i);
  }
  return out;
}

bool HealthTracker::RecordFailure(policy::ProviderIndex p,
                                  std::chrono::steady_clock::time_point now) {
  if (failures_[p].fetch_add(1, std::memory_order_relaxed) + 1 < kTripAfter) return false;
  Trip(p, now);
  return true;
}

void HealthTracker::Trip(policy::ProviderIndex p, std::chrono::steady_clock::time_point now) {
  failures_[p].store(0, std::memory_order_relaxed);
  auto& until = open_until_ns_[p];
  const std::int64_t want = Nanos(now + kOpenFor);
  std::int64_t current = until.load(std::memory_order_relaxed);
  while (current < want && !until.compare_exchange_weak(current, want)) {
  }
}

std::shared_ptr<const RoutingTable> RoutingTable::Build(policy::SnapshotPtr snapshot,
                                                        bool simulate) {
  if (simulate) {
    auto copy = std::make_shared<policy::Snapshot>(*snapshot);
    for (auto& p : copy->providers) {
      p.kind = policy::ProviderKind::kSim;
      p.sim_delay_ms = 20;  // a visible stream for demos
    }
    snapshot = std::move(copy);
  }
  auto table = std::make_shared<RoutingTable>();
  const std::size_t n = snapshot->providers.size();
  table->endpoints.resize(n);
  table->credentials.resize(n);
  table->health = std::make_unique<HealthTracker>(n);
  for (std::size_t i = 0; i < n; ++i) {
    const policy::Provider& p = snapshot->providers[i];
    const auto index = static_cast<policy::ProviderIndex>(i);
    if (p.kind == policy::ProviderKind::kSim) continue;
    table->endpoints[i] = providers::Endpoint::Parse(p.endpoint);
    if (!p.credential_env.empty()) {
      const char* value = std::getenv(p.credential_env.c_str());
      if (value == nullptr || *value == '\0') {
        table->warnings.push_back("provider '" + p.id + "': environment variable " +
                                  p.credential_env + " is not set; the provider is unavailable");
        table->health->Disable(index);
        continue;
      }
      table->credentials[i] = value;
    }
  }
  table->policy = std::move(snapshot);
  return table;
}

}  // namespace meridian::gateway
