#!/usr/bin/env bash
# Runs `meridian serve` as the `ours` target of the shared benchmark harness, in front of its
# fake OpenAI upstream. The harness exports PORT and UPSTREAM_URL; the harness sends
# "Authorization: Bearer sk-bench" and model "fake-model".
#
#   OURS_CMD="exec tests/bench/meridian_bench_target.sh" OURS_PORT=18890 ../shared/bench/run.sh
#
# MERIDIAN_BIN (default build/release/meridian) and MERIDIAN_WORKERS (default 1) may be set.
# MERIDIAN_BENCH_REDIS=HOST:PORT adds the shared state to every request: the tenant's limits
# (requests and tokens per minute for the tenant and per key, concurrent streams; set high
# enough never to refuse) and the export meter, on that Redis (which must persist: RDB or AOF).
# The gateway does its full work: auth, JSON, classifier, policy, metrics and the audit log
# (one JSON line per request, to a file under the temporary directory). The per-request access
# log line is off unless MERIDIAN_ACCESS_LOG=true.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
. "$here/tests/bench/bench_lib.sh"
bin="${MERIDIAN_BIN:-$here/build/release/meridian}"
# MERIDIAN_BENCH_DIR: where the config and the audit log go (default: a new temporary
# directory, left behind since this script execs the gateway).
dir="${MERIDIAN_BENCH_DIR:-$(mktemp -d)}"
mkdir -p "$dir"
cat > "$dir/policy.yaml" <<YAML
version: 1
providers:
  - id: upstream
    kind: openai_compatible
    endpoint: ${UPSTREAM_URL:?UPSTREAM_URL not set}
    models: {fake-model: fake-model}
    capabilities: [streaming]
    processing: [US]
    storage: [US]
routes:
  - id: bench
    when: {tenant: bench}
    allow: [upstream]
YAML
cat > "$dir/gateway.yaml" <<YAML
listen: 127.0.0.1:${PORT:?PORT not set}
workers: ${MERIDIAN_WORKERS:-1}
policy_file: policy.yaml
limits: {max_concurrent_streams: 20000}
audit: {path: audit.jsonl, max_file_bytes: 67108864, max_files: 2}
log: {access: ${MERIDIAN_ACCESS_LOG:-false}}
$(bench_tenant_yaml)
YAML
if [[ -n ${MERIDIAN_BENCH_REDIS:-} ]]; then
  cat >> "$dir/gateway.yaml" <<YAML
    limits:
      requests_per_minute: 100000000
      tokens_per_minute: 100000000000
      concurrent_streams: 100000
      per_key: {requests_per_minute: 100000000, tokens_per_minute: 100000000000}
store: {kind: redis, address: "$MERIDIAN_BENCH_REDIS", command_timeout_ms: 1000}
export_meter: {hmac_key_env: MERIDIAN_BENCH_METER_KEY, without_subject: allow_uncounted}
YAML
  export MERIDIAN_BENCH_METER_KEY=${MERIDIAN_BENCH_METER_KEY:-bench-meter-key-0123456789abcdef01234567}
fi
exec "$bin" serve --config "$dir/gateway.yaml"
