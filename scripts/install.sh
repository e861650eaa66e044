#!/usr/bin/env bash
# Installs the npm dependencies exactly as locked, only when the lockfile changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=node_modules/.lock-installed
if [ -f "$stamp" ] && cmp -s package-lock.json "$stamp"; then exit 0; fi
echo "[install] npm ci" >&2
npm ci --no-audit --no-fund --loglevel=error
cp package-lock.json "$stamp"
