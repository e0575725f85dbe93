#!/usr/bin/env python3
"""Fault injection against a running selfheal (stdlib only); prints figures.

Scenarios (each prints what it did and what it measured):
  far-future   posts records stamped in 2099, 10 minutes ahead and 40 days
               old next to a valid one: the intake must answer 400 naming each
               bad line's `ts`, and write the valid one.
  slow-clients opens N slowloris connections (headers trickled one line a
               second) and N that announce an 8 MB body and send none, then
               times a normal request meanwhile and how long until the server
               closed each slow connection.
  flood        posts M distinct signatures for one service (distinct
               exception types and functions, so they do not group), reports
               the intake rate and, with --detector-metrics, the detector's
               state afterwards (it must keep running).
  soak         steady valid load for --seconds while sampling --pid's RSS:
               prints RSS first/max/last (run.sh passes `selfheal up`'s pid).

Usage: deploy/fault/inject.py [--url http://127.0.0.1:4318] [--token T]
                              {far-future,slow-clients,flood,soak,all} [options]
"""
import argparse
import json
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request


def post(url, body, token=None, timeout=60):
    req = urllib.request.Request(url, data=body.encode(), method="POST")
    req.add_header("Content-Type", "application/x-ndjson")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def now_ms():
    return int(time.time() * 1000)


def far_future(args):
    lines = [
        {"ts": now_ms(), "service": "fault", "revision": "r1", "message": "valid now"},
        {"ts": "2099-01-01T00:00:00Z", "service": "fault", "revision": "r1", "message": "year 2099"},
        {"ts": now_ms() + 600_000, "service": "fault", "revision": "r1", "message": "10 min ahead"},
        {"ts": now_ms() - 40 * 86_400_000, "service": "fault", "revision": "r1", "message": "40 days old"},
    ]
    t0 = time.time()
    status, body = post(args.url + "/v1/ndjson/logs", "\n".join(json.dumps(l) for l in lines), args.token)
    took = (time.time() - t0) * 1000
    print(f"far-future: HTTP {status} in {took:.0f} ms, accepted {body.get('accepted')} of {len(lines)}")
    for r in body.get("rejected", []):
        print(f"  line {r['line']} field {r['field']}: {r['reason']}")
    ok = status == 400 and body.get("accepted") == 1 and len(body.get("rejected", [])) == 3
    print(f"far-future: {'OK' if ok else 'UNEXPECTED'}")
    return ok


