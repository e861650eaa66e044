# Temporal as a real cluster (`up --temporal cluster`, or TEMPORAL_MODE=cluster): the server's four
# services, frontend, history, matching and worker, each its own process, on a PostgreSQL instance of
# their own (never the demo database) with SQL visibility, mTLS on every gRPC and HTTP port
# (cluster-tls.sh); the namespace and search attributes the engine needs are created. Binaries are
# built once with `go install` and cached, like the CLI.
TEMPORAL_SERVER_VERSION=v1.29.1
GRPC_HEALTH_PROBE_VERSION=v0.4.63
CLUSTER_ROOT=$STACK_DIR/temporal-cluster
CLUSTER_PG_ROOT=$CLUSTER_ROOT/postgres
CLUSTER_PG_PORT=${STACK_CLUSTER_PG_PORT:-15433}
CLUSTER_NAMESPACE=${STACK_CLUSTER_NAMESPACE:-remediation}
# The frontend's gRPC port; the other services sit beside it as 7233/7234/7235/7239 do in Temporal's
# own layout, membership (ringpop) 700 above, Prometheus metrics from 27300 (+67). Away from the dev server
# (17233 and ports it picks in the ephemeral range).
CLUSTER_PORT=${STACK_CLUSTER_PORT:-27233}
# Start order. History first: whichever service starts first writes the cluster metadata, and two
# writing it at once once failed with "version mismatch, expected 1 but got 2". The worker service
# last: it is a client of the frontend (and ignores SIGTERM while it has none, so it stops first).
CLUSTER_SERVICES=(history matching frontend worker)
# Keyword search attributes the engine sets (workflows/messages.ts, searchAttributeNames).
CLUSTER_SEARCH_ATTRIBUTES=(RemediationTarget AlertName Severity Outcome Runbook)

cluster_address() { echo "127.0.0.1:$CLUSTER_PORT"; }

# shellcheck source=/dev/null
. "$(dirname "${BASH_SOURCE[0]}")/cluster-tls.sh"

cluster_grpc_port() {
  case $1 in frontend) echo "$CLUSTER_PORT" ;; history) echo $((CLUSTER_PORT + 1)) ;;
    matching) echo $((CLUSTER_PORT + 2)) ;; worker) echo $((CLUSTER_PORT + 6)) ;; esac
}
cluster_metrics_port() {
  case $1 in frontend) echo $((CLUSTER_PORT + 67)) ;; history) echo $((CLUSTER_PORT + 68)) ;;
    matching) echo $((CLUSTER_PORT + 69)) ;; worker) echo $((CLUSTER_PORT + 70)) ;; esac
}

# The server, its SQL tool and grpc-health-probe, built together once (about 5 minutes) into a
# scratch GOBIN and moved into place only when all three built: a killed build leaves nothing half-made.
cluster_bin() {
  local name=$1 file=$CACHE_DIR/bin/$1-$TEMPORAL_SERVER_VERSION
  [ "$name" = grpc-health-probe ] && file=$CACHE_DIR/bin/grpc-health-probe-$GRPC_HEALTH_PROBE_VERSION
  [ -x "$file" ] || cluster_build
  echo "$file"
}

cluster_build() {
  command -v go >/dev/null 2>&1 || die "no Go to build the Temporal server $TEMPORAL_SERVER_VERSION (go install); install Go"
  mkdir -p "$CACHE_DIR/bin" "$LOG_DIR"
  # Two ups at once (a test script and a person) build it once.
  exec {lock}>"$CACHE_DIR/bin/.temporal-server.lock"
  flock "$lock"
  if [ ! -x "$CACHE_DIR/bin/temporal-server-$TEMPORAL_SERVER_VERSION" ] || [ ! -x "$CACHE_DIR/bin/temporal-sql-tool-$TEMPORAL_SERVER_VERSION" ] \
    || [ ! -x "$CACHE_DIR/bin/grpc-health-probe-$GRPC_HEALTH_PROBE_VERSION" ]; then
    log "building the Temporal server $TEMPORAL_SERVER_VERSION and its SQL tool with go install (once, ~5 min; cached in $CACHE_DIR/bin)"
    local gobin=$CACHE_DIR/bin/.build-$$ started=$SECONDS
    rm -rf "$gobin"
    (cd /tmp && GOBIN=$gobin GOFLAGS=-mod=mod go install "go.temporal.io/server/cmd/server@$TEMPORAL_SERVER_VERSION" \
      "go.temporal.io/server/cmd/tools/sql@$TEMPORAL_SERVER_VERSION" \
      && GOBIN=$gobin GOFLAGS=-mod=mod go install "github.com/grpc-ecosystem/grpc-health-probe@$GRPC_HEALTH_PROBE_VERSION") \
      >>"$LOG_DIR/temporal-cluster-build.log" 2>&1 || { rm -rf "$gobin"; die "go install of the Temporal server failed; see $LOG_DIR/temporal-cluster-build.log"; }
    mv "$gobin/server" "$CACHE_DIR/bin/temporal-server-$TEMPORAL_SERVER_VERSION"
    mv "$gobin/sql" "$CACHE_DIR/bin/temporal-sql-tool-$TEMPORAL_SERVER_VERSION"
    mv "$gobin/grpc-health-probe" "$CACHE_DIR/bin/grpc-health-probe-$GRPC_HEALTH_PROBE_VERSION"
    rm -rf "$gobin"
    log "built the Temporal server in $((SECONDS - started))s"
  fi
  exec {lock}>&-
}

