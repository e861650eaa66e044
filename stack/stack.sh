#!/usr/bin/env bash
# The local stack every test runs against: Temporal, Docker (+ test images and containers), PostgreSQL,
# MariaDB, Redis, Prometheus, Alertmanager and a mail server (exim), all on 127.0.0.1 with their own ports and data.
#   stack.sh up [--temporal dev|cluster]   idempotent: starts what is not running, health-checks everything.
#                     Temporal is the CLI's dev server by default; `cluster` (or TEMPORAL_MODE=cluster)
#                     runs the server's four services on a PostgreSQL of their own instead.
#   stack.sh down [--temporal dev|cluster]   stops exactly what up started (with --temporal: that Temporal only)
#   stack.sh cluster-up   the cluster alone: starts whichever of its processes is not running (the rest
#                     of the stack untouched), e.g. after a crash or a fault test
#   stack.sh status   each service, its address and health
#   stack.sh env      the addresses and credentials (written to $STACK_DIR/stack.env by up)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for lib in common temporal cluster docker postgres mariadb redis monitoring mail; do
  # shellcheck source=/dev/null
  . "$here/lib/$lib.sh"
done

# TEMPORAL_ADDRESS / _NAMESPACE / _MODE: the Temporal this up brought. The _DEV_ and _CLUSTER_ keys
# name each one that is up, so a test run picks its own (TEMPORAL_MODE in its environment, the dev
# server by default) whichever mode the last up was in: one stack can serve both at once.
temporal_env() {
  local mode=$1
  echo "TEMPORAL_MODE=$mode"
  if [ "$mode" = cluster ]; then
    echo "TEMPORAL_ADDRESS=$(cluster_address)"; echo "TEMPORAL_NAMESPACE=$CLUSTER_NAMESPACE"
  else
    echo "TEMPORAL_ADDRESS=$(temporal_address)"; echo "TEMPORAL_NAMESPACE=default"
  fi
  if [ "$mode" = dev ] || temporal_healthy; then
    echo "TEMPORAL_DEV_ADDRESS=$(temporal_address)"; echo "TEMPORAL_DEV_NAMESPACE=default"
  fi
  if [ "$mode" = cluster ] || cluster_running; then
    echo "TEMPORAL_CLUSTER_ADDRESS=$(cluster_address)"; echo "TEMPORAL_CLUSTER_NAMESPACE=$CLUSTER_NAMESPACE"
    # The cluster takes only clients with a certificate (mTLS): the paths, never the keys themselves.
    cluster_tls_env
  fi
}

write_env() {
  local tmp=$STACK_DIR/stack.env.tmp temporal; temporal=$(temporal_env "$1")
  (umask 077 && cat > "$tmp" <<ENV
$temporal
TEMPORAL_UI=http://127.0.0.1:$TEMPORAL_UI_PORT
DOCKER_SOCKET=/var/run/docker.sock
BUSYBOX_IMAGE=$BUSYBOX_IMAGE
SYSTEMD_IMAGE=$SYSTEMD_IMAGE
SYSTEMD_CONTAINER=$SYSTEMD_CONTAINER
SYSTEMD_UNIT=demo-web.service
SYSTEMD_DEMO_URL=http://127.0.0.1:$SYSTEMD_DEMO_PORT
DEMO_CONTAINER=$DEMO_CONTAINER
DEMO_URL=http://127.0.0.1:$DEMO_PORT
PG_PORT=$PG_PORT
PG_USER=remediation
PG_PASSWORD=$(secret pg-remediation)
PG_DATABASE=app
MYSQL_PORT=$MYSQL_PORT
MYSQL_USER=remediation
MYSQL_PASSWORD=$(secret mysql-remediation)
MYSQL_DATABASE=app
REDIS_PORT=$REDIS_PORT
REDIS_PASSWORD=$(secret redis)
PROMETHEUS_URL=http://127.0.0.1:$PROMETHEUS_PORT
ALERTMANAGER_URL=http://127.0.0.1:$ALERTMANAGER_PORT
WEBHOOK_PORT=$WEBHOOK_PORT
WEBHOOK_TOKEN=$(secret webhook-token)
$(mail_env)
ENV
)
  # Credentials: the owner's only (the umask above made it so; say it for a file that existed).
  chmod 600 "$tmp"
  mv "$tmp" "$STACK_DIR/stack.env"
}

