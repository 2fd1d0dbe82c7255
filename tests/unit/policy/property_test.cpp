// Property tests over random policies and random requests.
//
// A small independent model of the policy language (conditions, provider attributes, narrowing
// effects) generates random policies, converts them to PolicySpec, and predicts each decision
// by brute force. Properties checked for every (policy, request) pair:
//   1. the engine's matched route, guards applied and final candidates equal the model's;
//   2. final candidates ⊆ route.allow ∩ every matching guard's set, all capable and healthy;
//   3. adding a guard anywhere never widens a decision (candidates shrink or stay; a denial
//      stays a denial).
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

#include "policy/compile.h"
#include "policy/decide.h"

namespace meridian::policy {
namespace {

const std::vector<std::string> kRegions = {"CN", "HK", "US", "DE", "SG", "EU"};
const std::vector<std::string> kModels = {"m0", "m1", "m2"};
const std::vector<std::string> kTenants = {"t0", "t1", "t2"};
const std::vector<std::string> kFlags = {"ciio", "require_zdr", "f0", "f1"};

using Strings = std::set<std::string>;

struct Cond {
  std::optional<Strings> region;
  std::optional<std::pair<CompareOp, DataClass>> data_class;
  std::optional<bool> consent_xb;
  std::optional<std::pair<std::string, bool>> flag;
  std::optional<Strings> tenant;
  bool negate = false;
};

struct Loc {
  bool anywhere = false;
  Strings items;
};

struct Prov {
  Strings models;
  std::optional<Loc> processing;
  std::optional<bool> zdr;
  std::optional<CnFiling> filing;
};

struct Narrow {
  std::optional<Strings> within;
  std::optional<Strings> excludes;
  std::optional<bool> zdr;
  std::optional<std::set<CnFiling>> filing;
  std::optional<std::set<int>> providers;
};

struct G {
  Cond when;
  bool deny = false;
  Narrow narrow;
};

struct R {
  Cond when;
  std::vector<int> allow;
  std::vector<int> prefer;
};

struct Model {
  std::vector<Prov> providers;
  std::vector<G> guards;
  std::vector<R> routes;
};

struct Req {
  std::string tenant;
  std::optional<std::string> region;
  std::optional<DataClass> data_class;
  bool consent_xb = false;
  std::vector<std::string> flags;
  std::string model;
  std::set<int> unhealthy;
};

// ---- random generation --------------------------------------------------------------------

class Gen {
 public:
  explicit Gen(std::uint32_t seed) : rng_(seed) {}

  bool Chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  int Int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  template <class T>
  const T& Pick(const std::vector<T>& v) {
    return v[static_cast<std::size_t>(Int(0, static_cast<int>(v.size()) - 1))];
  }
  Strings Subset(const std::vector<std::string>& pool, bool non_empty) {
    Strings s;
    for (const auto& x : pool) {
      if (Chance(0.4)) s.insert(x);
    }
    if (non_empty && s.empty()) s.insert(Pick(pool));
    return s;
  }
  DataClass Class() { return static_cast<DataClass>(Int(0, 4)); }

  Cond Condition(bool routes) {
    Cond c;
    if (Chance(0.4)) c.region = Subset(kRegions, true);
    if (Chance(0.3)) c.data_class = {static_cast<CompareOp>(Int(0, 5)), Class()};
    if (Chance(0.2)) c.consent_xb = Chance(0.5);
    if (Chance(0.25)) c.flag = {Pick(kFlags), Chance(0.5)};
    if (routes && Chance(0.6)) c.tenant = Subset(kTenants, true);
    c.negate = Chance(0.1);
    return c;
  }

  Model Policy() {
    Model m;
    const int n = Int(1, 12);
    for (int i = 0; i < n; ++i) {
      Prov p;
      p.models = Subset(kModels, true);
      if (Chance(0.9)) {
        Loc loc;
        loc.anywhere = Chance(0.3);
        loc.items = Subset(kRegions, !loc.anywhere);
        p.processing = loc;
      }
      if (Chance(0.8)) p.zdr = Chance(0.5);
      if (Chance(0.8)) p.filing = static_cast<CnFiling>(Int(0, 2));
      m.providers.push_back(p);
    }
    const int guards = Int(0, 6);
    for (int i = 0; i < guards; ++i) m.guards.push_back(Guard(n));
    const int routes = Int(1, 6);
    for (int i = 0; i < routes; ++i) {
      R r;
      r.when = Condition(true);
      for (int p = 0; p < n; ++p) {
        if (Chance(0.5)) r.allow.push_back(p);
      }
      if (r.allow.empty()) r.allow.push_back(Int(0, n - 1));
      std::shuffle(r.allow.begin(), r.allow.end(), rng_);
      for (int p : r.allow) {
        if (Chance(0.3)) r.prefer.push_back(p);
      }
      m.routes.push_back(r);
    }
    return m;
  }