# --- its PostgreSQL: Debian's binaries, its own data directory, port and superuser password ---

cluster_pg_healthy() { pg_isready -q -h 127.0.0.1 -p "$CLUSTER_PG_PORT"; }

cluster_pg_up() {
  ensure_packages /usr/lib/postgresql/15/bin/initdb:postgresql pg_isready:postgresql-client
  local bin; bin=$(pg_bindir)
  cluster_pg_healthy && return
  mkdir -p "$CLUSTER_PG_ROOT/run"
  if [ ! -f "$CLUSTER_PG_ROOT/data/PG_VERSION" ]; then
    (umask 077 && secret temporal-pg-superuser > "$CLUSTER_PG_ROOT/superuser.pw")
    chown -R postgres:postgres "$CLUSTER_PG_ROOT"
    runuser -u postgres -- "$bin/initdb" -D "$CLUSTER_PG_ROOT/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      --pwfile="$CLUSTER_PG_ROOT/superuser.pw" >>"$LOG_DIR/temporal-postgres.log" 2>&1 || die "initdb failed; see $LOG_DIR/temporal-postgres.log"
    rm -f "$CLUSTER_PG_ROOT/superuser.pw"
    # Four services with up to 20 connections each to the store and 2 to visibility, and the SQL tool.
    # fsync off as the demo database: a crash of PostgreSQL loses nothing committed (the WAL is in the
    # page cache); a crash of the machine would, which a throwaway test stack accepts.
    cat >> "$CLUSTER_PG_ROOT/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $CLUSTER_PG_PORT
unix_socket_directories = '$CLUSTER_PG_ROOT/run'
max_connections = 150
fsync = off
CONF
  fi
  chown -R postgres:postgres "$CLUSTER_PG_ROOT"
  touch "$LOG_DIR/temporal-postgres.log" && chown postgres "$LOG_DIR/temporal-postgres.log"
  runuser -u postgres -- "$bin/pg_ctl" -D "$CLUSTER_PG_ROOT/data" -l "$LOG_DIR/temporal-postgres.log" -w -t 60 start >/dev/null \
    || die "Temporal's postgres did not start; see $LOG_DIR/temporal-postgres.log"
  local pw; pw=$(secret temporal-pg)
  runuser -u postgres -- psql -q -h "$CLUSTER_PG_ROOT/run" -p "$CLUSTER_PG_PORT" -U postgres -v ON_ERROR_STOP=1 -v pw="$pw" >/dev/null <<SQL
SELECT 'CREATE ROLE temporal LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'temporal') \gexec
ALTER ROLE temporal WITH LOGIN CREATEDB PASSWORD :'pw';
SQL
}

cluster_pg_down() {
  local bin; bin=$(pg_bindir)
  [ -n "$bin" ] && [ -f "$CLUSTER_PG_ROOT/data/postmaster.pid" ] || return 0
  runuser -u postgres -- "$bin/pg_ctl" -D "$CLUSTER_PG_ROOT/data" -m fast -w stop >/dev/null 2>&1 || true
}

