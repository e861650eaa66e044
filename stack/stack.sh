#!/usr/bin/env bash
# The local stack every test runs against: Temporal, Docker (+ test images and containers), PostgreSQL,
# MariaDB, Redis, Prometheus and Alertmanager, all on 127.0.0.1 with their own ports and data.
#   stack.sh up       idempotent: starts what is not running, health-checks everything
#   stack.sh down     stops exactly what up started
#   stack.sh status   each service, its address and health
#   stack.sh env      the addresses and credentials (written to $STACK_DIR/stack.env by up)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for lib in common temporal docker postgres mariadb redis monitoring; do
  # shellcheck source=/dev/null
  . "$here/lib/$lib.sh"
done

write_env() {
  local tmp=$STACK_DIR/stack.env.tmp
  (umask 077 && cat > "$tmp" <<ENV
TEMPORAL_ADDRESS=$(temporal_address)
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
ENV
)
  chmod 644 "$tmp"  # read by the host agent inside the systemd container (its own user is root too)
  mv "$tmp" "$STACK_DIR/stack.env"
}

up() {
  mkdir -p "$STACK_DIR" "$LOG_DIR" && chmod 755 "$STACK_DIR"
  local started=$SECONDS
  ensure_packages dockerd:docker.io /usr/lib/postgresql/15/bin/initdb:postgresql mariadbd:mariadb-server \
    redis-server:redis-server prometheus:prometheus prometheus-alertmanager:prometheus-alertmanager \
    debootstrap:debootstrap /bin/busybox:busybox-static curl:curl
  docker_up
  # The systemd image takes minutes the first time; build it while the other services start.
  ( build_systemd_image ) & local image_job=$!
  # STACK_TEMPORAL=0: the caller embeds its own Temporal (the engine's start command).
  [ "${STACK_TEMPORAL:-1}" = 0 ] || temporal_up
  postgres_up
  mariadb_up
  redis_up
  alertmanager_up
  prometheus_up
  build_busybox_image
  demo_up
  wait "$image_job" || die "the systemd image could not be built; see $LOG_DIR/debootstrap.log"
  systemd_container_up
  write_env
  log "up in $((SECONDS - started))s; addresses in $STACK_DIR/stack.env"
  status
}

down() {
  rm -f "$STACK_DIR/stack.env"
  containers_down
  prometheus_down
  alertmanager_down
  redis_down
  mariadb_down
  postgres_down
  temporal_down
  docker_down
  log "down"
}

status() {
  status_line SERVICE ADDRESS HEALTH
  temporal_status
  docker_status
  containers_status 2>/dev/null || true
  postgres_status
  mariadb_status
  redis_status
  monitoring_status
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  env) cat "$STACK_DIR/stack.env" ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
