#!/usr/bin/env bash
# Builds deploy/container/Dockerfile with podman and checks the image keeps its promises
# (deploy/README.md, "Container image"):
#
#   - it builds offline (--pull=never: debian:12 and debian:12-slim must be present locally);
#   - it carries the HEALTHCHECK and runs as 10001:10001;
#   - its size is below MERIDIAN_IMAGE_MAX_MB and the runtime image holds no compiler,
#     build tool or -dev package;
#   - started with --read-only and its default command (the embedded demo), it answers
#     GET /healthz, its healthcheck command reports healthy, and the demo key gets a chat
#     completion (an unknown key gets 401);
#   - the gateway (PID 1) runs as uid 10001 and cannot write to the root file system;
#   - `podman stop` (SIGTERM) drains it and it exits 0, without the SIGKILL fallback.
#
# usage: tests/deploy/container_image_check.sh [SOURCE_DIR]    (default: this checkout)
#
# Environment:
#   MERIDIAN_IMAGE          tag to build and run (default meridian:test)
#   MERIDIAN_SKIP_BUILD=1   check an image already built under MERIDIAN_IMAGE
#   MERIDIAN_IMAGE_MAX_MB   size limit of the image (default 250)
#   MERIDIAN_START_TIMEOUT  seconds from `podman run` to healthy (default 60)
#   MERIDIAN_STOP_TIMEOUT   podman stop -t: SIGKILL after this many seconds (default 45, as
#                           terminationGracePeriodSeconds and TimeoutStopSec)
#   MERIDIAN_KEEP_IMAGE=0   remove the image at the end (default: keep it, builds are cached)
#
# Exit 0 when every check passes, 1 when one fails (each failure printed as FAIL: ...),
# 77 when the check cannot run here (no podman, no curl, no local base images).

set -u

SKIP=77
script_dir=$(cd "$(dirname "$0")" && pwd)
src=${1:-$(cd "$script_dir/../.." && pwd)}
image=${MERIDIAN_IMAGE:-meridian:test}
max_mb=${MERIDIAN_IMAGE_MAX_MB:-250}
start_timeout=${MERIDIAN_START_TIMEOUT:-60}
stop_timeout=${MERIDIAN_STOP_TIMEOUT:-45}
demo_key=sk-meridian-demo
name="meridian-image-check-$$"
failures=0
container=""

say() { printf 'container_image_check: %s\n' "$*"; }
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  failures=$((failures + 1))
}
skip() {
  printf 'SKIP: %s\n' "$*" >&2
  exit "$SKIP"
}
# Milliseconds since the epoch (bash 5's EPOCHREALTIME).
now_ms() {
  local t=${EPOCHREALTIME/[.,]/}
  printf '%s' $((t / 1000))
}
elapsed() { # START_MS -> "12.345 s"
  local d=$(($(now_ms) - $1))
  printf '%d.%03d s' $((d / 1000)) $((d % 1000))
}
show_logs() {
  [ -n "$container" ] || return 0
  say "container logs (last 40 lines):"
  podman logs --tail 40 "$container" 2>&1 | sed 's/^/  | /' >&2
}
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  if [ -n "$container" ]; then
    podman rm -f -v "$container" >/dev/null 2>&1
  fi
  if [ "${MERIDIAN_KEEP_IMAGE:-1}" = 0 ]; then
    podman rmi "$image" >/dev/null 2>&1
  fi
}
trap cleanup EXIT
# podman, without podman's complaints that it cannot schedule the healthcheck with systemd
# timers on a host without systemd (the check runs the healthcheck itself).
podman_q() {
  local err rc
  err=$(mktemp)
  podman "$@" 2>"$err"
  rc=$?
  grep -v 'unable to get systemd connection' "$err" >&2
  rm -f "$err"
  return "$rc"
}
# A failure the remaining checks cannot get past.
die() {
  fail "$*"
  show_logs
  say "$failures check(s) failed"
  exit 1
}

