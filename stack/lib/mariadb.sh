# MariaDB (MySQL protocol) from Debian's package, its own data directory, socket and port.
MYSQL_ROOT=$STACK_DIR/mariadb

mysql_healthy() { mariadb-admin --no-defaults --socket="$MYSQL_ROOT/mysqld.sock" -u root ping; }

mariadb_up() {
  ensure_packages mariadbd:mariadb-server
  mysql_healthy >/dev/null 2>&1 && return
  mkdir -p "$MYSQL_ROOT"
  chown mysql:mysql "$MYSQL_ROOT"
  if [ ! -d "$MYSQL_ROOT/data/mysql" ]; then
    mariadb-install-db --no-defaults --datadir="$MYSQL_ROOT/data" --user=mysql --auth-root-authentication-method=socket \
      --skip-test-db >>"$LOG_DIR/mariadb.log" 2>&1 || die "mariadb-install-db failed; see $LOG_DIR/mariadb.log"
  fi
  start_bg mariadb mariadbd --no-defaults --datadir="$MYSQL_ROOT/data" --user=mysql \
    --bind-address=127.0.0.1 --port="$MYSQL_PORT" --socket="$MYSQL_ROOT/mysqld.sock" --pid-file="$MYSQL_ROOT/mysqld.pid" \
    --skip-name-resolve --innodb-buffer-pool-size=64M --performance-schema=OFF --innodb-flush-log-at-trx-commit=2
  wait_for mariadb 60 mysql_healthy
  local pw; pw=$(secret mysql-remediation)
  mariadb --no-defaults --socket="$MYSQL_ROOT/mysqld.sock" -u root <<SQL
CREATE DATABASE IF NOT EXISTS app;
CREATE USER IF NOT EXISTS 'remediation'@'127.0.0.1' IDENTIFIED BY '$pw';
ALTER USER 'remediation'@'127.0.0.1' IDENTIFIED BY '$pw';
GRANT ALL PRIVILEGES ON app.* TO 'remediation'@'127.0.0.1';
GRANT PROCESS, RELOAD ON *.* TO 'remediation'@'127.0.0.1';
GRANT CONNECTION ADMIN ON *.* TO 'remediation'@'127.0.0.1';
SQL
}

mariadb_down() { stop_pid mariadb; }

mariadb_status() {
  if mysql_healthy >/dev/null 2>&1; then status_line mariadb "127.0.0.1:$MYSQL_PORT" up; else status_line mariadb "127.0.0.1:$MYSQL_PORT" down; fi
}
