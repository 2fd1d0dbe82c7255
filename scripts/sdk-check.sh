#!/usr/bin/env bash
# Compatibility check with the official OpenAI SDK for Node (npm package `openai`, v4):
# starts `meridian serve` on the embedded demo and runs tests/sdk/openai_node_check.mjs.
# Needs node and npm (Debian: nodejs npm) and access to the npm registry.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --build --preset release --target meridian >/dev/null
work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
(cd "$work" && npm init -y >/dev/null && npm install --silent openai@4 >/dev/null)
port=$((20000 + RANDOM % 20000))
build/release/meridian serve --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
cp tests/sdk/openai_node_check.mjs "$work/check.mjs"
(cd "$work" && MERIDIAN_URL="http://127.0.0.1:$port/v1" node check.mjs)