# The SQL tool against Temporal's database; the password through its environment, never argv.
cluster_sql() {
  local db=$1; shift
  SQL_PASSWORD=$(secret temporal-pg) "$(cluster_bin temporal-sql-tool)" --plugin postgres12 --ep 127.0.0.1 \
    -p "$CLUSTER_PG_PORT" -u temporal --db "$db" "$@" >>"$LOG_DIR/temporal-setup.log" 2>&1
}

# Both databases created once; every up brings their schema to this server version (a no-op when current).
cluster_schema() {
  local db schema exists
  for db in temporal temporal_visibility; do
    schema=postgresql/v12/temporal; [ "$db" = temporal_visibility ] && schema=postgresql/v12/visibility
    exists=$(runuser -u postgres -- psql -qtA -h "$CLUSTER_PG_ROOT/run" -p "$CLUSTER_PG_PORT" -U postgres \
      -c "SELECT 1 FROM pg_database WHERE datname = '$db'")
    if [ "$exists" != 1 ]; then
      cluster_sql "$db" create-database || die "creating database $db failed; see $LOG_DIR/temporal-setup.log"
      cluster_sql "$db" setup-schema -v 0.0 || die "setting up the schema of $db failed; see $LOG_DIR/temporal-setup.log"
    fi
    cluster_sql "$db" update-schema --schema-name "$schema" || die "updating the schema of $db failed; see $LOG_DIR/temporal-setup.log"
  done
}

# --- the server's configuration: one directory, one environment (file) per service ---

# The services differ only in their metrics port (they share a host): `--env <service>` picks the file.
# Services whose config file this up changed (a running one is restarted to read it, e.g. the first
# up after mTLS came: a service still serving plaintext would never pass the TLS health check).
CLUSTER_CONFIG_CHANGED=()

cluster_config() {
  local dir=$CLUSTER_ROOT/config svc pw; pw=$(secret temporal-pg)
  CLUSTER_CONFIG_CHANGED=()
  # The files hold the database password: the owner's only.
  mkdir -p "$dir" && chmod 700 "$dir"
  for svc in "${CLUSTER_SERVICES[@]}"; do
    (umask 077 && cat > "$dir/$svc.yaml.tmp" <<YAML
# Written by stack/lib/cluster.sh on every up; edits are lost.
log:
  stdout: true
  level: warn
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: 4
  datastores:
    default:
      sql:
        pluginName: postgres12
        databaseName: temporal
        connectAddr: 127.0.0.1:$CLUSTER_PG_PORT
        connectProtocol: tcp
        user: temporal
        password: "$pw"
        maxConns: 20
        maxIdleConns: 20
        maxConnLifetime: 1h
    visibility:
      sql:
        pluginName: postgres12
        databaseName: temporal_visibility
        connectAddr: 127.0.0.1:$CLUSTER_PG_PORT
        connectProtocol: tcp
        user: temporal
        password: "$pw"
        maxConns: 2
        maxIdleConns: 2
        maxConnLifetime: 1h
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1
  # mTLS everywhere: the frontend takes only clients with a certificate from the stack's CA (the
  # engine, host agents, the admin CLI, the worker service), the services take only each other.
  tls:
    refreshInterval: 10m
    internode:
      server:
        certFile: $(cluster_tls_cert internode)
        keyFile: $(cluster_tls_key internode)
        clientCaFiles: [$(cluster_tls_cert internode-ca)]
        requireClientAuth: true
      client:
        serverName: $CLUSTER_TLS_SERVER_NAME
        rootCaFiles: [$(cluster_tls_cert internode-ca)]
    frontend:
      server:
        certFile: $(cluster_tls_cert frontend)
        keyFile: $(cluster_tls_key frontend)
        clientCaFiles: [$(cluster_tls_cert ca)]
        requireClientAuth: true
      client:
        serverName: $CLUSTER_TLS_SERVER_NAME
        rootCaFiles: [$(cluster_tls_cert ca)]
    systemWorker:
      certFile: $(cluster_tls_cert system-worker)
      keyFile: $(cluster_tls_key system-worker)
      client:
        serverName: $CLUSTER_TLS_SERVER_NAME
        rootCaFiles: [$(cluster_tls_cert ca)]
  metrics:
    prometheus:
      framework: tally
      timerType: histogram
      listenAddress: 127.0.0.1:$(cluster_metrics_port "$svc")
services:
  frontend:
    rpc: { grpcPort: $(cluster_grpc_port frontend), membershipPort: $(($(cluster_grpc_port frontend) + 700)), bindOnLocalHost: true, httpPort: $((CLUSTER_PORT + 10)) }
  history:
    rpc: { grpcPort: $(cluster_grpc_port history), membershipPort: $(($(cluster_grpc_port history) + 700)), bindOnLocalHost: true }
  matching:
    rpc: { grpcPort: $(cluster_grpc_port matching), membershipPort: $(($(cluster_grpc_port matching) + 700)), bindOnLocalHost: true }
  worker:
    rpc: { grpcPort: $(cluster_grpc_port worker), membershipPort: $(($(cluster_grpc_port worker) + 700)), bindOnLocalHost: true }
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: $(cluster_address)
      httpAddress: 127.0.0.1:$((CLUSTER_PORT + 10))
dcRedirectionPolicy:
  policy: noop
publicClient:
  hostPort: $(cluster_address)
dynamicConfigClient:
  filepath: $dir/dynamicconfig.yaml
  pollInterval: 10s
YAML
    ) || die "writing the config of temporal-$svc failed"
    cmp -s "$dir/$svc.yaml.tmp" "$dir/$svc.yaml" || CLUSTER_CONFIG_CHANGED+=("$svc")
    mv "$dir/$svc.yaml.tmp" "$dir/$svc.yaml"
  done
  # What the README recommends for any cluster the engine runs on (see "Server settings" there):
  # eager activities save ~40 ms per step; the guard takes up to 5 updates in flight per engine
  # process, so several engines per queue need more than the default 10. Visibility's per-namespace
  # rate (10/s by default) is raised as the dev server raises it: the suite lists runs a lot.
  cat > "$dir/dynamicconfig.yaml" <<YAML
system.enableActivityEagerExecution:
  - value: true
history.maxInFlightUpdates:
  - value: 50
frontend.namespaceRPS.visibility:
  - value: 100
YAML
}

