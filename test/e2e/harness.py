"""End-to-end harness: starts the real actorserve binary on an ephemeral port and talks HTTP.

Standard library only. Every server is started with --port 0 on 127.0.0.1, stopped by its
process id, and its temporary config is removed. Run a test file directly:
    ACTORSERVE_BIN=build/apps/actorserve python3 test/e2e/test_routing.py
"""
import concurrent.futures
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

ROOT = os.environ.get("ACTORSERVE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("ACTORSERVE_BIN") or os.path.join(ROOT, "build", "apps", "actorserve")


class Reply:
    def __init__(self, status, headers, body, elapsed):
        self.status = status
        self.headers = headers
        self.body = body
        self.elapsed = elapsed

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"Reply({self.status}, {self.body[:200]!r})"


class Server:
    """A running `actorserve run CONFIG --port 0`; use as a context manager."""

    def __init__(self, config, args=(), start_timeout=20.0):
        self.config = config
        self.args = list(args)
        self.start_timeout = start_timeout
        self.proc = None
        self.port = None
        self.output = []
        self._lock = threading.Lock()
        self._tmp = tempfile.TemporaryDirectory(prefix="actorserve-e2e-")
        self.config_path = os.path.join(self._tmp.name, "config.json")

    def __enter__(self):
        with open(self.config_path, "w") as f:
            json.dump(self.config, f)
        self.proc = subprocess.Popen(
            [BIN, "run", self.config_path, "--host", "127.0.0.1", "--port", "0", *self.args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ready = threading.Event()

        def pump():
            for line in self.proc.stdout:
                with self._lock:
                    self.output.append(line)
                m = re.search(r"listening on http://[^:]+:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        ready.wait(self.start_timeout)
        if self.port is None:
            self.stop()
            raise RuntimeError("server did not start:\n" + self.log())
        return self

    def __exit__(self, *exc):
        self.stop()
        self._tmp.cleanup()

    def log(self):
        with self._lock:
            return "".join(self.output)

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        """Stops the server by pid; returns its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def request(self, method, path, body=None, headers=None, timeout=30.0):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        data = body if body is None or isinstance(body, (bytes, str)) else json.dumps(body)
        start = time.monotonic()
        try:
            conn.request(method, path, body=data, headers=headers or {})
            res = conn.getresponse()
            raw = res.read()
            reply = Reply(res.status, {k.lower(): v for k, v in res.getheaders()},
                          raw.decode("utf-8", "replace"), time.monotonic() - start)
            reply.raw = raw  # the body's bytes (binary v2 replies)
            return reply
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def concurrently(self, calls):
        """Runs [(method, path, body), ...] at once; returns replies in order and total time."""
        start = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(calls))) as pool:
            futures = [pool.submit(self.request, m, p, b) for (m, p, b) in calls]
            replies = [f.result() for f in futures]
        return replies, time.monotonic() - start

    def status(self):
        reply = self.get("/api/serve/applications/")
        assert reply.status == 200, reply
        return reply.json()


def app(name, prefix, deployments, ingress=None):
    a = {"name": name, "route_prefix": prefix, "deployments": deployments}
    if ingress:
        a["ingress"] = ingress
    return a


def config(*apps, **http_options):
    return {"http_options": dict({"host": "127.0.0.1", "port": 0}, **http_options),
            "applications": list(apps)}


def run_cli(*args, timeout=60):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout)


def wait_until(predicate, timeout=10.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def main(namespace):
    """Runs every test_* function of the calling module; prints 'N passed, M failed'."""
    tests = [(n, f) for n, f in namespace.items() if n.startswith("test_") and callable(f)]
    passed = failed = 0
    for name, fn in tests:
        start = time.monotonic()
        try:
            fn()
            passed += 1
            print(f"PASS {name} ({time.monotonic() - start:.2f}s)", flush=True)
        except Exception:
            failed += 1
            print(f"FAIL {name} ({time.monotonic() - start:.2f}s)", flush=True)
            traceback.print_exc()
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)
