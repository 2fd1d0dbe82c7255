#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for SECONDS (default 60), starting from
# the checked-in seed corpus. New inputs go to build/fuzz/corpus-<target>/ (not committed).
#   scripts/fuzz.sh            # every target, 60 s each
#   SECONDS_PER_TARGET=600 scripts/fuzz.sh policy_yaml_fuzz
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh >/dev/null
cmake --preset fuzz >/dev/null
seconds="${SECONDS_PER_TARGET:-60}"
targets=("$@")
((${#targets[@]})) || targets=(policy_yaml_fuzz request_json_fuzz)
# Only the fuzz targets: clang 14 cannot compile the server's coroutines with the fuzzer
# instrumentation ("Cannot represent a difference across sections").
cmake --build --preset fuzz -j "$(nproc)" --target "${targets[@]}"
for t in "${targets[@]}"; do
  seed="tests/fuzz/corpus/${t%_fuzz}"
  work="build/fuzz/corpus-$t"
  mkdir -p "$work"
  echo "== $t: ${seconds}s"
  "build/fuzz/tests/fuzz/$t" -max_total_time="$seconds" -print_final_stats=1 -max_len=65536 \
    -timeout=10 -rss_limit_mb=2048 "$work" "$seed" 2>&1 | grep -E "stat::|ERROR|SUMMARY|crash|Done" || true
done
