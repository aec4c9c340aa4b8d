#!/usr/bin/env bash
# Real Redis (the OS package redis-server) on loopback with AOF on.
#   scripts/redis.sh start|stop|status|reset
# Environment: REDIS_PORT (6379), REDIS_DATA_DIR, NEWS_SUITE_STATE.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

REDIS_PORT="${REDIS_PORT:-6379}"
REDIS_DATA_DIR="${REDIS_DATA_DIR:-$NEWS_SUITE_STATE/redis-$REDIS_PORT}"
pidfile="$REDIS_DATA_DIR/redis.pid"

start() {
  command -v redis-server >/dev/null || die "redis-server not found: apt-get install -y redis-server"
  if pid_alive "$pidfile"; then
    log "Redis is already running (pid $(cat "$pidfile"), 127.0.0.1:$REDIS_PORT)"
    return 0
  fi
  if port_open "$REDIS_PORT"; then
    die "port $REDIS_PORT is taken by another process: stop it or set REDIS_PORT"
  fi
  mkdir -p "$REDIS_DATA_DIR"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$REDIS_DATA_DIR" \
    --appendonly yes --appendfsync everysec --save "" \
    --daemonize yes --pidfile "$pidfile" --logfile "$REDIS_DATA_DIR/redis.log" \
    || die "redis-server failed to start, see $REDIS_DATA_DIR/redis.log"
  local i
  for ((i = 0; i < 100; i++)); do
    if redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
      log "Redis is up on 127.0.0.1:$REDIS_PORT (pid $(cat "$pidfile"), AOF in $REDIS_DATA_DIR)"
      return 0
    fi
    sleep 0.1
  done
  die "Redis did not answer within 10 s, see $REDIS_DATA_DIR/redis.log"
}

case "${1:-}" in
  start) start ;;
  stop) stop_pid "$pidfile" Redis 30 ;;
  status)
    if pid_alive "$pidfile"; then echo "running pid $(cat "$pidfile") port $REDIS_PORT"; else echo "stopped"; exit 1; fi ;;
  reset) stop_pid "$pidfile" Redis 30; rm -rf "$REDIS_DATA_DIR"; log "removed $REDIS_DATA_DIR" ;;
  *) echo "usage: $0 start|stop|status|reset" >&2; exit 2 ;;
esac
