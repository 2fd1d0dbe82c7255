#include "policy/diff.h"

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <map>
#include <set>
#include <span>
#include <tuple>
#include <unordered_map>

#include "policy/decide.h"
#include "policy/explain.h"

namespace meridian::policy {
namespace {

namespace json = boost::json;
using Kind = CondNode::Kind;

std::string Join(const std::vector<std::string>& v, std::string_view sep = ", ") {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : std::string(sep)) + s;
  return out;
}

// What the conditions of one snapshot look at.
struct Uses {
  std::vector<RegionSet> region_sets;
  std::uint32_t mechanisms = 0;
  std::uint32_t capabilities = 0;
  bool consent = false;
  std::set<std::uint64_t> meter_ns, meter_s;
};

void Collect(const Snapshot& s, Uses& u) {
  for (const CondNode& n : s.nodes) {
    switch (n.kind) {
      case Kind::kRegion:
        u.region_sets.push_back(s.region_sets[n.a]);
        break;
      case Kind::kConsent:
        u.consent = true;
        break;
      case Kind::kMechAnyOf:
      case Kind::kMechAllOf:
      case Kind::kMechNoneOf:
        u.mechanisms |= n.a;
        break;
      case Kind::kMeterNonSensitive:
        u.meter_ns.insert(n.value);
        break;
      case Kind::kMeterSensitive:
        u.meter_s.insert(n.value);
        break;
      case Kind::kRequires:
        u.capabilities |= n.a;
        break;
      default:
        break;
    }
  }
  // A capability some provider of a model lacks changes the candidates.
  for (std::size_t m = 0; m < s.model_capability.size(); ++m) {
    for (std::size_t c = 0; c < s.model_capability[m].size(); ++c) {
      if (s.model_capability[m][c] != s.serving_model[m]) u.capabilities |= 1u << c;
    }
  }
}

std::vector<std::optional<std::uint64_t>> MeterValues(const std::set<std::uint64_t>& thresholds) {
  std::vector<std::optional<std::uint64_t>> out{std::nullopt};
  if (thresholds.empty()) return out;
  std::set<std::uint64_t> points{0};
  for (const std::uint64_t t : thresholds) {
    if (t > 0) points.insert(t - 1);
    points.insert(t);
    points.insert(t + 1);
  }
  for (const std::uint64_t p : points) out.emplace_back(p);
  return out;
}

// Every subset of the bits of `mask`.
std::vector<std::uint32_t> Subsets(std::uint32_t mask) {
  std::vector<std::uint32_t> out;
  for (std::uint32_t sub = mask;; sub = (sub - 1) & mask) {
    out.push_back(sub);
    if (sub == 0) break;
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> Names(std::uint32_t mask, std::span<const std::string_view> names) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if ((mask & (1u << i)) != 0) out.emplace_back(names[i]);
  }
  return out;
}

}  // namespace

Outcome OutcomeOf(const Decision& d) {
  Outcome o;
  const Snapshot& s = *d.snapshot;
  o.allowed = d.allowed;
  o.reason = d.ReasonCode();
  // A guard's denial is named by the guard; otherwise the matched route.
  if (d.deny_guard) {
    o.rule = s.guards[*d.deny_guard].id;
  } else if (const Route* r = d.MatchedRoute()) {
    o.rule = r->id;
  }
  for (const auto g : d.guards_applied) o.guards.push_back(s.guards[g].id);
  for (const auto p : d.candidates_after) o.providers.push_back(s.providers[p].id);
  return o;
}

