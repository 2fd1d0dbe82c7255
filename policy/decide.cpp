#include "policy/decide.h"

#include <algorithm>

namespace meridian::policy {
namespace {

/// The request, with names mapped to the snapshot's indices once per decision.
struct Context {
  std::uint16_t region;
  std::optional<std::uint32_t> city;
  std::optional<std::uint32_t> tenant;
  std::optional<std::uint32_t> model;
  DataClass data_class;
  std::uint32_t consent;
  std::uint32_t flags;
  std::uint32_t mechanisms;
  std::optional<std::uint64_t> meter_non_sensitive;
  std::optional<std::uint64_t> meter_sensitive;
  std::uint32_t required_capabilities;
};

bool InList(const std::vector<std::uint32_t>& sorted, std::optional<std::uint32_t> id) {
  return id && std::binary_search(sorted.begin(), sorted.end(), *id);
}

bool Eval(const Snapshot& s, std::uint32_t index, const Context& c) {
  const CondNode& n = s.nodes[index];
  using K = CondNode::Kind;
  switch (n.kind) {
    case K::kTrue:
      return true;
    case K::kAll:
      for (std::uint32_t i = 0; i < n.b; ++i) {
        if (!Eval(s, s.children[n.a + i], c)) return false;
      }
      return true;
    case K::kAny:
      for (std::uint32_t i = 0; i < n.b; ++i) {
        if (Eval(s, s.children[n.a + i], c)) return true;
      }
      return false;
    case K::kNot:
      return !Eval(s, n.a, c);
    case K::kRegion:
      return s.region_sets[n.a].test(c.region);
    case K::kCity:
      return InList(s.id_lists[n.a], c.city);
    case K::kTenant:
      return InList(s.id_lists[n.a], c.tenant);
    case K::kModel:
      return InList(s.id_lists[n.a], c.model);
    case K::kDataClass:
      return Compare(n.op, static_cast<std::uint64_t>(c.data_class), n.value);
    case K::kConsent:
      return (c.consent & n.a) == n.a && (c.consent & n.b) == 0;
    case K::kFlags:
      return (c.flags & n.a) == n.a && (c.flags & n.b) == 0;
    case K::kMechAnyOf:
      return (c.mechanisms & n.a) != 0;
    case K::kMechAllOf:
      return (c.mechanisms & n.a) == n.a;
    case K::kMechNoneOf:
      return (c.mechanisms & n.a) == 0;
    case K::kMeterNonSensitive:
      return c.meter_non_sensitive && Compare(n.op, *c.meter_non_sensitive, n.value);
    case K::kMeterSensitive:
      return c.meter_sensitive && Compare(n.op, *c.meter_sensitive, n.value);
    case K::kRequires:
      return (c.required_capabilities & n.a) == n.a;
  }
  return false;
}

}  // namespace

Decision Decide(const RequestAttributes& request, const SnapshotPtr& snapshot,
                const ProviderSet& unhealthy) {
  const Snapshot& s = *snapshot;
  Decision d;
  d.snapshot = snapshot;
  d.region = request.region.value_or(s.settings.unknown_region_as);
  d.region_source = request.region ? request.region_source : RegionSource::kUnknown;
  d.data_class = request.data_class.value_or(s.settings.default_data_class);
  d.data_class_defaulted = !request.data_class;

  Context c{};
  c.region = d.region.index();
  c.data_class = d.data_class;
  if (!request.city.empty()) c.city = Lookup(s.city_ids, request.city);
  c.tenant = Lookup(s.tenant_ids, request.tenant);
  c.model = Lookup(s.model_ids, request.model);
  c.consent = request.consent;
  c.flags = 0;
  for (const auto& f : request.tenant_flags) c.flags |= s.FlagBit(f).value_or(0);
  c.mechanisms = request.mechanisms;
  c.meter_non_sensitive = request.meter_non_sensitive;
  c.meter_sensitive = request.meter_sensitive;
  c.required_capabilities = request.required_capabilities;

  // Guards first: law applies whatever the business rules say. Every matching guard applies;
  // the first denying one ends the evaluation.
  ProviderSet kept = s.all_providers;
  for (std::size_t i = 0; i < s.guards.size(); ++i) {
    const Guard& g = s.guards[i];
    if (!Eval(s, g.when, c)) continue;
    d.guards_applied.push_back(static_cast<std::uint16_t>(i));
    if (g.deny) {
      d.deny_guard = static_cast<std::uint16_t>(i);
      d.reason = Reason::kDeniedByGuard;
      break;
    }
    kept &= g.eligible;
  }

  for (std::size_t i = 0; i < s.routes.size(); ++i) {
    if (Eval(s, s.routes[i].when, c)) {
      d.route = static_cast<std::uint16_t>(i);
      break;
    }
  }
  // A denial still reports the matched route's candidates, so the explanation shows what the
  // guard refused rather than suggesting the route allowed nothing.
  if (d.route) d.candidates_before = s.routes[*d.route].order;
  if (d.reason == Reason::kDeniedByGuard) return d;
  if (!d.route) {
    d.reason = Reason::kNoRuleMatched;
    return d;
  }

  const Route& route = s.routes[*d.route];

  ProviderSet capable = c.model ? s.serving_model[*c.model] : ProviderSet{};
  if (c.model) {
    const std::vector<ProviderSet>& by_cap = s.model_capability[*c.model];
    for (std::size_t bit = 0; bit < by_cap.size(); ++bit) {
      if ((c.required_capabilities & (1u << bit)) != 0) capable &= by_cap[bit];
    }
  }

  bool any_after_guards = false;
  bool any_capable = false;
  for (ProviderIndex p : route.order) {
    if (!kept.test(p)) {
      // Name the first applied guard that dropped it.
      for (auto gi : d.guards_applied) {
        if (!s.guards[gi].eligible.test(p)) {
          d.excluded.push_back({p, Exclusion::By::kGuard, gi});
          break;
        }
      }
      continue;
    }
    any_after_guards = true;
    if (!capable.test(p)) {
      d.excluded.push_back({p, Exclusion::By::kCapability, 0});
      continue;
    }
    any_capable = true;
    if (unhealthy.test(p)) {
      d.excluded.push_back({p, Exclusion::By::kHealth, 0});
      continue;
    }
    d.candidates_after.push_back(p);
  }

  if (!any_after_guards) {
    d.reason = Reason::kEmptyAfterGuards;
  } else if (!any_capable) {
    d.reason = Reason::kCapabilityUnavailable;
  } else if (d.candidates_after.empty()) {
    d.reason = Reason::kEmptyAfterGuards;  // every permitted endpoint is down
  } else {
    d.allowed = true;
  }
  return d;
}

std::string Decision::ReasonCode() const {
  switch (reason) {
    case Reason::kNone:
      return {};
    case Reason::kNoRuleMatched:
      return "no_rule_matched";
    case Reason::kDeniedByGuard:
      return "denied_by_guard:" + snapshot->guards[*deny_guard].id;
    case Reason::kEmptyAfterGuards:
      return "empty_after_guards";
    case Reason::kCapabilityUnavailable:
      return "capability_unavailable_in_allowed_set";
  }
  return {};
}

bool Decision::Unavailable() const {
  return reason == Reason::kEmptyAfterGuards &&
         std::any_of(excluded.begin(), excluded.end(),
                     [](const Exclusion& e) { return e.by == Exclusion::By::kHealth; });
}

ResolvedRegion ResolveRegion(std::span<const RegionSignal> signals, const Settings& settings) {
  if (signals.empty()) return {};
  const RegionSignal& first = signals.front();
  const bool agree = std::all_of(signals.begin(), signals.end(),
                                 [&](const RegionSignal& s) { return s.region == first.region; });
  if (agree) return {first.region, first.source};
  auto rank = [&](RegionCode r) {
    auto it = std::find(settings.region_restrictiveness.begin(),
                        settings.region_restrictiveness.end(), r);
    return static_cast<std::size_t>(it - settings.region_restrictiveness.begin());
  };
  const RegionSignal* most = &first;
  for (const auto& s : signals) {
    if (rank(s.region) < rank(most->region)) most = &s;
  }
  if (rank(most->region) == settings.region_restrictiveness.size()) {
    // None of the conflicting regions is ranked: fall back to what unknown is treated as.
    return {settings.unknown_region_as, RegionSource::kConflict};
  }
  return {most->region, RegionSource::kConflict};
}

}  // namespace meridian::policy
