#!/usr/bin/env bash
# The whole test suite from nothing: dependencies, the real stack, type-check, then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash stack/stack.sh up
npx tsc --noEmit -p .
npx vitest run "$@"