namespace {

// Cheap equality of two decisions of different snapshots, by names.
bool SameDecision(const Decision& a, const Decision& b) {
  if (a.allowed != b.allowed || a.reason != b.reason ||
      a.route.has_value() != b.route.has_value() ||
      a.deny_guard.has_value() != b.deny_guard.has_value() ||
      a.guards_applied.size() != b.guards_applied.size() ||
      a.candidates_after.size() != b.candidates_after.size()) {
    return false;
  }
  const Snapshot& x = *a.snapshot;
  const Snapshot& y = *b.snapshot;
  if (a.route && x.routes[*a.route].id != y.routes[*b.route].id) return false;
  if (a.deny_guard && x.guards[*a.deny_guard].id != y.guards[*b.deny_guard].id) return false;
  for (std::size_t i = 0; i < a.guards_applied.size(); ++i) {
    if (x.guards[a.guards_applied[i]].id != y.guards[b.guards_applied[i]].id) return false;
  }
  for (std::size_t i = 0; i < a.candidates_after.size(); ++i) {
    if (x.providers[a.candidates_after[i]].id != y.providers[b.candidates_after[i]].id) {
      return false;
    }
  }
  return true;
}

std::vector<std::string> WhatChanged(const Outcome& a, const Outcome& b) {
  std::vector<std::string> what;
  if (a.allowed != b.allowed) what.push_back(a.allowed ? "allow -> deny" : "deny -> allow");
  if (a.reason != b.reason && !a.allowed && !b.allowed) what.emplace_back("denial reason");
  if (a.rule != b.rule) what.emplace_back("rule");
  if (a.guards != b.guards) what.emplace_back("guards");
  if (a.allowed && b.allowed) {
    std::vector<std::string> x = a.providers, y = b.providers;
    std::sort(x.begin(), x.end());
    std::sort(y.begin(), y.end());
    if (x != y) {
      what.emplace_back("provider set");
    } else if (a.providers.front() != b.providers.front()) {
      what.emplace_back("chosen provider");
    } else if (a.providers != b.providers) {
      what.emplace_back("fallback order");
    }
  }
  return what;
}

}  // namespace

std::string RequestPoint::Json() const {
  json::object o;
  o["tenant"] = tenant;
  o["region"] = region;
  if (!city.empty()) o["city"] = city;
  if (!data_class.empty()) o["data_class"] = data_class;
  if (consent != 0) {
    json::object c;
    for (const auto& n : Names(consent, kConsentNames)) c[n] = true;
    o["consent"] = std::move(c);
  }
  if (!tenant_flags.empty()) o["tenant_flags"] = JsonStrings(tenant_flags);
  if (mechanisms != 0) o["mechanisms"] = JsonStrings(Names(mechanisms, kMechanismNames));
  if (meter_non_sensitive || meter_sensitive) {
    json::object m;
    if (meter_non_sensitive) m["non_sensitive"] = *meter_non_sensitive;
    if (meter_sensitive) m["sensitive"] = *meter_sensitive;
    o["meter"] = std::move(m);
  }
  o["model"] = model;
  if (capabilities != 0) o["requires"] = JsonStrings(Names(capabilities, kCapabilityNames));
  return json::serialize(o);
}

std::string Outcome::Summary() const {
  std::string out;
  if (allowed) {
    out = "allow via " + rule + " -> [" + Join(providers) + "]";
  } else {
    out = "deny " + reason + (rule.empty() ? "" : " (rule " + rule + ")");
  }
  if (!guards.empty()) out += " guards " + Join(guards);
  return out;
}

std::vector<RegionClass> RegionClasses(std::span<const Snapshot* const> snapshots) {
  Uses u;
  for (const Snapshot* s : snapshots) Collect(*s, u);
  RegionSet named;
  for (const RegionSet& r : u.region_sets) named |= r;
  for (const Snapshot* s : snapshots) named.set(s->settings.unknown_region_as.index());
  std::map<std::vector<bool>, std::size_t> index_of;
  std::vector<RegionClass> classes;
  auto add_code = [&](std::size_t index) {
    RegionSet one;
    one.set(index);
    const std::string code = ToString(one);
    std::vector<bool> sig;
    for (const RegionSet& r : u.region_sets) sig.push_back(r.test(index));
    // Each policy's unknown_region_as is a class of its own (it is what "unknown" becomes).
    for (const Snapshot* s : snapshots) {
      sig.push_back(s->settings.unknown_region_as.index() == index);
    }
    auto [it, fresh] = index_of.try_emplace(sig, classes.size());
    if (fresh) classes.emplace_back();
    classes[it->second].codes.push_back(code.substr(1, code.size() - 2));  // "{CN}" -> "CN"
  };
  for (std::size_t i = 0; i < kRegionSpace; ++i) {
    if (named.test(i)) add_code(i);
  }
  for (const char* candidate : {"ZZ", "AQ", "XK", "QA"}) {  // a valid code no condition names
    if (auto c = RegionCode::Parse(candidate); c && !named.test(c->index())) {
      add_code(c->index());
      classes.back().unnamed = true;  // named codes all match some set: a class of its own
      break;
    }
  }
  return classes;
}

