#!/usr/bin/env python3
"""Runs scripts/bench-loadgen (standard library only): `actorserve bench` against wrk on the
same server, route, connections, threads and duration, alternating, REPEATS times; then
perf_analyzer (when one is available) against `actorserve bench` on a v2 model.

See scripts/bench-loadgen for the environment variables.
"""
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from bench_common import ServerProcess, cpu_model, git_commit, sh

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("ACTORSERVE_BIN") or os.path.join(ROOT, "build", "apps", "actorserve")
BASICS_CONFIG = os.path.join(ROOT, "apps", "examples", "configs", "basics.json")
IRIS_CONFIG = os.path.join(ROOT, "apps", "examples", "configs", "iris.json")
PATH = "/noop"
POST_BODY = '{"x": 1}'
WARMUP_S = 2
AGREE = (0.9, 1.1)  # ours/wrk ratio that counts as "agree within 10 %"


def env_list(name, default):
    return [x for x in os.environ.get(name, default).replace(",", " ").split() if x]


def actorserve_server(config, extra):
    """`actorserve run CONFIG --port 0` (bench_common.ServerProcess)."""
    return ServerProcess("loadgen", [BIN, "run", config, "--port", "0"] + extra)


# ---- wrk and ours --------------------------------------------------------------------------

UNIT_US = {"us": 1.0, "ms": 1000.0, "s": 1e6}


