-- wrk script for tests/bench/load.sh: POSTs one chat completion body (env BODY, default a
-- short non-streaming request) with the bench tenant's key, and prints one summary line.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
wrk.body = os.getenv("BODY") or
  '{"model":"fake-model","messages":[{"role":"user","content":"Say hello."}],"max_tokens":64}'

function done(summary, latency, requests)
  local e = summary.errors
  local non2xx = e.status
  io.write(string.format(
    "SUMMARY requests=%d rps=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f " ..
    "errors=%d non2xx=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3,
    latency.max / 1e3, e.connect + e.read + e.write + e.timeout, non2xx))
end
