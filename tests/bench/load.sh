#!/usr/bin/env bash
# Load test of `meridian serve` on this machine: the gateway (full work: API-key auth, JSON,
# classifier, policy, metrics, audit log) in front of the test suite's fake OpenAI upstream,
# driven by wrk, all on loopback.
#
#   tests/bench/load.sh                       # 10 s non-streaming at 64 connections, 10 s of 200 streams
#   DURATION=30 CONNS=128 STREAMS=500 WORKERS=2 tests/bench/load.sh
#
# Prints, per phase: requests/s, latency p50/p90/p99 (wrk; for streams the whole stream), the
# gateway's CPU time per request (from /proc; in-flight requests wrk cuts off at the end are
# not counted, so slightly high) and its peak RSS. The gateway is pinned to the last WORKERS
# CPUs it may use and the load (wrk + fake upstream) to the others; GATEWAY_CPUS and LOAD_CPUS
# (taskset lists) override that. Needs a release build and wrk (apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/bench_lib.sh
bench_require_build
command -v wrk >/dev/null || { echo "load.sh: wrk missing: apt-get install wrk" >&2; exit 2; }

DURATION=${DURATION:-10} CONNS=${CONNS:-64} STREAMS=${STREAMS:-200}
TOKENS=${TOKENS:-50} TOKEN_DELAY_MS=${TOKEN_DELAY_MS:-5} WORKERS=${WORKERS:-1}
PORT=${PORT:-18890}
bench_pin "$WORKERS"
bench_workdir

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# phase NAME DELAY_MS CONNECTIONS BODY
phase() {
  local name=$1 delay=$2 conns=$3 body=$4
  "${pin_load[@]}" "$build/tests/fake_upstream" --threads 1 --tokens "$TOKENS" \
    --delay-ms "$delay" > "$dir/upstream.url" &
  local up=$!
  pids+=("$up")
  for _ in $(seq 100); do [[ -s $dir/upstream.url ]] && break; sleep 0.05; done
  [[ -s $dir/upstream.url ]] || { echo "load.sh: the fake upstream did not start" >&2; exit 1; }
  PORT=$PORT UPSTREAM_URL=$(head -1 "$dir/upstream.url") MERIDIAN_WORKERS=$WORKERS \
    MERIDIAN_BIN="$build/meridian" MERIDIAN_BENCH_DIR="$dir/gateway" \
    "${pin_gw[@]}" tests/bench/meridian_bench_target.sh 2> "$dir/gateway.log" &
  local gw=$!
  pids+=("$gw")
  local url="http://127.0.0.1:$PORT/v1/chat/completions" up_ok=
  for _ in $(seq 100); do
    curl -fs -o /dev/null -H 'Authorization: Bearer sk-bench' -d "$body" "$url" && { up_ok=1; break; }
    kill -0 "$gw" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z $up_ok ]]; then
    echo "load.sh: the gateway did not answer on port $PORT; its log:" >&2
    cat "$dir/gateway.log" >&2
    exit 1
  fi
  # Warm-up (connections, pools), then the measured run.
  BODY=$body "${pin_load[@]}" wrk -t1 -c"$conns" -d2s -s tests/bench/wrk_chat.lua "$url" >/dev/null
  local c0 c1 out requests
  c0=$(ticks "$gw")
  out=$(BODY=$body "${pin_load[@]}" wrk -t1 -c"$conns" -d"${DURATION}s" --timeout 10s \
    -s tests/bench/wrk_chat.lua "$url" | grep '^SUMMARY')
  c1=$(ticks "$gw")
  requests=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$out")
  printf '%-10s %s cpu_us_per_request=%s peak_rss_mib=%s\n' "$name" "${out#SUMMARY }" \
    "$(awk -v d=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v n="$requests" \
      'BEGIN { if (n > 0) printf "%.1f", 1e6 * d / hz / n; else print "-" }')" \
    "$(awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$gw/status")"
  kill "$gw" "$up"
  wait "$gw" "$up" 2>/dev/null || true
  pids=()
  grep -h 'drained' "$dir/gateway.log" | sed 's/^/           gateway: /' || true
  rm -rf "$dir/upstream.url" "$dir/gateway"
}

echo "meridian load test: ${DURATION}s per phase, workers=$WORKERS, gateway CPUs ${GATEWAY_CPUS:-any}"
phase json 0 "$CONNS" \
  '{"model":"fake-model","messages":[{"role":"user","content":"Say hello."}],"max_tokens":64}'
phase stream "$TOKEN_DELAY_MS" "$STREAMS" \
  '{"model":"fake-model","stream":true,"messages":[{"role":"user","content":"Say hello."}]}'
