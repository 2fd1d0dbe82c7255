// Metrics hot path: Counter::Inc and Histogram::Observe, single-threaded and with two threads
// updating the SAME metric (sharded slots: no shared cache line). A plain shared atomic counter
// is included as the contended baseline.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>

#include "gateway/metrics.h"

namespace {

using meridian::metrics::Counter;
using meridian::metrics::DefaultLatencyBuckets;
using meridian::metrics::Histogram;
using meridian::metrics::Registry;

Registry& Reg() {
  static Registry r;
  return r;
}

Counter& SharedCounter() {
  static Counter& c = Reg().AddCounter("bench_requests_total", "Requests.", {"route"}).With({"a"});
  return c;
}

Histogram& SharedHistogram() {
  static Histogram& h =
      Reg()
          .AddHistogram("bench_duration_seconds", "Duration.", {"route"}, DefaultLatencyBuckets())
          .With({"a"});
  return h;
}

void BM_CounterInc(benchmark::State& state) {
  Counter& c = SharedCounter();
  for (auto _ : state) c.Inc();
  benchmark::DoNotOptimize(c.Value());
}
BENCHMARK(BM_CounterInc);
BENCHMARK(BM_CounterInc)->Threads(2);

void BM_HistogramObserve(benchmark::State& state) {
  Histogram& h = SharedHistogram();
  // Cycle over values spread across the buckets (and +Inf).
  static constexpr double kValues[8] = {0.0003, 0.004, 0.02, 0.07, 0.3, 1.2, 7, 90};
  std::uint64_t i = static_cast<std::uint64_t>(state.thread_index());
  for (auto _ : state) {
    h.Observe(kValues[i & 7]);
    ++i;
  }
}
BENCHMARK(BM_HistogramObserve);
BENCHMARK(BM_HistogramObserve)->Threads(2);

// Baseline: one shared atomic (what an unsharded counter costs under contention).
void BM_SharedAtomicBaseline(benchmark::State& state) {
  static std::atomic<std::uint64_t> shared{0};
  for (auto _ : state) shared.fetch_add(1, std::memory_order_relaxed);
}
BENCHMARK(BM_SharedAtomicBaseline);
BENCHMARK(BM_SharedAtomicBaseline)->Threads(2);

void BM_Render(benchmark::State& state) {
  SharedCounter().Inc();
  SharedHistogram().Observe(0.1);
  for (auto _ : state) benchmark::DoNotOptimize(Reg().Render());
}
BENCHMARK(BM_Render);

}  // namespace
