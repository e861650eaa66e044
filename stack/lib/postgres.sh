# PostgreSQL from Debian's package, its own cluster and port; the server refuses root, so it runs as postgres.
pg_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
PG_ROOT=$STACK_DIR/postgres

pg_healthy() { pg_isready -q -h 127.0.0.1 -p "$PG_PORT"; }

postgres_up() {
  ensure_packages /usr/lib/postgresql/15/bin/initdb:postgresql pg_isready:postgresql-client
  local bin; bin=$(pg_bindir)
  pg_healthy && return
  mkdir -p "$PG_ROOT/run"
  if [ ! -f "$PG_ROOT/data/PG_VERSION" ]; then
    local pw; pw=$(secret pg-superuser)
    (umask 077 && printf '%s\n' "$pw" > "$PG_ROOT/superuser.pw")
    chown -R postgres:postgres "$PG_ROOT"
    runuser -u postgres -- "$bin/initdb" -D "$PG_ROOT/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      --pwfile="$PG_ROOT/superuser.pw" >>"$LOG_DIR/postgres.log" 2>&1 || die "initdb failed; see $LOG_DIR/postgres.log"
    rm -f "$PG_ROOT/superuser.pw"
    cat >> "$PG_ROOT/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_ROOT/run'
max_connections = 100
fsync = off
CONF
  fi
  chown -R postgres:postgres "$PG_ROOT"
  touch "$LOG_DIR/postgres.log" && chown postgres "$LOG_DIR/postgres.log"
  runuser -u postgres -- "$bin/pg_ctl" -D "$PG_ROOT/data" -l "$LOG_DIR/postgres.log" -w -t 60 start >/dev/null \
    || die "postgres did not start; see $LOG_DIR/postgres.log"
  local user=remediation db=app pw; pw=$(secret pg-remediation)
  runuser -u postgres -- psql -q -h "$PG_ROOT/run" -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -v pw="$pw" >/dev/null <<SQL
SELECT 'CREATE ROLE $user LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$user') \gexec
ALTER ROLE $user WITH LOGIN PASSWORD :'pw';
GRANT pg_monitor, pg_signal_backend TO $user;
SELECT 'CREATE DATABASE $db OWNER $user' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$db') \gexec
SQL
}

postgres_down() {
  local bin; bin=$(pg_bindir)
  [ -n "$bin" ] && [ -f "$PG_ROOT/data/postmaster.pid" ] || return 0
  runuser -u postgres -- "$bin/pg_ctl" -D "$PG_ROOT/data" -m fast -w stop >/dev/null 2>&1 || true
}

postgres_status() {
  if pg_healthy 2>/dev/null; then status_line postgres "127.0.0.1:$PG_PORT" up; else status_line postgres "127.0.0.1:$PG_PORT" down; fi
}
