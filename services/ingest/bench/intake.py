#!/usr/bin/env python3
"""Intake throughput through a real broker, compared in the same run with Kafka's
own producer benchmark (kafka-producer-perf-test) at the same record size.

1. starts a single-node broker on a free port (deploy/kafka/start.sh; stopped
   and cleaned at the end, whatever happens),
2. runs deploy/kafka/perf-test.sh (acks=all) with --record-size = the mean size
   of the NDJSON lines sent below,
3. starts a release `selfheal ingest` against it (default flush interval 1 s),
4. POSTs NDJSON log lines to /v1/ndjson/logs from --clients threads (loopback only,
   bounded by --lines and --seconds), each request waiting for its 2xx, which
   ingest gives only once Kafka acknowledged the SignatureCount events carrying
   its lines,
5. prints lines/s vs perf-test records/s (the ratio), HTTP latency p50/p99,
   ingest's peak RSS, and the events on the signatures topic (end offsets).

Never run in CI (it is a benchmark, not a test).

Throughput is concurrency x lines per request / latency, and the latency is
about the flush interval (each request waits for the flush carrying its lines),
so the load generator keeps --clients x --lines-per-request lines in flight.

Usage: intake.py [--selfheal BIN] [--lines 4000000] [--seconds 25]
                 [--clients 16] [--lines-per-request 10000] [--perf-records 1000000]
"""
import argparse
import http.client
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
KAFKA = os.path.join(ROOT, "deploy", "kafka")

TEMPLATES = [
    "Timeout after {n}ms calling payments-api (request_id=req-{h})",
    "Connection refused to 10.0.{a}.{b}:5432 while acquiring pool connection",
    "KeyError: 'XC{n}' in quote for cart {h}",
    "User {u} not found in table accounts_{a}",
    "Failed to publish order {n} to queue orders.{a}: broker unavailable",
    "NullPointerException at com.shop.Pricing.quote(Pricing.java:{a})",
    "Rate limit exceeded for tenant {u}: {n} requests in 60s",
    "Disk usage at {a}% on /var/lib/data-{b}",
    "TLS handshake failed with upstream {u}.internal:443 after {n}ms",
    "Deadlock detected on relation orders (pid {n}), retrying transaction {h}",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_pair():
    """A port p with p+1 free too (the broker's controller port)."""
    for _ in range(50):
        p = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p + 1))
                return p
            except OSError:
                continue
    raise SystemExit("no free port pair")


