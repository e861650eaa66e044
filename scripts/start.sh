#!/usr/bin/env bash
# Starts the engine on an embedded Temporal dev server, with the local stack it remediates
# (Docker demo containers, systemd host, databases, Prometheus, Alertmanager) and a host agent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# The engine runs compiled (dist/): about 90 MB less resident memory than compiling on load with tsx.
npm run --silent build
# The engine embeds its own Temporal dev server; the stack brings up everything else.
STACK_TEMPORAL=0 bash stack/stack.sh up
. stack/lib/common.sh
. stack/lib/temporal.sh
export TEMPORAL_CLI_PATH=${TEMPORAL_CLI_PATH:-$(temporal_bin)}
set -a; . "$STACK_DIR/stack.env"; set +a
# stack.env names the test server; the engine embeds its own unless configured.
unset TEMPORAL_ADDRESS TEMPORAL_NAMESPACE TEMPORAL_MODE
config=${REMEDIATION_CONFIG:-config/example.yaml}
if [ "$config" = config/example.yaml ] && [ ! -s .data/operators/alice.sha256 ]; then
  # The demo operator's API token, made once: its hash for the config, the token for the CLI (0600).
  mkdir -p .data/operators
  (umask 077; node --input-type=module -e '
    import { randomBytes, createHash } from "node:crypto";
    import { writeFileSync } from "node:fs";
    const token = "rmd_" + randomBytes(32).toString("base64url");
    writeFileSync(".data/remediate-credentials", `url = http://127.0.0.1:9798\ntoken = ${token}\n`, { mode: 0o600 });
    writeFileSync(".data/operators/alice.sha256", "sha256:" + createHash("sha256").update(token).digest("hex"));
  ')
  echo "[start] operator token for alice (admin) in .data/remediate-credentials: export REMEDIATE_CREDENTIALS=.data/remediate-credentials" >&2
fi
# The host agent for the systemd demo host runs inside that host as a systemd service, on its own task queue.
# It is given no secret: it reads only its own units' (none here), and a transient unit's environment
# is readable by every user of that host (systemctl show, /run/systemd/transient).
docker exec remediation-systemd systemctl stop remediation-agent.service >/dev/null 2>&1 || true
docker exec remediation-systemd systemd-run --unit=remediation-agent --collect -p WorkingDirectory=/opt/engine \
  --setenv=TEMPORAL_ADDRESS=127.0.0.1:7233 \
  /usr/local/bin/node --import tsx worker/main.ts --config "$config" agent --host remediation-host >/dev/null
# Memory, measured by `npm run bench -- --only open`: two glibc malloc arenas instead of one per
# thread (Temporal's core and V8 run many), and a young generation of 4 MiB semi-spaces in each of
# the engine's three V8 heaps instead of up to 16: together about 60 MiB less with 500 incidents open.
export MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2}
exec node --max-semi-space-size=4 dist/worker/main.js --config "$config" engine