# --- the services ---

cluster_pidfile() { echo "$STACK_DIR/pids/temporal-$1.pid"; }

cluster_service_healthy() {
  local svc=$1
  case $svc in
    # History answers SERVING only once it owns its shards.
    frontend) cluster_probe frontend WorkflowService ;;
    history) cluster_probe history HistoryService ;;
    matching) cluster_probe matching MatchingService ;;
    worker)
      # The worker service has no gRPC server of its own: healthy once its system workers poll the frontend.
      pid_alive "$(cluster_pidfile worker)" && cluster_temporal task-queue describe \
        --namespace temporal-system --task-queue default-worker-tq -o json 2>/dev/null | grep -q '"identity"' ;;
  esac
}

# Starts the service unless it runs; either way waits until it serves (one that runs may be
# recovering, from its database coming back say: it is given the time, not restarted).
cluster_service_up() {
  local svc=$1 server; server=$(cluster_bin temporal-server)
  if ! pid_alive "$(cluster_pidfile "$svc")"; then
    start_bg "temporal-$svc" "$server" --root "$CLUSTER_ROOT" --config config --env "$svc" --allow-no-auth start --service "$svc"
  fi
  wait_for "temporal-$svc" 90 cluster_service_healthy "$svc"
}

# Closed runs are kept a day, as on the dev server: every test run and benchmark on this machine
# leaves its workflows in this database, which outlives sessions (at 72 h it had grown to 3 GB).
CLUSTER_RETENTION=24h

