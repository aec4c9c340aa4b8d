# Shared helpers for the infrastructure scripts (sourced, not run).
# Every path and port can be overridden from the environment; defaults keep state
# outside the source tree so that a clean clone stays clean.

NEWS_SUITE_CACHE="${NEWS_SUITE_CACHE:-$HOME/.cache/news-suite}"
NEWS_SUITE_STATE="${NEWS_SUITE_STATE:-$HOME/.local/state/news-suite}"
mkdir -p "$NEWS_SUITE_CACHE" "$NEWS_SUITE_STATE"

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# pid_alive FILE -> 0 when FILE names a running process
pid_alive() {
  local f=$1
  [ -s "$f" ] || return 1
  kill -0 "$(cat "$f")" 2>/dev/null
}

# port_open PORT -> 0 when something listens on 127.0.0.1:PORT
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# stop_pid FILE NAME [TIMEOUT_S]: SIGTERM, wait, then SIGKILL; removes FILE
stop_pid() {
  local f=$1 name=$2 timeout=${3:-30} pid i
  if ! pid_alive "$f"; then
    rm -f "$f"
    log "$name is not running"
    return 0
  fi
  pid=$(cat "$f")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name (pid $pid) ignored SIGTERM for ${timeout}s, killing"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
  log "$name stopped (pid $pid)"
}
