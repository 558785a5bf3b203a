#!/usr/bin/env python3
"""Runs the core HTTP benchmark for scripts/bench-core (standard library only).

Servers, one at a time, in an order that alternates per repeat so that drift in the machine
affects all alike:
  actorserve   build/apps/actorserve serving apps/examples/configs/basics.json (/noop)
  beast_echo   the same HTTP server and io threads with an "ok" handler, no actors
  httplib_echo build/apps/echo_server, raw cpp-httplib (the HTTP stack ActorServe had before)
  nginx        Debian's nginx returning a static 200 "ok" (the loopback ceiling)
  baseline     (with BASELINE_BIN) another actorserve binary, e.g. an older commit's
Closed loop with wrk, keep-alive, at the concurrencies in LOADS; then one open-loop run per
server with `actorserve bench --rate`. See scripts/bench-core for the environment variables.
"""
import atexit
import json
import os
import re
import resource
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from bench_common import ServerProcess, cpu_model, git_commit, sh  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build", "apps")
ACTORSERVE_BIN = os.path.join(BUILD, "actorserve")
BASICS_CONFIG = os.path.join(ROOT, "apps", "examples", "configs", "basics.json")
PATH = "/noop"
WARMUP = "2s"
# (concurrency, wrk threads)
LOADS = [(1, 1), (32, 2), (256, 2), (1024, 2)]
TARGET_VS_BASELINE_C32 = 1.3
TARGET_VS_HTTPLIB_C32 = 1.0
TARGET_C1024_VS_C32 = 0.8
TARGET_P50_DIFF_US_C1 = 40.0


def duration_arg(text):
    text = text.strip()
    return text + "s" if text.isdigit() else text


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server(ServerProcess):
    """A server on an ephemeral port, checked to answer /noop with "ok"."""

    def check_reply(self):
        url = "http://127.0.0.1:%d%s" % (self.port, PATH)
        with urllib.request.urlopen(url, timeout=10) as r:
            body = r.read()
            if r.status != 200 or body != b'"ok"':
                raise RuntimeError("%s %s answered %d %r" % (self.name, url, r.status, body))


