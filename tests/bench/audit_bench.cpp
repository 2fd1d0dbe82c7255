// The audit writer's per-record cost (on its own thread, never the request path): formatting a
// record as JSON, and what the hash chain adds (SHA-256 over the line, appending seq and
// chain). Target of issue 17: the chain <= 1 us per record.
#include <benchmark/benchmark.h>

#include <string>

#include "gateway/audit.h"
#include "gateway/audit_chain.h"

namespace meridian::audit {
namespace {

// A typical record: an allowed streamed request with one attempt, tokens and timings.
Record Typical() {
  Record r;
  r.time_unix_ms = 1764800000123;
  r.request_id = "req_01jf8z3v9q6m2k4h7t5w0x1y2z";
  r.front_end = "http";
  r.tenant = "acme-phones";
  r.model = "qwen-plus";
  r.upstream_model = "qwen-plus-2025-01-25";
  r.region = "CN";
  r.region_source = "tenant_binding";
  r.declared_class = "personal";
  r.effective_class = "sensitive_personal";
  r.raised_by = {"cn_resident_id"};
  r.allowed = true;
  r.rule = "cn-sensitive-local";
  r.guards = {"pipl-sensitive-local", "pipl-no-offshore"};
  r.candidates = {"local-qwen", "dashscope-beijing"};
  r.attempts = {{"local-qwen", "ok", 812345}};
  r.status = 200;
  r.prompt_tokens = 412;
  r.completion_tokens = 230;
  r.total_tokens = 642;
  r.ttft_us = 95000;
  r.total_us = 842345;
  r.policy_version = "sha256:3f1c9a0e";
  return r;
}

void BM_FormatLine(benchmark::State& state) {
  const Record r = Typical();
  for (auto _ : state) benchmark::DoNotOptimize(ToJsonLine(r));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FormatLine);

void BM_FormatAndChainLine(benchmark::State& state) {
  const Record r = Typical();
  ChainState chain;
  for (auto _ : state) benchmark::DoNotOptimize(ToChainedLine(r, chain));
  state.SetItemsProcessed(state.iterations());
  state.counters["line_bytes"] = static_cast<double>(ToChainedLine(r, chain).size());
}
BENCHMARK(BM_FormatAndChainLine);

// The chain alone: what it costs beyond formatting.
void BM_ChainLineOnly(benchmark::State& state) {
  const std::string formatted = ToJsonLine(Typical());
  ChainState chain;
  std::string line;
  for (auto _ : state) {
    line = formatted;
    ChainLine(line, chain);
    benchmark::DoNotOptimize(line.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ChainLineOnly);

void BM_SignCheckpoint(benchmark::State& state) {
  // Not per record: once per checkpoint_interval_s (and at shutdown).
  const std::string pem = Ed25519Key::GeneratePrivatePem();
  std::unique_ptr<Ed25519Key> key;
  if (!Ed25519Key::FromPrivatePem(pem, key).ok()) {
    state.SkipWithError("key");
    return;
  }
  Checkpoint c;
  c.reason = "interval";
  for (auto _ : state) {
    ++c.n;
    benchmark::DoNotOptimize(FormatCheckpoint(c, *key));
  }
}
BENCHMARK(BM_SignCheckpoint);

}  // namespace
}  // namespace meridian::audit

BENCHMARK_MAIN();
