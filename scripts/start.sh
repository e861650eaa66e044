#!/usr/bin/env bash
# Starts the engine on an embedded Temporal dev server, with the local stack it remediates
# (Docker demo containers, systemd host, databases, Prometheus, Alertmanager) and a host agent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# The engine embeds its own Temporal dev server; the stack brings up everything else.
STACK_TEMPORAL=0 bash stack/stack.sh up
. stack/lib/common.sh
. stack/lib/temporal.sh
export TEMPORAL_CLI_PATH=${TEMPORAL_CLI_PATH:-$(temporal_bin)}
set -a; . "$STACK_DIR/stack.env"; set +a
unset TEMPORAL_ADDRESS  # stack.env names the test server; the engine embeds its own unless configured
config=${REMEDIATION_CONFIG:-config/example.yaml}
# The host agent for the systemd demo host runs inside that host, on its own task queue (one at a time).
docker exec remediation-systemd busybox pkill -f 'worker/main.ts.*agent' || true
docker exec -d -w /opt/engine -e WEBHOOK_TOKEN -e PG_PASSWORD -e MYSQL_PASSWORD -e REDIS_PASSWORD \
  -e TEMPORAL_ADDRESS=127.0.0.1:7233 \
  -e LOG_FILE=/var/log/remediation-agent.log \
  remediation-systemd /usr/local/bin/node --import tsx worker/main.ts --config "$config" agent --host remediation-host
exec node --import tsx worker/main.ts --config "$config" engine
