#!/usr/bin/env bash
# Stop the Apicurio Registry started by start.sh.
#
# Usage: deploy/registry/stop.sh [--clean]   (from any directory)
#   --clean  also delete the run dir (logs, pid)
# Env:   REGISTRY_PORT          HTTP port (default 8085)
#        REGISTRY_RUN_DIR       run dir (default deploy/registry/run/<port>)
#        REGISTRY_STOP_TIMEOUT  seconds to wait after SIGTERM before SIGKILL (default 20)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

clean=0
for arg in "$@"; do
  case "$arg" in
    --clean) clean=1 ;;
    -h | --help) sed -n '2,8p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument: $arg (usage: stop.sh [--clean])" ;;
  esac
done

PORT="${REGISTRY_PORT:-8085}"
RUN_DIR="${REGISTRY_RUN_DIR:-$(default_run_dir "$PORT")}"
TIMEOUT="${REGISTRY_STOP_TIMEOUT:-20}"

if pid=$(running_pid "$RUN_DIR"); then
  start=$(now_ms)
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < TIMEOUT * 10; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then
    log "registry pid $pid did not stop within ${TIMEOUT}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$RUN_DIR/registry.pid"
  log "stopped registry on 127.0.0.1:$PORT (pid $pid) in $(elapsed_since "$start")s"
else
  rm -f "$RUN_DIR/registry.pid"
  log "no registry running from $RUN_DIR"
fi
if [[ $clean == 1 && -d "$RUN_DIR" ]]; then
  rm -rf "$RUN_DIR"
  log "removed $RUN_DIR"
fi
