#!/usr/bin/env python3
"""Another team's subscriber: reads selfheal's Regression, Verdict and Action
events from Kafka with nothing but `confluent-kafka`, `fastavro` and the
`schemas/*.avsc` files, and checks the scenario of `selfheal demo`.

Every value is Avro single-object encoding: C3 01, the schema's 8-byte
CRC-64-AVRO fingerprint (little-endian), then the binary datum. The
fingerprint names the schema, so no registry is needed. Keys are the service
name (UTF-8).

    python3 subscribe.py --bootstrap 127.0.0.1:9092 [--topic-suffix .x] \
        [--service shop] [--expect bad-deploy|docs-only]

Prints one JSON summary line; exits 1 (with the reason on stderr) when an
expectation fails.
"""

import argparse
import glob
import io
import json
import os
import sys
import time
import uuid

import fastavro
from confluent_kafka import Consumer, KafkaException
from fastavro.schema import fingerprint, to_parsing_canonical_form

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMAS = os.path.join(HERE, "..", "..", "schemas")
TOPICS = {
    "Regression": "selfheal.regressions",
    "Verdict": "selfheal.verdicts",
    "Action": "selfheal.actions",
}


def load_schemas(directory):
    """fingerprint bytes -> (event name, parsed schema), from *.avsc files."""
    by_fp = {}
    for path in sorted(glob.glob(os.path.join(directory, "*.avsc"))):
        with open(path, encoding="utf-8") as f:
            schema = fastavro.parse_schema(json.load(f))
        fp = bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))
        by_fp[fp] = (os.path.basename(path)[: -len(".avsc")], schema)
    return by_fp


def decode(value, schemas):
    """(event name, record) of a single-object encoded value."""
    if len(value) < 10 or value[:2] != b"\xc3\x01":
        raise ValueError("not Avro single-object encoding (no C3 01 marker)")
    known = schemas.get(value[2:10])
    if known is None:
        raise ValueError(f"unknown schema fingerprint {value[2:10].hex()}")
    name, schema = known
    return name, fastavro.schemaless_reader(io.BytesIO(value[10:]), schema)


def read(bootstrap, topics, schemas, service, done, timeout_s):
    """Reads `topics` from the beginning until done(events) or the timeout."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"other-team-{uuid.uuid4()}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe(topics)
    events = {"Regression": [], "Verdict": [], "Action": []}
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not done(events):
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().fatal():
                    raise KafkaException(msg.error())
                continue
            name, record = decode(msg.value(), schemas)
            if record.get("service") != service:
                continue
            if msg.key() != service.encode():
                raise ValueError(f"{name} keyed {msg.key()!r}, expected the service name")
            events.setdefault(name, []).append(record)
    finally:
        consumer.close()
    return events


def expect(cond, why):
    if not cond:
        raise AssertionError(why)


def check_bad_deploy(ev):
    regs = [r for r in ev["Regression"] if r["kind"] == "new"]
    expect(regs, "a Regression of kind new")
    r = regs[0]
    expect(r["observed"] >= 3 and r["p_value"] < 0.05, f"statistics: {r}")
    expect(r["detected_at_ms"] >= r["deployed_at_ms"], "detected after the deploy")
    expect("KeyError" in r["template"], f"template {r['template']!r}")
    verdicts = [v for v in ev["Verdict"] if v["revision"] == r["revision"]]
    expect(verdicts and verdicts[0]["decision"] == "caused", f"a caused verdict: {verdicts}")
    v = verdicts[0]
    cited = v["evidence"][0]
    expect(cited["file"] == "src/shop/pricing.py" and isinstance(cited["line"], int),
           f"evidence cites the changed line: {cited}")
    expect(r["id"] in v["regression_ids"], "the verdict names the regression")
    rollback = [a for a in ev["Action"] if a["action"] == "rollback"]
    statuses = {a["status"] for a in rollback}
    expect({"succeeded", "recovery_verified"} <= statuses, f"rollback statuses {statuses}")
    expect(all(a["target_revision"] == r["previous_revision"] for a in rollback),
           "rolled back to the previous revision")
    expect(any(a["recovery_verified"] is True for a in rollback), "recovery_verified = true")
    fixes = [a for a in ev["Action"] if a["action"] == "fix_forward" and a["status"] == "succeeded"]
    expect(fixes and any("selfheal/fix-" in x for x in fixes[0]["reasons"]), "a fix branch")
    return {"revision": r["revision"], "regression": r["kind"], "observed": r["observed"],
            "p_value": r["p_value"], "verdict": v["decision"],
            "cited": f"{cited['file']}:{cited['line']}", "rollback_to": rollback[0]["target_revision"],
            "action_statuses": sorted(statuses), "fix_action": fixes[0]["rule"]}


def check_docs_only(ev):
    expect(ev["Regression"], "a Regression (the upstream burst)")
    r = ev["Regression"][0]
    verdicts = [v for v in ev["Verdict"] if v["revision"] == r["revision"]]
    expect(verdicts and all(v["decision"] == "not_caused" for v in verdicts),
           f"not_caused verdicts: {verdicts}")
    kinds = {a["action"] for a in ev["Action"]}
    expect(kinds == {"none"}, f"no rollback, only `none`: {kinds}")
    return {"revision": r["revision"], "regression": r["kind"], "verdict": "not_caused",
            "actions": sorted(kinds)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic-suffix", default="")
    p.add_argument("--service", default="shop")
    p.add_argument("--expect", choices=["bad-deploy", "docs-only"], default="bad-deploy")
    p.add_argument("--schemas", default=SCHEMAS)
    p.add_argument("--timeout", type=float, default=60)
    args = p.parse_args()

    schemas = load_schemas(args.schemas)
    topics = [t + args.topic_suffix for t in TOPICS.values()]
    if args.expect == "bad-deploy":
        check = check_bad_deploy

        def done(ev):
            return bool(ev["Regression"]) and bool(ev["Verdict"]) \
                and any(a["action"] == "fix_forward" and a["status"] == "succeeded" for a in ev["Action"]) \
                and any(a["status"] == "recovery_verified" for a in ev["Action"])
    else:
        check = check_docs_only

        def done(ev):
            return bool(ev["Action"]) and bool(ev["Verdict"]) and bool(ev["Regression"])

    events = read(args.bootstrap, topics, schemas, args.service, done, args.timeout)
    try:
        summary = check(events)
    except AssertionError as e:
        counts = {k: len(v) for k, v in events.items()}
        print(f"subscriber: expectation failed: {e} (read {counts})", file=sys.stderr)
        return 1
    print(json.dumps({"ok": True, "expect": args.expect, **summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