command -v podman >/dev/null 2>&1 || skip "podman is not installed (apt-get install podman)"
command -v curl >/dev/null 2>&1 || skip "curl is not installed"
[ -f "$src/deploy/container/Dockerfile" ] || die "$src/deploy/container/Dockerfile not found"

# --- build ---------------------------------------------------------------------------------
if [ "${MERIDIAN_SKIP_BUILD:-0}" = 1 ]; then
  podman image exists "$image" || die "MERIDIAN_SKIP_BUILD=1 but there is no image $image"
  say "using the existing image $image"
else
  while read -r base; do
    podman image exists "$base" </dev/null ||
      skip "base image $base is not present locally and the build does not pull (podman pull $base, or import one)"
  done < <(sed -n 's/^FROM \([^ ]*\).*/\1/p' "$src/deploy/container/Dockerfile")
  say "building $image from $src (podman build --pull=never --format docker)"
  t0=$(now_ms)
  # --format docker: the OCI image format has no HEALTHCHECK; podman drops it with a warning.
  if ! (cd "$src" && podman build --pull=never --format docker \
    -f deploy/container/Dockerfile -t "$image" .); then
    die "podman build failed"
  fi
  say "image built in $(elapsed "$t0")"
fi

# --- the image -----------------------------------------------------------------------------
user=$(podman image inspect --format '{{.Config.User}}' "$image")
[ "$user" = "10001:10001" ] || fail "image user is '$user', expected 10001:10001"

health=$(podman image inspect --format '{{json .HealthCheck}}' "$image" 2>/dev/null)
case $health in
  *healthz*) ;;
  *) fail "the image carries no /healthz HEALTHCHECK (got '$health'; built without --format docker?)" ;;
esac

size=$(podman image inspect --format '{{.Size}}' "$image")
size_mb=$((size / 1000000))
say "image size: $size bytes ($size_mb MB)"
[ "$size_mb" -le "$max_mb" ] || fail "image is $size_mb MB, above the $max_mb MB limit"