DiffReport Diff(const SnapshotPtr& before, const SnapshotPtr& after, const DiffOptions& options) {
  DiffReport report;
  Uses u;
  Collect(*before, u);
  Collect(*after, u);

  // Tenants.
  std::set<std::string> tenant_set;
  for (const Snapshot* s : {before.get(), after.get()}) {
    for (const auto& [name, id] : s->tenant_ids) tenant_set.insert(name);
  }
  std::vector<std::string> tenants(tenant_set.begin(), tenant_set.end());
  tenants.emplace_back("*other*");

  // Regions: one per class of codes the region sets cannot tell apart.
  std::vector<std::string> regions;
  std::vector<std::string> region_notes;
  const Snapshot* const both[] = {before.get(), after.get()};
  for (const RegionClass& c : RegionClasses(both)) {
    regions.push_back(c.codes.front());
    region_notes.push_back(c.codes.size() == 1
                               ? c.codes.front()
                               : c.codes.front() + " (as " + Join(c.codes, ", ") + ")");
  }
  regions.emplace_back("unknown");
  region_notes.emplace_back("unknown");

  // Cities.
  std::set<std::string> city_set;
  for (const Snapshot* s : {before.get(), after.get()}) {
    for (const auto& [name, id] : s->city_ids) city_set.insert(name);
  }
  std::vector<std::string> cities{""};
  cities.insert(cities.end(), city_set.begin(), city_set.end());

  // Data classes: none stated (the default), then each.
  std::vector<std::string> data_classes{""};
  for (const auto n : kDataClassNames) data_classes.emplace_back(n);

  const std::vector<std::uint32_t> consents =
      u.consent ? Subsets(Bit(Consent::kCrossBorderSeparate) | Bit(Consent::kSensitiveSeparate))
                : std::vector<std::uint32_t>{0};

  // Tenant flags a condition of either policy looks at (declared but unused ones change
  // nothing).
  std::set<std::string> flag_set;
  for (const Snapshot* s : {before.get(), after.get()}) {
    std::uint32_t used = 0;
    for (const CondNode& n : s->nodes) {
      if (n.kind == Kind::kFlags) used |= n.a | n.b;
    }
    for (std::size_t i = 0; i < s->flag_names.size(); ++i) {
      if ((used & (1u << i)) != 0) flag_set.insert(s->flag_names[i]);
    }
  }
  const std::vector<std::string> flags(flag_set.begin(), flag_set.end());
  const std::uint32_t flag_mask = flags.size() >= 31 ? 0x7fffffffu : (1u << flags.size()) - 1;
  const std::vector<std::uint32_t> flag_subsets = Subsets(flag_mask);

  const std::vector<std::uint32_t> mechanisms = Subsets(u.mechanisms);
  const auto meter_ns = MeterValues(u.meter_ns);
  const auto meter_s = MeterValues(u.meter_s);

  std::set<std::string> model_set;
  for (const Snapshot* s : {before.get(), after.get()}) {
    for (const auto& m : s->model_names) model_set.insert(m);
  }
  std::vector<std::string> models(model_set.begin(), model_set.end());
  models.emplace_back("*unknown-model*");
  // Capabilities no condition and no provider table tells apart need one representative.
  std::uint32_t capability_reps = 0;
  std::vector<std::string> capability_notes;
  {
    auto signature = [&](std::size_t bit) {
      std::string sig;
      for (const Snapshot* sn : {before.get(), after.get()}) {
        for (const auto& by_cap : sn->model_capability) {
          sig += bit < by_cap.size() ? by_cap[bit].to_string() : std::string("-");
          sig += '|';
        }
        for (const CondNode& n : sn->nodes) {
          if (n.kind == Kind::kRequires) sig += (n.a & (1u << bit)) != 0 ? '1' : '0';
        }
        sig += '#';
      }
      return sig;
    };
    std::map<std::string, std::vector<std::string>> by_signature;
    std::map<std::string, std::size_t> rep_of;
    for (std::size_t bit = 0; bit < kCapabilityNames.size(); ++bit) {
      if ((u.capabilities & (1u << bit)) == 0) continue;
      const std::string sig = signature(bit);
      if (rep_of.try_emplace(sig, bit).second) capability_reps |= 1u << bit;
      by_signature[sig].emplace_back(kCapabilityNames[bit]);
    }
    for (std::size_t bit = 0; bit < kCapabilityNames.size(); ++bit) {
      if ((capability_reps & (1u << bit)) == 0) continue;
      const auto& same = by_signature[signature(bit)];
      capability_notes.push_back(same.size() == 1 ? same.front()
                                                  : same.front() + " (as " + Join(same) + ")");
    }
  }
  const std::vector<std::uint32_t> capabilities = Subsets(capability_reps);

  auto line = [&](std::string name, std::size_t n, std::string detail) {
    report.space.push_back(name + ": " + std::to_string(n) +
                           (detail.empty() ? "" : " (" + detail + ")"));
  };
  line("tenants", tenants.size(), Join(tenants));
  line("regions", regions.size(), Join(region_notes, "; "));
  line("cities", cities.size(), cities.size() == 1 ? "none named" : Join(cities));
  line("data classes", data_classes.size(),
       "default, " + Join({kDataClassNames.begin(), kDataClassNames.end()}));
  line("consent", consents.size(), u.consent ? "every combination" : "not asked for");
  line("tenant flags", flag_subsets.size(), flags.empty() ? "none" : "subsets of " + Join(flags));
  line("mechanisms", mechanisms.size(),
       u.mechanisms == 0 ? "none named"
                         : "subsets of " + Join(Names(u.mechanisms, kMechanismNames)));
  line("meter (non-sensitive)", meter_ns.size(), "");
  line("meter (sensitive)", meter_s.size(), "");
  line("models", models.size(), Join(models));
  line("capabilities", capabilities.size(),
       capability_reps == 0 ? "none matter" : "subsets of " + Join(capability_notes, "; "));

  // The dimensions, in the order the walk below sets them. Model and capabilities come last:
  // besides conditions they only filter the candidates, which is checked per provider below.
  enum Dim {
    kTenant,
    kRegion,
    kClass,
    kCity,
    kConsent,
    kFlags,
    kMech,
    kMeterNs,
    kMeterS,
    kModel,
    kCaps,
    kDims
  };
  const std::array<std::size_t, kDims> sizes = {
      tenants.size(),  regions.size(),      data_classes.size(), cities.size(),
      consents.size(), flag_subsets.size(), mechanisms.size(),   meter_ns.size(),
      meter_s.size(),  models.size(),       capabilities.size()};
  double total = 1;
  for (const std::size_t d : sizes) total *= static_cast<double>(d);
  if (total > 1e18) {
    report.error = "the request space is too large to count";
    return report;
  }
  report.points = static_cast<std::size_t>(total);

  using Point = std::array<std::optional<std::size_t>, kDims>;
  std::vector<std::string> point_flags;
  auto attributes = [&](const Point& at, RequestAttributes& a) {
    auto v = [&](Dim d) { return at[d].value_or(0); };
    a = RequestAttributes{};
    a.tenant = tenants[v(kTenant)];
    a.region =
        regions[v(kRegion)] == "unknown" ? std::nullopt : RegionCode::Parse(regions[v(kRegion)]);
    if (a.region) a.region_source = RegionSource::kTenantBinding;
    a.city = cities[v(kCity)];
    a.data_class = data_classes[v(kClass)].empty()
                       ? std::nullopt
                       : ParseName<DataClass>(kDataClassNames, data_classes[v(kClass)]);
    a.consent = consents[v(kConsent)];
    point_flags.clear();
    for (std::size_t i = 0; i < flags.size(); ++i) {
      if ((flag_subsets[v(kFlags)] & (1u << i)) != 0) point_flags.push_back(flags[i]);
    }
    a.tenant_flags = point_flags;
    a.mechanisms = mechanisms[v(kMech)];
    a.meter_non_sensitive = meter_ns[v(kMeterNs)];
    a.meter_sensitive = meter_s[v(kMeterS)];
    a.model = models[v(kModel)];
    a.required_capabilities = capabilities[v(kCaps)];
  };

  // Three-valued evaluation of a condition on a partial point (an unset dimension: unknown).
  enum class Tri { kFalse, kTrue, kUnknown };
  RequestAttributes partial;
  const auto eval = [&](const Snapshot& sn, std::uint32_t index, const Point& at,
                        const auto& self) -> Tri {
    const CondNode& n = sn.nodes[index];
    auto known = [&](Dim d) { return at[d].has_value(); };
    auto of = [](bool b) { return b ? Tri::kTrue : Tri::kFalse; };
    auto in_list = [&](std::uint32_t list, const NameIndex& names, std::string_view name) {
      const auto id = Lookup(names, name);
      const auto& l = sn.id_lists[list];
      return id && std::binary_search(l.begin(), l.end(), *id);
    };
    switch (n.kind) {
      case Kind::kTrue:
        return Tri::kTrue;
      case Kind::kAll:
      case Kind::kAny: {
        const bool all = n.kind == Kind::kAll;
        bool unknown = false;
        for (std::uint32_t i = 0; i < n.b; ++i) {
          const Tri t = self(sn, sn.children[n.a + i], at, self);
          if (t == (all ? Tri::kFalse : Tri::kTrue)) return t;
          unknown = unknown || t == Tri::kUnknown;
        }
        return unknown ? Tri::kUnknown : (all ? Tri::kTrue : Tri::kFalse);
      }
      case Kind::kNot: {
        const Tri t = self(sn, n.a, at, self);
        return t == Tri::kUnknown ? t : (t == Tri::kTrue ? Tri::kFalse : Tri::kTrue);
      }
      case Kind::kRegion: {
        if (!known(kRegion)) return Tri::kUnknown;
        const auto code = partial.region.value_or(sn.settings.unknown_region_as);
        return of(sn.region_sets[n.a].test(code.index()));
      }
      case Kind::kCity:
        if (!known(kCity)) return Tri::kUnknown;
        return of(!partial.city.empty() && in_list(n.a, sn.city_ids, partial.city));
      case Kind::kTenant:
        if (!known(kTenant)) return Tri::kUnknown;
        return of(in_list(n.a, sn.tenant_ids, partial.tenant));
      case Kind::kModel:
        if (!known(kModel)) return Tri::kUnknown;
        return of(in_list(n.a, sn.model_ids, partial.model));
      case Kind::kDataClass: {
        if (!known(kClass)) return Tri::kUnknown;
        const DataClass c = partial.data_class.value_or(sn.settings.default_data_class);
        return of(Compare(n.op, static_cast<std::uint64_t>(c), n.value));
      }
      case Kind::kConsent:
        if (!known(kConsent)) return Tri::kUnknown;
        return of((partial.consent & n.a) == n.a && (partial.consent & n.b) == 0);
      case Kind::kFlags: {
        if (!known(kFlags)) return Tri::kUnknown;
        std::uint32_t mask = 0;
        for (const auto& f : partial.tenant_flags) mask |= sn.FlagBit(f).value_or(0);
        return of((mask & n.a) == n.a && (mask & n.b) == 0);
      }
      case Kind::kMechAnyOf:
        if (!known(kMech)) return Tri::kUnknown;
        return of((partial.mechanisms & n.a) != 0);
      case Kind::kMechAllOf:
        if (!known(kMech)) return Tri::kUnknown;
        return of((partial.mechanisms & n.a) == n.a);
      case Kind::kMechNoneOf:
        if (!known(kMech)) return Tri::kUnknown;
        return of((partial.mechanisms & n.a) == 0);
      case Kind::kMeterNonSensitive:
        if (!known(kMeterNs)) return Tri::kUnknown;
        return of(partial.meter_non_sensitive &&
                  Compare(n.op, *partial.meter_non_sensitive, n.value));
      case Kind::kMeterSensitive:
        if (!known(kMeterS)) return Tri::kUnknown;
        return of(partial.meter_sensitive && Compare(n.op, *partial.meter_sensitive, n.value));
      case Kind::kRequires:
        if (!known(kCaps)) return Tri::kUnknown;
        return of((partial.required_capabilities & n.a) == n.a);
    }
    return Tri::kUnknown;
  };
  // Whether the snapshot's decision is settled on the partial point: every guard that can
  // apply is known to, or not to, up to a denying one; and the first matching route is known.
  const auto settled = [&](const Snapshot& sn, const Point& at) {
    for (const Guard& g : sn.guards) {
      const Tri t = eval(sn, g.when, at, eval);
      if (t == Tri::kUnknown) return false;
      if (t == Tri::kTrue && g.deny) return true;
    }
    for (const Route& r : sn.routes) {
      const Tri t = eval(sn, r.when, at, eval);
      if (t == Tri::kUnknown) return false;
      if (t == Tri::kTrue) return true;
    }
    return true;
  };

  // What a settled decision is before the model and capabilities filter it: guards applied,
  // the denying guard, the route, and the route's providers the guards kept, by name.
  const auto pre_state = [&](const Snapshot& sn, const Point& p, std::vector<std::string>& ids) {
    std::string state;
    ids.clear();
    ProviderSet kept = sn.all_providers;
    for (const Guard& g : sn.guards) {
      if (eval(sn, g.when, p, eval) != Tri::kTrue) continue;
      state += "g:" + g.id + ",";
      if (g.deny) return state + "deny";
      kept &= g.eligible;
    }
    for (const Route& r : sn.routes) {
      if (eval(sn, r.when, p, eval) != Tri::kTrue) continue;
      state += "r:" + r.id + ":";
      for (const ProviderIndex i : r.order) {
        if (!kept.test(i)) continue;
        state += sn.providers[i].id + ",";
        ids.push_back(sn.providers[i].id);
      }
      return state;
    }
    return state + "none";
  };
  // Per provider: the models it serves and the capabilities it has for each, by name. Equal in
  // both policies, the candidate filtering is the same for every model and capability set.
  const auto fingerprints = [&](const Snapshot& sn) {
    std::map<std::string, std::string> out;
    for (std::size_t pi = 0; pi < sn.providers.size(); ++pi) {
      std::string fp;
      for (std::size_t m = 0; m < sn.model_names.size(); ++m) {
        if (!sn.serving_model[m].test(pi)) continue;
        fp += sn.model_names[m] + ":";
        for (std::size_t c = 0; c < sn.model_capability[m].size(); ++c) {
          fp += sn.model_capability[m][c].test(pi) ? '1' : '0';
        }
        fp += ';';
      }
      out[sn.providers[pi].id] = fp;
    }
    return out;
  };
  const auto fp_before = fingerprints(*before);
  const auto fp_after = fingerprints(*after);
  // Models neither policy serves are the same unknown model in both only if both serve the
  // same aliases; otherwise an alias one serves and the other not is a difference.
  const bool same_models =
      before->model_names.size() == after->model_names.size() &&
      std::is_permutation(before->model_names.begin(), before->model_names.end(),
                          after->model_names.begin());
  std::vector<std::string> ids_before, ids_after;
  const auto same_tables = [&] {
    if (!same_models) return false;
    for (const std::string& id : ids_before) {
      const auto x = fp_before.find(id);
      const auto y = fp_after.find(id);
      if (x == fp_before.end() || y == fp_after.end() || x->second != y->second) return false;
    }
    return true;
  };

  std::map<std::pair<std::string, std::string>, std::size_t> group_of;
  std::unordered_map<std::string, std::vector<std::size_t>> by_states;
  RequestAttributes a;
  Point at{};
  constexpr std::size_t kNoChange = static_cast<std::size_t>(-1);
  // Decides the point under both; returns the group its change is in, or kNoChange.
  const auto leaf = [&](std::size_t multiplicity) -> std::size_t {
    attributes(at, a);
    const Decision x = Decide(a, before);
    const Decision y = Decide(a, after);
    ++report.decided;
    if (SameDecision(x, y)) return kNoChange;
    report.changed += multiplicity;
    Outcome ox = OutcomeOf(x);
    Outcome oy = OutcomeOf(y);
    auto key = std::make_pair(ox.Summary(), oy.Summary());
    auto [it, fresh] = group_of.try_emplace(key, report.groups.size());
    if (fresh) {
      DiffGroup g;
      g.what = WhatChanged(ox, oy);
      g.before = std::move(ox);
      g.after = std::move(oy);
      report.groups.push_back(std::move(g));
    }
    DiffGroup& g = report.groups[it->second];
    g.points += multiplicity;
    if (g.examples.size() < options.examples) {
      RequestPoint p;
      p.tenant = tenants[at[kTenant].value_or(0)];
      p.region = regions[at[kRegion].value_or(0)];
      p.city = cities[at[kCity].value_or(0)];
      p.data_class = data_classes[at[kClass].value_or(0)];
      p.consent = a.consent;
      p.tenant_flags = point_flags;
      p.mechanisms = a.mechanisms;
      p.meter_non_sensitive = a.meter_non_sensitive;
      p.meter_sensitive = a.meter_sensitive;
      p.model = models[at[kModel].value_or(0)];
      p.capabilities = a.required_capabilities;
      g.examples.push_back(std::move(p));
    }
    return it->second;
  };
  // Sets one dimension after another. Once both decisions are settled, the dimensions left
  // cannot change the conditions: if both policies are then in the same state with the same
  // provider tables, no model or capability set can tell them apart either (one evaluation
  // for all those points); otherwise each model and capability set is decided, one decision
  // standing for the points of the other dimensions left.
  const auto walk = [&](std::size_t level, const auto& self) -> void {
    attributes(at, partial);
    if (level == kDims) {
      leaf(1);
      return;
    }
    if (settled(*before, at) && settled(*after, at)) {
      const std::string x = pre_state(*before, at, ids_before);
      const std::string y = pre_state(*after, at, ids_after);
      if (x == y && same_tables()) {
        ++report.decided;
        return;
      }
      std::size_t multiplicity = 1;
      for (std::size_t d = level; d < kModel; ++d) multiplicity *= sizes[d];
      const bool model_known = at[kModel].has_value();
      const bool caps_set = at[kCaps].has_value();
      // The outcome for each model and capability set depends on nothing but the two states:
      // decided once per pair of states, counted for every point in them.
      const std::string key = x + "\n" + y + "\n" +
                              (model_known ? std::to_string(*at[kModel]) : "*") + "\n" +
                              (caps_set ? std::to_string(*at[kCaps]) : "*");
      if (const auto hit = by_states.find(key); hit != by_states.end()) {
        ++report.decided;
        for (const std::size_t group : hit->second) {
          if (group == kNoChange) continue;
          report.groups[group].points += multiplicity;
          report.changed += multiplicity;
        }
        return;
      }
      std::vector<std::size_t>& groups = by_states[key];
      for (std::size_t m = 0; m < (model_known ? 1 : sizes[kModel]); ++m) {
        if (!model_known) at[kModel] = m;
        for (std::size_t c = 0; c < (caps_set ? 1 : sizes[kCaps]); ++c) {
          if (!caps_set) at[kCaps] = c;
          groups.push_back(leaf(multiplicity));
        }
      }
      if (!model_known) at[kModel].reset();
      if (!caps_set) at[kCaps].reset();
      return;
    }
    for (std::size_t i = 0; i < sizes[level]; ++i) {
      at[level] = i;
      self(level + 1, self);
    }
    at[level].reset();
  };
  if (report.points > 0) walk(0, walk);
  std::stable_sort(report.groups.begin(), report.groups.end(),
                   [](const DiffGroup& x, const DiffGroup& y) { return x.points > y.points; });
  return report;
}

