#!/usr/bin/env bash
# Installs dependencies, builds Meridian (release) and runs `meridian` with the given
# arguments. With none, it runs `meridian serve` on the embedded demo configuration: the
# example policy with every provider simulated, on http://127.0.0.1:8080, demo key
# sk-meridian-demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh >/dev/null
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target meridian
bin=build/release/meridian
if (($# > 0)); then exec "$bin" "$@"; fi
exec "$bin" serve