# Build tools on PATH, and packages that only a build needs.
tools=$(podman run --rm --network none --entrypoint /bin/sh "$image" -c \
  'for t in cc c++ gcc g++ cpp clang clang++ ld as make cmake ninja protoc; do
     command -v "$t"; done; exit 0')
[ -z "$tools" ] || fail "the runtime image has build tools: $(printf '%s' "$tools" | tr '\n' ' ')"
dev=$(podman run --rm --network none --entrypoint /usr/bin/dpkg-query "$image" \
  -W -f '${Package}\n' | grep -E '^(gcc|g\+\+|cpp|clang|binutils|make|cmake|ninja-build|build-essential)(-[0-9.]+)?$|-dev$')
[ -z "$dev" ] || fail "the runtime image has build packages: $(printf '%s' "$dev" | tr '\n' ' ')"

# --- run -----------------------------------------------------------------------------------
t_run=$(now_ms)
# The image's own command (the embedded demo on 0.0.0.0:8080); a free host port on 127.0.0.1.
container=$(podman_q run -d --read-only --name "$name" -p 127.0.0.1::8080 "$image") ||
  die "podman run failed"
running() { [ "$(podman inspect --format '{{.State.Running}}' "$container" 2>/dev/null)" = true ]; }
exited() {
  die "the container exited $1 (exit code $(podman inspect --format '{{.State.ExitCode}}' "$container"))"
}
port=$(podman port "$container" 8080/tcp | sed -n '1s/.*://p')
if [ -z "$port" ]; then
  running || exited "at once"
  die "no host port mapped to 8080/tcp"
fi
base="http://127.0.0.1:$port"
say "container $name started, API on $base"

# Poll /healthz until it answers 200 or the deadline passes.
deadline=$((SECONDS + start_timeout))
until [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$base/healthz")" = 200 ]; do
  running || exited "before /healthz answered"
  [ "$SECONDS" -lt "$deadline" ] || die "GET /healthz did not answer 200 within $start_timeout s"
  sleep 0.2
done
say "GET /healthz: 200 after $(elapsed "$t_run")"

# The image's HEALTHCHECK command, run inside the container. (podman schedules it with systemd
# timers; without systemd nothing runs it by itself, so run it explicitly, within the deadline.)
until podman healthcheck run "$container" >/dev/null 2>&1; do
  running || exited "during the healthcheck"
  [ "$SECONDS" -lt "$deadline" ] || die "the HEALTHCHECK command did not report healthy within $start_timeout s"
  sleep 0.2
done
status=$(podman inspect --format '{{.State.Health.Status}}' "$container" 2>/dev/null ||
  podman inspect --format '{{.State.Healthcheck.Status}}' "$container")
[ "$status" = healthy ] || fail "health status is '$status' after a passing healthcheck run"
say "healthcheck: $status after $(elapsed "$t_run")"

# One request to the embedded demo.
body=$(mktemp)
headers=$(mktemp)
code=$(curl -s -m 10 -o "$body" -D "$headers" -w '%{http_code}' "$base/v1/chat/completions" \
  -H "Authorization: Bearer $demo_key" -H 'Content-Type: application/json' \
  -d '{"model":"qwen-plus","messages":[{"role":"user","content":"Hello"}]}')
if [ "$code" != 200 ]; then
  fail "POST /v1/chat/completions with the demo key: HTTP $code: $(head -c 300 "$body")"
elif ! grep -q '"choices"' "$body"; then
  fail "the chat completion has no choices: $(head -c 300 "$body")"
elif ! grep -qi '^x-meridian-provider:' "$headers"; then
  fail "the chat completion has no x-meridian-provider header"
else
  say "POST /v1/chat/completions (demo key): 200, provider $(sed -n 's/^[Xx]-[Mm]eridian-[Pp]rovider: *//p' "$headers" | tr -d '\r')"
fi
code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$base/v1/chat/completions" \
  -H 'Authorization: Bearer sk-not-a-key' -H 'Content-Type: application/json' \
  -d '{"model":"qwen-plus","messages":[{"role":"user","content":"Hello"}]}')
[ "$code" = 401 ] || fail "an unknown API key got HTTP $code, expected 401"
rm -f "$body" "$headers"

# Who the gateway runs as: PID 1 is meridian itself (ENTRYPOINT, exec form).
uids=$(podman exec "$container" sed -n 's/^Uid:[[:space:]]*//p' /proc/1/status | tr -s '[:space:]' ' ')
case $uids in
  "10001 10001 10001 10001 ") say "PID 1 runs as uid 10001 (real, effective, saved, fs)" ;;
  *) fail "PID 1 uids are '$uids', expected 10001 for all four" ;;
esac
exec_uid=$(podman exec "$container" id -u)
[ "$exec_uid" = 10001 ] || fail "podman exec id -u: '$exec_uid', expected 10001"
comm=$(podman exec "$container" cat /proc/1/comm)
[ "$comm" = meridian ] || fail "PID 1 is '$comm', expected meridian"
if podman exec "$container" /bin/sh -c ': > /usr/local/bin/.write-test' 2>/dev/null; then
  fail "the root file system is writable despite --read-only"
fi

# --- stop: SIGTERM, drain, exit 0 ----------------------------------------------------------
t_stop=$(now_ms)
podman_q stop -t "$stop_timeout" "$container" >/dev/null || fail "podman stop failed"
stop_took=$(elapsed "$t_stop")
exit_code=$(podman inspect --format '{{.State.ExitCode}}' "$container")
if [ "$exit_code" = 0 ]; then
  say "podman stop: exit code 0 after $stop_took"
else
  fail "exit code after podman stop is $exit_code, expected 0 (137 means SIGKILL after $stop_timeout s)"
fi
podman logs "$container" 2>&1 | grep -q 'received SIGTERM: draining' ||
  fail "the gateway did not log 'received SIGTERM: draining'"

if [ "$failures" -ne 0 ]; then
  show_logs
  say "$failures check(s) failed"
  exit 1
fi
say "all checks passed"
exit 0
