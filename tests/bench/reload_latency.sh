#!/usr/bin/env bash
# Request latency while the policy is reloaded (issue 19, item 5): a 1,000-route policy, a
# constant request rate, and a reload trigger fired every INTERVAL_MS during the measured run.
#
#   tests/bench/reload_latency.sh                     # 10 s per phase, 500 req/s, a trigger every 100 ms
#   DURATION=20 RATE=1000 INTERVAL_MS=50 ROUTES=2000 tests/bench/reload_latency.sh
#
# Phases: `none` (no reloads), `admin` (POST /admin/reload), `sighup` (kill -HUP) and `file`
# (the policy file rewritten, alternating between two versions, so the directory watch reloads
# and swaps a new table each time). admin and sighup reload an unchanged file: the whole
# compile runs, the swap is skipped. The 999 first routes match other tenants, so every request
# walks all of them before the last one matches: the policy's worst case.
#
# Prints per phase p50/p99/p99.9/max (ms, measured from the scheduled send time, so a stalled
# worker cannot hide queueing: wrk2-style) and the reloads the gateway counted. The load
# generator is ../shared/bench/src/loadgen.c (compiled on first use with gcc). Needs a release
# build (build/release/meridian, build/release/tests/fake_upstream) and curl.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/bench_lib.sh
bench_require_build
DURATION=${DURATION:-10} RATE=${RATE:-500} CONNS=${CONNS:-16} INTERVAL_MS=${INTERVAL_MS:-100}
ROUTES=${ROUTES:-1000} PORT=${PORT:-18891} ADMIN_PORT=${ADMIN_PORT:-18892}
loadgen=${LOADGEN:-}
if [[ -z $loadgen ]]; then
  src=../shared/bench/src/loadgen.c
  [[ -f $src ]] || { echo "reload_latency.sh: set LOADGEN (no $src)" >&2; exit 2; }
  loadgen=$build/loadgen
  [[ -x $loadgen && $loadgen -nt $src ]] || gcc -O2 -o "$loadgen" "$src"
fi

# The gateway gets the last CPU to itself, the load generator, the fake upstream and the
# triggers the others (GATEWAY_CPUS / LOAD_CPUS, taskset lists, override).
bench_pin 1
bench_workdir

"${pin_load[@]}" "$build/tests/fake_upstream" --threads 1 --tokens 5 --delay-ms 0 > "$dir/upstream.url" &
pids+=($!)
for _ in $(seq 100); do [[ -s $dir/upstream.url ]] && break; sleep 0.05; done
upstream=$(head -1 "$dir/upstream.url")

# policy_text VARIANT: ROUTES routes; VARIANT changes the last route's id (a new version).
policy_text() {
  {
    printf 'version: 1\nproviders:\n  - id: upstream\n    kind: openai_compatible\n'
    printf '    endpoint: %s\n    models: {fake-model: fake-model}\n' "$upstream"
    printf '    capabilities: [streaming]\n'
    printf '    processing: [US]\n    storage: [US]\nroutes:\n'
    for ((i = 1; i < ROUTES; i++)); do
      printf '  - id: other-%d\n    when: {tenant: [tenant-%d], data_class: ">= personal"}\n' "$i" "$i"
      printf '    allow: [upstream]\n'
    done
    printf '  - id: bench-%s\n    when: {tenant: bench}\n    allow: [upstream]\n' "$1"
  }
}
# Both versions written once, outside the policy's directory: a trigger only renames a copy in.
mkdir -p "$dir/variants"
policy_text a > "$dir/variants/a.yaml"
policy_text b > "$dir/variants/b.yaml"
write_policy() {
  cp "$dir/variants/$1.yaml" "$dir/policy.yaml.tmp"
  mv "$dir/policy.yaml.tmp" "$dir/policy.yaml"
}
write_policy a
cat > "$dir/gateway.yaml" <<YAML
listen: 127.0.0.1:$PORT
workers: 1
policy_file: policy.yaml
log: {access: false}
admin: {listen: "127.0.0.1:$ADMIN_PORT", token_env: MERIDIAN_BENCH_ADMIN_TOKEN}
$(bench_tenant_yaml)
YAML
export MERIDIAN_BENCH_ADMIN_TOKEN=bench-admin-token
"${pin_gw[@]}" "$build/meridian" serve --config "$dir/gateway.yaml" 2> "$dir/gateway.log" &
gw=$!
pids+=("$gw")
body='{"model":"fake-model","messages":[{"role":"user","content":"Say hello."}]}'
echo "$body" > "$dir/body.json"
url="http://127.0.0.1:$PORT/v1/chat/completions"
for _ in $(seq 100); do
  curl -fs -o /dev/null -H 'Authorization: Bearer sk-bench' -d "$body" "$url" && break
  kill -0 "$gw" 2>/dev/null || { cat "$dir/gateway.log" >&2; exit 1; }
  sleep 0.1
