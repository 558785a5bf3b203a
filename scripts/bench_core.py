#!/usr/bin/env python3
"""Runs the core HTTP benchmark for scripts/bench-core (standard library only).

Measures build/apps/echo_server (raw cpp-httplib) and build/apps/actorserve serving
apps/examples/configs/basics.json (/noop) with wrk at concurrency 1 and 32, keep-alive.
One server runs at a time; the order is interleaved per repeat so that drift in the machine
affects both servers alike. See scripts/bench-core for the environment variables.
"""
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
import urllib.request

from bench_common import ServerProcess, cpu_model, git_commit, sh  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ECHO_BIN = os.path.join(ROOT, "build", "apps", "echo_server")
ACTORSERVE_BIN = os.path.join(ROOT, "build", "apps", "actorserve")
BASICS_CONFIG = os.path.join(ROOT, "apps", "examples", "configs", "basics.json")
PATH = "/noop"
WARMUP = "2s"
# (concurrency, wrk threads)
LOADS = [(1, 1), (32, 2)]
TARGET_RPS_RATIO_C32 = 0.6
TARGET_P50_DIFF_US_C1 = 100.0


def duration_arg(text):
    text = text.strip()
    return text + "s" if text.isdigit() else text


class Server(ServerProcess):
    """echo_server or ActorServe on an ephemeral port, checked to answer /noop."""

    def check_reply(self):
        url = "http://127.0.0.1:%d%s" % (self.port, PATH)
        with urllib.request.urlopen(url, timeout=10) as r:
            body = r.read()
            if r.status != 200 or body != b'"ok"':
                raise RuntimeError("%s %s answered %d %r" % (self.name, url, r.status, body))



UNIT_US = {"us": 1.0, "ms": 1000.0, "s": 1e6}


def to_us(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError("unexpected wrk latency %r" % text)
    return float(m.group(1)) * UNIT_US[m.group(2)]


def run_wrk(port, connections, threads, duration):
    url = "http://127.0.0.1:%d%s" % (port, PATH)
    cmd = ["wrk", "-t%d" % threads, "-c%d" % connections, "-d%s" % duration, "--latency", url]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError("wrk failed (%d): %s\n%s" % (out.returncode, shlex.join(cmd),
                                                        out.stdout + out.stderr))
    text = out.stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))}
    for pct in ("50", "99"):
        result["p" + pct] = to_us(re.search(r"^\s+%s%%\s+(\S+)" % pct, text, re.M).group(1))
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors += sum(int(g) for g in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        errors += int(m.group(1))
    result["errors"] = errors
    return result


def fmt_us(us):
    return "%.0f us" % us if us < 10_000 else "%.1f ms" % (us / 1000)


def main():
    duration = duration_arg(os.environ.get("DURATION", "10s"))
    repeats = int(os.environ.get("REPEATS", "3"))
    if repeats < 1:
        sys.exit("bench-core: REPEATS must be >= 1; was %d" % repeats)
    extra = shlex.split(os.environ.get("ACTORSERVE_ARGS", ""))
    servers = [
        Server("echo_server", [ECHO_BIN, "--port", "0"],
               r"echo_server listening on http://[^\s:]+:(\d+)"),
        Server("actorserve", [ACTORSERVE_BIN, "run", BASICS_CONFIG, "--port", "0"] + extra,
               r"ActorServe listening on http://[^\s:]+:(\d+)"),
    ]

    print("== bench-core: ActorServe /noop vs raw cpp-httplib (keep-alive, wrk)")
    print("date:        %s" % time.strftime("%Y-%m-%d %H:%M:%S %z"))
    print("git commit:  %s" % git_commit())
    print("nproc:       %s" % sh(["nproc"]))
    print("cpu:         %s" % cpu_model())
    print("wrk:         %s" % sh(["wrk", "-v"], check=False).splitlines()[0])
    print("actorserve:  %s" % shlex.join(["run", "apps/examples/configs/basics.json",
                                          "--port", "0"] + extra))
    print("runs:        %s each after a %s warm-up (discarded), %d repeat(s), medians; "
          "errors summed over repeats" % (duration, WARMUP, repeats))
    print(flush=True)

    samples = {(s.name, c): [] for s in servers for c, _ in LOADS}
    for rep in range(repeats):
        for server in servers:
            server.start()
            try:
                server.check_reply()
                for connections, threads in LOADS:
                    print("  repeat %d/%d  %-11s c=%-2d port %d ..." % (
                        rep + 1, repeats, server.name, connections, server.port),
                        end="", flush=True)
                    run_wrk(server.port, connections, threads, WARMUP)
                    r = run_wrk(server.port, connections, threads, duration)
                    samples[(server.name, connections)].append(r)
                    print(" %.0f req/s, p50 %s, p99 %s, errors %d" % (
                        r["rps"], fmt_us(r["p50"]), fmt_us(r["p99"]), r["errors"]), flush=True)
            finally:
                if not server.stop():
                    print("  WARNING: %s had exited before it was stopped" % server.name)

    med = {}
    for key, runs in samples.items():
        med[key] = {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50", "p99")}
        med[key]["errors"] = sum(r["errors"] for r in runs)

    print()
    print("%-12s %11s %12s %10s %10s %7s" % ("server", "concurrency", "requests/s", "p50",
                                               "p99", "errors"))
    for server in servers:
        for c, _ in LOADS:
            m = med[(server.name, c)]
            print("%-12s %11d %12.0f %10s %10s %7d" % (server.name, c, m["rps"],
                                                        fmt_us(m["p50"]), fmt_us(m["p99"]),
                                                        m["errors"]))
    print()
    echo, actor = "echo_server", "actorserve"
    for c, _ in LOADS:
        ratio = med[(actor, c)]["rps"] / med[(echo, c)]["rps"]
        line = "actorserve/echo requests/s at c=%-2d: %.2fx" % (c, ratio)
        if c == 32:
            line += "   target >= %.1fx at c=32: %s" % (
                TARGET_RPS_RATIO_C32, "PASS" if ratio >= TARGET_RPS_RATIO_C32 else "MISS")
        print(line)
    diff = med[(actor, 1)]["p50"] - med[(echo, 1)]["p50"]
    print("p50 difference at c=1 (actorserve - echo): %+.0f us   target p50 within %.0f us "
          "at c=1: %s" % (diff, TARGET_P50_DIFF_US_C1,
                          "PASS" if diff <= TARGET_P50_DIFF_US_C1 else "MISS"))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:
        sys.exit("bench-core: %s" % e)
