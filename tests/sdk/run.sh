#!/usr/bin/env bash
# The official client libraries, and a browser page in Debian's headless chromium, against the
# real gateway (ctests `sdk_openai_node`, `sdk_anthropic_node`, `sdk_browser_cors`):
#
#   tests/sdk/run.sh MERIDIAN_BINARY WORK_DIR CHECK.mjs
#
# Installs the packages pinned by package-lock.json into WORK_DIR (npm ci; again only when the
# lock changes) and runs CHECK.mjs (openai_node_check.mjs, anthropic_node_check.mjs), which
# starts and stops the gateway itself.
# Needs node and npm (scripts/install-deps.sh) and the npm registry.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:?usage: run.sh MERIDIAN_BINARY WORK_DIR}"
work="${2:?usage: run.sh MERIDIAN_BINARY WORK_DIR CHECK.mjs}"
check="${3:?usage: run.sh MERIDIAN_BINARY WORK_DIR CHECK.mjs}"
mkdir -p "$work"
if [ ! -d "$work/node_modules" ] || ! cmp -s "$here/package-lock.json" "$work/package-lock.json"; then
  cp "$here/package.json" "$here/package-lock.json" "$work/"
  (cd "$work" && npm ci --no-audit --no-fund --silent)
fi
cp "$here/$check" "$here/gateway.mjs" "$work/"
export MERIDIAN_SOURCE_DIR="$(cd "$here/../.." && pwd)"
cd "$work"
exec node "$check" "$bin"