std::string FormatDiff(const DiffReport& r) {
  if (!r.error.empty()) return "error: " + r.error + "\n";
  std::string out = "request space: " + std::to_string(r.points) + " points, decided in " +
                    std::to_string(r.decided) +
                    " evaluations (a point stands for the others its "
                    "decisions do not depend on)\n";
  for (const auto& s : r.space) out += "  " + s + "\n";
  if (r.changed == 0) {
    out += "no decision changes\n";
    return out;
  }
  out += std::to_string(r.changed) + " of " + std::to_string(r.points) + " points change, in " +
         std::to_string(r.groups.size()) + " group(s):\n";
  for (const DiffGroup& g : r.groups) {
    out += "\n" + std::to_string(g.points) + " point(s): " + Join(g.what) + "\n";
    out += "  before: " + g.before.Summary() + "\n";
    out += "  after:  " + g.after.Summary() + "\n";
    for (const RequestPoint& p : g.examples) out += "  e.g. " + p.Json() + "\n";
  }
  return out;
}

std::string DiffJson(const DiffReport& r) {
  json::object o;
  if (!r.error.empty()) {
    o["error"] = r.error;
    return json::serialize(o);
  }
  o["points"] = r.points;
  o["changed"] = r.changed;
  o["decided"] = r.decided;
  o["space"] = JsonStrings(r.space);
  auto outcome = [](const Outcome& x) {
    json::object j;
    j["allowed"] = x.allowed;
    j["reason"] = x.reason;
    j["rule"] = x.rule;
    j["guards"] = JsonStrings(x.guards);
    j["providers"] = JsonStrings(x.providers);
    return j;
  };
  json::array groups;
  for (const DiffGroup& g : r.groups) {
    json::object j;
    j["points"] = g.points;
    j["what"] = JsonStrings(g.what);
    j["before"] = outcome(g.before);
    j["after"] = outcome(g.after);
    json::array ex;
    for (const auto& p : g.examples) ex.push_back(json::parse(p.Json()));
    j["examples"] = std::move(ex);
    groups.push_back(std::move(j));
  }
  o["groups"] = std::move(groups);
  return json::serialize(o);
}

