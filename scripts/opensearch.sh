#!/usr/bin/env bash
# Real OpenSearch (one node) on loopback, from the minimal distribution on Maven Central.
#   scripts/opensearch.sh fetch|start|stop|status|reset
# Environment: OPENSEARCH_PORT (9200), OPENSEARCH_TRANSPORT_PORT (OPENSEARCH_PORT+100),
#              OPENSEARCH_HEAP (-Xms512m -Xmx512m), OPENSEARCH_DIR (data, logs, config; see below),
#              OPENSEARCH_USER (news-opensearch: the account it runs as when this script runs as root),
#              OPENSEARCH_JAVA_HOME (the system's Java 17+), NEWS_SUITE_CACHE/STATE.
# docs/SEARCH.md says what is fetched, how it is configured and how to run more than one node.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

OPENSEARCH_VERSION=2.19.6
OPENSEARCH_PORT="${OPENSEARCH_PORT:-9200}"
OPENSEARCH_TRANSPORT_PORT="${OPENSEARCH_TRANSPORT_PORT:-$((OPENSEARCH_PORT + 100))}"
OPENSEARCH_HEAP="${OPENSEARCH_HEAP:--Xms512m -Xmx512m}"
OPENSEARCH_USER="${OPENSEARCH_USER:-news-opensearch}"
# The zip and the module jar, as fetched (only this script reads them).
OPENSEARCH_FETCHED="$NEWS_SUITE_CACHE/opensearch-$OPENSEARCH_VERSION"

# OpenSearch refuses to run as root. As root the node runs as OPENSEARCH_USER, which must reach its
# files: a root home is usually mode 700, so then they live under /var/lib/news-suite instead.
as_root() { [ "$(id -u)" = 0 ]; }
if as_root; then
  ensure_user() {
    id -u "$OPENSEARCH_USER" >/dev/null 2>&1 && return 0
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
      "$OPENSEARCH_USER" || id -u "$OPENSEARCH_USER" >/dev/null 2>&1 \
      || die "could not create the system user $OPENSEARCH_USER that OpenSearch runs as"
    log "created the system user $OPENSEARCH_USER (OpenSearch does not run as root)"
  }
  # nobody stands in for the service user here (same rights: neither owns nor shares a group with
  # the path), so status and stop work before the user exists.
  if setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$NEWS_SUITE_STATE" 2>/dev/null; then
    runtime_base="$NEWS_SUITE_STATE"
  else
    runtime_base=/var/lib/news-suite
  fi
else
  runtime_base="$NEWS_SUITE_STATE"
fi
OPENSEARCH_DIR="${OPENSEARCH_DIR:-$runtime_base/opensearch-$OPENSEARCH_PORT}"
# The unpacked distribution (read-only at run time, shared by every port).
OPENSEARCH_HOME="${OPENSEARCH_HOME:-$runtime_base/opensearch-$OPENSEARCH_VERSION}"
pidfile="$OPENSEARCH_DIR/opensearch.pid"
logfile="$OPENSEARCH_DIR/opensearch.out"
url="http://127.0.0.1:$OPENSEARCH_PORT"

java_home() {
  if [ -n "${OPENSEARCH_JAVA_HOME:-}" ]; then echo "$OPENSEARCH_JAVA_HOME"; return; fi
  command -v java >/dev/null || die "java not found: OpenSearch needs Java 17+ (apt-get install openjdk-17-jre-headless)"
  dirname "$(dirname "$(readlink -f "$(command -v java)")")"
}

fetch() {
  if [ -f "$OPENSEARCH_FETCHED/.complete" ]; then return 0; fi
  command -v mvn >/dev/null || die "mvn not found: install Maven (apt-get install maven) to fetch OpenSearch"
  log "fetching OpenSearch $OPENSEARCH_VERSION from Maven Central into $OPENSEARCH_FETCHED"
  mkdir -p "$OPENSEARCH_FETCHED"
  local artifact
  # The minimal distribution carries only transport-netty4; analysis-common brings the english,
  # stemmer, porter_stem and cjk_bigram analyzers and filters that the search index uses.
  for artifact in "org.opensearch.distribution.integ-test-zip:opensearch:$OPENSEARCH_VERSION:zip" \
                  "org.opensearch.plugin:analysis-common:$OPENSEARCH_VERSION"; do
    mvn -q -B -Dstyle.color=never -f "$here/opensearch/pom.xml" dependency:copy \
        -Dartifact="$artifact" -DoutputDirectory="$OPENSEARCH_FETCHED" \
      || die "could not fetch $artifact with mvn (see the output above)"
  done
  touch "$OPENSEARCH_FETCHED/.complete"
}

