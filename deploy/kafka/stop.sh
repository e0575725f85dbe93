#!/usr/bin/env bash
# Stop the single-node Kafka broker started by start.sh.
#
# Usage: deploy/kafka/stop.sh [--clean]    (from any directory)
#   --clean  also delete the run dir (config, data, logs)
# Env:   KAFKA_PORT          broker port (default 9092)
#        KAFKA_RUN_DIR       run dir (default deploy/kafka/run/<port>)
#        KAFKA_STOP_TIMEOUT  seconds to wait after SIGTERM before SIGKILL (default 30)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

clean=0
for arg in "$@"; do
  case "$arg" in
    --clean) clean=1 ;;
    -h | --help) sed -n '2,9p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument: $arg (usage: stop.sh [--clean])" ;;
  esac
done

PORT="${KAFKA_PORT:-9092}"
RUN_DIR="${KAFKA_RUN_DIR:-$(default_run_dir "$PORT")}"

if pid=$(running_pid "$RUN_DIR"); then
  start=$(now_ms)
  stop_broker "$RUN_DIR" "${KAFKA_STOP_TIMEOUT:-30}"
  log "stopped broker on 127.0.0.1:$PORT (pid $pid) in $(elapsed_since "$start")s"
else
  rm -f "$RUN_DIR/kafka.pid"
  log "no broker running from $RUN_DIR"
fi
if [[ $clean == 1 && -d "$RUN_DIR" ]]; then
  rm -rf "$RUN_DIR"
  log "removed $RUN_DIR"
fi