ReplayReport Replay(const SnapshotPtr& policy, const std::vector<ReplayRecord>& records,
                    std::size_t samples) {
  ReplayReport r;
  for (const ReplayRecord& rec : records) {
    RequestAttributes a;
    a.tenant = rec.tenant;
    a.region = RegionCode::Parse(rec.region);
    if (a.region) a.region_source = RegionSource::kTenantBinding;
    a.data_class = ParseName<DataClass>(kDataClassNames, rec.data_class);
    a.model = rec.model;
    const Outcome now = OutcomeOf(Decide(a, policy));
    ++r.records;
    // The recorded rule is the matched route, or the denying guard when no route matched.
    const bool same_rule = now.rule == rec.rule ||
                           (!now.allowed && !rec.allowed && rec.rule.empty() && now.rule.empty());
    const bool same = now.allowed == rec.allowed && same_rule &&
                      (!now.allowed || now.providers == rec.candidates);
    if (same) continue;
    ++r.changed;
    std::string what = rec.allowed == now.allowed ? (now.allowed ? "providers" : "denial")
                       : rec.allowed              ? "allow -> deny"
                                                  : "deny -> allow";
    if (rec.allowed == now.allowed && !same_rule) what = "rule";
    ++r.by_change[what];
    if (r.samples.size() < samples) {
      r.samples.push_back(rec.request_id + ": " + what + ": was " +
                          (rec.allowed
                               ? "allow via " + rec.rule + " -> [" + Join(rec.candidates) + "]"
                               : "deny (" + rec.rule + ")") +
                          ", now " + now.Summary());
    }
  }
  return r;
}

}  // namespace meridian::policy
