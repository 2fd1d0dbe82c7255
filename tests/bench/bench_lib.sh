# Shared by the load scripts in tests/bench (sourced, not run).

# bench_require_build: $build (BUILD, default build/release) holds the gateway and the fake
# upstream, else the script stops saying how to build them.
bench_require_build() {
  build=${BUILD:-build/release}
  local exe
  for exe in "$build/meridian" "$build/tests/fake_upstream"; do
    [[ -x $exe ]] || { echo "$(basename "$0"): $exe missing: cmake --build --preset release" >&2; exit 2; }
  done
}

# bench_pin N: the CPUs this process may run on (cgroups and taskset included), by id; the
# gateway gets the last N of them, the load (generator, fake upstream) the rest. Sets the
# arrays pin_gw and pin_load (taskset prefixes, empty when there are not enough CPUs).
# GATEWAY_CPUS and LOAD_CPUS (taskset lists) override the split.
bench_pin() {
  local n=$1
  local -a cpus
  mapfile -t cpus < <(python3 -c 'import os; print(*sorted(os.sched_getaffinity(0)), sep="\n")')
  if ((${#cpus[@]} > n)); then
    GATEWAY_CPUS=${GATEWAY_CPUS:-$(IFS=,; echo "${cpus[*]: -n}")}
    LOAD_CPUS=${LOAD_CPUS:-$(IFS=,; echo "${cpus[*]:0:${#cpus[@]}-n}")}
  fi
  if [[ -n ${GATEWAY_CPUS:-} ]]; then
    pin_gw=(taskset -c "$GATEWAY_CPUS") pin_load=(taskset -c "$LOAD_CPUS")
  else
    pin_gw=() pin_load=()
  fi
}

# bench_workdir: a temporary directory in $dir, and an EXIT trap that kills the processes
# listed in the array pids and removes the directory.
bench_workdir() {
  dir=$(mktemp -d)
  pids=()
  trap bench_cleanup EXIT
}
bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}

# The tenant the bench clients are: key "sk-bench", users in the US (gateway.yaml lines).
bench_tenant_yaml() {
  cat <<'YAML'
tenants:
  - id: bench
    # SHA-256 of "sk-bench", the key the load sends.
    api_key_sha256: [c00397de4384b5bbaf14c02fe1ec7020d28d1eeab6a722c576c84b6678c41c29]
    regions: [US]
    default_region: US
YAML
}
