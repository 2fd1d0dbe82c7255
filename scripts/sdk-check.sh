#!/usr/bin/env bash
# Compatibility checks with the official OpenAI and Anthropic SDKs for Node (npm `openai` and
# `@anthropic-ai/sdk`, pinned in tests/sdk/package-lock.json): builds `meridian` and runs
# tests/sdk/run.sh, the same checks the test suite runs as `sdk_openai_node` and
# `sdk_anthropic_node` and `sdk_browser_cors`. Needs node and npm, access to the npm registry,
# and /usr/bin/chromium (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --build --preset release --target meridian >/dev/null
for sdk in openai anthropic; do
  tests/sdk/run.sh "$PWD/build/release/meridian" "$PWD/build/release/sdk-$sdk" "${sdk}_node_check.mjs"
done
tests/sdk/run.sh "$PWD/build/release/meridian" "$PWD/build/release/sdk-browser" browser_cors_check.mjs
