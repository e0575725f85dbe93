#!/usr/bin/env bash
# Fault injection, end to end: starts a real broker on a free port and
# `selfheal up` against it (intake on a free port), runs the quick scenarios
# of inject.py (far-future records, slow clients, signature flood), then a
# soak with `selfheal up`'s RSS sampled (first/max/last), then the detector
# kill -9 vs clean comparison (tests/detector_kill_vs_clean.rs, a
# test run here against this broker), prints the figures, then stops
# everything and deletes the broker's run dir. Exit non-zero if any failed.
#
# Usage: deploy/fault/run.sh [inject.py options...]
#   SELFHEAL_BIN      the selfheal binary (default: target/release/selfheal, else target/debug/selfheal)
#   FAULT_KAFKA_PORT  broker port (default: a free one)
#   FAULT_SOAK_S      soak duration in seconds (default 60; the README's figure: 600)
#   FAULT_KILLS       detector kills (default 10; 0 skips the comparison, which needs cargo)
#   FAULT_BROKER_KILL 1 (default): a partition leader of a 3-node KRaft cluster
#                     killed with kill -9 under load (tests/broker_kill.rs, needs
#                     cargo; deploy/kafka/cluster3.sh on free ports); 0 skips it
set -euo pipefail

FAULT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT_DIR="$(cd "$FAULT_DIR/../.." && pwd)"
say() { printf '[fault] %s\n' "$*" >&2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
BIN="${SELFHEAL_BIN:-}"
if [[ -z "$BIN" ]]; then
  BIN="$ROOT_DIR/target/release/selfheal"
  [[ -x "$BIN" ]] || BIN="$ROOT_DIR/target/debug/selfheal"
fi
[[ -x "$BIN" ]] || { say "no selfheal binary (cargo build --bin selfheal, or set SELFHEAL_BIN)"; exit 1; }

export KAFKA_PORT="${FAULT_KAFKA_PORT:-$(free_port)}"
export KAFKA_RUN_DIR="$ROOT_DIR/deploy/kafka/run/fault-$KAFKA_PORT"
INGEST_PORT="$(free_port)"
DETECTOR_PORT="$(free_port)"
LOG="$(mktemp -t selfheal-fault.XXXXXX.log)"
UP_PID=""
cleanup() {
  [[ -n "$UP_PID" ]] && kill "$UP_PID" 2>/dev/null && wait "$UP_PID" 2>/dev/null || true
  "$ROOT_DIR/deploy/kafka/stop.sh" --clean >/dev/null 2>&1 || true
}
trap cleanup EXIT

"$ROOT_DIR/deploy/kafka/start.sh" >&2
SUFFIX=".fault$(date +%s)"
say "selfheal up on 127.0.0.1:$KAFKA_PORT (intake 127.0.0.1:$INGEST_PORT, log $LOG)"
SELFHEAL__HTTP__INGEST="127.0.0.1:$INGEST_PORT" \
SELFHEAL__HTTP__DETECTOR="127.0.0.1:$DETECTOR_PORT" \
SELFHEAL__HTTP__TRIAGE="127.0.0.1:0" SELFHEAL__HTTP__FIXER="127.0.0.1:0" \
SELFHEAL__INGEST__HEADER_TIMEOUT_MS=5000 SELFHEAL__INGEST__BODY_TIMEOUT_MS=5000 \
SELFHEAL__KAFKA__GROUP_PREFIX="selfheal$SUFFIX" \
  "$BIN" up --kafka "127.0.0.1:$KAFKA_PORT" >"$LOG" 2>&1 &
UP_PID=$!
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$INGEST_PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "$UP_PID" 2>/dev/null || { say "selfheal up exited:"; tail -20 "$LOG" >&2; exit 1; }
  sleep 0.5
done
RSS_BEFORE=$(awk '/VmRSS/ {print $2}' "/proc/$UP_PID/status")
STATUS=0
python3 "$FAULT_DIR/inject.py" --url "http://127.0.0.1:$INGEST_PORT" \
  --detector-metrics "http://127.0.0.1:$DETECTOR_PORT/metrics" --max-wait 30 "$@" all || STATUS=$?
python3 "$FAULT_DIR/inject.py" --url "http://127.0.0.1:$INGEST_PORT" "$@" \
  --seconds "${FAULT_SOAK_S:-60}" --pid "$UP_PID" soak || STATUS=$?
kill -0 "$UP_PID" 2>/dev/null || { say "selfheal up died during the faults"; tail -20 "$LOG" >&2; exit 1; }
RSS_AFTER=$(awk '/VmRSS/ {print $2}' "/proc/$UP_PID/status")
say "selfheal up still running; RSS ${RSS_BEFORE} KiB before, ${RSS_AFTER} KiB after the faults"
if grep -q "MessageSizeTooLarge\|panicked" "$LOG"; then
  say "the log shows a failure:"; grep -m5 "MessageSizeTooLarge\|panicked" "$LOG" >&2; exit 1
fi
kill "$UP_PID" 2>/dev/null && wait "$UP_PID" 2>/dev/null || true
UP_PID=""
if [[ "${FAULT_KILLS:-10}" != 0 ]]; then
  say "detector kill -9 x${FAULT_KILLS:-10} vs an uninterrupted run (cargo test)"
  KILL_LOG="$(mktemp -t selfheal-fault-kill.XXXXXX.log)"
  ( cd "$ROOT_DIR" && SELFHEAL_TEST_BOOTSTRAP="127.0.0.1:$KAFKA_PORT" SELFHEAL_TEST_KILLS="${FAULT_KILLS:-10}" \
      cargo test --test detector_kill_vs_clean -- --nocapture ) >"$KILL_LOG" 2>&1 || STATUS=$?
  grep -E "^(kill -9 vs clean|input records committed|clean over finished|  (missing|extra)|assertion)" "$KILL_LOG" || true
  grep -q "test result: ok" "$KILL_LOG" && say "kill -9: equal to the clean run" || say "kill -9: DIFFERS from the clean run (log $KILL_LOG)"
fi
if [[ "${FAULT_BROKER_KILL:-1}" != 0 ]]; then
  say "broker kill -9 under load on a 3-node cluster (cargo test)"
  export KAFKA_CLUSTER_BASE_PORT="${FAULT_CLUSTER_BASE_PORT:-$((KAFKA_PORT + 10))}"
  export KAFKA_CLUSTER_RUN_DIR="$ROOT_DIR/deploy/kafka/run/fault-cluster3-$KAFKA_CLUSTER_BASE_PORT"
  B=$KAFKA_CLUSTER_BASE_PORT
  BK_LOG="$(mktemp -t selfheal-fault-broker.XXXXXX.log)"
  if "$ROOT_DIR/deploy/kafka/cluster3.sh" start >&2; then
    ( cd "$ROOT_DIR" && CI=true SELFHEAL_TEST_CLUSTER3="127.0.0.1:$B,127.0.0.1:$((B + 1)),127.0.0.1:$((B + 2))" \
        SELFHEAL_TEST_CLUSTER3_DIR="$KAFKA_CLUSTER_RUN_DIR" \
        cargo test --test broker_kill -- --nocapture ) >"$BK_LOG" 2>&1 || STATUS=$?
    grep -E "^broker kill:|panicked|assertion" "$BK_LOG" || true
    grep -q "test result: ok" "$BK_LOG" && say "broker kill: nothing lost, nothing counted twice" \
      || say "broker kill: FAILED (log $BK_LOG)"
  else
    say "the 3-node cluster did not start"; STATUS=1
  fi
  "$ROOT_DIR/deploy/kafka/cluster3.sh" stop --clean >/dev/null 2>&1 || true
fi
exit "$STATUS"
