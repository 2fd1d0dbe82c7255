#!/usr/bin/env bash
# Builds the libFuzzer targets (preset `fuzz`: clang, ASan + UBSan, build/fuzz) and runs them.
# Fails (exit 1) when any target crashes, leaks, times out, runs out of memory, trips an
# invariant or does not build; prints one result line per target.
#
#   scripts/fuzz.sh                      # every target, FUZZ_SECONDS (default 60) each
#   scripts/fuzz.sh sse_parser_fuzz      # only the named targets
#   FUZZ_SECONDS=600 scripts/fuzz.sh policy_yaml_fuzz
#   scripts/fuzz.sh --smoke              # CI: replay each seed corpus, then FUZZ_SECONDS
#                                        # (default 10) of fuzzing per target
#
# Targets: every tests/fuzz/*_fuzz.cpp that the fuzz configuration defines (a target whose
# code under test is not there yet is reported as SKIP). Seeds: tests/fuzz/corpus/<name
# without _fuzz>/. Inputs found while fuzzing go to build/fuzz/corpus-<target>/ (not
# committed; a normal run keeps growing it, --smoke starts from the seeds only). A crashing
# input is saved as build/fuzz/artifacts/<target>/crash-* (or leak-*, timeout-*, oom-*) and
# its path printed; reproduce with build/fuzz/tests/fuzz/<target> <file>. Full libFuzzer logs:
# build/fuzz/logs/<target>.log.
# Environment: FUZZ_SECONDS, FUZZ_JOBS (build parallelism, default nproc),
# FUZZ_SKIP_DEPS=1 (do not run scripts/install-deps.sh). SECONDS_PER_TARGET is still read as
# the old name of FUZZ_SECONDS.
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=0
targets=()
for arg in "$@"; do
  case "$arg" in
    --smoke) smoke=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $arg" >&2; exit 2 ;;
    *) targets+=("$arg") ;;
  esac
done
if ((smoke)); then default_seconds=10; else default_seconds=60; fi
seconds="${FUZZ_SECONDS:-${SECONDS_PER_TARGET:-$default_seconds}}"
jobs="${FUZZ_JOBS:-$(nproc)}"

[[ "${FUZZ_SKIP_DEPS:-0}" == 1 ]] || scripts/install-deps.sh >/dev/null
cmake --preset fuzz >/dev/null

out=build/fuzz/tests/fuzz
# Targets the configuration defines (tests/fuzz/CMakeLists.txt writes the list).
[[ -f "$out/fuzz_targets.txt" ]] || { echo "fuzz.sh: $out/fuzz_targets.txt missing" >&2; exit 1; }
mapfile -t defined < <(grep -v '^$' "$out/fuzz_targets.txt" || true)
all=()
for f in tests/fuzz/*_fuzz.cpp; do all+=("$(basename "$f" .cpp)"); done
((${#targets[@]})) || targets=("${all[@]}")

declare -A is_defined=()
for t in "${defined[@]}"; do is_defined[$t]=1; done
run=()
skipped=()
for t in "${targets[@]}"; do
  if [[ -n "${is_defined[$t]:-}" ]]; then
    run+=("$t")
  elif [[ -f "tests/fuzz/$t.cpp" ]]; then
    skipped+=("$t")
  else
    echo "fuzz.sh: no such fuzz target: $t (have: ${all[*]})" >&2
    exit 2
  fi
done

declare -A result=()
failed=0
# Only the fuzz targets: clang 14 cannot compile the server's coroutines with the fuzzer
# instrumentation ("Cannot represent a difference across sections"). Build each target on its
# own so that one that does not compile does not hide the results of the others.
mkdir -p build/fuzz/logs
if ((${#run[@]})); then
  if ! cmake --build --preset fuzz -j "$jobs" --target "${run[@]}" >build/fuzz/logs/build.log 2>&1; then
    ok_run=()
    for t in "${run[@]}"; do
      if cmake --build --preset fuzz -j "$jobs" --target "$t" >"build/fuzz/logs/build-$t.log" 2>&1; then
        ok_run+=("$t")
      else
        echo "== $t: BUILD FAILED (build/fuzz/logs/build-$t.log):"
        grep -E 'error|FAILED' "build/fuzz/logs/build-$t.log" | head -20 || true
        result[$t]="FAIL  build failed (build/fuzz/logs/build-$t.log)"
        failed=1
      fi
    done
    run=("${ok_run[@]+"${ok_run[@]}"}")
  fi
fi

# Sanitizer settings: leaks are failures; UBSan findings abort (the preset also compiles
# with -fno-sanitize-recover=all).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

for t in "${run[@]+"${run[@]}"}"; do
  seed="tests/fuzz/corpus/${t%_fuzz}"
  bin="$out/$t"
  log="build/fuzz/logs/$t.log"
  artifacts="build/fuzz/artifacts/$t/"
  mkdir -p "$artifacts"
  if [[ ! -d "$seed" ]]; then
    result[$t]="FAIL  no seed corpus $seed"
    failed=1
    continue
  fi
  common=(-max_len=65536 -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048
          -artifact_prefix="$artifacts" -print_final_stats=1)
  start=$(date +%s)
  status=0
  : >"$log"
  if ((smoke)); then
    # 1. Every seed must still pass (regression inputs live there too).
    "$bin" "${common[@]}" -runs=0 "$seed" >>"$log" 2>&1 || status=$?
    # 2. A short fuzzing budget from the seeds, in a scratch corpus.
    if ((status == 0)); then
      work="build/fuzz/smoke-corpus-$t"
      rm -rf "$work" && mkdir -p "$work"
      "$bin" "${common[@]}" -max_total_time="$seconds" "$work" "$seed" >>"$log" 2>&1 || status=$?
    fi
  else
    work="build/fuzz/corpus-$t"
    mkdir -p "$work"
    "$bin" "${common[@]}" -max_total_time="$seconds" "$work" "$seed" >>"$log" 2>&1 || status=$?
  fi
  elapsed=$(($(date +%s) - start))
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | tail -1 | awk '{print $2}')
  if ((status == 0)); then
    result[$t]="ok    ${execs:-?} execs in ${elapsed}s"
  else
    failed=1
    artifact=$(grep -oE 'Test unit written to [^ ]+' "$log" | tail -1 | sed 's/Test unit written to //')
    kind=$(grep -m1 -oE 'INVARIANT VIOLATED|ERROR: libFuzzer: [a-z-]+|ERROR: AddressSanitizer: [a-z-]+|ERROR: LeakSanitizer|runtime error|out-of-memory|timeout' "$log" || true)
    result[$t]="FAIL  ${kind:-exit $status} after ${elapsed}s; input: ${artifact:-none saved}; log: $log"
    echo "== $t: FAILED (exit $status); end of $log:"
    # The report without libFuzzer's and libc's own stack frames.
    grep -E 'INVARIANT|ERROR|SUMMARY|runtime error|#[0-9]+ 0x|Test unit written|Base64' "$log" |
      grep -vE 'fuzzer::|__sanitizer_|libc\.so|libc-start|_start \(' | head -40 || true
  fi
done

echo "== fuzz results (${seconds}s per target$( ((smoke)) && echo ", seeds replayed first"))"
for t in "${targets[@]}"; do
  if [[ -n "${result[$t]:-}" ]]; then
    printf 'fuzz %-24s %s\n' "$t" "${result[$t]}"
  else
    printf 'fuzz %-24s SKIP  not defined by the fuzz configuration (see tests/fuzz/CMakeLists.txt)\n' "$t"
  fi
done
exit "$failed"