def make_bodies(count, lines_per_request, seed=7):
    rnd = random.Random(seed)
    services = [f"svc-{i:02d}" for i in range(20)]
    bodies, sizes, keys = [], [], []
    base_ms = 1_773_050_400_000
    for b in range(count):
        lines, body_keys = [], set()
        for i in range(lines_per_request):
            t = rnd.choice(TEMPLATES)
            msg = t.format(n=rnd.randrange(1, 10**6), h=f"{rnd.getrandbits(40):x}",
                           a=rnd.randrange(256), b=rnd.randrange(256),
                           u=rnd.choice(["alice", "bob", "carol", "dave", "erin"]) + str(rnd.randrange(100)))
            svc = rnd.choice(services)
            ts, rev = base_ms + (b * lines_per_request + i) * 7, rnd.choice(["a1b2c3d", "b2c3d4e"])
            line = json.dumps({"ts": ts, "service": svc, "revision": rev, "level": "error",
                               "message": msg}, separators=(",", ":"))
            # One SignatureCount per (service, revision, signature, event minute).
            body_keys.add((svc, rev, t, ts // 60_000))
            lines.append(line)
            sizes.append(len(line))
        bodies.append(("\n".join(lines) + "\n").encode())
        keys.append(len(body_keys))
    return bodies, sum(sizes) / len(sizes), sum(keys) / len(keys)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, **kw)


def perf_test(port, records, size):
    # The broker does not auto-create topics; 6 partitions like selfheal's.
    run([os.path.join(KAFKA, "kafka-class.sh"), "org.apache.kafka.tools.TopicCommand", "--bootstrap-server",
         f"127.0.0.1:{port}", "--create", "--topic", "bench.perf", "--partitions", "6",
         "--replication-factor", "1"], capture_output=True)
    out = run([os.path.join(KAFKA, "perf-test.sh"), "--topic", "bench.perf", "--num-records", str(records),
               "--record-size", str(size), "--throughput", "-1", "--producer-props",
               f"bootstrap.servers=127.0.0.1:{port}", "acks=all", "enable.idempotence=true",
               "linger.ms=5", "compression.type=lz4"],
              capture_output=True).stdout
    last = [l for l in out.splitlines() if "records sent" in l][-1]
    rate = float(re.search(r"([\d.]+) records/sec", last).group(1))
    return rate, last.strip()


def end_offsets(port, topic):
    out = run([os.path.join(KAFKA, "kafka-class.sh"), "org.apache.kafka.tools.GetOffsetShell",
               "--bootstrap-server", f"127.0.0.1:{port}", "--topic", topic], capture_output=True).stdout
    return sum(int(l.rsplit(":", 1)[1]) for l in out.split() if l.count(":") >= 2)


def rss_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for l in f:
            if l.startswith(key + ":"):
                return int(l.split()[1])
    return 0


def load(http_port, bodies, lines_per_request, total_lines, seconds, clients):
    lock = threading.Lock()
    state = {"sent": 0, "ok": 0, "lat": [], "errors": {}}
    deadline = time.monotonic() + seconds

    def worker(k):
        conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=60)
        i = k
        while time.monotonic() < deadline:
            with lock:
                if state["sent"] + lines_per_request > total_lines:
                    break
                state["sent"] += lines_per_request
            body = bodies[i % len(bodies)]
            i += clients
            t0 = time.perf_counter()
            conn.request("POST", "/v1/ndjson/logs", body=body, headers={"Content-Type": "application/x-ndjson"})
            r = conn.getresponse()
            r.read()
            dt = time.perf_counter() - t0
            with lock:
                state["lat"].append(dt)
                if r.status == 200:
                    state["ok"] += lines_per_request
                else:
                    state["errors"][r.status] = state["errors"].get(r.status, 0) + 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return state, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--selfheal", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "selfheal"))
    ap.add_argument("--lines", type=int, default=4_000_000)
    ap.add_argument("--seconds", type=float, default=25)
    # Each request is acknowledged at the flush that carries its lines (1 s by
    # default), so clients x lines-per-request per flush interval bounds the
    # rate: 16 clients measured that bound (160 k lines/s), not the intake.
    ap.add_argument("--clients", type=int, default=48)
    ap.add_argument("--lines-per-request", type=int, default=10_000)
    ap.add_argument("--perf-records", type=int, default=1_000_000)
    ap.add_argument("--flush-interval-ms", type=int, default=1_000)
    args = ap.parse_args()
    if not os.path.exists(args.selfheal):
        sys.exit(f"{args.selfheal} missing: cargo build --release --bin selfheal")

    bodies, mean, keys_per_body = make_bodies(64, args.lines_per_request)
    size = round(mean)
    kport = free_pair()
    env = dict(os.environ, KAFKA_PORT=str(kport))
    ingest = None
    tmp = tempfile.mkdtemp(prefix="selfheal-intake-bench-")
    try:
        # The broker inherits start.sh's stdout: a file, never a pipe we would
        # wait on for EOF.
        with open(os.path.join(tmp, "kafka-start.log"), "w") as klog:
            run([os.path.join(KAFKA, "start.sh")], env=env, stdout=klog, stderr=klog)
        print(f"broker on 127.0.0.1:{kport}", flush=True)
        perf_rate, perf_line = perf_test(kport, args.perf_records, size)
        print(f"perf-test done: {perf_rate:,.0f} records/s", flush=True)

        hport = free_port()
        cfg = os.path.join(tmp, "bench.toml")
        with open(cfg, "w") as f:
            f.write(f'[kafka]\nbootstrap = "127.0.0.1:{kport}"\n[http]\ningest = "127.0.0.1:{hport}"\n'
                    f'detector = "127.0.0.1:{free_port()}"\ntriage = "127.0.0.1:{free_port()}"\n'
                    f'fixer = "127.0.0.1:{free_port()}"\n'
                    f'[ingest]\nconsume_raw = false\nflush_interval_ms = {args.flush_interval_ms}\n'
                    f'max_body_bytes = 67108864\n')
        log = open(os.path.join(tmp, "ingest.log"), "w")
        ingest = subprocess.Popen([args.selfheal, "ingest", "--config", cfg], stdout=log, stderr=log,
                                  env=dict(os.environ, RUST_LOG="warn",
                                           # the lines are stamped in March 2026: history
                                           SELFHEAL__INGEST__MAX_AGE_S="0"))
        for _ in range(300):
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{hport}/readyz", timeout=1).status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            sys.exit("ingest did not become ready")
        rss_idle = rss_kb(ingest.pid, "VmRSS")
        state, elapsed = load(hport, bodies, args.lines_per_request, args.lines, args.seconds, args.clients)
        peak = rss_kb(ingest.pid, "VmHWM")
        lat = sorted(state["lat"])
        p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000
        rate = state["ok"] / elapsed
        events = end_offsets(kport, "selfheal.signatures")
        print(f"record size        : {size} B (mean NDJSON line)")
        print(f"kafka perf-test    : {perf_rate:,.0f} records/s  [{perf_line}]")
        print(f"selfheal intake    : {rate:,.0f} lines/s ({state['ok']:,} lines acknowledged in {elapsed:.1f} s, "
              f"{len(lat)} requests of {args.lines_per_request} lines, {args.clients} clients, errors {state['errors']})")
        print(f"ratio              : {rate / perf_rate:.2f} (target >= 0.5)")
        print(f"HTTP latency       : p50 {p(0.5):.0f} ms, p99 {p(0.99):.0f} ms (flush interval {args.flush_interval_ms} ms)")
        print(f"ingest RSS         : {rss_idle / 1024:.0f} MB idle, {peak / 1024:.0f} MB peak")
        print(f"SignatureCounts    : {events:,} events on selfheal.signatures for {state['ok']:,} lines")
        # The lines of one request span 70 s of event time (7 ms apart), so a
        # request carries ~2 event minutes x 400 keys; the same body sent
        # twice in one flush merges, otherwise each request is its own events.
        requests = state['ok'] // args.lines_per_request
        print(f"  expected at most : {requests * keys_per_body:,.0f} = {requests:,} requests x {keys_per_body:,.0f} "
              f"(service, revision, signature, event minute) keys per request body")
    finally:
        if ingest is not None:
            ingest.terminate()
            try:
                ingest.wait(timeout=30)
            except subprocess.TimeoutExpired:
                ingest.kill()
        subprocess.run([os.path.join(KAFKA, "stop.sh"), "--clean"], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
