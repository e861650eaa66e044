#!/usr/bin/env bash
# The end-to-end and fault files on a real Temporal cluster: the stack with Temporal as the server's
# four services on a PostgreSQL of their own (built once, ~5 min), then test/e2e with
# TEMPORAL_MODE=cluster, then test/cluster (kills the cluster's processes mid-runbook; it skips itself
# on the dev server). `npm test` and CI stay on the dev server. Paths given run instead of both.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash stack/stack.sh up --temporal cluster
npx tsc --noEmit -p .
export TEMPORAL_MODE=cluster
if [ $# -gt 0 ]; then exec npx vitest run "$@"; fi
npx vitest run test/e2e
# Alone: it kills the cluster's services under whatever else runs on the cluster.
npx vitest run test/cluster
