#!/usr/bin/env bash
# Backtest throughput: `selfheal backtest` end to end (reading, parsing, the
# pipeline, writing the outputs) on the simulator history, in records per
# second of wall time. Runs it several times and prints each run, then the
# median with its range; also checks that every run wrote the same bytes.
#
# Usage: deploy/bench-backtest.sh [RUNS]         (default 5, from any directory)
# Env:   SELFHEAL_BIN     the binary (default: target/release/selfheal, built
#                         with `cargo build --release --bin selfheal` if missing)
#        BENCH_DIR        where the history and outputs go (default /tmp/selfheal-bench)
#        BENCH_SEED       simulator seed (default 7: 585,309 records)
#
# Wall time depends on what else the machine runs: the script prints the load
# average and each run's CPU time (user + sys) beside it.
set -euo pipefail

ROOT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/median.sh
source "$ROOT_DIR/deploy/lib/median.sh"
RUNS="${1:-5}"
BIN="${SELFHEAL_BIN:-${CARGO_TARGET_DIR:-$ROOT_DIR/target}/release/selfheal}"
DIR="${BENCH_DIR:-/tmp/selfheal-bench}"
SEED="${BENCH_SEED:-7}"

say() { printf '[bench-backtest] %s\n' "$*" >&2; }

if [[ ! -x "$BIN" ]]; then
  say "building $BIN"
  (cd "$ROOT_DIR" && cargo build --release --bin selfheal)
fi
mkdir -p "$DIR"
HIST="$DIR/history-seed$SEED.ndjson"
if [[ ! -s "$HIST" ]]; then
  "$BIN" simulate --profile classic --seed "$SEED" --out "$HIST" --truth "$DIR/truth-seed$SEED.ndjson"
fi
RECORDS=$(grep -c . "$HIST")
say "$RECORDS records in $HIST; $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"

walls=()
for i in $(seq 1 "$RUNS"); do
  out="$DIR/out-$i"
  rm -rf "$out"
  # %e wall, %U user, %S sys (GNU time's format, via bash's TIMEFORMAT).
  TIMEFORMAT='%R %U %S'
  # The backtest prints a per-deploy table on stdout: only the timing is read.
  t=$( { time "$BIN" backtest --input "$HIST" --out "$out" >/dev/null 2>&1; } 2>&1 )
  read -r wall user sys <<<"$t"
  walls+=("$wall")
  rate=$(awk -v n="$RECORDS" -v w="$wall" 'BEGIN { printf "%.0f", n / w }')
  cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
  printf 'run %d: %s s wall, %s s CPU, %s records/s\n' "$i" "$wall" "$cpu" "$rate"
  if ((i > 1)); then
    for f in regressions verdicts actions; do
      cmp -s "$DIR/out-1/$f.ndjson" "$out/$f.ndjson" || {
        say "run $i wrote a different $f.ndjson than run 1"
        exit 1
      }
    done
  fi
done
ms=()
for w in "${walls[@]}"; do ms+=("$(awk -v w="$w" 'BEGIN { printf "%d", w * 1000 }')"); done
median_range "${ms[@]}"
awk -v n="$RECORDS" -v m="$MED" -v lo="$MIN" -v hi="$MAX" -v r="$RUNS" 'BEGIN {
  printf "%d runs: median %.2f s (%.2f–%.2f s) = median %.0f records/s, range %.0f–%.0f records/s\n",
    r, m / 1000, lo / 1000, hi / 1000, n * 1000 / m, n * 1000 / hi, n * 1000 / lo }'
say "all $RUNS runs wrote identical regressions, verdicts and actions"
