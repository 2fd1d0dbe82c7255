#!/usr/bin/env bash
# TTFB, total stream time and RSS of `meridian serve` under N concurrent gRPC Generate streams
# through the simulated engine (the example policy with every provider simulated).
#   tests/bench/grpc_bench.sh                 # 200 streams x 5 rounds
#   STREAMS=1000 ROUNDS=3 tests/bench/grpc_bench.sh
# Needs a release build (scripts/test.sh or cmake --build --preset release).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=build/release
port="${PORT:-19090}"
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
cp config/examples/policy.yaml "$dir/policy.yaml"
sed -e "s|^listen: .*|listen: 127.0.0.1:0|" config/examples/gateway.yaml > "$dir/gateway.yaml"
printf 'grpc:\n  listen: 127.0.0.1:%s\n  plaintext: true\n' "$port" >> "$dir/gateway.yaml"
"$build/meridian" serve --config "$dir/gateway.yaml" --simulate 2> "$dir/serve.log" &
pid=$!
for _ in $(seq 1 100); do
  grep -q "gRPC listening" "$dir/serve.log" && break
  sleep 0.1
done
"$build/tests/grpc_load" --target "127.0.0.1:$port" --key sk-meridian-demo --model qwen-plus \
  --streams "${STREAMS:-200}" --rounds "${ROUNDS:-5}" --pid "$pid"
