# Redis from Debian's package, password-protected, no persistence.
REDIS_ROOT=$STACK_DIR/redis

redis_healthy() { REDISCLI_AUTH=$(secret redis) redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping | grep -q PONG; }

redis_up() {
  ensure_packages redis-server:redis-server
  redis_healthy 2>/dev/null && return
  mkdir -p "$REDIS_ROOT"
  (umask 077 && cat > "$REDIS_ROOT/redis.conf" <<CONF
bind 127.0.0.1
port $REDIS_PORT
dir $REDIS_ROOT
requirepass $(secret redis)
save ""
appendonly no
daemonize no
CONF
)
  start_bg redis redis-server "$REDIS_ROOT/redis.conf"
  wait_for redis 30 redis_healthy
}

redis_down() { stop_pid redis; }

redis_status() {
  if redis_healthy 2>/dev/null; then status_line redis "127.0.0.1:$REDIS_PORT" up; else status_line redis "127.0.0.1:$REDIS_PORT" down; fi
}