def to_us(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise RuntimeError("unexpected wrk latency %r" % text)
    return float(m.group(1)) * UNIT_US[m.group(2)]


def run_wrk(url, method, connections, threads, seconds, lua):
    cmd = ["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % seconds, "--latency"]
    if method == "POST":
        cmd += ["-s", lua]
    out = subprocess.run(cmd + [url], capture_output=True, text=True)
    text = out.stdout
    if out.returncode != 0 or "Requests/sec" not in text:
        raise RuntimeError("wrk failed (%d): %s\n%s" % (out.returncode, shlex.join(cmd + [url]),
                                                        text + out.stderr))
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)), "errors": 0}
    for pct in ("50", "99"):
        result["p" + pct] = to_us(re.search(r"^\s+%s%%\s+(\S+)" % pct, text, re.M).group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        result["errors"] += sum(int(g) for g in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        result["errors"] += int(m.group(1))
    return result


def run_ours(url, args, seconds, warmup=WARMUP_S):
    cmd = [BIN, "bench", url, "-d", str(seconds), "--warmup", str(warmup), "--json", "-q"] + args
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError("actorserve bench failed (%d): %s\n%s"
                           % (out.returncode, shlex.join(cmd), out.stdout + out.stderr))
    step = json.loads(out.stdout)["steps"][0]
    return {"rps": step["rps"], "p50": step["latency_us"]["p50"],
            "p99": step["latency_us"]["p99"], "errors": step["errors"]["total"]}


def measure(server, method, connections, threads, seconds, lua, wrk_first):
    """One alternating pair: wrk (after a discarded warm-up run) and ours (built-in warm-up)."""
    url = server.url(PATH)
    body = ["--body-text", POST_BODY] if method == "POST" else []

    def wrk():
        run_wrk(url, method, connections, threads, WARMUP_S, lua)
        return run_wrk(url, method, connections, threads, seconds, lua)

    def ours():
        return run_ours(url, ["-c", str(connections), "-t", str(threads)] + body, seconds)

    if wrk_first:
        w = wrk()
        return w, ours()
    o = ours()
    return wrk(), o


def fmt_us(us):
    return "%.0f us" % us if us < 10_000 else "%.1f ms" % (us / 1000)


def ratio_verdict(ratio):
    return "PASS" if AGREE[0] <= ratio <= AGREE[1] else "MISS"


def loadgen_vs_wrk(extra, loads, methods, seconds, repeats, tmp):
    lua = os.path.join(tmp, "post.lua")
    with open(lua, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                "wrk.body = %s\n" % json.dumps(POST_BODY))
    samples = {}
    with actorserve_server(BASICS_CONFIG, extra) as server:
        with urllib.request.urlopen(server.url(PATH), timeout=10) as r:
            if r.status != 200:
                raise RuntimeError("GET %s answered %d" % (server.url(PATH), r.status))
        for rep in range(repeats):
            for method in methods:
                for connections, threads in loads:
                    wrk_first = rep % 2 == 0
                    print("  repeat %d/%d  %-4s %s c=%-3d t=%d (%s first) ..." % (
                        rep + 1, repeats, method, PATH, connections, threads,
                        "wrk" if wrk_first else "ours"), end="", flush=True)
                    w, o = measure(server, method, connections, threads, seconds, lua, wrk_first)
                    samples.setdefault((method, connections, threads), []).append((w, o))
                    print("  wrk %.0f req/s p50 %s | ours %.0f req/s p50 %s" % (
                        w["rps"], fmt_us(w["p50"]), o["rps"], fmt_us(o["p50"])), flush=True)
    return samples


def print_table(samples):
    print()
    print("%-6s %4s %3s | %10s %10s %6s | %9s %9s %6s | %9s %9s | %6s | %s" % (
        "method", "c", "t", "wrk rps", "ours rps", "ratio", "wrk p50", "ours p50", "ratio",
        "wrk p99", "ours p99", "errors", "agree within 10 %"))
    verdicts = []
    for (method, c, t), runs in samples.items():
        med = {}
        for side, i in (("wrk", 0), ("ours", 1)):
            med[side] = {k: statistics.median(r[i][k] for r in runs) for k in ("rps", "p50", "p99")}
            med[side]["errors"] = sum(r[i]["errors"] for r in runs)
        rps_ratio = med["ours"]["rps"] / med["wrk"]["rps"]
        p50_ratio = med["ours"]["p50"] / med["wrk"]["p50"]
        verdict = "rps %s (%.2fx), p50 %s (%.2fx)" % (ratio_verdict(rps_ratio), rps_ratio,
                                                      ratio_verdict(p50_ratio), p50_ratio)
        verdicts.append((method, c, t, rps_ratio, p50_ratio))
        print("%-6s %4d %3d | %10.0f %10.0f %5.2fx | %9s %9s %5.2fx | %9s %9s | %6d | %s" % (
            method, c, t, med["wrk"]["rps"], med["ours"]["rps"], rps_ratio,
            fmt_us(med["wrk"]["p50"]), fmt_us(med["ours"]["p50"]), p50_ratio,
            fmt_us(med["wrk"]["p99"]), fmt_us(med["ours"]["p99"]),
            med["wrk"]["errors"] + med["ours"]["errors"], verdict))
    print()
    print("per-pair ours/wrk ratios (each pair ran back to back; their spread is the noise):")
    for (method, c, t), runs in samples.items():
        print("  %-4s c=%-3d rps %s   p50 %s" % (
            method, c, " ".join("%.2f" % (o["rps"] / w["rps"]) for w, o in runs),
            " ".join("%.2f" % (o["p50"] / w["p50"]) for w, o in runs)))
    print()
    for what, index in (("requests/s", 3), ("p50", 4)):
        misses = ["%s c=%d %.2fx" % (v[0], v[1], v[index]) for v in verdicts
                  if not AGREE[0] <= v[index] <= AGREE[1]]
        print("%-11s ours/wrk within [%.1f, %.1f] at every load (%d): %s" % (
            what + ":", AGREE[0], AGREE[1], len(verdicts),
            "PASS" if not misses else "MISS at " + ", ".join(misses)))


# ---- perf_analyzer on a v2 model -----------------------------------------------------------

def iris_model():
    """The iris example's v2 model name: v2 models are named after their deployment."""
    with open(IRIS_CONFIG) as f:
        cfg = json.load(f)
    return cfg["applications"][0]["deployments"][0]["name"]


def run_perf_analyzer(pa, port, model, input_name, concurrency, seconds, tmp):
    csv_path = os.path.join(tmp, "pa.csv")
    cmd = [pa, "-m", model, "-u", "127.0.0.1:%d" % port, "-i", "http",
           "--concurrency-range", "%d:%d" % (concurrency, concurrency),
           "--measurement-interval", str(seconds * 1000), "-f", csv_path]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 20 + 120)
    if out.returncode != 0:
        raise RuntimeError("perf_analyzer failed (%d): %s\n%s" % (
            out.returncode, shlex.join(cmd), (out.stdout + out.stderr)[-2000:]))
    with open(csv_path) as f:
        header, row = f.read().splitlines()[:2]
    values = dict(zip(header.split(","), row.split(",")))
    return {"rps": float(values["Inferences/Second"]), "p50": float(values["p50 latency"]),
            "p99": float(values["p99 latency"]), "cmd": shlex.join(cmd)}


def v2_comparison(extra, seconds, tmp):
    print()
    print("== v2: perf_analyzer vs actorserve bench on %s (%s)" % (
        os.path.relpath(IRIS_CONFIG, ROOT), "binary tensors, concurrency 8"))
    model = iris_model()
    with actorserve_server(IRIS_CONFIG, extra) as server:
        try:
            with urllib.request.urlopen(server.url("/v2"), timeout=10) as r:
                r.read()
            with urllib.request.urlopen(server.url("/v2/models/" + model), timeout=10) as r:
                meta = json.loads(r.read())
        except Exception as e:  # noqa: BLE001 - any failure means: no v2 server yet
            print("SKIPPED: GET /v2 or /v2/models/%s failed on this server (%s): the server side "
                  "of the Open Inference Protocol is not there yet." % (model, e))
            return
        input_name = meta["inputs"][0]["name"]
        ours = run_ours(server.url(), ["--v2-model", model, "--binary", "-c", "8",
                                       "--shape", "%s=1,4" % input_name], seconds)
        print("actorserve bench: %.0f infer/s, p50 %s, p99 %s, errors %d" % (
            ours["rps"], fmt_us(ours["p50"]), fmt_us(ours["p99"]), ours["errors"]))
        pa = os.environ.get("PERF_ANALYZER", "")
        if not pa:
            print("perf_analyzer: SKIPPED, not available: %s" % os.environ.get(
                "PERF_ANALYZER_ERROR", "not found on PATH or in the venv"))
            return
        theirs = run_perf_analyzer(pa, server.port, model, input_name, 8, seconds, tmp)
        print("perf_analyzer:    %.0f infer/s, p50 %s, p99 %s   (%s)" % (
            theirs["rps"], fmt_us(theirs["p50"]), fmt_us(theirs["p99"]), theirs["cmd"]))
        print("ours/perf_analyzer infer/s: %.2fx" % (ours["rps"] / theirs["rps"]))


def main():
    seconds = int(os.environ.get("DURATION", "10").rstrip("s"))
    repeats = int(os.environ.get("REPEATS", "3"))
    if repeats < 1 or seconds < 1:
        sys.exit("bench-loadgen: REPEATS and DURATION must be >= 1")
    connections = [int(c) for c in env_list("CONNECTIONS", "1 32")]
    threads = int(os.environ.get("THREADS", "0"))
    methods = [m.upper() for m in env_list("METHODS", "GET POST")]
    # Same thread count for both tools: 1 at c=1, 2 above (as scripts/bench-core gives wrk).
    loads = [(c, threads or (1 if c == 1 else 2)) for c in connections]
    extra = shlex.split(os.environ.get("ACTORSERVE_ARGS", ""))

    print("== bench-loadgen: actorserve bench vs wrk on %s (apps/examples/configs/basics.json)"
          % PATH)
    print("date:        %s" % time.strftime("%Y-%m-%d %H:%M:%S %z"))
    print("git commit:  %s" % git_commit())
    print("nproc:       %s" % sh(["nproc"]))
    print("cpu:         %s" % cpu_model())
    print("wrk:         %s" % sh(["wrk", "-v"], check=False).splitlines()[0])
    print("server:      %s" % shlex.join(["actorserve", "run", "apps/examples/configs/basics.json",
                                          "--port", "0"] + extra))
    print("runs:        %d s each after a %d s warm-up (wrk: a discarded %d s run; ours: "
          "--warmup %d), %d repeat(s) alternating which tool goes first, medians; "
          "errors summed" % (seconds, WARMUP_S, WARMUP_S, WARMUP_S, repeats))
    print("loads:       %s; same connections and threads for both tools; POST body %s"
          % (", ".join("c=%d t=%d" % l for l in loads), POST_BODY))
    print("note:        client and server share the machine's cores; a client that uses less "
          "CPU leaves more to the server", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-loadgen-") as tmp:
        samples = loadgen_vs_wrk(extra, loads, methods, seconds, repeats, tmp)
        print_table(samples)
        if os.environ.get("SKIP_V2", "0") != "1":
            v2_comparison(extra, seconds, tmp)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:
        sys.exit("bench-loadgen: %s" % e)
