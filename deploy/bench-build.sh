#!/usr/bin/env bash
# Times a clean release build of the `selfheal` binary RUNS times (default 3)
# and prints each time and the median with its range. Each run builds into a
# fresh target directory (target/bench-build, removed before each run and at
# the end), with crates already downloaded (`cargo fetch` first, untimed), so
# it measures compiling and linking only. Other builds on the machine slow it:
# say what else ran when quoting it.
#
# Usage: deploy/bench-build.sh [RUNS]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/median.sh
source "$ROOT/deploy/lib/median.sh"
RUNS="${1:-3}"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "RUNS must be a positive number, got '$RUNS'" >&2; exit 1; }
DIR="$ROOT/target/bench-build"
cd "$ROOT"
cargo fetch --quiet
trap 'rm -rf "$DIR"' EXIT
times=()
for ((i = 1; i <= RUNS; i++)); do
  rm -rf "$DIR"
  start=$(date +%s%3N)
  CARGO_TARGET_DIR="$DIR" cargo build --release --quiet --bin selfheal
  ms=$(( $(date +%s%3N) - start ))
  times+=("$ms")
  printf 'run %d: %d.%d s\n' "$i" $((ms / 1000)) $(((ms % 1000) / 100))
done
median_range "${times[@]}"
fmt() { printf '%dm %02ds' $(($1 / 60000)) $((($1 / 1000) % 60)); }
echo "clean release build of selfheal, ${#times[@]} runs: median $(fmt "$MED"), range $(fmt "$MIN")–$(fmt "$MAX") ($(nproc) CPUs, load before: $(cut -d' ' -f1-3 /proc/loadavg))"
