# Prometheus scrapes the demo services and fires ServiceDown; Alertmanager routes it to the
# engine's webhook with the bearer token the engine expects. Both configs are generated here.
PROM_ROOT=$STACK_DIR/prometheus
AM_ROOT=$STACK_DIR/alertmanager

prometheus_up() {
  ensure_packages prometheus:prometheus
  http_ok "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" 2>/dev/null && return
  mkdir -p "$PROM_ROOT/data"
  cat > "$PROM_ROOT/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:$ALERTMANAGER_PORT']
rule_files: ['$PROM_ROOT/rules.yml']
scrape_configs:
  - job_name: demo
    static_configs:
      - targets: ['127.0.0.1:$DEMO_PORT']
        labels: { service: demo }
  - job_name: demo-web
    static_configs:
      - targets: ['127.0.0.1:$SYSTEMD_DEMO_PORT']
        labels: { service: demo-web }
YAML
  cat > "$PROM_ROOT/rules.yml" <<'YAML'
groups:
  - name: remediation-demo
    rules:
      - alert: ServiceDown
        expr: up == 0
        for: 2s
        labels: { severity: critical }
        annotations:
          summary: '{{ $labels.service }} on {{ $labels.instance }} is not answering'
YAML
  start_bg prometheus prometheus --config.file="$PROM_ROOT/prometheus.yml" --storage.tsdb.path="$PROM_ROOT/data" \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" --web.enable-lifecycle --storage.tsdb.retention.time=1d
  wait_for prometheus 60 http_ok "http://127.0.0.1:$PROMETHEUS_PORT/-/ready"
}

prometheus_down() { stop_pid prometheus; }

alertmanager_up() {
  ensure_packages prometheus-alertmanager:prometheus-alertmanager
  http_ok "http://127.0.0.1:$ALERTMANAGER_PORT/-/ready" 2>/dev/null && return
  mkdir -p "$AM_ROOT/data"
  secret webhook-token >/dev/null
  cat > "$AM_ROOT/alertmanager.yml" <<YAML
route:
  receiver: engine
  group_by: [alertname, service, instance]
  group_wait: 1s
  group_interval: 2s
  # Short on purpose: when the engine was down as an alert resolved, Alertmanager never records the
  # resolution as sent, and an identical re-firing would wait a whole repeat_interval. The engine
  # folds repeats into the running incident, so frequent repeats cost nothing.
  repeat_interval: 15s
receivers:
  - name: engine
    webhook_configs:
      - url: http://127.0.0.1:$WEBHOOK_PORT/alertmanager
        send_resolved: true
        # The webhook refuses batches of more than 1,000 alerts (400, never retried): split them here.
        max_alerts: 1000
        http_config:
          authorization:
            type: Bearer
            credentials_file: $SECRETS_DIR/webhook-token
YAML
  start_bg alertmanager prometheus-alertmanager --config.file="$AM_ROOT/alertmanager.yml" --storage.path="$AM_ROOT/data" \
    --web.listen-address="127.0.0.1:$ALERTMANAGER_PORT" --cluster.listen-address=
  wait_for alertmanager 60 http_ok "http://127.0.0.1:$ALERTMANAGER_PORT/-/ready"
}

alertmanager_down() { stop_pid alertmanager; }

monitoring_status() {
  if http_ok "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" 2>/dev/null; then status_line prometheus "http://127.0.0.1:$PROMETHEUS_PORT" up
  else status_line prometheus "http://127.0.0.1:$PROMETHEUS_PORT" down; fi
  if http_ok "http://127.0.0.1:$ALERTMANAGER_PORT/-/ready" 2>/dev/null; then status_line alertmanager "http://127.0.0.1:$ALERTMANAGER_PORT" up
  else status_line alertmanager "http://127.0.0.1:$ALERTMANAGER_PORT" down; fi
}
