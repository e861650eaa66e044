#!/usr/bin/env bash
# The end-to-end and cluster files on a real Temporal cluster over mTLS: the stack with Temporal as the
# server's four services on a PostgreSQL of their own (built once, ~5 min), then test/e2e with
# TEMPORAL_MODE=cluster, then test/cluster one file at a time (they kill the cluster's processes and
# engines, and every file on the cluster would feel it; each skips itself on the dev server):
# mTLS refusals, three engines under a storm, the doors during a partial outage, faults mid-runbook.
# `npm test` runs the same after its dev-server tiers; this runs only these. Paths given run instead of both.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash stack/stack.sh up --temporal cluster
npx tsc --noEmit -p .
export TEMPORAL_MODE=cluster
if [ $# -gt 0 ]; then exec npx vitest run "$@"; fi
# Both phases run whatever the first one did, so one run shows every failure; the exit status is theirs.
started=$SECONDS status=0
npx vitest run test/e2e || status=1
e2e=$((SECONDS - started))
npx vitest run --no-file-parallelism test/cluster || status=1
echo "[test-cluster] test/e2e ${e2e}s, test/cluster $((SECONDS - started - e2e))s, ${SECONDS}s in all; $([ $status = 0 ] && echo passed || echo FAILED)" >&2
exit $status
