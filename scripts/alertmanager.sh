#!/usr/bin/env bash
# Monitoring for a suite started by scripts/up.sh: Prometheus (the Debian package) scraping the local services
# with monitoring/prometheus.yml's jobs and rules, Alertmanager (Debian's prometheus-alertmanager) routing what
# fires (monitoring/alertmanager.yml), and the alert log its receivers post to (scripts/alert_log.py).
#   scripts/alertmanager.sh start|stop|status
# `MONITORING=1 make up` runs `start`, `make down` runs `stop`. Ports: PROMETHEUS_PORT 9090,
# ALERTMANAGER_PORT 9093, ALERT_LOG_PORT 9095; the service ports are up.sh's (same variables and defaults).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

PY="${PY:-$root/.venv/bin/python}"
PROMETHEUS_PORT="${PROMETHEUS_PORT:-9090}"
ALERTMANAGER_PORT="${ALERTMANAGER_PORT:-9093}"
ALERT_LOG_PORT="${ALERT_LOG_PORT:-9095}"
run_dir="$NEWS_SUITE_STATE/run"
log_dir="$NEWS_SUITE_STATE/logs"
data="$NEWS_SUITE_STATE/monitoring"
mkdir -p "$run_dir" "$log_dir" "$data"
parts=(alert-log alertmanager prometheus)

# spawn NAME PORT COMMAND...: in the background, logging to $log_dir/NAME.log
spawn() {
  local name=$1 port=$2
  shift 2
  pid_alive "$run_dir/$name.pid" && { log "$name already running (pid $(cat "$run_dir/$name.pid"))"; return 0; }
  port_open "$port" && die "port $port (for $name) is taken by another process: free it or set ${name^^}_PORT"
  nohup setsid "$@" >>"$log_dir/$name.log" 2>&1 </dev/null &
  echo $! >"$run_dir/$name.pid"
  log "$name started (pid $!, http://127.0.0.1:$port, log $log_dir/$name.log)"
}

wait_ready() {
  local name=$1 url=$2 i
  for ((i = 0; i < 150; i++)); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    pid_alive "$run_dir/$name.pid" || { tail -n 20 "$log_dir/$name.log" >&2; die "$name exited"; }
    sleep 0.2
  done
  die "$name not ready at $url (log $log_dir/$name.log)"
}

start() {
  command -v prometheus-alertmanager >/dev/null || die "no prometheus-alertmanager: make system-deps (mk/deploy.mk)"
  command -v prometheus >/dev/null || die "no prometheus: make system-deps (mk/deploy.mk)"
  # the receivers' alert-log URL follows ALERT_LOG_PORT
  sed "s#http://127.0.0.1:9095/#http://127.0.0.1:$ALERT_LOG_PORT/#" "$root/monitoring/alertmanager.yml" \
    >"$data/alertmanager.yml"
  "$PY" - "$data/prometheus.yml" <<PYCODE
import sys, yaml
config = yaml.safe_load(open("$root/monitoring/prometheus.yml"))
ports = {"producer": "${PRODUCER_PORT:-8001}", "inference": "${INFERENCE_PORT:-8000}",
         "consumer": "${CONSUMER_PORT:-8002}", "indexer": "${INDEXER_PORT:-8003}",
         "stream-worker": "${WORKER_PORT:-6066}", "prometheus": "$PROMETHEUS_PORT"}
for job in config["scrape_configs"]:
    job["static_configs"] = [{"targets": [f"127.0.0.1:{ports[job['job_name']]}"]}]
config["rule_files"] = ["$root/monitoring/rules/*.yml"]
config["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": ["127.0.0.1:$ALERTMANAGER_PORT"]}]}]
yaml.safe_dump(config, open(sys.argv[1], "w"), sort_keys=False)
PYCODE
  spawn alert-log "$ALERT_LOG_PORT" "$PY" "$here/alert_log.py" --port "$ALERT_LOG_PORT" --file "$log_dir/alerts.log"
  # --cluster.listen-address= : one Alertmanager, no gossip port (its default, 9094, is compose's Kafka)
  spawn alertmanager "$ALERTMANAGER_PORT" prometheus-alertmanager --config.file="$data/alertmanager.yml" \
    --storage.path="$data/alertmanager" --web.listen-address="127.0.0.1:$ALERTMANAGER_PORT" \
    --cluster.listen-address= --log.level=warn
  spawn prometheus "$PROMETHEUS_PORT" prometheus --config.file="$data/prometheus.yml" \
    --storage.tsdb.path="$data/prometheus" --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" --log.level=warn
  wait_ready alertmanager "http://127.0.0.1:$ALERTMANAGER_PORT/-/ready"
  wait_ready prometheus "http://127.0.0.1:$PROMETHEUS_PORT/-/ready"
  log "alerts: http://127.0.0.1:$ALERTMANAGER_PORT (routes: monitoring/PROMETHEUS_GUIDE.md), delivered to $log_dir/alerts.log"
}

stop() {
  local name
  for name in prometheus alertmanager alert-log; do
    if [ -f "$run_dir/$name.pid" ]; then stop_pid "$run_dir/$name.pid" "$name" 30; fi
  done
}

status() {
  local name any=1
  for name in "${parts[@]}"; do
    if pid_alive "$run_dir/$name.pid"; then echo "$name: running (pid $(cat "$run_dir/$name.pid"))"; any=0
    else echo "$name: stopped"; fi
  done
  return $any
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
