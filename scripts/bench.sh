#!/usr/bin/env bash
# The benchmarks from nothing: dependencies, the real stack, then bench/bench.ts (options pass through,
# e.g. `npm run bench -- --runs 5 --only recovery`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash stack/stack.sh up
npx tsx bench/bench.ts "$@"
