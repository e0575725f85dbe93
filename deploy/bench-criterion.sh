#!/usr/bin/env bash
# Runs the criterion benches RUNS times (default 3) and prints, for each bench,
# the median of the runs' point estimates with their range: throughput where
# the bench declares one (elements/s), else time per iteration. One criterion
# run gives one point estimate and a confidence interval for that run only;
# repeating the whole run shows how far a figure moves between runs on this
# machine, which is what a README figure must survive.
#
# Benches: selfheal-ingest `normalize` (normalize_line, mask, scrub) and
# selfheal-detector `core`. Builds them first (bench profile, untimed).
#
# Usage: deploy/bench-criterion.sh [RUNS]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNS="${1:-3}"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "RUNS must be a positive number, got '$RUNS'" >&2; exit 1; }
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
# Criterion's output goes to a fresh directory, so no saved baseline is
# touched and no stale bench from an older checkout is counted.
export CRITERION_HOME="$OUT/criterion"
CRIT="$CRITERION_HOME"
cd "$ROOT"
benches=("selfheal-ingest normalize" "selfheal-detector core")
for b in "${benches[@]}"; do
  read -r pkg bench <<<"$b"
  cargo bench --quiet -p "$pkg" --bench "$bench" --no-run
done
echo "$(nproc) CPUs, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((i = 1; i <= RUNS; i++)); do
  for b in "${benches[@]}"; do
    read -r pkg bench <<<"$b"
    cargo bench --quiet -p "$pkg" --bench "$bench" >/dev/null 2>&1 ||
      { echo "cargo bench -p $pkg --bench $bench failed" >&2; exit 1; }
  done
  # One line per bench: its id, the point estimate in ns, the elements per iteration.
  python3 - "$CRIT" >"$OUT/run-$i" <<'PY'
import json, pathlib, sys
for b in sorted(pathlib.Path(sys.argv[1]).glob("**/new/benchmark.json")):
    meta = json.loads(b.read_text())
    est = json.loads((b.parent / "estimates.json").read_text())
    point = (est.get("slope") or est["mean"])["point_estimate"]
    elements = (meta.get("throughput") or {}).get("Elements", 0)
    print(f"{meta['full_id']}\t{point}\t{elements}")
PY
  echo "run $i: $(wc -l <"$OUT/run-$i") benches"
done
python3 - "$OUT" "$RUNS" <<'PY'
import pathlib, statistics, sys
runs = {}
for f in sorted(pathlib.Path(sys.argv[1]).glob("run-*")):
    for line in f.read_text().splitlines():
        bench, ns, elements = line.split("\t")
        runs.setdefault(bench, []).append((float(ns), int(elements)))
for bench, rows in runs.items():
    elements = rows[0][1]
    if elements:
        v = [elements / (ns / 1e9) / 1e6 for ns, _ in rows]
        unit = "M elements/s"
    else:
        v = [ns / 1e3 for ns, _ in rows]
        unit = "µs per iteration"
    print(f"{bench}: median {statistics.median(v):.2f} {unit}, range {min(v):.2f}–{max(v):.2f} ({len(v)} runs)")
PY
