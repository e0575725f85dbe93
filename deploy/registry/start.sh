#!/usr/bin/env bash
# Start Apicurio Registry (in-memory storage) on 127.0.0.1 in the background
# and wait until it is ready. Its Confluent-compatible API is
# http://127.0.0.1:<port>/apis/ccompat/v7 (printed on stdout when ready).
#
# Usage: deploy/registry/start.sh          (from any directory)
# Env:   REGISTRY_PORT          HTTP port (default 8085)
#        REGISTRY_RUN_DIR       logs/pid dir (default deploy/registry/run/<port>)
#        REGISTRY_HEAP_OPTS     JVM heap (default "-Xms64m -Xmx384m")
#        REGISTRY_WAIT_TIMEOUT  readiness timeout in seconds (default 120)
# Logs: <run dir>/registry.log. Stop with deploy/registry/stop.sh.
# Storage is H2 in memory: everything registered is gone when it stops.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PORT="${REGISTRY_PORT:-8085}"
[[ "$PORT" =~ ^[0-9]+$ ]] || die "REGISTRY_PORT must be a number, got '$PORT'"
RUN_DIR="${REGISTRY_RUN_DIR:-$(default_run_dir "$PORT")}"
HEAP="${REGISTRY_HEAP_OPTS:--Xms64m -Xmx384m}"
TIMEOUT="${REGISTRY_WAIT_TIMEOUT:-120}"
API="http://127.0.0.1:$PORT/apis/ccompat/v7"

if pid=$(running_pid "$RUN_DIR"); then
  log "registry already running on 127.0.0.1:$PORT (pid $pid, run dir $RUN_DIR)"
  echo "$API"
  exit 0
fi
port_open "$PORT" && die "port $PORT is already in use by another process (not a registry started from $RUN_DIR)"

"$REGISTRY_HOME/fetch.sh"

start=$(now_ms)
mkdir -p "$RUN_DIR"
rm -f "$RUN_DIR/registry.pid"
read -r -a heap_opts <<<"$HEAP"
# The run-dir property only marks the process as ours (see running_pid).
# shellcheck disable=SC2016 # $$ and $@ are for the inner shell
setsid nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$RUN_DIR/registry.pid" \
  java "${heap_opts[@]}" -XX:+ExitOnOutOfMemoryError -XX:TieredStopAtLevel=1 \
  -Djava.awt.headless=true "-Dselfheal.registry.run_dir=$RUN_DIR" \
  -Dquarkus.http.host=127.0.0.1 "-Dquarkus.http.port=$PORT" \
  -Dquarkus.http.non-application-root-path=/q \
  -jar "$REGISTRY_JAR" </dev/null >"$RUN_DIR/registry.log" 2>&1 &
for ((i = 0; i < 50; i++)); do
  [[ -s "$RUN_DIR/registry.pid" ]] && break
  sleep 0.1
done
pid=$(<"$RUN_DIR/registry.pid")
log "started Apicurio Registry $REGISTRY_VERSION pid $pid on 127.0.0.1:$PORT, run dir $RUN_DIR"

# Ready = the Confluent-compatible API answers (storage initialised).
deadline=$(( $(date +%s) + TIMEOUT ))
until api_answers "$PORT"; do
  if ! alive "$pid"; then
    tail -n 30 "$RUN_DIR/registry.log" >&2 || true
    die "registry exited during start-up (see $RUN_DIR/registry.log)"
  fi
  if (( $(date +%s) > deadline )); then
    tail -n 30 "$RUN_DIR/registry.log" >&2 || true
    kill -TERM "$pid" 2>/dev/null || true
    die "registry not ready within ${TIMEOUT}s (see $RUN_DIR/registry.log)"
  fi
  sleep 0.5
done
log "registry ready at $API in $(elapsed_since "$start")s"
echo "$API"