# install: unpack the distribution once and add analysis-common as a module (modules load at start
# without the plugin tool; its descriptor is the one the full distribution ships).
install() {
  if [ -f "$OPENSEARCH_HOME/.complete" ]; then return 0; fi
  fetch
  log "unpacking OpenSearch into $OPENSEARCH_HOME"
  local tmp="$OPENSEARCH_HOME.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  # python's zipfile, not unzip: one less system package; it drops the mode bits, restored below.
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
    "$OPENSEARCH_FETCHED/opensearch-$OPENSEARCH_VERSION.zip" "$tmp" || die "could not unpack the OpenSearch zip"
  local dist="$tmp/opensearch-$OPENSEARCH_VERSION"
  chmod +x "$dist"/bin/*
  local module="$dist/modules/analysis-common"
  mkdir -p "$module"
  cp "$OPENSEARCH_FETCHED/analysis-common-$OPENSEARCH_VERSION.jar" "$module/"
  cat >"$module/plugin-descriptor.properties" <<PROPS
description=Adds "built in" analyzers to OpenSearch.
version=$OPENSEARCH_VERSION
name=analysis-common
classname=org.opensearch.analysis.common.CommonAnalysisPlugin
java.version=11
opensearch.version=$OPENSEARCH_VERSION
custom.foldername=
extended.plugins=
has.native.controller=false
PROPS
  chmod -R a+rX "$dist"
  rm -rf "$OPENSEARCH_HOME"
  mkdir -p "$(dirname "$OPENSEARCH_HOME")"
  mv "$dist" "$OPENSEARCH_HOME"
  rm -rf "$tmp"
  touch "$OPENSEARCH_HOME/.complete"
}

configure() {
  mkdir -p "$OPENSEARCH_DIR/config" "$OPENSEARCH_DIR/data" "$OPENSEARCH_DIR/logs" "$OPENSEARCH_DIR/tmp"
  cat >"$OPENSEARCH_DIR/config/opensearch.yml" <<CONF
# generated by scripts/opensearch.sh; edit the script, not this file
cluster.name: news-suite
node.name: news-suite-$OPENSEARCH_PORT
path.data: $OPENSEARCH_DIR/data
path.logs: $OPENSEARCH_DIR/logs
network.host: 127.0.0.1
http.port: $OPENSEARCH_PORT
transport.port: $OPENSEARCH_TRANSPORT_PORT
discovery.type: single-node
# A shared developer or CI disk is often nearly full: the default watermarks (85/90/95 %) would stop
# allocating shards and then make every index read-only. Production keeps them (docker-compose, k8s).
cluster.routing.allocation.disk.threshold_enabled: false
action.destructive_requires_name: true
CONF
  # The distribution's JVM options (GC, security manager on Java 18+...); the heap is set by
  # OPENSEARCH_JAVA_OPTS, which comes after them and wins.
  # bin/opensearch runs from OPENSEARCH_HOME, so the relative GC log, error file and heap-dump
  # paths in them would point into the (read-only) distribution: make them absolute.
  sed -e "s|logs/|$OPENSEARCH_DIR/logs/|g" -e "s|HeapDumpPath=data|HeapDumpPath=$OPENSEARCH_DIR/logs|" \
    "$OPENSEARCH_HOME/config/jvm.options" >"$OPENSEARCH_DIR/config/jvm.options"
  cp "$OPENSEARCH_HOME/config/log4j2.properties" "$OPENSEARCH_DIR/config/"
  mkdir -p "$OPENSEARCH_DIR/config/jvm.options.d"
  if as_root; then chown -R "$OPENSEARCH_USER:$OPENSEARCH_USER" "$OPENSEARCH_DIR"; fi
}

ready() {
  curl -fsS -o /dev/null --max-time 2 "$url/_cluster/health?wait_for_status=yellow&timeout=1s" 2>/dev/null
}

start() {
  if pid_alive "$pidfile"; then
    log "OpenSearch is already running (pid $(cat "$pidfile"), $url); 'make down' or '$0 stop' stops it"
    return 0
  fi
  if port_open "$OPENSEARCH_PORT"; then
    die "port $OPENSEARCH_PORT is taken by another process: stop it or set OPENSEARCH_PORT"
  fi
  if port_open "$OPENSEARCH_TRANSPORT_PORT"; then
    die "transport port $OPENSEARCH_TRANSPORT_PORT is taken by another process: set OPENSEARCH_TRANSPORT_PORT"
  fi
  command -v curl >/dev/null || die "curl not found (apt-get install curl)"
  local jhome
  jhome=$(java_home)
  install
  if as_root; then ensure_user; fi
  configure
  local drop=()
  if as_root; then drop=(setpriv --reuid="$OPENSEARCH_USER" --regid="$OPENSEARCH_USER" --clear-groups); fi
  : >"$logfile"
  # setpriv and bin/opensearch both exec, so $! is the JVM's pid.
  (
    cd "$OPENSEARCH_DIR"
    export OPENSEARCH_JAVA_HOME="$jhome" OPENSEARCH_PATH_CONF="$OPENSEARCH_DIR/config" \
      OPENSEARCH_TMPDIR="$OPENSEARCH_DIR/tmp" OPENSEARCH_JAVA_OPTS="$OPENSEARCH_HEAP"
    exec nohup setsid "${drop[@]}" "$OPENSEARCH_HOME/bin/opensearch" >>"$logfile" 2>&1 </dev/null
  ) &
  echo $! >"$pidfile"
  local i started
  started=$(date +%s)
  for ((i = 0; i < 900; i++)); do
    if ! pid_alive "$pidfile"; then
      tail -n 40 "$logfile" >&2
      rm -f "$pidfile"
      die "OpenSearch exited during start-up, see $logfile"
    fi
    if ready; then
      log "OpenSearch is up on $url in $(($(date +%s) - started)) s (pid $(cat "$pidfile"), data $OPENSEARCH_DIR)"
      return 0
    fi
    sleep 0.2
  done
  die "OpenSearch did not answer within 180 s, see $logfile"
}

case "${1:-}" in
  fetch) fetch ;;
  install) install ;;
  start) start ;;
  stop) stop_pid "$pidfile" OpenSearch 60 ;;
  status)
    if pid_alive "$pidfile"; then echo "running pid $(cat "$pidfile") port $OPENSEARCH_PORT"; else echo "stopped"; exit 1; fi ;;
  url) echo "$url" ;;
  reset) stop_pid "$pidfile" OpenSearch 60; rm -rf "$OPENSEARCH_DIR"; log "removed $OPENSEARCH_DIR" ;;
  *) echo "usage: $0 fetch|install|start|stop|status|url|reset" >&2; exit 2 ;;
esac
