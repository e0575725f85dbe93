#!/usr/bin/env python3
"""Grouping accuracy (GA) of `selfheal normalize` and of Drain3, same input, same run.

GA (Zhu et al., ICSE-SEIP 2019): a line is correct iff the set of lines sharing
its predicted group equals the set sharing its true EventId; GA is the fraction of
correct lines. Input: the `Content` column of each Loghub `*_structured.csv`.

One generic configuration for every dataset, for both tools: selfheal's defaults,
and Drain3's defaults (sim_th 0.4, depth 4) with the generic masking of Drain3's
own example config (IPs, numbers, hex).

Usage: ga.py --selfheal target/release/selfheal [--data DIR] [--truth structured|corrected]
"""
import argparse
import csv
import os
import subprocess
import sys
from collections import Counter, defaultdict


def ga(pred, truth):
    by_pred = defaultdict(list)
    truth_size = Counter(truth)
    for i, p in enumerate(pred):
        by_pred[p].append(i)
    correct = 0
    for members in by_pred.values():
        ids = {truth[i] for i in members}
        if len(ids) == 1 and truth_size[next(iter(ids))] == len(members):
            correct += len(members)
    return correct / len(truth)


def selfheal_groups(binary, service, contents):
    out = subprocess.run(
        [binary, "normalize", "--service", service],
        input="\n".join(contents) + "\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    ids = [line.split("\t", 1)[0] for line in out if line]
    assert len(ids) == len(contents), (len(ids), len(contents))
    return ids


def ensure_drain3():
    """Installs Drain3 from PyPI when it is missing (the benchmark's baseline)."""
    try:
        import drain3  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "drain3"], check=True)


def drain3_groups(contents):
    ensure_drain3()
    from drain3 import TemplateMiner
    from drain3.masking import MaskingInstruction
    from drain3.template_miner_config import TemplateMinerConfig

    cfg = TemplateMinerConfig()
    cfg.profiling_enabled = False
    cfg.masking_instructions = [
        MaskingInstruction(r"((?<=[^A-Za-z0-9])|^)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})((?=[^A-Za-z0-9])|$)", "IP"),
        MaskingInstruction(r"((?<=[^A-Za-z0-9])|^)([\-\+]?\d+)((?=[^A-Za-z0-9])|$)", "NUM"),
        MaskingInstruction(r"((?<=[^A-Za-z0-9])|^)(0x[a-f0-9A-F]+)((?=[^A-Za-z0-9])|$)", "HEX"),
    ]
    miner = TemplateMiner(config=cfg)
    return [miner.add_log_message(c)["cluster_id"] for c in contents]


def main():
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
    ap = argparse.ArgumentParser()
    ap.add_argument("--selfheal", default=os.path.join(root, "target", "release", "selfheal"))
    ap.add_argument("--data", default=os.path.join(root, "..", "shared", "data", "loghub"))
    ap.add_argument("--truth", choices=["structured", "corrected"], default="structured")
    ap.add_argument("--datasets", default="Apache,HDFS,OpenSSH,Android")
    args = ap.parse_args()
    suffix = "_structured.csv" if args.truth == "structured" else "_structured_corrected.csv"
    published = {"Apache": 1.0, "HDFS": 0.9975, "OpenSSH": 0.7875, "Android": 0.911}
    print(f"{'dataset':10} {'lines':>6} {'selfheal':>9} {'drain3':>8} {'Drain (published)':>18}")
    worse = []
    for d in args.datasets.split(","):
        path = os.path.join(args.data, d, f"{d}_2k.log{suffix}")
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        contents = [r["Content"] for r in rows]
        truth = [r["EventId"] for r in rows]
        ours = ga(selfheal_groups(args.selfheal, d, contents), truth)
        theirs = ga(drain3_groups(contents), truth)
        pub = published.get(d)
        print(f"{d:10} {len(rows):6d} {ours:9.4f} {theirs:8.4f} {pub if pub is not None else '-':>18}")
        if pub is not None and ours < pub:
            worse.append(d)
    if worse:
        print(f"below Drain's published GA on: {', '.join(worse)}", file=sys.stderr)


if __name__ == "__main__":
    main()