class Nginx(Server):
    """nginx with a generated config: static 200 "ok", keep-alive, `workers` processes."""

    def __init__(self, workers):
        self.workers = workers
        self.prefix = None
        super().__init__("nginx", [], ready_pattern=r"$^")

    def start(self):
        self.prefix = tempfile.mkdtemp(prefix="bench-nginx-")
        self.port = free_port()
        conf = os.path.join(self.prefix, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""worker_processes %d;
worker_rlimit_nofile 65536;
pid %s/nginx.pid;
error_log %s/error.log;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:%d;
    location / { default_type application/json; return 200 '"ok"'; }
  }
}
""" % (self.workers, self.prefix, self.prefix, self.port))
        self.argv = ["nginx", "-p", self.prefix, "-c", conf, "-g", "daemon off;"]
        self.log = tempfile.NamedTemporaryFile(prefix="bench-nginx-", suffix=".log",
                                               delete=False)
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not start (%s)" % shlex.join(self.argv))

    def stop(self):
        ok = super().stop()
        if self.prefix:
            shutil.rmtree(self.prefix, ignore_errors=True)
        return ok


UNIT_US = {"us": 1.0, "ms": 1000.0, "s": 1e6}


def to_us(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError("unexpected wrk latency %r" % text)
    return float(m.group(1)) * UNIT_US[m.group(2)]


def run_wrk(port, connections, threads, duration):
    url = "http://127.0.0.1:%d%s" % (port, PATH)
    cmd = ["wrk", "-t%d" % threads, "-c%d" % connections, "-d%s" % duration, "--latency",
           "--timeout", "5s", url]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError("wrk failed (%d): %s\n%s" % (out.returncode, shlex.join(cmd),
                                                        out.stdout + out.stderr))
    text = out.stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))}
    for pct in ("50", "99"):
        m = re.search(r"^\s+%s%%\s+(\S+)" % pct, text, re.M)
        result["p" + pct] = to_us(m.group(1)) if m else float("nan")
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors += sum(int(g) for g in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        errors += int(m.group(1))
    result["errors"] = errors
    return result


def run_open_loop(port, rate, duration):
    """One open-loop step of `actorserve bench`: achieved req/s, p50/p99, errors."""
    cmd = [ACTORSERVE_BIN, "bench", "http://127.0.0.1:%d%s" % (port, PATH), "--rate", str(rate),
           "--max-connections", "1024", "--warmup", "1", "-d", duration.rstrip("s"), "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    try:
        doc = json.loads(out.stdout)
    except ValueError:
        raise RuntimeError("bench failed: %s\n%s" % (shlex.join(cmd), out.stdout + out.stderr))
    step = doc["steps"][0] if "steps" in doc else doc
    return step


def fmt_us(us):
    if us != us:
        return "-"
    return "%.0f us" % us if us < 10_000 else "%.1f ms" % (us / 1000)


def main():
    duration = duration_arg(os.environ.get("DURATION", "10s"))
    repeats = int(os.environ.get("REPEATS", "3"))
    if repeats < 1:
        sys.exit("bench-core: REPEATS must be >= 1; was %d" % repeats)
    io_threads = int(os.environ.get("IO_THREADS", str(os.cpu_count() or 1)))
    open_rate = int(os.environ.get("OPEN_RATE", "20000"))
    extra = shlex.split(os.environ.get("ACTORSERVE_ARGS", ""))
    baseline = os.environ.get("BASELINE_BIN", "")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # wrk and the servers inherit it

    config_dir = tempfile.mkdtemp(prefix="bench-core-")
    atexit.register(shutil.rmtree, config_dir, ignore_errors=True)
    config = os.path.join(config_dir, "basics.json")
    with open(BASICS_CONFIG) as f:
        cfg = json.load(f)
    cfg.setdefault("http_options", {})["io_threads"] = io_threads
    with open(config, "w") as f:
        json.dump(cfg, f)
    servers = [
        Server("actorserve", [ACTORSERVE_BIN, "run", config, "--port", "0"] + extra,
               r"ActorServe listening on http://[^\s:]+:(\d+)"),
        Server("beast_echo", [os.path.join(BUILD, "beast_echo"), "--port", "0",
                              "--io-threads", str(io_threads)],
               r"beast_echo listening on http://[^\s:]+:(\d+)"),
        Server("httplib_echo", [os.path.join(BUILD, "echo_server"), "--port", "0",
                                "--threads", "1100"],
               r"echo_server listening on http://[^\s:]+:(\d+)"),
        Nginx(io_threads),
    ]
    if baseline:
        base_cfg = os.path.join(os.path.dirname(config), "baseline.json")
        with open(BASICS_CONFIG) as f, open(base_cfg, "w") as out:
            out.write(f.read())
        servers.append(Server("baseline", [baseline, "run", base_cfg, "--port", "0"] + extra,
                              r"ActorServe listening on http://[^\s:]+:(\d+)"))

    print("== bench-core: ActorServe /noop vs its HTTP layer, cpp-httplib and nginx (keep-alive)")
    print("date:        %s" % time.strftime("%Y-%m-%d %H:%M:%S %z"))
    print("git commit:  %s" % git_commit())
    print("nproc:       %s" % sh(["nproc"]))
    print("cpu:         %s" % cpu_model())
    print("wrk:         %s" % sh(["wrk", "-v"], check=False).splitlines()[0])
    print("nginx:       %s" % sh(["nginx", "-v"], check=False))
    print("actorserve:  run basics.json with http_options.io_threads %d %s"
          % (io_threads, shlex.join(extra)))
    print("beast_echo:  --io-threads %d;  httplib_echo: 1100 threads;  nginx: %d workers"
          % (io_threads, io_threads))
    if baseline:
        print("baseline:    %s" % baseline)
    print("runs:        wrk %s each after a %s warm-up (discarded), %d repeat(s), medians; "
          "errors summed; open loop: %d req/s for %s" % (duration, WARMUP, repeats, open_rate,
                                                          duration))
    print(flush=True)

    samples = {(s.name, c): [] for s in servers for c, _ in LOADS}
    opens = {s.name: [] for s in servers}
    for rep in range(repeats):
        order = servers if rep % 2 == 0 else list(reversed(servers))
        for server in order:
            server.start()
            try:
                server.check_reply()
                for connections, threads in LOADS:
                    print("  repeat %d/%d  %-12s c=%-4d ..." % (rep + 1, repeats, server.name,
                                                               connections), end="", flush=True)
                    run_wrk(server.port, connections, threads, WARMUP)
                    r = run_wrk(server.port, connections, threads, duration)
                    samples[(server.name, connections)].append(r)
                    print(" %.0f req/s, p50 %s, p99 %s, errors %d" % (
                        r["rps"], fmt_us(r["p50"]), fmt_us(r["p99"]), r["errors"]), flush=True)
                print("  repeat %d/%d  %-12s open loop %d req/s ..." % (
                    rep + 1, repeats, server.name, open_rate), end="", flush=True)
                o = run_open_loop(server.port, open_rate, duration)
                opens[server.name].append(o)
                print(" %.0f req/s, p50 %s, p99 %s, errors %d" % (
                    o["rps"], fmt_us(o["latency_us"]["p50"]),
                    fmt_us(o["latency_us"]["p99"]), o["errors"]["total"]), flush=True)
            finally:
                if not server.stop():
                    print("  WARNING: %s had exited before it was stopped" % server.name)

    med = {}
    for key, runs in samples.items():
        med[key] = {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50", "p99")}
        med[key]["errors"] = sum(r["errors"] for r in runs)

    print()
    print("closed loop (wrk), medians:")
    print("%-12s %11s %12s %10s %10s %7s" % ("server", "connections", "requests/s", "p50",
                                               "p99", "errors"))
    for server in servers:
        for c, _ in LOADS:
            m = med[(server.name, c)]
            print("%-12s %11d %12.0f %10s %10s %7d" % (server.name, c, m["rps"],
                                                        fmt_us(m["p50"]), fmt_us(m["p99"]),
                                                        m["errors"]))
    print()
    print("open loop (actorserve bench --rate %d), medians:" % open_rate)
    print("%-12s %12s %10s %10s %7s" % ("server", "achieved/s", "p50", "p99", "errors"))
    for server in servers:
        runs = opens[server.name]
        print("%-12s %12.0f %10s %10s %7d" % (
            server.name, statistics.median(o["rps"] for o in runs),
            fmt_us(statistics.median(o["latency_us"]["p50"] for o in runs)),
            fmt_us(statistics.median(o["latency_us"]["p99"] for o in runs)),
            sum(o["errors"]["total"] for o in runs)))
    print()

    def rps(name, c):
        return med[(name, c)]["rps"]

    def verdict(ok):
        return "PASS" if ok else "MISS"

    for c, _ in LOADS:
        print("actorserve/beast_echo %.2fx, /httplib_echo %.2fx, /nginx %.2fx at c=%d" % (
            rps("actorserve", c) / rps("beast_echo", c), rps("actorserve", c)
            / max(rps("httplib_echo", c), 1), rps("actorserve", c) / rps("nginx", c), c))
    ratio = rps("actorserve", 32) / max(rps("httplib_echo", 32), 1)
    print("target no-op >= %.1fx the cpp-httplib echo at c=32: %.2fx %s"
          % (TARGET_VS_HTTPLIB_C32, ratio, verdict(ratio >= TARGET_VS_HTTPLIB_C32)))
    if baseline:
        ratio = rps("actorserve", 32) / max(rps("baseline", 32), 1)
        print("target no-op >= %.1fx the baseline ActorServe at c=32: %.2fx %s"
              % (TARGET_VS_BASELINE_C32, ratio, verdict(ratio >= TARGET_VS_BASELINE_C32)))
    ratio = rps("actorserve", 1024) / rps("actorserve", 32)
    print("target throughput at c=1024 within 20%% of c=32: %.2fx %s"
          % (ratio, verdict(ratio >= TARGET_C1024_VS_C32)))
    diff = med[("actorserve", 1)]["p50"] - med[("beast_echo", 1)]["p50"]
    print("target p50 at c=1 within %.0f us of beast_echo: %+.0f us %s"
          % (TARGET_P50_DIFF_US_C1, diff, verdict(diff <= TARGET_P50_DIFF_US_C1)))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:
        sys.exit("bench-core: %s" % e)
