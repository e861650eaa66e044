# Temporal: an external cluster when TEMPORAL_ADDRESS is set; otherwise the CLI's dev server,
# its state in a file under the stack directory so workflows survive its restart.
TEMPORAL_CLI_VERSION=v1.5.1

temporal_bin() {
  if [ -n "${TEMPORAL_CLI_PATH:-}" ]; then echo "$TEMPORAL_CLI_PATH"; return; fi
  if command -v temporal >/dev/null 2>&1; then command -v temporal; return; fi
  if [ -x "$CACHE_DIR/bin/temporal" ]; then echo "$CACHE_DIR/bin/temporal"; return; fi
  command -v go >/dev/null 2>&1 || die "no Temporal CLI: set TEMPORAL_CLI_PATH, put temporal on PATH, or install Go to build it"
  log "building the Temporal CLI $TEMPORAL_CLI_VERSION with go install (once; cached in $CACHE_DIR/bin)"
  mkdir -p "$CACHE_DIR/bin" "$LOG_DIR"
  (cd /tmp && GOBIN=$CACHE_DIR/bin GOFLAGS=-mod=mod go install "github.com/temporalio/cli/cmd/temporal@$TEMPORAL_CLI_VERSION") \
    >>"$LOG_DIR/temporal-build.log" 2>&1 || die "go install of the Temporal CLI failed; see $LOG_DIR/temporal-build.log"
  echo "$CACHE_DIR/bin/temporal"
}

temporal_address() { echo "${TEMPORAL_ADDRESS:-127.0.0.1:$TEMPORAL_PORT}"; }

temporal_healthy() { "$(temporal_bin)" operator cluster health --address "$(temporal_address)" 2>/dev/null | grep -q SERVING; }

temporal_up() {
  if [ -n "${TEMPORAL_ADDRESS:-}" ]; then
    log "using the Temporal cluster at $TEMPORAL_ADDRESS (nothing started)"
    return
  fi
  local bin; bin=$(temporal_bin)
  pid_alive "$STACK_DIR/pids/temporal.pid" && temporal_healthy && return
  # Every workflow's history is in there: the owner's only.
  mkdir -p "$STACK_DIR/temporal" && chmod 700 "$STACK_DIR/temporal"
  # Tuned as devServerTuning in worker/temporal.ts (eager activities; SQLite WAL, normal sync).
  start_bg temporal "$bin" server start-dev \
    --ip 127.0.0.1 --port "$TEMPORAL_PORT" --ui-port "$TEMPORAL_UI_PORT" \
    --http-port $((TEMPORAL_PORT + 10)) --metrics-port $((TEMPORAL_PORT + 1)) \
    --db-filename "$STACK_DIR/temporal/temporal.db" --log-level warn \
    --dynamic-config-value system.enableActivityEagerExecution=true \
    --sqlite-pragma journal_mode=wal --sqlite-pragma synchronous=normal \
    --search-attribute RemediationTarget=Keyword --search-attribute AlertName=Keyword \
    --search-attribute Severity=Keyword --search-attribute Outcome=Keyword --search-attribute Runbook=Keyword
  wait_for temporal 90 temporal_healthy
}

temporal_down() { stop_pid temporal; }

temporal_status() {
  if temporal_healthy; then status_line temporal "$(temporal_address)" "up (UI http://127.0.0.1:$TEMPORAL_UI_PORT)"
  else status_line temporal "$(temporal_address)" down; fi
}