  G Guard(int n) {
    G g;
    g.when = Condition(false);
    g.deny = Chance(0.12);
    if (g.deny) return g;
    bool any = false;
    while (!any) {
      if (Chance(0.35)) any = true, g.narrow.within = Subset(kRegions, true);
      if (Chance(0.25)) any = true, g.narrow.excludes = Subset(kRegions, true);
      if (Chance(0.25)) any = true, g.narrow.zdr = Chance(0.7);
      if (Chance(0.2)) {
        any = true;
        std::set<CnFiling> f;
        for (int i = 0; i < 3; ++i) {
          if (Chance(0.5)) f.insert(static_cast<CnFiling>(i));
        }
        if (f.empty()) f.insert(CnFiling::kFiled);
        g.narrow.filing = f;
      }
      if (Chance(0.2)) {
        any = true;
        std::set<int> ps;
        for (int p = 0; p < n; ++p) {
          if (Chance(0.5)) ps.insert(p);
        }
        if (ps.empty()) ps.insert(0);
        g.narrow.providers = ps;
      }
    }
    return g;
  }

  Req Request(int n) {
    Req r;
    r.tenant = Chance(0.9) ? Pick(kTenants) : "stranger";
    if (Chance(0.85)) r.region = Pick(kRegions);
    if (Chance(0.8)) r.data_class = Class();
    r.consent_xb = Chance(0.5);
    for (const auto& f : kFlags) {
      if (Chance(0.3)) r.flags.push_back(f);
    }
    r.model = Chance(0.95) ? Pick(kModels) : "unknown-model";
    for (int p = 0; p < n; ++p) {
      if (Chance(0.15)) r.unhealthy.insert(p);
    }
    return r;
  }

