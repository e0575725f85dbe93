#!/usr/bin/env bash
# Times how long `selfheal up` (the embedded default) takes to stop on SIGTERM,
# RUNS times (default 5), and prints each time and the median with its range.
# Each run starts `selfheal up` on free ports, waits for "selfheal is up" in
# its log (all four services and the console running, nothing ingested), sends
# SIGTERM and waits for the process to exit.
#
# Usage: deploy/bench-up-stop.sh [RUNS]
# Env:   SELFHEAL_BIN  the binary (default target/release/selfheal, built if missing)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/median.sh
source "$ROOT/deploy/lib/median.sh"
RUNS="${1:-5}"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "RUNS must be a positive number, got '$RUNS'" >&2; exit 1; }
BIN="${SELFHEAL_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/selfheal}"
if [[ ! -x "$BIN" ]]; then
  (cd "$ROOT" && cargo build --release --quiet --bin selfheal)
fi
LOG="$(mktemp)"
trap 'rm -f "$LOG"; [[ -n "${pid:-}" ]] && kill -9 "$pid" 2>/dev/null || true' EXIT
any=127.0.0.1:0
times=()
for ((i = 1; i <= RUNS; i++)); do
  : >"$LOG"
  env -u SELFHEAL__KAFKA__BOOTSTRAP SELFHEAL__HTTP__INGEST=$any SELFHEAL__HTTP__DETECTOR=$any \
    SELFHEAL__HTTP__TRIAGE=$any SELFHEAL__HTTP__FIXER=$any SELFHEAL__CONSOLE__LISTEN=$any \
    RUST_LOG=info "$BIN" up >/dev/null 2>"$LOG" &
  pid=$!
  for ((w = 0; w < 600; w++)); do
    grep -q "selfheal is up" "$LOG" && break
    kill -0 "$pid" 2>/dev/null || { echo "selfheal up exited before it was up:" >&2; cat "$LOG" >&2; exit 1; }
    sleep 0.1
  done
  grep -q "selfheal is up" "$LOG" || { echo "selfheal up not up within 60 s" >&2; exit 1; }
  start=$(date +%s%3N)
  kill -TERM "$pid"
  wait "$pid" || true
  ms=$(($(date +%s%3N) - start))
  pid=
  times+=("$ms")
  printf 'run %d: %d ms\n' "$i" "$ms"
done
median_range "${times[@]}"
echo "selfheal up stop on SIGTERM, ${#times[@]} runs: median $MED ms, range $MIN–$MAX ms ($(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg))"
