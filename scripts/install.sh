#!/usr/bin/env bash
# Installs the npm dependencies exactly as locked, only when the lockfile changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=node_modules/.lock-installed
if [ -f "$stamp" ] && cmp -s package-lock.json "$stamp"; then exit 0; fi
# npm ci refuses this lockfile: it lacks the other platforms' optional @swc/core binaries, which the
# registry reachable here does not list. npm install installs the locked versions all the same.
echo "[install] npm install (locked versions)" >&2
npm install --no-audit --no-fund --loglevel=error
cp package-lock.json "$stamp"
