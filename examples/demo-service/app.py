"""The selfheal demo service: a tiny shop pricing API (Python stdlib only).

GET /quote?items=3&currency=EUR  -> {"total": ..., "currency": ...}
GET /healthz                     -> {"revision": ...}

It logs like a real service: one JSON line per request (access log, with its
duration), one per error, with the Python traceback, and a memory gauge once a
second, to $DEMO_LOG. A log shipper (part of
`selfheal demo`) tails that file and sends the errors and per-window request
counts to selfheal's ingest.

Environment: DEMO_PORT, DEMO_REVISION, DEMO_LOG, DEMO_READY (file written once
listening), DEMO_UPSTREAM (file holding the payments-api failure rate),
DEMO_OWNER_PID (exit when that process is gone, so no demo is left running).
"""

import json
import os
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src"))

from shop import pricing  # noqa: E402

REVISION = os.environ.get("DEMO_REVISION", "dev")
LOG_PATH = os.environ.get("DEMO_LOG", "service.log")
_log_lock = threading.Lock()


def log(record):
    record["ts"] = int(time.time() * 1000)
    record["revision"] = REVISION
    line = json.dumps(record) + "\n"
    with _log_lock, open(LOG_PATH, "a", encoding="utf-8") as f:
        f.write(line)


class Handler(BaseHTTPRequestHandler):
    server_version = "demo-shop"

    def do_GET(self):
        url = urlparse(self.path)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/healthz":
            return self.reply(200, {"revision": REVISION})
        if url.path != "/quote":
            return self.reply(404, {"error": "not found"})
        started = time.perf_counter()
        try:
            body = pricing.quote(params)
            status = 200
        except Exception as e:  # noqa: BLE001 - a service logs what it does not handle
            log({
                "kind": "error",
                "level": "error",
                "message": f"{type(e).__name__}: {e}",
                "stack": traceback.format_exc(),
            })
            body, status = {"error": "internal error"}, 500
        duration_ms = (time.perf_counter() - started) * 1000.0
        log({"kind": "access", "path": url.path, "status": status, "duration_ms": duration_ms})
        self.reply(status, body)

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # the JSON access log replaces stderr lines
        pass


def report_memory():
    """A memory gauge once a second, as an OpenTelemetry process metric would."""
    import resource

    while True:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        log({"kind": "gauge", "metric": "process.memory.usage", "unit": "By",
             "instance": f"shop-{os.getpid()}", "value": rss})
        time.sleep(1.0)


def watch_owner(pid):
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:
            pass
        time.sleep(0.5)


def main():
    port = int(os.environ.get("DEMO_PORT", "8099"))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=report_memory, daemon=True).start()
    owner = os.environ.get("DEMO_OWNER_PID")
    if owner:
        threading.Thread(target=watch_owner, args=(int(owner),), daemon=True).start()
    ready = os.environ.get("DEMO_READY")
    if ready:
        with open(ready + ".tmp", "w", encoding="utf-8") as f:
            f.write(f"{REVISION} {os.getpid()}\n")
        os.replace(ready + ".tmp", ready)
    server.serve_forever()


if __name__ == "__main__":
    main()