cluster_namespace() {
  local described
  if ! described=$(cluster_temporal operator namespace describe --namespace "$CLUSTER_NAMESPACE" 2>/dev/null); then
    cluster_temporal operator namespace create --namespace "$CLUSTER_NAMESPACE" --retention "$CLUSTER_RETENTION" \
      --description "remediation engine (local stack)" >>"$LOG_DIR/temporal-setup.log" 2>&1 \
      || die "creating namespace $CLUSTER_NAMESPACE failed; see $LOG_DIR/temporal-setup.log"
  elif ! grep -Eq "RetentionTtl +24h0m0s" <<<"$described"; then # as describe shows CLUSTER_RETENTION
    # A namespace the stack created before with another retention.
    cluster_temporal operator namespace update --namespace "$CLUSTER_NAMESPACE" --retention "$CLUSTER_RETENTION" \
      >>"$LOG_DIR/temporal-setup.log" 2>&1 \
      || die "setting namespace $CLUSTER_NAMESPACE's retention failed; see $LOG_DIR/temporal-setup.log"
  fi
  # A new namespace reaches each service's namespace cache within ~10 s (its refresh interval).
  wait_for temporal-frontend 60 cluster_temporal workflow count --namespace "$CLUSTER_NAMESPACE"
  local have missing=() name
  have=$(cluster_temporal operator search-attribute list --namespace "$CLUSTER_NAMESPACE")
  for name in "${CLUSTER_SEARCH_ATTRIBUTES[@]}"; do
    grep -qw "$name" <<<"$have" || missing+=(--name "$name" --type Keyword)
  done
  if [ ${#missing[@]} -gt 0 ]; then
    cluster_temporal operator search-attribute create --namespace "$CLUSTER_NAMESPACE" "${missing[@]}" \
      >>"$LOG_DIR/temporal-setup.log" 2>&1 || die "registering search attributes failed; see $LOG_DIR/temporal-setup.log"
  fi
  # So do its search attributes: a query naming them all is accepted once the frontend knows them.
  local query="" sep=""
  for name in "${CLUSTER_SEARCH_ATTRIBUTES[@]}"; do query+="$sep$name = 'probe'"; sep=" AND "; done
  wait_for temporal-frontend 60 cluster_temporal workflow count --namespace "$CLUSTER_NAMESPACE" --query "$query"
}

# Each service joins the membership ring through the hosts that heartbeated in the last 20 s; right
# after a full stop those are the stopped ones, and history then waits out maxJoinDuration (30 s)
# and a retry before it serves (~60 s instead of ~6). With no service running the rows are stale.
cluster_forget_members() {
  local svc
  for svc in "${CLUSTER_SERVICES[@]}"; do pid_alive "$(cluster_pidfile "$svc")" && return 0; done
  runuser -u postgres -- psql -q -h "$CLUSTER_PG_ROOT/run" -p "$CLUSTER_PG_PORT" -U postgres -d temporal \
    -c 'DELETE FROM cluster_membership' >/dev/null
}

cluster_up() {
  local started=$SECONDS
  cluster_bin temporal-server >/dev/null
  cluster_pg_up
  cluster_schema
  cluster_tls
  cluster_config
  local svc
  # Stopped in the reverse of the start order (the worker first), then started again below in order.
  for svc in worker frontend matching history; do
    if [[ " ${CLUSTER_CONFIG_CHANGED[*]} " == *" $svc "* ]] && pid_alive "$(cluster_pidfile "$svc")"; then
      log "temporal-$svc runs with an older config; restarting it"
      stop_pid "temporal-$svc" 40
    fi
  done
  cluster_forget_members
  for svc in "${CLUSTER_SERVICES[@]}"; do cluster_service_up "$svc"; done
  cluster_namespace
  log "Temporal cluster up at $(cluster_address), namespace $CLUSTER_NAMESPACE, in $((SECONDS - started))s"
}

cluster_running() { pid_alive "$(cluster_pidfile frontend)"; }

cluster_down() {
  # The worker first (it ignores SIGTERM while the frontend is gone), history last. The frontend
  # drains its long polls on SIGTERM, which takes ~26 s with workers polling.
  stop_pid temporal-worker 10
  stop_pid temporal-frontend 40
  stop_pid temporal-matching 20
  stop_pid temporal-history 20
  cluster_pg_down
}

cluster_status() {
  # Nothing to show on a stack that never ran the cluster; nothing is built to ask it either.
  [ -d "$CLUSTER_ROOT/config" ] || return 0
  local svc port health
  for svc in frontend history matching worker; do
    port=$(cluster_grpc_port "$svc")
    if cluster_service_healthy "$svc" >/dev/null 2>&1; then health="up (metrics :$(cluster_metrics_port "$svc"))"
    elif pid_alive "$(cluster_pidfile "$svc")"; then health="running, not serving"
    else health=down; fi
    [ "$svc" = frontend ] && [ "${health%% *}" = up ] && health+=", namespace $CLUSTER_NAMESPACE"
    status_line "t-$svc" "127.0.0.1:$port" "$health"
  done
  if cluster_pg_healthy 2>/dev/null; then status_line t-postgres "127.0.0.1:$CLUSTER_PG_PORT" up
  else status_line t-postgres "127.0.0.1:$CLUSTER_PG_PORT" down; fi
}
