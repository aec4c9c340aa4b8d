#!/usr/bin/env bash
# Stop everything scripts/up.sh started (services first, then OpenSearch, Redis and Kafka).
#   scripts/down.sh             everything
#   scripts/down.sh --services  the services only (Kafka, Redis and OpenSearch keep running)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
run_dir="$NEWS_SUITE_STATE/run"
for name in replay dashboard producer worker indexer consumer inference; do
  [ -f "$run_dir/$name.pid" ] && stop_pid "$run_dir/$name.pid" "$name" 30
done
"$here/alertmanager.sh" stop  # Prometheus and Alertmanager, if MONITORING=1 started them
[ "${1:-}" = --services ] && exit 0
"$here/opensearch.sh" stop
"$here/redis.sh" stop
"$here/kafka.sh" stop
