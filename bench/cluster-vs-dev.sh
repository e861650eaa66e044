#!/usr/bin/env bash
# The same bench on the stack's dev server and on its cluster, back to back and alternating (dev,
# cluster, dev, cluster, …), so both see the same machine at nearly the same time. One bench process
# talks to one Temporal (test/support/stack.ts picks it from TEMPORAL_MODE), hence one run per mode.
#   bash bench/cluster-vs-dev.sh [ROUNDS] [bench options…]     e.g. bash bench/cluster-vs-dev.sh 3 --only recovery,storm --runs 12
# Each run's table goes to $BENCH_RESULTS (/var/tmp/remediation-bench)/<stamp>/<round>-<mode>.md.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}; shift || true
out=${BENCH_RESULTS:-/var/tmp/remediation-bench}/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
echo "[cluster-vs-dev] $rounds rounds; tables in $out" >&2
for round in $(seq 1 "$rounds"); do
  for mode in dev cluster; do
    started=$SECONDS
    echo "[cluster-vs-dev] round $round, $mode, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    TEMPORAL_MODE=$mode bash scripts/bench.sh "$@" > "$out/$round-$mode.md" 2> "$out/$round-$mode.log" \
      || echo "[cluster-vs-dev] round $round, $mode FAILED: see $out/$round-$mode.log" >&2
    echo "[cluster-vs-dev] round $round, $mode took $((SECONDS - started)) s" >&2
  done
done
