"""What every lab app shares: coloured log lines on stdout, warnings and errors on stderr,
a periodic heartbeat, a threaded HTTP server with optional pre-forked workers, and a
/health that answers 503 when the database is unreachable or the lab's unhealthy switch
(a flag file, bind-mounted read-only from the host) is on.

Standard library only, so every app image needs nothing beyond Debian's python3 (and
python3-psycopg2 for the PostgreSQL apps). This file is copied into each app's build
context by tests/lab/lab; edit it here.
"""

import http.server
import json
import os
import signal
import socketserver
import sys
import threading
import time

RESET = "\033[0m"
DIM = "\033[2m"
GREEN = "\033[32m"
YELLOW = "\033[33m"
RED = "\033[31m"
CYAN = "\033[36m"
BOLD = "\033[1m"

APP = os.environ.get("LAB_APP_NAME", "app")
UNHEALTHY_FLAG = os.environ.get("LAB_UNHEALTHY_FLAG", "/app/flags/unhealthy")


def _ts():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def info(msg):
    print(f"{DIM}{_ts()}{RESET} {GREEN}INFO{RESET}  {CYAN}{APP}{RESET} {msg}", flush=True)


def warn(msg):
    print(f"{_ts()} {YELLOW}WARN{RESET}  {APP} {msg}", file=sys.stderr, flush=True)


def error(msg):
    print(f"{_ts()} {RED}{BOLD}ERROR{RESET} {APP} {msg}", file=sys.stderr, flush=True)


def health(check_db):
    """(status, body) for /health: 200 "ok" only when the switch is off and the DB answers."""
    if os.path.exists(UNHEALTHY_FLAG):
        return 503, "unhealthy: switched on by the lab (flag file present)\n"
    try:
        check_db()
    except Exception as exc:  # any failure to reach the database is "unhealthy"
        return 503, f"database unreachable: {exc}\n"
    return 200, "ok"


def text(status, body):
    return status, body, "text/plain; charset=utf-8"


def as_json(status, value):
    return status, json.dumps(value, default=str) + "\n", "application/json"


class _Handler(http.server.BaseHTTPRequestHandler):
    routes = {}
    server_version = "lab-app/1"
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        started = time.monotonic()
        path = self.path.split("?", 1)[0]
        route = self.routes.get(path)
        if route is None:
            # longest prefix route ending in "/" ("/api/" handles "/api/anything")
            prefixes = [p for p in self.routes if p.endswith("/") and path.startswith(p)]
            route = self.routes[max(prefixes, key=len)] if prefixes else None
        if route is None:
            status, body, ctype = text(404, "not found\n")
        else:
            try:
                status, body, ctype = route(self)
            except Exception as exc:
                error(f"{self.command} {self.path} failed: {exc!r}")
                status, body, ctype = text(500, "internal error\n")
        data = body.encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass
        ms = (time.monotonic() - started) * 1000
        colour = GREEN if status < 400 else YELLOW if status < 500 else RED
        line = f'{self.client_address[0]} "{self.command} {self.path}" {colour}{status}{RESET} {ms:.1f}ms'
        (info if status < 500 else warn)(line)

    do_HEAD = do_GET

    def log_message(self, *args):  # the one line above replaces http.server's own log
        pass


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def _heartbeat(every, extra):
    n = 0
    while True:
        time.sleep(every)
        n += 1
        try:
            detail = extra() if extra else ""
        except Exception as exc:
            detail = ""
            warn(f"heartbeat probe failed: {exc}")
        info(f"heartbeat #{n} pid={os.getpid()} {detail}".rstrip())
        if n % 6 == 0:
            warn(f"slow request budget at {40 + n % 50}% (lab: a periodic stderr line)")


def serve(port, routes, workers=1, heartbeat_every=10.0, heartbeat_extra=None):
    """Serve forever on 0.0.0.0:port. workers > 1: a master pre-forks that many workers
    sharing the listening socket (like uvicorn --workers) and stops them on SIGTERM."""
    _Handler.routes = routes
    server = _Server(("0.0.0.0", port), _Handler)
    info(f"listening on 0.0.0.0:{port} ({workers} worker{'s' if workers != 1 else ''})")
    warn("serving plain HTTP: TLS is terminated by the reverse proxy")

    def run_worker():
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        threading.Thread(target=_heartbeat, args=(heartbeat_every, heartbeat_extra), daemon=True).start()
        server.serve_forever()

    if workers <= 1:
        run_worker()
        return
    children = []
    for i in range(workers):
        pid = os.fork()
        if pid == 0:
            info(f"worker {i + 1} started (pid {os.getpid()})")
            run_worker()
            os._exit(0)
        children.append(pid)

    def stop(*_):
        info("shutting down workers")
        for child in children:
            try:
                os.kill(child, signal.SIGTERM)
            except ProcessLookupError:
                pass
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    pid, status = os.wait()
    error(f"worker {pid} exited with status {status}; stopping")
    stop()
