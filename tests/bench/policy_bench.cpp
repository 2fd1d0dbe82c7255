// Decide on the shipped example policy and on a generated large policy.
//   build/release/tests/policy_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only
#include <benchmark/benchmark.h>

#include <boost/json/parse.hpp>
#include <random>

#include "config/policy_file.h"
#include "policy/compile.h"
#include "policy/decide.h"
#include "policy/diff.h"
#include "policy/request_json.h"

namespace meridian::policy {
namespace {

SnapshotPtr Example() {
  static SnapshotPtr s = [] {
    auto loaded = config::LoadPolicyFile(MERIDIAN_SOURCE_DIR "/config/examples/policy.yaml");
    if (!loaded.snapshot) std::abort();
    return loaded.snapshot;
  }();
  return s;
}

void DecideJsonBench(benchmark::State& state, const SnapshotPtr& s, const char* json) {
  auto [request, error] = ParseRequestJson(boost::json::parse(json), *s);
  if (!request) {
    state.SkipWithError(error.c_str());
    return;
  }
  const RequestAttributes attrs = request->Attributes();
  for (auto _ : state) {
    Decision d = Decide(attrs, s, request->unhealthy);
    benchmark::DoNotOptimize(d);
  }
}

// T3: mainland user, sensitive data: G2 matches, evaluating the nested allowed_export condition.
void BM_DecideExampleMainlandSensitive(benchmark::State& state) {
  DecideJsonBench(state, Example(),
                  R"({"tenant":"acme","region":"CN","data_class":"sensitive_personal",
                      "consent":{"sensitive_separate":true},"model":"qwen-plus"})");
}
BENCHMARK(BM_DecideExampleMainlandSensitive);

// T11: EU user, three guards apply, the last route but one matches.
void BM_DecideExampleEuZdr(benchmark::State& state) {
  DecideJsonBench(state, Example(),
                  R"({"tenant":"acme","region":"FR","data_class":"sensitive_personal",
                      "consent":{"sensitive_separate":true},"tenant_flags":["require_zdr"],
                      "model":"gpt-4.1"})");
}
BENCHMARK(BM_DecideExampleEuZdr);

LocatedString L(std::string s) {
  return {std::move(s), {}};
}

// 200 providers, 20 guards, 1,000 routes keyed on tenant and region; `changed`: route r500
// allows other providers (a policy change for the diff benchmark).
SnapshotPtr BuildLarge(bool changed) {
  {
    std::mt19937 rng(42);
    const std::vector<std::string> regions = {"CN", "HK", "US", "DE", "SG", "JP", "EU"};
    PolicySpec spec;
    for (int i = 0; i < 200; ++i) {
      ProviderSpec p;
      p.id = L("p" + std::to_string(i));
      p.kind = L("sim");
      p.models = {{L("m" + std::to_string(i % 10)), L("u"), {}}, {L("shared"), L("u"), {}}};
      LocationSpec loc;
      loc.items = {L(regions[static_cast<std::size_t>(i) % regions.size()])};
      p.processing = loc;
      p.zdr = Located<bool>{i % 3 == 0, {}};
      spec.providers.push_back(p);
    }
    for (int g = 0; g < 20; ++g) {
      GuardSpec gs;
      gs.id = L("g" + std::to_string(g));
      gs.when.region = StringList{L(regions[static_cast<std::size_t>(g) % regions.size()])};
      gs.when.data_class = L(">= personal");
      NarrowSpec n;
      n.processing_excludes =
          StringList{L(regions[static_cast<std::size_t>(g + 3) % regions.size()])};
      gs.narrow = n;
      spec.guards.push_back(gs);
    }
    for (int r = 0; r < 1000; ++r) {
      RouteSpec rs;
      rs.id = L("r" + std::to_string(r));
      rs.when.tenant = StringList{L("tenant" + std::to_string(r))};
      rs.when.region = StringList{L(regions[static_cast<std::size_t>(r) % regions.size()])};
      for (int k = 0; k < 8; ++k) {
        const int shift = changed && r == 500 ? 1 : 0;
        const std::string id = "p" + std::to_string((r * 7 + k * 13 + shift) % 200);
        rs.allow.push_back(L(id));
      }
      spec.routes.push_back(rs);
    }
    auto result = Compile(spec);
    if (!result.snapshot) std::abort();
    return result.snapshot;
  }
}

SnapshotPtr Large() {
  static SnapshotPtr s = BuildLarge(false);
  return s;
}

// Worst case for first-match: the request matches the last of 1,000 routes.
void BM_DecideLargeLastRoute(benchmark::State& state) {
  DecideJsonBench(
      state, Large(),
      R"({"tenant":"tenant999","region":"SG","data_class":"personal","model":"shared"})");
}
BENCHMARK(BM_DecideLargeLastRoute);

// No route matches: every route and every guard is evaluated.
void BM_DecideLargeNoMatch(benchmark::State& state) {
  DecideJsonBench(
      state, Large(),
      R"({"tenant":"stranger","region":"CN","data_class":"personal","model":"shared"})");
}
BENCHMARK(BM_DecideLargeNoMatch);

// `meridian policy diff` on the example policy against itself, and on the 1,000-route policy
// against a copy whose route r500 allows other providers.
void BM_DiffExample(benchmark::State& state) {
  for (auto _ : state) {
    const DiffReport r = Diff(Example(), Example());
    benchmark::DoNotOptimize(r.points);
  }
}
BENCHMARK(BM_DiffExample)->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_DiffLargeOneRouteChanged(benchmark::State& state) {
  static const SnapshotPtr changed = BuildLarge(true);
  DiffReport r;
  for (auto _ : state) {
    r = Diff(Large(), changed);
    benchmark::DoNotOptimize(r.points);
  }
  state.counters["points"] = static_cast<double>(r.points);
  state.counters["changed"] = static_cast<double>(r.changed);
  state.counters["decided"] = static_cast<double>(r.decided);
}
BENCHMARK(BM_DiffLargeOneRouteChanged)->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace
}  // namespace meridian::policy

BENCHMARK_MAIN();
