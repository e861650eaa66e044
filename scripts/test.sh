#!/usr/bin/env bash
# The whole test suite from nothing, in tiers: dependencies; then, while the real stack comes up in
# the background, the type-check, the linter, the formatter check and the tests that need no stack (vitest.config.ts:
# noStackTests), so a broken workflow fails in the first minutes; then every test that needs the stack
# on the Temporal dev server; then the end-to-end and cluster tests on a real Temporal cluster.
# With test files named (npm test -- test/x.test.ts): the stack, the type-check, then just those.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
if [ $# -gt 0 ]; then
  bash stack/stack.sh up
  npx tsc --noEmit -p .
  exec npx vitest run "$@"
fi

stack_log=$(mktemp "${TMPDIR:-/tmp}/remediation-stack-up.XXXXXX")
# Its own process group, so that a failure of the first tier stops it and everything it started.
setsid bash stack/stack.sh up >"$stack_log" 2>&1 &
stack_pid=$!
stop_stack_start() {
  if kill -0 "$stack_pid" 2>/dev/null; then
    echo "[test] stopping the stack's start-up (its log: $stack_log)" >&2
    kill -TERM -- "-$stack_pid" 2>/dev/null || true
    wait "$stack_pid" 2>/dev/null || true
  fi
}
trap stop_stack_start EXIT

echo "[test] tier 1: type-check, lint, and the tests that need no stack (the stack comes up meanwhile)" >&2
# Side by side: each builds its own TypeScript program, mostly on one core.
npx tsc --noEmit -p . &
tsc_pid=$!
lint_ok=0
npx eslint . || lint_ok=$?
# The formatter's settings are .prettierrc.json; npm run format rewrites, this only checks.
npx prettier --check --log-level warn '**/*.{ts,js,mjs,cjs}' || lint_ok=$?
tsc_ok=0
wait "$tsc_pid" || tsc_ok=$?
if [ "$tsc_ok" != 0 ] || [ "$lint_ok" != 0 ]; then
  echo "[test] the type-check (exit $tsc_ok) or the linter or formatter check (exit $lint_ok) failed (npm run format fixes the formatting)" >&2
  exit 1
fi
# No stack.env where the tests look: a test here that secretly needs the stack fails instead of passing.
no_stack=$(mktemp -d "${TMPDIR:-/tmp}/remediation-no-stack.XXXXXX")
STACK_DIR=$no_stack npx vitest run --project no-stack
rmdir "$no_stack"

echo "[test] tier 2: waiting for the stack" >&2
if ! wait "$stack_pid"; then
  trap - EXIT
  echo "[test] the stack did not come up:" >&2
  cat "$stack_log" >&2
  exit 1
fi
trap - EXIT
cat "$stack_log" >&2
rm -f "$stack_log"
npx vitest run --project stack

# Tier 3: a real Temporal cluster, the mode production runs (the server's four services on a
# PostgreSQL of their own, mTLS), brought up beside the dev server: built once with go install
# (minutes from nothing, seconds from Go's cache). Then the end-to-end files against it, and
# test/cluster one file at a time: those kill the cluster's processes and engines, which every other
# file on the cluster would feel. Both run whatever the other did, so one run shows every failure.
echo "[test] tier 3: the end-to-end and cluster tests on a real Temporal cluster" >&2
bash stack/stack.sh up --temporal cluster
cluster_status=0
TEMPORAL_MODE=cluster npx vitest run --project stack test/e2e || cluster_status=1
TEMPORAL_MODE=cluster npx vitest run --project stack --no-file-parallelism test/cluster || cluster_status=1
exit $cluster_status
