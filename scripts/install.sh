#!/usr/bin/env bash
# Installs the npm dependencies exactly as locked, only when the lockfile changed since the last
# install, and the Debian packages the tests need beyond the stack's.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian's Chromium runs the incident console's browser test (test/e2e/console.e2e.test.ts); the
# engine itself never needs it. Installed like the stack's packages, once, quietly.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    (. stack/lib/common.sh && mkdir -p "$LOG_DIR" && ensure_packages chromium:chromium)
  else
    echo "[install] chromium is missing (apt-get install chromium): the console's browser test cannot run" >&2
  fi
fi
stamp=node_modules/.lock-installed
if [ -f "$stamp" ] && cmp -s package-lock.json "$stamp"; then exit 0; fi
# npm ci: exactly the lockfile, never rewriting it, so a fresh checkout stays clean.
echo "[install] npm ci (locked versions)" >&2
npm ci --no-audit --no-fund --loglevel=error
cp package-lock.json "$stamp"
