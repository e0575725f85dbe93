"""Read selfheal's regressions, verdicts and actions the Schema Registry way.

With `[schema_registry] url` set, selfheal frames every value as the registry
expects (magic byte 0, 4-byte schema id, Avro datum), so confluent-kafka's
stock AvroDeserializer + SchemaRegistryClient read them: no .avsc files, no
selfheal code. Read with isolation.level=read_committed: the detector writes
regressions in transactions, and an aborted one must never be seen.

    python subscribe_registry.py --bootstrap 127.0.0.1:9092 \
        --registry http://127.0.0.1:8085/apis/ccompat/v7 [--topic-suffix S]

Prints one JSON line: the first regression, verdict and action read, or exits 1
naming what it did not find within --timeout seconds.
"""

import argparse
import json
import sys
import time
import uuid

from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

WANTED = {"regressions": "regression", "verdicts": "verdict", "actions": "action"}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--registry", required=True, help="Confluent-compatible API base URL")
    p.add_argument("--topic-suffix", default="")
    p.add_argument("--timeout", type=float, default=60.0)
    args = p.parse_args()

    topics = {f"selfheal.{name}{args.topic_suffix}": key for name, key in WANTED.items()}
    deserialize = AvroDeserializer(SchemaRegistryClient({"url": args.registry}))
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": f"registry-subscriber-{uuid.uuid4()}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        # Regressions are written in transactions: skip aborted ones.
        "isolation.level": "read_committed",
    })
    consumer.subscribe(list(topics))
    found = {}
    deadline = time.monotonic() + args.timeout
    try:
        while len(found) < len(topics) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            key = topics[msg.topic()]
            ctx = SerializationContext(msg.topic(), MessageField.VALUE)
            # Raises on anything but registry framing ("Invalid magic byte").
            event = deserialize(msg.value(), ctx)
            found.setdefault(key, {"schema_id": int.from_bytes(msg.value()[1:5], "big"), **event})
    finally:
        consumer.close()
    missing = sorted(set(topics.values()) - set(found))
    if missing:
        print(f"not read within {args.timeout}s: {', '.join(missing)}", file=sys.stderr)
        return 1
    r, v, a = found["regression"], found["verdict"], found["action"]
    print(json.dumps({
        "regression": {"service": r["service"], "revision": r["revision"], "kind": r["kind"],
                       "schema_id": r["schema_id"]},
        "verdict": {"decision": v["decision"], "schema_id": v["schema_id"],
                    "regression_ids": v["regression_ids"]},
        "action": {"action": a["action"], "status": a["status"], "schema_id": a["schema_id"]},
        "regression_id": r["id"],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
