#!/usr/bin/env bash
# Installs dependencies, builds Meridian and runs every test; prints CTest's summary.
#   scripts/test.sh            release build (build/release), then the fuzz smoke
#   scripts/test.sh asan       AddressSanitizer + UndefinedBehaviorSanitizer (build/asan)
#   scripts/test.sh tsan       ThreadSanitizer (build/tsan; suppressions: tests/tsan.supp)
#
# The release invocation then runs the fuzz smoke (scripts/fuzz.sh --smoke: every libFuzzer
# target replays its seed corpus, then fuzzes FUZZ_SECONDS, default 10 s; one result line per
# target) and fails when a target crashes, leaks, times out or trips an invariant. It adds
# about a minute of fuzzing plus the first build of build/fuzz. Set MERIDIAN_SKIP_FUZZ=1 to
# skip it. Other presets (asan, tsan, debug) never run it.
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
scripts/install-deps.sh
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)"
ctest --preset "$preset" -j "$(nproc)"
if [[ "$preset" == release && "${MERIDIAN_SKIP_FUZZ:-0}" != 1 ]]; then
  echo "== fuzz smoke (scripts/fuzz.sh --smoke; MERIDIAN_SKIP_FUZZ=1 skips it)"
  FUZZ_SKIP_DEPS=1 scripts/fuzz.sh --smoke
fi