def slow_clients(args):
    host, port = urllib.parse.urlsplit(args.url).hostname, urllib.parse.urlsplit(args.url).port or 80
    closed = []
    lock = threading.Lock()

    def slowloris(i):
        s = socket.create_connection((host, port))
        t0 = time.time()
        try:
            s.sendall(b"POST /v1/ndjson/logs HTTP/1.1\r\nHost: x\r\n")
            s.settimeout(1.0)
            for k in range(int(args.max_wait)):
                try:
                    if s.recv(1) == b"":
                        break
                except socket.timeout:
                    pass
                s.sendall(f"X-Slow-{k}: y\r\n".encode())
        except OSError:
            pass
        with lock:
            closed.append(("slowloris", time.time() - t0))
        s.close()

    def silent_body(i):
        s = socket.create_connection((host, port))
        t0 = time.time()
        try:
            s.sendall(b"POST /v1/ndjson/logs HTTP/1.1\r\nHost: x\r\nContent-Length: 8388608\r\n\r\n")
            s.settimeout(args.max_wait)
            while s.recv(4096):
                pass
        except OSError:
            pass
        with lock:
            closed.append(("silent body", time.time() - t0))
        s.close()

    threads = [threading.Thread(target=f, args=(i,)) for i in range(args.clients) for f in (slowloris, silent_body)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    t0 = time.time()
    status, _ = post(args.url + "/v1/ndjson/logs", json.dumps({"ts": now_ms(), "service": "fault", "revision": "r1", "message": "while slow clients hang"}), args.token)
    print(f"slow-clients: a normal request during {2 * args.clients} slow connections: HTTP {status} in {(time.time() - t0) * 1000:.0f} ms")
    for t in threads:
        t.join()
    for kind in ("slowloris", "silent body"):
        ts = sorted(d for k, d in closed if k == kind)
        print(f"slow-clients: {len(ts)} {kind} connections closed by the server after "
              f"min {ts[0]:.1f} s / median {ts[len(ts) // 2]:.1f} s / max {ts[-1]:.1f} s")
    worst = max(d for _, d in closed)
    ok = status in (200, 400) and worst < args.max_wait
    print(f"slow-clients: {'OK' if ok else 'UNEXPECTED'}")
    return ok


def metrics(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        out = {}
        for line in r.read().decode().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = value
        return out


def flood(args):
    per_request = 500
    t0 = time.time()
    statuses = {}
    for start in range(0, args.signatures, per_request):
        lines = []
        for i in range(start, min(start + per_request, args.signatures)):
            lines.append(json.dumps({
                "ts": now_ms(), "service": "flood", "revision": "r1",
                "exception_type": f"FloodError{i}",
                "message": f"flood signature number {i} exploded",
                "stack": f"Traceback (most recent call last):\n  File \"/app/src/flood/m{i}.py\", line 1, in fn_{i}\nFloodError{i}: boom",
            }))
        status, _ = post(args.url + "/v1/ndjson/logs", "\n".join(lines), args.token)
        statuses[status] = statuses.get(status, 0) + 1
    took = time.time() - t0
    print(f"flood: {args.signatures} distinct signatures of one service posted in {took:.1f} s "
          f"({args.signatures / took:.0f}/s), responses {statuses}")
    ok = set(statuses) == {200}
    if args.detector_metrics:
        time.sleep(args.settle)
        try:
            m = metrics(args.detector_metrics)
            consumed = sum(float(v) for k, v in m.items() if k.startswith("selfheal_detector_messages_consumed_total"))
            print(f"flood: detector alive after {args.settle:.0f} s; messages consumed {consumed:.0f}, "
                  f"dead letters {sum(float(v) for k, v in m.items() if 'dead_letters' in k):.0f}")
        except OSError as e:
            print(f"flood: detector metrics unreachable: {e}")
            ok = False
    print(f"flood: {'OK' if ok else 'UNEXPECTED'}")
    return ok


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def soak(args):
    """Steady valid load (traffic and recurring errors of --services services,
    stamped now) for --seconds, sampling --pid's RSS every --sample seconds;
    prints RSS first/max/last and the request outcomes."""
    t_end = time.time() + args.seconds
    samples, statuses, lines_sent, i = [], {}, 0, 0
    next_sample = time.time()
    while time.time() < t_end:
        if args.pid and time.time() >= next_sample:
            samples.append(rss_kib(args.pid))
            next_sample += args.sample
        lines = []
        for s in range(args.services):
            svc = f"soak-{s}"
            lines.append(json.dumps({"type": "traffic", "ts": now_ms(), "service": svc,
                                     "revision": "r1", "requests": 1000, "window_s": 60}))
            for k in range(20):
                lines.append(json.dumps({
                    "ts": now_ms(), "service": svc, "revision": "r1", "level": "error",
                    "message": f"Timeout after {i + k}ms calling dep-{k % 7} (request_id=req-{i}-{k})",
                }))
        status, _ = post(args.url + "/v1/ndjson/logs", "\n".join(lines), args.token)
        statuses[status] = statuses.get(status, 0) + 1
        lines_sent += len(lines)
        i += 1
        time.sleep(args.interval)
    if args.pid:
        samples.append(rss_kib(args.pid))
    ok = set(statuses) == {200}
    if samples:
        print(f"soak: {args.seconds:.0f} s, {lines_sent} lines in {i} requests, responses {statuses}; "
              f"RSS first {samples[0] / 1024:.1f} MiB, max {max(samples) / 1024:.1f} MiB, "
              f"last {samples[-1] / 1024:.1f} MiB ({len(samples)} samples)")
    else:
        print(f"soak: {args.seconds:.0f} s, {lines_sent} lines, responses {statuses} (no --pid: no RSS)")
    print(f"soak: {'OK' if ok else 'UNEXPECTED'}")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:4318")
    ap.add_argument("--token", default=None)
    ap.add_argument("scenario", choices=["far-future", "slow-clients", "flood", "soak", "all"])
    ap.add_argument("--clients", type=int, default=20, help="slow-clients: connections of each kind")
    ap.add_argument("--max-wait", type=float, default=60.0, help="slow-clients: give up after (s)")
    ap.add_argument("--signatures", type=int, default=5000, help="flood: distinct signatures")
    ap.add_argument("--detector-metrics", default=None, help="flood: e.g. http://127.0.0.1:8081/metrics")
    ap.add_argument("--settle", type=float, default=10.0, help="flood: wait before reading detector metrics (s)")
    ap.add_argument("--seconds", type=float, default=60.0, help="soak: duration (s)")
    ap.add_argument("--pid", type=int, default=None, help="soak: process whose RSS is sampled")
    ap.add_argument("--sample", type=float, default=5.0, help="soak: RSS sampling period (s)")
    ap.add_argument("--services", type=int, default=10, help="soak: services sending")
    ap.add_argument("--interval", type=float, default=0.2, help="soak: pause between requests (s)")
    args = ap.parse_args()
    runs = {"far-future": far_future, "slow-clients": slow_clients, "flood": flood, "soak": soak}
    # `all`: the quick scenarios; the soak runs on its own (run.sh runs it).
    names = [n for n in runs if n != "soak"] if args.scenario == "all" else [args.scenario]
    ok = all([runs[n](args) for n in names])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