 private:
  std::mt19937 rng_;
};

// ---- the model's prediction ---------------------------------------------------------------

bool Holds(const Cond& c, const Req& r) {
  const std::string region = r.region.value_or("CN");
  const DataClass cls = r.data_class.value_or(DataClass::kPersonal);
  bool ok = true;
  if (c.region) ok = ok && c.region->count(region) != 0;
  if (c.data_class) ok = ok && Compare(c.data_class->first, cls, c.data_class->second);
  if (c.consent_xb) ok = ok && r.consent_xb == *c.consent_xb;
  if (c.flag) {
    const bool has = std::find(r.flags.begin(), r.flags.end(), c.flag->first) != r.flags.end();
    ok = ok && has == c.flag->second;
  }
  if (c.tenant) ok = ok && c.tenant->count(r.tenant) != 0;
  return c.negate ? !ok : ok;
}

bool Keeps(const Narrow& n, const Prov& p, int index) {
  auto within = [](const Loc& l, const Strings& s) {
    return !l.anywhere && std::includes(s.begin(), s.end(), l.items.begin(), l.items.end());
  };
  auto excludes = [](const Loc& l, const Strings& s) {
    if (l.anywhere) return std::includes(l.items.begin(), l.items.end(), s.begin(), s.end());
    return std::none_of(s.begin(), s.end(), [&](const auto& x) { return l.items.count(x) != 0; });
  };
  if (n.within && !(p.processing && within(*p.processing, *n.within))) return false;
  if (n.excludes && !(p.processing && excludes(*p.processing, *n.excludes))) return false;
  if (n.zdr && !(p.zdr && *p.zdr == *n.zdr)) return false;
  if (n.filing && !(p.filing && n.filing->count(*p.filing) != 0)) return false;
  if (n.providers && n.providers->count(index) == 0) return false;
  return true;
}

struct Prediction {
  std::optional<int> route;
  std::vector<int> guards;
  bool denied_by_guard = false;
  std::vector<int> after;
};

Prediction Predict(const Model& m, const Req& r) {
  Prediction out;
  for (int g = 0; g < static_cast<int>(m.guards.size()); ++g) {
    if (!Holds(m.guards[static_cast<std::size_t>(g)].when, r)) continue;
    out.guards.push_back(g);
    if (m.guards[static_cast<std::size_t>(g)].deny) {
      out.denied_by_guard = true;
      break;
    }
  }
  for (int i = 0; i < static_cast<int>(m.routes.size()); ++i) {
    if (Holds(m.routes[static_cast<std::size_t>(i)].when, r)) {
      out.route = i;
      break;
    }
  }
  if (out.denied_by_guard || !out.route) return out;
  const R& route = m.routes[static_cast<std::size_t>(*out.route)];
  std::vector<int> order = route.prefer;
  for (int p : route.allow) {
    if (std::find(order.begin(), order.end(), p) == order.end()) order.push_back(p);
  }
  for (int p : order) {
    const Prov& prov = m.providers[static_cast<std::size_t>(p)];
    bool ok = prov.models.count(r.model) != 0 && r.unhealthy.count(p) == 0;
    for (int g : out.guards)
      ok = ok && Keeps(m.guards[static_cast<std::size_t>(g)].narrow, prov, p);
    if (ok) out.after.push_back(p);
  }
  return out;
}

// ---- conversion to the real spec ----------------------------------------------------------

LocatedString L(std::string s) {
  return {std::move(s), {}};
}
StringList List(const Strings& s) {
  StringList out;
  for (const auto& x : s) out.push_back(L(x));
  return out;
}
std::string Id(int p) {
  return "p" + std::to_string(p);
}

ConditionSpec ToSpec(const Cond& c) {
  ConditionSpec s;
  if (c.region) s.region = List(*c.region);
  if (c.data_class) {
    static constexpr std::string_view kOps[] = {"==", "!=", "<", "<=", ">", ">="};
    s.data_class = L(std::string(kOps[static_cast<int>(c.data_class->first)]) + " " +
                     std::string(Name(c.data_class->second)));
  }
  if (c.consent_xb) s.consent.push_back({L("cross_border_separate"), *c.consent_xb});
  if (c.flag) s.tenant_flags.push_back({L(c.flag->first), c.flag->second});
  if (c.tenant) s.tenant = List(*c.tenant);
  if (!c.negate) return s;
  ConditionSpec outer;
  outer.not_.push_back(std::move(s));
  return outer;
}

GuardSpec ToSpec(const G& g, int index) {
  GuardSpec s;
  s.id = L("g" + std::to_string(index));
  s.when = ToSpec(g.when);
  if (g.deny) {
    s.deny = L("denied");
    return s;
  }
  NarrowSpec n;
  if (g.narrow.within) n.processing_within = List(*g.narrow.within);
  if (g.narrow.excludes) n.processing_excludes = List(*g.narrow.excludes);
  if (g.narrow.zdr) n.zdr = Located<bool>{*g.narrow.zdr, {}};
  if (g.narrow.filing) {
    StringList f;
    for (auto x : *g.narrow.filing) f.push_back(L(std::string(Name(x))));
    n.cn_filing = f;
  }
  if (g.narrow.providers) {
    StringList ps;
    for (int p : *g.narrow.providers) ps.push_back(L(Id(p)));
    n.providers = ps;
  }
  s.narrow = n;
  return s;
}

PolicySpec ToSpec(const Model& m) {
  PolicySpec spec;
  spec.tenant_flags = {{L("f0"), {}}, {L("f1"), {}}};
  for (std::size_t i = 0; i < m.providers.size(); ++i) {
    const Prov& p = m.providers[i];
    ProviderSpec ps;
    ps.id = L(Id(static_cast<int>(i)));
    ps.kind = L("sim");
    for (const auto& model : p.models) ps.models.push_back({L(model), L("upstream-" + model), {}});
    if (p.processing) {
      LocationSpec loc;
      loc.anywhere = p.processing->anywhere;
      loc.items = List(p.processing->items);
      ps.processing = loc;
    }
    if (p.zdr) ps.zdr = Located<bool>{*p.zdr, {}};
    if (p.filing) ps.cn_filing = L(std::string(Name(*p.filing)));
    spec.providers.push_back(ps);
  }
  for (std::size_t i = 0; i < m.guards.size(); ++i) {
    spec.guards.push_back(ToSpec(m.guards[i], static_cast<int>(i)));
  }
  for (std::size_t i = 0; i < m.routes.size(); ++i) {
    RouteSpec rs;
    rs.id = L("r" + std::to_string(i));
    rs.when = ToSpec(m.routes[i].when);
    for (int p : m.routes[i].allow) rs.allow.push_back(L(Id(p)));
    for (int p : m.routes[i].prefer) rs.prefer.push_back(L(Id(p)));
    spec.routes.push_back(rs);
  }
  return spec;
}

struct Compiled {
  SnapshotPtr snapshot;
  Decision Decide(const Req& r) const {
    RequestAttributes a;
    a.tenant = r.tenant;
    if (r.region) a.region = RegionCode::Parse(*r.region);
    a.region_source = RegionSource::kTenantBinding;
    a.data_class = r.data_class;
    a.consent = r.consent_xb ? Bit(Consent::kCrossBorderSeparate) : 0;
    a.tenant_flags = r.flags;
    a.model = r.model;
    ProviderSet unhealthy;
    for (int p : r.unhealthy) unhealthy.set(static_cast<std::size_t>(p));
    return policy::Decide(a, snapshot, unhealthy);
  }
};

Compiled CompileModel(const Model& m) {
  auto result = Compile(ToSpec(m));
  for (const auto& e : result.errors) ADD_FAILURE() << "generated policy invalid: " << e.message;
  return {result.snapshot};
}

std::vector<int> Ints(const std::vector<ProviderIndex>& v) {
  return {v.begin(), v.end()};
}
std::vector<int> Ints(const std::vector<std::uint16_t>& v, int) {
  return {v.begin(), v.end()};
}

constexpr int kPolicies = 300;
constexpr int kRequestsPerPolicy = 150;

TEST(PolicyProperties, EngineAgreesWithIndependentModel) {
  for (int seed = 1; seed <= kPolicies; ++seed) {
    Gen gen(static_cast<std::uint32_t>(seed));
    const Model m = gen.Policy();
    const Compiled run = CompileModel(m);
    ASSERT_TRUE(run.snapshot) << "seed " << seed;
    for (int i = 0; i < kRequestsPerPolicy; ++i) {
      const Req r = gen.Request(static_cast<int>(m.providers.size()));
      const Prediction want = Predict(m, r);
      const Decision got = run.Decide(r);
      SCOPED_TRACE("seed " + std::to_string(seed) + " request " + std::to_string(i));
      ASSERT_EQ(Ints(got.guards_applied, 0), want.guards);
      ASSERT_EQ(got.route ? std::optional<int>(*got.route) : std::nullopt, want.route);
      ASSERT_EQ(Ints(got.candidates_after), want.after);
      ASSERT_EQ(got.allowed, !want.after.empty());
    }
  }
}

TEST(PolicyProperties, CandidatesAreWithinAllowAndEveryMatchingGuard) {
  for (int seed = 1; seed <= kPolicies; ++seed) {
    Gen gen(static_cast<std::uint32_t>(seed) * 7919u);
    const Model m = gen.Policy();
    const Compiled run = CompileModel(m);
    ASSERT_TRUE(run.snapshot);
    for (int i = 0; i < kRequestsPerPolicy; ++i) {
      const Req r = gen.Request(static_cast<int>(m.providers.size()));
      const Decision d = run.Decide(r);
      if (!d.allowed) {
        EXPECT_TRUE(d.candidates_after.empty());
        continue;
      }
      const Route& route = *d.MatchedRoute();
      for (ProviderIndex p : d.candidates_after) {
        EXPECT_TRUE(route.allow.test(p)) << "seed " << seed;
        EXPECT_EQ(r.unhealthy.count(p), 0u);
        EXPECT_NE(run.snapshot->providers[p].UpstreamModel(r.model), nullptr);
        for (int g = 0; g < static_cast<int>(m.guards.size()); ++g) {
          if (Holds(m.guards[static_cast<std::size_t>(g)].when, r)) {
            EXPECT_TRUE(Keeps(m.guards[static_cast<std::size_t>(g)].narrow, m.providers[p], p))
                << "seed " << seed << ": candidate " << p << " escapes guard g" << g;
          }
        }
      }
    }
  }
}

TEST(PolicyProperties, AddingAGuardNeverWidensAnyDecision) {
  for (int seed = 1; seed <= kPolicies; ++seed) {
    Gen gen(static_cast<std::uint32_t>(seed) * 104729u);
    const Model base = gen.Policy();
    Model narrowed = base;
    const auto at = static_cast<std::ptrdiff_t>(gen.Int(0, static_cast<int>(base.guards.size())));
    narrowed.guards.insert(narrowed.guards.begin() + at,
                           gen.Guard(static_cast<int>(base.providers.size())));
    const Compiled before = CompileModel(base);
    const Compiled after = CompileModel(narrowed);
    ASSERT_TRUE(before.snapshot && after.snapshot);
    for (int i = 0; i < kRequestsPerPolicy; ++i) {
      const Req r = gen.Request(static_cast<int>(base.providers.size()));
      const Decision a = before.Decide(r);
      const Decision b = after.Decide(r);
      if (!a.allowed) {
        EXPECT_FALSE(b.allowed) << "seed " << seed << ": a guard turned a denial into an allow";
        continue;
      }
      for (ProviderIndex p : b.candidates_after) {
        EXPECT_NE(std::find(a.candidates_after.begin(), a.candidates_after.end(), p),
                  a.candidates_after.end())
            << "seed " << seed << ": a guard added candidate p" << p;
      }
    }
  }
}

}  // namespace
}  // namespace meridian::policy
