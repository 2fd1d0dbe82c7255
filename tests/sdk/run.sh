#!/usr/bin/env bash
# The official client libraries against the real gateway (ctest `sdk_openai_node`):
#
#   tests/sdk/run.sh MERIDIAN_BINARY WORK_DIR
#
# Installs the packages pinned by package-lock.json into WORK_DIR (npm ci; again only when the
# lock changes) and runs openai_node_check.mjs, which starts and stops the gateway itself.
# Needs node and npm (scripts/install-deps.sh) and the npm registry.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:?usage: run.sh MERIDIAN_BINARY WORK_DIR}"
work="${2:?usage: run.sh MERIDIAN_BINARY WORK_DIR}"
mkdir -p "$work"
if [ ! -d "$work/node_modules" ] || ! cmp -s "$here/package-lock.json" "$work/package-lock.json"; then
  cp "$here/package.json" "$here/package-lock.json" "$work/"
  (cd "$work" && npm ci --no-audit --no-fund --silent)
fi
cp "$here/openai_node_check.mjs" "$work/"
cd "$work"
exec node openai_node_check.mjs "$bin"