up() {
  local mode=$1
  mkdir -p "$STACK_DIR" "$LOG_DIR" && chmod 755 "$STACK_DIR"
  local started=$SECONDS
  ensure_packages dockerd:docker.io /usr/lib/postgresql/15/bin/initdb:postgresql mariadbd:mariadb-server \
    redis-server:redis-server prometheus:prometheus prometheus-alertmanager:prometheus-alertmanager \
    debootstrap:debootstrap /bin/busybox:busybox-static curl:curl exim4:exim4-daemon-light openssl:openssl
  # STACK_TEMPORAL=0: the caller embeds its own Temporal (the engine's start command).
  local temporal=1; [ "${STACK_TEMPORAL:-1}" = 0 ] && temporal=0
  # The cluster's first build takes ~5 minutes: under way while everything else starts.
  local build_job=""
  if [ $temporal = 1 ] && [ "$mode" = cluster ]; then ( cluster_bin temporal-server >/dev/null ) & build_job=$!; fi
  docker_up
  # The systemd image takes minutes the first time; build it while the other services start.
  ( build_systemd_image ) & local image_job=$!
  [ $temporal = 1 ] && [ "$mode" = dev ] && temporal_up
  postgres_up
  mariadb_up
  redis_up
  mail_up
  alertmanager_up
  prometheus_up
  build_busybox_image
  demo_up
  if [ -n "$build_job" ]; then
    wait "$build_job" || die "the Temporal server could not be built; see $LOG_DIR/temporal-cluster-build.log"
    cluster_up
  fi
  wait "$image_job" || die "the systemd image could not be built; see $LOG_DIR/debootstrap.log"
  systemd_container_up
  write_env "$mode"
  log "up in $((SECONDS - started))s (Temporal: $mode); addresses in $STACK_DIR/stack.env"
  status
}

# down [all|dev|cluster]: everything, or one Temporal alone while the rest of the stack stays up for
# whoever uses it; stack.env then names the Temporal still running.
down() {
  case $1 in
    cluster)
      cluster_down
      if [ -f "$STACK_DIR/stack.env" ]; then write_env dev; fi
      log "Temporal cluster down"
      return ;;
    dev)
      temporal_down
      if [ -f "$STACK_DIR/stack.env" ] && cluster_running; then write_env cluster; fi
      log "Temporal dev server down"
      return ;;
  esac
  rm -f "$STACK_DIR/stack.env"
  containers_down
  prometheus_down
  alertmanager_down
  mail_down
  redis_down
  mariadb_down
  postgres_down
  cluster_down
  temporal_down
  docker_down
  log "down"
}

status() {
  status_line SERVICE ADDRESS HEALTH
  temporal_status
  cluster_status
  docker_status
  containers_status 2>/dev/null || true
  postgres_status
  mariadb_status
  redis_status
  mail_status
  monitoring_status
}

usage() { echo "usage: $0 up [--temporal dev|cluster] | down [--temporal dev|cluster] | cluster-up | status | env" >&2; exit 2; }

command=${1:-}; shift || true
# Which Temporal: --temporal beats TEMPORAL_MODE; down takes only the flag (an exported
# TEMPORAL_MODE=cluster must not turn a full down into stopping the cluster alone).
mode=${TEMPORAL_MODE:-dev} down_mode=all
while [ $# -gt 0 ]; do
  case $1 in
    --temporal) [ $# -ge 2 ] || usage; mode=$2; down_mode=$2; shift 2 ;;
    --temporal=*) mode=${1#*=}; down_mode=$mode; shift ;;
    *) usage ;;
  esac
done
case $mode in dev|cluster) ;; *) die "unknown Temporal mode '$mode' (TEMPORAL_MODE or --temporal): dev or cluster" ;; esac

case "$command" in
  up) up "$mode" ;;
  down) down "$down_mode" ;;
  cluster-up)
    mkdir -p "$LOG_DIR"
    cluster_up
    # stack.env keeps the mode of the last up, and now names the cluster too.
    if [ -f "$STACK_DIR/stack.env" ]; then write_env "$(sed -n 's/^TEMPORAL_MODE=//p' "$STACK_DIR/stack.env" | grep . || echo dev)"; fi ;;
  status) status ;;
  env) cat "$STACK_DIR/stack.env" ;;
  *) usage ;;
esac
