#include "gateway/routing_table.h"

#include <algorithm>
#include <cstdlib>

namespace meridian::gateway {
namespace {

std::int64_t Nanos(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

policy::ProviderSet HealthTracker::Unhealthy(std::chrono::steady_clock::time_point now,
                                             std::optional<std::uint32_t> model) const {
  policy::ProviderSet out;
  const std::int64_t n = Nanos(now);
  for (std::size_t i = 0; i < disabled_.size(); ++i) {
    const auto p = static_cast<policy::ProviderIndex>(i);
    const Slot& s = At(p, model);
    const std::int64_t until = s.open_until_ns.load(std::memory_order_relaxed);
    if (disabled_[i].load(std::memory_order_relaxed) || until > n ||
        (until != 0 && s.probing.load(std::memory_order_relaxed))) {
      out.set(i);
    }
  }
  return out;
}

HealthTracker::CircuitState HealthTracker::State(policy::ProviderIndex p,
                                                 std::optional<std::uint32_t> model,
                                                 std::chrono::steady_clock::time_point now) const {
  if (disabled_[p].load(std::memory_order_relaxed)) return CircuitState::kOpen;
  const std::int64_t until = At(p, model).open_until_ns.load(std::memory_order_relaxed);
  if (until == 0) return CircuitState::kClosed;
  return until > Nanos(now) ? CircuitState::kOpen : CircuitState::kHalfOpen;
}

bool HealthTracker::Admit(policy::ProviderIndex p, std::optional<std::uint32_t> model,
                          std::chrono::steady_clock::time_point now) {
  if (disabled_[p].load(std::memory_order_relaxed)) return false;
  Slot& s = At(p, model);
  const std::int64_t until = s.open_until_ns.load(std::memory_order_relaxed);
  if (until == 0) return true;           // closed
  if (until > Nanos(now)) return false;  // open
  bool expected = false;                 // half-open: one probe at a time
  return s.probing.compare_exchange_strong(expected, true);
}

void HealthTracker::RecordSuccess(policy::ProviderIndex p, std::optional<std::uint32_t> model) {
  Slot& s = At(p, model);
  s.failures.store(0, std::memory_order_relaxed);
  s.open_until_ns.store(0, std::memory_order_relaxed);
  s.probing.store(false, std::memory_order_relaxed);
}

bool HealthTracker::RecordFailure(policy::ProviderIndex p, std::optional<std::uint32_t> model,
                                  std::chrono::steady_clock::time_point now,
                                  std::optional<std::uint32_t> retry_after_s) {
  Slot& s = At(p, model);
  const bool probe_failed = s.open_until_ns.load(std::memory_order_relaxed) != 0;
  if (!probe_failed && s.failures.fetch_add(1, std::memory_order_relaxed) + 1 < kTripAfter) {
    return false;
  }
  Trip(p, model, now, retry_after_s);
  return true;
}

void HealthTracker::Trip(policy::ProviderIndex p, std::optional<std::uint32_t> model,
                         std::chrono::steady_clock::time_point now,
                         std::optional<std::uint32_t> retry_after_s) {
  Slot& s = At(p, model);
  std::chrono::seconds open_for = kOpenFor;
  if (retry_after_s) {
    open_for =
        std::clamp(std::chrono::seconds(*retry_after_s), std::chrono::seconds(1), kMaxOpenFor);
  }
  s.failures.store(0, std::memory_order_relaxed);
  s.open_until_ns.store(Nanos(now + open_for), std::memory_order_relaxed);
  s.probing.store(false, std::memory_order_relaxed);
}

namespace {

providers::UpstreamKind KindOf(policy::ProviderKind kind) {
  using K = providers::UpstreamKind;
  switch (kind) {
    case policy::ProviderKind::kSim:
      return K::kSim;
    case policy::ProviderKind::kOpenAi:
      return K::kOpenAi;
    case policy::ProviderKind::kAzureOpenAi:
      return K::kAzureOpenAi;
    case policy::ProviderKind::kOpenAiCompatible:
      return K::kOpenAiCompatible;
    case policy::ProviderKind::kDashScope:
      return K::kDashScope;
    case policy::ProviderKind::kAnthropic:
      return K::kAnthropic;
  }
  return K::kSim;
}

providers::UpstreamProfile ProfileOf(const policy::Provider& p) {
  providers::UpstreamProfile u;
  u.id = p.id;
  u.kind = KindOf(p.kind);
  u.api_version = p.api_version;
  u.anthropic_version = p.anthropic_version;
  u.max_tokens_default = p.max_tokens_default;
  u.sim_tokens = p.sim_tokens;
  u.sim_delay_ms = p.sim_delay_ms;
  u.responses_api = p.responses_api;
  u.max_duration = std::chrono::milliseconds(p.max_duration_ms);
  return u;
}

}  // namespace

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
  table->profiles.reserve(n);
  table->health = std::make_unique<HealthTracker>(n, snapshot->model_names.size());
  for (std::size_t i = 0; i < n; ++i) {
    const policy::Provider& p = snapshot->providers[i];
    table->profiles.push_back(ProfileOf(p));
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
