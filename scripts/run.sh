#!/usr/bin/env bash
# Installs dependencies, builds Meridian (release) and runs `meridian` with the given
# arguments; with none, validates, tests and explains the shipped example policy.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh >/dev/null
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target meridian
bin=build/release/meridian
if (($# > 0)); then exec "$bin" "$@"; fi
"$bin" policy check config/examples/policy.yaml
"$bin" policy test config/examples/policy.yaml
"$bin" policy explain config/examples/policy.yaml \
  --request '{"tenant":"acme","region":"CN","data_class":"personal","model":"qwen-plus"}'
