# Shared by every stack module: where things live, how processes are started, watched and stopped.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STACK_DIR=${STACK_DIR:-/var/tmp/remediation-stack}
CACHE_DIR=${REMEDIATION_CACHE:-$HOME/.cache/remediation}
LOG_DIR=$STACK_DIR/logs
SECRETS_DIR=$STACK_DIR/secrets

# Own ports, all on 127.0.0.1, away from the defaults of the machine's own services.
TEMPORAL_PORT=${STACK_TEMPORAL_PORT:-17233}
TEMPORAL_UI_PORT=${STACK_TEMPORAL_UI_PORT:-18233}
PG_PORT=${STACK_PG_PORT:-15432}
MYSQL_PORT=${STACK_MYSQL_PORT:-13306}
REDIS_PORT=${STACK_REDIS_PORT:-16379}
PROMETHEUS_PORT=${STACK_PROMETHEUS_PORT:-19090}
ALERTMANAGER_PORT=${STACK_ALERTMANAGER_PORT:-19093}
DEMO_PORT=${STACK_DEMO_PORT:-18080}
SYSTEMD_DEMO_PORT=${STACK_SYSTEMD_DEMO_PORT:-18081}
WEBHOOK_PORT=${STACK_WEBHOOK_PORT:-19797}
MAIL_PORT=${STACK_MAIL_PORT:-12525}
MAIL_TLS_PORT=${STACK_MAIL_TLS_PORT:-12465}

BUSYBOX_IMAGE=remediation/busybox:1
# SYSTEMD_IMAGE: named after its recipe, in docker.sh.
DEMO_CONTAINER=remediation-demo
SYSTEMD_CONTAINER=remediation-systemd

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

# A random secret, made once and kept with the stack's state (mode 600).
secret() {
  local file=$SECRETS_DIR/$1
  if [ ! -s "$file" ]; then
    mkdir -p "$SECRETS_DIR" && chmod 700 "$SECRETS_DIR"
    (umask 077 && head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' > "$file")
  fi
  cat "$file"
}

pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Starts a long-running process in its own session, its output in the service's log.
start_bg() {
  local name=$1; shift
  mkdir -p "$LOG_DIR" "$STACK_DIR/pids"
  setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 < /dev/null &
  echo $! > "$STACK_DIR/pids/$name.pid"
}

# stop_pid NAME [SECONDS]: SIGTERM, then SIGKILL after SECONDS (20 by default).
stop_pid() {
  local name=$1 pidfile=$STACK_DIR/pids/$1.pid seconds=${2:-20}
  pid_alive "$pidfile" || { rm -f "$pidfile"; return 0; }
  local pid; pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 $((seconds * 5))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then log "$name did not stop on TERM; killing"; kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$pidfile"
}

# wait_for NAME SECONDS COMMAND...: polls until COMMAND succeeds; names the log when it never does.
wait_for() {
  local name=$1 seconds=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      die "$name did not become healthy within ${seconds}s; see its log: $LOG_DIR/$name.log"
    fi
    sleep 0.5
  done
}

http_ok() { curl -fsS --max-time 2 -o /dev/null "$1"; }

# Packages the stack needs, installed in one go when missing (as root), never started by apt.
ensure_packages() {
  local missing=() pair cmd pkg
  for pair in "$@"; do
    cmd=${pair%%:*}; pkg=${pair#*:}
    command -v "$cmd" >/dev/null 2>&1 || [ -x "$cmd" ] || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    die "missing packages: ${missing[*]}. Install them (apt-get install ${missing[*]}) or run as root."
  fi
  log "installing ${missing[*]} (apt-get)"
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [ ! -e $policy ]; then printf '#!/bin/sh\nexit 101\n' > $policy && chmod +x $policy && made_policy=1; fi
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
    >>"$LOG_DIR/apt.log" 2>&1 || { [ $made_policy = 1 ] && rm -f $policy; die "apt-get install ${missing[*]} failed; see $LOG_DIR/apt.log"; }
  [ $made_policy = 1 ] && rm -f $policy
  return 0
}

status_line() { printf '%-14s %-34s %s\n' "$1" "$2" "$3"; }
