#!/usr/bin/env bash
# Sourced by the README's commands: makes sure pnpm is there and the workspace is installed and
# built, on a fresh clone of a machine that has only Node 20 and npm.
set -euo pipefail
PNPM_VERSION=12.4.2
export TURBO_TELEMETRY_DISABLED=1

if ! command -v pnpm >/dev/null 2>&1; then
  echo "setup: installing pnpm@${PNPM_VERSION} with npm" >&2
  if ! npm install -g "pnpm@${PNPM_VERSION}" >/dev/null 2>&1; then
    # No write access to npm's global folder: keep pnpm in the user's own prefix instead.
    npm install -g --prefix "$HOME/.local" "pnpm@${PNPM_VERSION}" >/dev/null
    export PATH="$HOME/.local/bin:$PATH"
  fi
fi

# better-sqlite3 builds SQLite with node-gyp when it cannot fetch a prebuilt binary. node-gyp
# then wants Node's headers; it would download them, so point it at the ones installed with Node
# (npm's own `nodedir` setting, which pnpm does not read, says the same on such machines).
if [ -z "${npm_config_nodedir:-}" ]; then
  node_prefix=$(dirname "$(dirname "$(command -v node)")")
  if [ -f "$node_prefix/include/node/node.h" ]; then export npm_config_nodedir="$node_prefix"; fi
fi

pnpm install --frozen-lockfile >&2
pnpm exec turbo run build --output-logs=errors-only >&2
