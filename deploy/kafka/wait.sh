#!/usr/bin/env bash
# Wait until the Kafka broker on 127.0.0.1:PORT is ready to serve clients.
#
# Usage: deploy/kafka/wait.sh [PORT]       (from any directory)
# Env:   KAFKA_PORT          broker port if no argument (default 9092)
#        KAFKA_RUN_DIR       run dir of a broker started by start.sh (default deploy/kafka/run/<port>)
#        KAFKA_WAIT_TIMEOUT  seconds before giving up (default 90)
#        KAFKA_WAIT_STRICT=1 also require an admin-client topic listing to succeed
#
# Readiness: for a broker started by start.sh, the broker's own log line
# "Kafka Server started" (logged by KafkaRaftServer only after the broker has
# caught up with the metadata log and been unfenced by the controller) plus
# the port accepting connections. For other brokers (no run dir/log), or with
# KAFKA_WAIT_STRICT=1: `TopicCommand --list` must succeed.
# On timeout (or if the broker process dies) prints the log tail and exits 1.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PORT="${1:-${KAFKA_PORT:-9092}}"
RUN_DIR="${KAFKA_RUN_DIR:-$(default_run_dir "$PORT")}"
TIMEOUT="${KAFKA_WAIT_TIMEOUT:-90}"
START_MS="${KAFKA_WAIT_START_MS:-$(now_ms)}"
LOG_FILE="$RUN_DIR/logs/server.log"

deadline=$(($(now_ms) + TIMEOUT * 1000))

fail() {
  log "$1"
  for f in "$LOG_FILE" "$RUN_DIR/logs/kafka.out"; do
    if [[ -s "$f" ]]; then
      log "---- last 40 lines of $f ----"
      tail -n 40 "$f" >&2
    fi
  done
  exit 1
}

# Readiness by the broker's log (only for brokers started by start.sh).
# 0: ready, 1: not yet, 2: log rotated since start (cannot tell from the log).
log_ready() {
  local offset=0 inode="" size cur_inode
  [[ -f "$RUN_DIR/log.offset" ]] && read -r offset inode <"$RUN_DIR/log.offset"
  [[ -f "$LOG_FILE" ]] || return 1
  read -r size cur_inode < <(stat -c '%s %i' "$LOG_FILE")
  if [[ -n "$inode" && "$cur_inode" != "$inode" ]] || ((size < offset)); then
    return 2
  fi
  # Process substitution, not a pipe: `grep -q` exiting early would make
  # tail fail with SIGPIPE under pipefail.
  grep -qF "$KAFKA_STARTED_MARKER" < <(tail -c +$((offset + 1)) "$LOG_FILE")
}

admin_ready() {
  timeout 30 java -Xmx256m "-Dlog4j.configuration=file:$(tools_log4j ERROR)" -cp "$KAFKA_LIB/*" \
    org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$PORT" --list \
    >/dev/null 2>&1
}

managed=0
[[ -f "$RUN_DIR/kafka.pid" ]] && managed=1
if [[ $managed == 0 || "${KAFKA_WAIT_STRICT:-0}" == 1 ]]; then
  "$KAFKA_HOME/fetch.sh"
fi

pid=""
while :; do
  if [[ $managed == 1 ]] && ! pid=$(running_pid "$RUN_DIR"); then
    fail "broker process for 127.0.0.1:$PORT is not running (exited during startup?)"
  fi
  if (($(now_ms) > deadline)); then
    fail "broker on 127.0.0.1:$PORT not ready after ${TIMEOUT}s"
  fi
  if port_open "$PORT"; then
    if [[ $managed == 1 ]]; then
      rc=0
      # Already seen ready by an earlier wait.sh for this very process?
      if [[ -f "$RUN_DIR/ready" && "$(<"$RUN_DIR/ready")" == "$pid" ]]; then
        rc=0
      else
        log_ready || rc=$?
      fi
      if ((rc == 2)); then
        admin_ready && break
      elif ((rc == 0)) && { [[ "${KAFKA_WAIT_STRICT:-0}" != 1 ]] || admin_ready; }; then
        printf '%s\n' "$pid" >"$RUN_DIR/ready"
        break
      fi
    elif admin_ready; then
      break
    fi
  fi
  sleep 0.2
done
log "broker on 127.0.0.1:$PORT ready after $(elapsed_since "$START_MS")s"
