#!/usr/bin/env bash
# Start a single-node Apache Kafka (KRaft, combined broker+controller) on
# 127.0.0.1, in the background, and wait until it is ready.
#
# Usage: deploy/kafka/start.sh             (from any directory)
# Env:   KAFKA_PORT             broker port (default 9092)
#        KAFKA_CONTROLLER_PORT  controller port (default KAFKA_PORT+1)
#        KAFKA_RUN_DIR          config/data/logs/pid dir (default deploy/kafka/run/<port>)
#        KAFKA_HEAP_OPTS        JVM heap (default "-Xms256m -Xmx768m")
#        KAFKA_OPTS             extra JVM options
#        KAFKA_WAIT_TIMEOUT     readiness timeout in seconds (default 90, see wait.sh)
# Logs: <run dir>/logs/server.log. Stop with deploy/kafka/stop.sh.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PORT="${KAFKA_PORT:-9092}"
[[ "$PORT" =~ ^[0-9]+$ ]] || die "KAFKA_PORT must be a number, got '$PORT'"
CPORT="${KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
RUN_DIR="${KAFKA_RUN_DIR:-$(default_run_dir "$PORT")}"
HEAP="${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}"
export KAFKA_PORT="$PORT" KAFKA_RUN_DIR="$RUN_DIR"

if pid=$(running_pid "$RUN_DIR"); then
  log "broker already running on 127.0.0.1:$PORT (pid $pid, run dir $RUN_DIR)"
  exit 0
fi
for p in "$PORT" "$CPORT"; do
  if port_open "$p"; then
    die "port $p is already in use by another process (not a broker started from $RUN_DIR)"
  fi
done

"$KAFKA_HOME/fetch.sh"

start=$(now_ms)
mkdir -p "$RUN_DIR/logs" "$RUN_DIR/data"
write_log4j "$RUN_DIR"
write_server_properties "$RUN_DIR" 1 "$PORT" "$CPORT" "1@127.0.0.1:$CPORT" 1 1
if [[ ! -f "$RUN_DIR/cluster.id" ]]; then
  random_cluster_id >"$RUN_DIR/cluster.id"
fi
format_storage "$RUN_DIR" "$(<"$RUN_DIR/cluster.id")"
launch_broker "$RUN_DIR" "$HEAP"
log "started broker pid $(<"$RUN_DIR/kafka.pid") on 127.0.0.1:$PORT (controller $CPORT), run dir $RUN_DIR"
if ! KAFKA_WAIT_START_MS="$start" "$KAFKA_HOME/wait.sh"; then
  log "broker did not become ready; stopping it (logs kept in $RUN_DIR/logs)"
  stop_broker "$RUN_DIR" 10
  exit 1
fi
