#!/usr/bin/env python3
"""Deterministic synthetic error-log corpus: one message per line, ids, numbers,
addresses and names varying on every line. Usage: corpus.py N > FILE"""
import random
import sys
import uuid

rng = random.Random(42)
NAMES = ["alice", "bob", "carol", "dave", "eve", "mallory", "oscar", "peggy", "trent", "victor"]
HOSTS = ["db-primary", "cache-eu", "payments-api", "inventory", "search", "auth", "ledger"]
TABLES = ["orders", "users", "carts", "payments", "sessions", "invoices"]


def ip():
    return ".".join(str(rng.randint(1, 254)) for _ in range(4))


def hx(n):
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


TEMPLATES = [
    lambda: f"Timeout after {rng.randint(100, 30000)}ms calling {rng.choice(HOSTS)} (request_id={hx(12)})",
    lambda: f"Invalid user {rng.choice(NAMES)} from {ip()} port {rng.randint(1024, 65535)}",
    lambda: f"Connection refused to {rng.choice(HOSTS)}.internal:{rng.randint(1000, 9999)}",
    lambda: f"User {uuid.UUID(int=rng.getrandbits(128))} not found in table {rng.choice(TABLES)}",
    lambda: f"GET /v1/users/{rng.randint(1, 10**9)}/orders returned {rng.choice([500, 502, 503])} in {rng.random() * 100:.2f}ms",
    lambda: f"Failed to process order {rng.randint(1, 10**12)}: insufficient stock for sku SKU-{hx(6)}",
    lambda: f"java.lang.NullPointerException: Cannot invoke \"String.length()\" because \"{rng.choice(['name', 'sku', 'email'])}\" is null",
    lambda: f"Received block blk_-{rng.randint(10**17, 10**18)} of size {rng.randint(1, 67108864)} from /{ip()}",
    lambda: f"Payment {uuid.UUID(int=rng.getrandbits(128))} declined by issuer at 2026-03-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z",
    lambda: f"Slow query on {rng.choice(TABLES)} took {rng.randint(1, 60)}s rows={rng.randint(0, 10**6)}",
    lambda: f"worker-{rng.randint(1, 64)} heartbeat missed for {rng.randint(1, 120)}s, last seen {ip()}",
    lambda: f"KeyError: 'currency' while pricing cart {hx(24)} for {rng.choice(NAMES)}@example.com",
    lambda: f"Retrying request {rng.randint(1, 5)}/5 to https://{rng.choice(HOSTS)}.example.com/api/v2/items/{rng.randint(1, 99999)}?page={rng.randint(1, 50)}",
    lambda: f"Cache miss ratio {rng.random():.3f} exceeded threshold 0.25 on node {ip()}",
    lambda: f"session-{hx(6)} expired after {rng.randint(1, 3600)} seconds of inactivity",
    lambda: f"disk usage {rng.randint(80, 99)}% on /dev/sd{rng.choice('abcd')}{rng.randint(1, 4)} above limit",
]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    out = sys.stdout
    buf = []
    for _ in range(n):
        buf.append(rng.choice(TEMPLATES)())
        if len(buf) >= 10000:
            out.write("\n".join(buf) + "\n")
            buf.clear()
    if buf:
        out.write("\n".join(buf) + "\n")


if __name__ == "__main__":
    main()
