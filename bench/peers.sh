#!/usr/bin/env bash
# The engine beside the peers (../shared/peers: adnanh/webhook + a shell runbook, the docker start
# floors) in the same interleaved rounds: alert → healthy for a killed container, as `npm start` runs
# it (compiled, embedded dev server, spooled webhook, the runbook file serviceDown), anti-flap lifted
# so every round may restart.
#
#   bash bench/peers.sh                        # 20 rounds, this checkout
#   ROUNDS=10 ENGINE_DIR=/path/to/other/checkout bash bench/peers.sh   # another build of the engine
#   PEERS_TIMELINE=1 bash bench/peers.sh       # and then how the engine's runs reached their restart
#   ENGINE_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" bash bench/peers.sh   # node flags for the engine
#
# ENGINE_DIR is built (npm run build) and run from there with this checkout's node_modules when it
# has none. Everything listens on 127.0.0.1: the engine's webhook on 29090, its dev server on
# 29233 (and 29234, 29243; UI 29250); the target is the container peer-engine serving /health on 29085.
# Output: the peers' table (results/latest/table.md under ~/.cache/peers-bench).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
engine_dir=${ENGINE_DIR:-$here}
peers=${PEERS_DIR:-$here/../shared/peers}
if [ ! -d "$here/node_modules" ]; then
  echo "peers.sh: $here has no node_modules: run npm ci there first" >&2
  exit 1
fi
# Another checkout borrows this one's dependencies (never a link from a folder to itself).
[ "$engine_dir" = "$here" ] || [ -d "$engine_dir/node_modules" ] || ln -s "$here/node_modules" "$engine_dir/node_modules"
# PEERS_BUILT=1: the caller built this engine already (npm run bench, from its second run on).
[ "${PEERS_BUILT:-}" = 1 ] || (cd "$engine_dir" && npm run --silent build >/dev/null)

. "$here/stack/lib/common.sh"
. "$here/stack/lib/temporal.sh"
export TEMPORAL_CLI_PATH=${TEMPORAL_CLI_PATH:-$(temporal_bin)}
unset TEMPORAL_ADDRESS TEMPORAL_NAMESPACE TEMPORAL_MODE

work=$(mktemp -d /tmp/peers-engine.XXXXXX)
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
cat >"$work/config.json" <<JSON
{
  "dataDir": "$work/data",
  "temporal": { "port": 29233, "uiPort": 29250, "taskQueue": "peers" },
  "webhook": { "listen": "127.0.0.1:29090", "token": { "env": "PEERS_WEBHOOK_TOKEN" } },
  "alertmanager": { "url": "http://127.0.0.1:19093" },
  "targets": {
    "web": { "kind": "container", "container": "peer-engine", "stopTimeout": "1s", "labels": { "service": "web" },
             "health": { "url": "http://127.0.0.1:29085/health", "timeout": "1s" } }
  },
  "bindings": [{ "alert": "ServiceDown", "targetLabel": "service", "targets": ["web"], "runbook": "serviceDown" }],
  "channels": { "log": { "type": "log" } },
  "escalation": { "default": "standard", "policies": { "standard": { "levels": [{ "name": "on-call", "after": "1h", "channels": ["log"] }] } } },
  "operators": [{ "name": "bench", "role": "viewer" }],
  "guardrails": { "restarts": { "max": 100000, "window": "1h" }, "restartBackoff": "1s", "verifyDeadline": "20s", "verifyInterval": "100ms" }
}
JSON

export PEERS_WEBHOOK_TOKEN=$token
(cd "$engine_dir" && MALLOC_ARENA_MAX=2 exec node --max-semi-space-size=4 ${ENGINE_NODE_ARGS:-} dist/worker/main.js --config "$work/config.json" engine) >"$work/engine.log" 2>&1 &
engine=$!
cleanup() {
  kill -TERM "$engine" 2>/dev/null || true
  wait "$engine" 2>/dev/null || true
  [ -z "${PEERS_KEEP_LOG:-}" ] || cp "$work/engine.log" "$PEERS_KEEP_LOG"
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 120); do
  curl -fsS -o /dev/null http://127.0.0.1:29090/healthz 2>/dev/null && break
  kill -0 "$engine" 2>/dev/null || { tail -20 "$work/engine.log" >&2; exit 1; }
  sleep 0.5
done
curl -fsS -o /dev/null http://127.0.0.1:29090/healthz || { echo "the engine did not come up; see $work/engine.log" >&2; tail -20 "$work/engine.log" >&2; exit 1; }

RECEIVER_URL=http://127.0.0.1:29090/alertmanager RECEIVER_TOKEN=$token RECEIVER_NAME=engine \
  TARGET_CONTAINER=peer-engine TARGET_HEALTH_URL=http://127.0.0.1:29085/health ALERT_LABELS='{"service":"web"}' \
  RECEIVER_PID=$engine ONLY=${ONLY:-extra,webhook} ROUNDS=${ROUNDS:-20} PROBES=${PROBES:-0} EXTRA_PROBES=0 \
  bash "$peers/run.sh"

# PEERS_TIMELINE=1: where the engine's rounds spent their time before the restart, from their histories.
if [ "${PEERS_TIMELINE:-}" = 1 ]; then
  done='WorkflowType = "runbook" AND ExecutionStatus = "Completed"'
  (cd "$here" && export TEMPORAL_ADDRESS=127.0.0.1:29233 TEMPORAL_NAMESPACE=default &&
    node_modules/.bin/tsx bench/timeline.ts "$done" && node_modules/.bin/tsx bench/timeline.ts --last "${ROUNDS:-20}" "$done")
fi