done
admin() { curl -fs -H "Authorization: Bearer $MERIDIAN_BENCH_ADMIN_TOKEN" "$@"; }
reloads() {
  admin "http://127.0.0.1:$ADMIN_PORT/metrics" |
    awk '/^meridian_policy_reloads_total/ { n += $2 } END { print n + 0 }'
}
started=$(date +%s%N)
admin -X POST "http://127.0.0.1:$ADMIN_PORT/admin/reload" > /dev/null
compile_ms=$((($(date +%s%N) - started) / 1000000))

# The triggers run in one python3 process each (no process spawned per trigger: forks on the
# load generator's CPU would show up as latency of their own). admin keeps one connection.
trigger() {
  local kind=$1
  case $kind in
    sighup) while :; do kill -HUP "$gw"; sleep "$(awk -v ms="$INTERVAL_MS" 'BEGIN { printf "%.3f", ms / 1000 }')"; done ;;
    *)
      exec python3 - "$kind" "$INTERVAL_MS" "$ADMIN_PORT" "$MERIDIAN_BENCH_ADMIN_TOKEN" "$dir" <<'PY'
import http.client, os, shutil, sys, time
kind, interval, port, token, d = sys.argv[1], int(sys.argv[2]) / 1000, sys.argv[3], sys.argv[4], sys.argv[5]
conn = http.client.HTTPConnection("127.0.0.1", int(port))
variant = "b"
while True:
    if kind == "admin":
        conn.request("POST", "/admin/reload", headers={"Authorization": "Bearer " + token})
        conn.getresponse().read()
    else:
        shutil.copyfile(f"{d}/variants/{variant}.yaml", f"{d}/policy.yaml.tmp")
        os.replace(f"{d}/policy.yaml.tmp", f"{d}/policy.yaml")
        variant = "a" if variant == "b" else "b"
    time.sleep(interval)
PY
      ;;
  esac
}

echo "reload latency: $ROUTES routes, $RATE req/s over $CONNS connections, ${DURATION}s per phase,"
echo "a trigger every ${INTERVAL_MS} ms; one admin reload round trip (unchanged file): ${compile_ms} ms"
for kind in none admin sighup file; do
  before=$(reloads)
  tp=
  if [[ $kind != none ]]; then
    trigger "$kind" &
    tp=$!
    [[ ${#pin_load[@]} -gt 0 ]] && taskset -pc "${pin_load[2]}" "$tp" > /dev/null
  fi
  out=$("${pin_load[@]}" "$loadgen" -u "$url" -c "$CONNS" -R "$RATE" -d "$DURATION" -w 1 -b "$dir/body.json" \
    -H 'Authorization: Bearer sk-bench' -H 'Content-Type: application/json' 2> /dev/null |
    grep '^RESULT')
  [[ -n $tp ]] && { kill "$tp"; wait "$tp" 2>/dev/null || true; }
  printf '%-7s %s reloads=%s\n' "$kind" "${out#RESULT }" "$(($(reloads) - before))"
done
