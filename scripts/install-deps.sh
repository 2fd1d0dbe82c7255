#!/usr/bin/env bash
# Installs every build and test dependency of Meridian from Debian 12 packages.
# Idempotent: packages already present are skipped. Works as root or through sudo.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libboost1.81-all-dev libboost-json1.81-dev libboost-url1.81-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libssl-dev openssl libyaml-cpp-dev libcli11-dev libmimalloc-dev libhiredis-dev
  redis-server
  haproxy    # the rolling-restart rehearsal (tests/deploy/rolling_restart.py)
  libgtest-dev libgmock-dev libbenchmark-dev
  prometheus
  systemd    # systemd-analyze verify of deploy/meridian.service
  clang libclang-rt-14-dev clang-format clang-tidy
  curl python3 python3-yaml
  chromium   # the browser CORS check (tests/sdk/browser_cors_check.mjs), headless
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# The SDK checks need node and npm: Debian's packages, unless a node (e.g. NodeSource's, which
# bundles npm and conflicts with Debian's npm package) is installed already.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
  SUDO="sudo"
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
