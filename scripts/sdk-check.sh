#!/usr/bin/env bash
# Compatibility check with the official OpenAI SDK for Node (npm package `openai`, pinned in
# tests/sdk/package-lock.json): builds `meridian` and runs tests/sdk/run.sh, the same check the
# test suite runs as `sdk_openai_node`. Needs node and npm and access to the npm registry.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --build --preset release --target meridian >/dev/null
exec tests/sdk/run.sh "$PWD/build/release/meridian" "$PWD/build/release/sdk"
