#!/usr/bin/env python3
"""Throughput of `selfheal normalize` vs Drain3 on the same synthetic corpus, same run.

selfheal normalizes the whole corpus (>= 1,000,000 lines) through the CLI (stdin
from the corpus file, stdout to a file; also through a pipe, for comparison); Drain3 (defaults + generic masking, as in ga.py)
processes the first --drain3-lines lines of the same corpus in-process (its
per-line cost does not depend on the corpus size once templates are learned, and
a full million lines would take minutes). The two are measured in turns, --repeat
times each, and the best time of each counts, so a burst of load from elsewhere
on the machine hits both alike. Prints lines/s of both and the ratio.

Usage: throughput.py [--selfheal BIN] [--lines 1000000] [--drain3-lines 200000]
"""
import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from ga import drain3_groups  # noqa: E402


def main():
    root = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
    ap = argparse.ArgumentParser()
    ap.add_argument("--selfheal", default=os.path.join(root, "target", "release", "selfheal"))
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--drain3-lines", type=int, default=100_000)
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    corpus = args.corpus or f"/tmp/selfheal-corpus-{args.lines}.txt"
    if not os.path.exists(corpus):
        with open(corpus, "w") as f:
            subprocess.run([sys.executable, os.path.join(HERE, "corpus.py"), str(args.lines)], stdout=f, check=True)
    size = os.path.getsize(corpus)
    with open(corpus) as f:
        lines = f.read().split("\n")[:-1]
    n = len(lines)

    # Output to a file (the CLI writes every byte; nothing is discarded), and,
    # for comparison, through a pipe read by this script (then Python's reading
    # competes for the same two cores).
    out_path = corpus + ".out"
    k = min(args.drain3_lines, n)
    best = None
    best_drain = None
    drain = None
    for _ in range(args.repeat):
        with open(corpus, "rb") as f, open(out_path, "wb") as o:
            t0 = time.perf_counter()
            subprocess.run([args.selfheal, "normalize", "--service", "bench"], stdin=f, stdout=o, check=True)
            dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
        t0 = time.perf_counter()
        drain = drain3_groups(lines[:k])
        ddt = time.perf_counter() - t0
        best_drain = ddt if best_drain is None else min(best_drain, ddt)
    with open(out_path, "rb") as o:
        out = o.read()
    os.unlink(out_path)
    assert out.count(b"\n") == n, "one output line per input line"
    best_pipe = None
    for _ in range(args.repeat):
        with open(corpus, "rb") as f:
            t0 = time.perf_counter()
            piped = subprocess.run([args.selfheal, "normalize", "--service", "bench"], stdin=f,
                                   stdout=subprocess.PIPE, check=True).stdout
            dt = time.perf_counter() - t0
        assert piped == out, "same output either way"
        best_pipe = dt if best_pipe is None else min(best_pipe, dt)
    groups = len({l.split(b"\t", 1)[0] for l in out.split(b"\n") if l})
    ours = n / best

    ddt = best_drain
    theirs = k / ddt

    print(f"corpus: {corpus} ({n} lines, {size / 1e6:.1f} MB)")
    print(f"selfheal normalize: {ours:,.0f} lines/s ({best:.2f} s best of {args.repeat}, {size / best / 1e6:.0f} MB/s, {groups} signatures, output to a file)")
    print(f"  through a pipe   : {n / best_pipe:,.0f} lines/s (read by this script)")
    print(f"drain3            : {theirs:,.0f} lines/s ({k} lines in {ddt:.2f} s best of {args.repeat}, {len(set(drain))} clusters)")
    print(f"ratio             : {ours / theirs:.1f}x")


if __name__ == "__main__":
    main()
