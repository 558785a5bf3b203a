#!/usr/bin/env python3
"""Runs scripts/bench-vs-ray: the same applications on Ray Serve (scripts/ray_apps.py) and on
ActorServe, one server at a time, driven by `actorserve bench` at the same concurrency levels.

Standard library only, except the PNG (matplotlib, skipped with a message when missing).
See scripts/bench-vs-ray for the environment variables.
"""
import csv
import json
import os
import random
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from bench_common import cpu_model, git_commit, sh

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("ACTORSERVE_BIN") or os.path.join(ROOT, "build", "apps", "actorserve")
RAY_PYTHON = os.environ.get("RAY_PYTHON", "")
RAY_APPS = os.path.join(ROOT, "scripts", "ray_apps.py")
CONFIGS = os.path.join(ROOT, "apps", "examples", "configs")
MLP_MODEL = os.path.join(ROOT, "test", "fixtures", "models", "torch_mlp_784")
START_TIMEOUT_S = 180
STOP_TIMEOUT_S = 30
RSS_PERIOD_S = 0.1
PSS_EVERY = 10  # Pss (smaps_rollup walks page tables, costlier than VmRSS) every 10th sample

# Targets of issue 6 (ours / Ray).
NOOP_RPS_AT_32 = 20.0
NOOP_P50_AT_1 = 0.1
MLP_ROWS = 5.0
MEMORY = 0.2
STARTUP = 0.1


def env_list(name, default):
    return [x for x in os.environ.get(name, default).replace(",", " ").split() if x]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- the applications ------------------------------------------------------------------------

def load_config(name):
    with open(os.path.join(CONFIGS, name)) as f:
        return json.load(f)


def only_app(cfg, app_name):
    cfg["applications"] = [a for a in cfg["applications"] if a["name"] == app_name]
    return cfg


def ours_configs(max_conc):
    """ActorServe's side of each app: the example configs, trimmed to the one application,
    with the default HTTP settings (the event-driven ingress holds any number of keep-alive
    connections; `max_conc` needs no setting)."""
    noop = only_app(load_config("basics.json"), "noop")
    composed = load_config("composed.json")
    ensemble = only_app(load_config("ensemble.json"), "ensemble")
    for d in ensemble["applications"][0]["deployments"]:
        if "user_config" in d:
            d["user_config"]["delay_s"] = 0
    # scripts/bench-model-http's config: max_batch_size 32, 2 ms, max_ongoing_requests 4 x 32.
    mlp = {"applications": [{"name": "mlp", "route_prefix": "/mlp", "deployments": [{
        "name": "MLP", "model": {"uri": MLP_MODEL}, "max_ongoing_requests": 128,
        "batching": {"max_batch_size": 32, "batch_wait_timeout_s": 0.002}}]}]}
    sleep = only_app(load_config("failures.json"), "sleep")
    out = {"noop": noop, "mlp": mlp, "composed": composed, "ensemble": ensemble, "sleep": sleep}
    for cfg in out.values():
        cfg["http_options"] = {"host": "127.0.0.1", "port": 0}
    return out


def mlp_body():
    rng = random.Random(7)
    return json.dumps({"inputs": [[round(rng.uniform(-1, 1), 4) for _ in range(784)]]})


# app -> (route, method, body or None)
def app_requests():
    return {"noop": ("/noop", "GET", None),
            "mlp": ("/mlp", "POST", mlp_body()),
            "composed": ("/composed", "POST", '"hello"'),
            "ensemble": ("/ensemble", "GET", None)}


def http(url, method="GET", body=None, timeout=10):
    """(status, body text); status 0 when there was no HTTP answer."""
    data = body.encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (OSError, urllib.error.URLError):
        return 0, ""


# ---- memory of a process tree ------------------------------------------------------------------

def all_procs():
    """pid -> (ppid, cmdline) for every process we can read."""
    procs = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            procs[int(entry)] = (ppid, cmd)
        except (OSError, ValueError):
            pass
    return procs


def rss_pss_kib(pid, with_pss=True):
    """(VmRSS, Pss) of one process in KiB; Pss shares each shared page among its users, so a
    sum of Pss over many processes does not count shared libraries more than once."""
    rss = pss = 0
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        if not with_pss:
            return rss, pss
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


class TreeSampler(threading.Thread):
    """Every 100 ms sums VmRSS over the process tree under `root` plus every process whose command
    line contains `marker` (Ray's daemons and workers run from its venv or are named ray::...);
    keeps the peak (and the peak summed Pss, read every PSS_EVERY samples) and every PID seen.
    Accessed only from its own thread until stop() has joined it."""

    def __init__(self, root, markers):
        super().__init__(daemon=True)
        self.root, self.markers = root, markers
        self.peak_kib, self.peak_pss_kib, self.pids, self.peak_procs = 0, 0, set(), 0
        self.samples = 0
        self._halt = threading.Event()

    def sample(self):
        procs = all_procs()
        tree, frontier = {self.root}, [self.root]
        while frontier:
            parent = frontier.pop()
            kids = [p for p, (pp, _) in procs.items() if pp == parent and p not in tree]
            tree.update(kids)
            frontier.extend(kids)
        tree.update(p for p, (_, cmd) in procs.items()
                    if p != os.getpid() and any(m in cmd for m in self.markers))
        tree &= set(procs)
        self.samples += 1
        sizes = [rss_pss_kib(p, self.samples % PSS_EVERY == 1) for p in tree]
        total, pss = sum(r for r, _ in sizes), sum(p for _, p in sizes)
        self.pids |= tree
        if total > self.peak_kib:
            self.peak_kib, self.peak_procs = total, len(tree)
        self.peak_pss_kib = max(self.peak_pss_kib, pss)

    def run(self):
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(RSS_PERIOD_S)

    def stop(self):
        self._halt.set()
        self.join()


# ---- servers -----------------------------------------------------------------------------------

class Server:
    """Starts a server in its own session, times it to the first successful request on the
    app's route, samples its memory until stopped, stops it by PID."""

    kind = "?"

    def __init__(self, app, tmp):
        self.app, self.tmp = app, tmp
        self.proc = self.sampler = self.port = None
        self.startup_s = None
        self.log = tempfile.NamedTemporaryFile(prefix="bench-vs-ray-%s-" % app, suffix=".log",
                                               dir=tmp, delete=False)

    def argv(self):
        raise NotImplementedError

    def markers(self):
        return []

    def find_port(self):
        return self.port

    def log_text(self):
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def start(self, route, method, body):
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.argv(), cwd=ROOT, stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True, env=self.env())
        self.sampler = TreeSampler(self.proc.pid, self.markers())
        self.sampler.start()
        deadline = t0 + START_TIMEOUT_S
        while time.monotonic() < deadline and self.proc.poll() is None:
            port = self.find_port()
            if port and http(self.url(route), method, body, timeout=5)[0] == 200:
                self.startup_s = time.monotonic() - t0
                return self
            time.sleep(0.02)
        text = self.log_text()
        self.stop()
        raise RuntimeError("%s %s did not answer 200 on %s within %d s; log tail:\n%s" % (
            self.kind, self.app, route, START_TIMEOUT_S, text[-3000:]))

    def env(self):
        return dict(os.environ)

    def url(self, path=""):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def peak_rss_mib(self):
        return self.sampler.peak_kib / 1024.0 if self.sampler else 0.0

    def peak_pss_mib(self):
        return self.sampler.peak_pss_kib / 1024.0 if self.sampler else 0.0

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.sampler is not None:
            self.sampler.stop()
        self.after_stop()

    def after_stop(self):
        pass

    def kill_leftovers(self):
        """SIGKILL, by PID, whatever of the sampled processes is still alive."""
        procs = all_procs()
        for pid in sorted(self.sampler.pids if self.sampler else ()):
            if pid in procs and pid != os.getpid():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass


class RayServer(Server):
    kind = "ray"

    def __init__(self, app, tmp):
        super().__init__(app, tmp)
        self.port = free_port()

    def argv(self):
        return [RAY_PYTHON, RAY_APPS, self.app, "--port", str(self.port),
                "--num-cpus", str(os.cpu_count() or 2)]

    def env(self):
        env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", PYTHONUNBUFFERED="1")
        env.pop("ACTORSERVE_VENV", None)
        return env

    def markers(self):
        return [os.path.dirname(os.path.dirname(RAY_PYTHON)) + "/", "ray::"]

    def after_stop(self):
        ray = os.path.join(os.path.dirname(RAY_PYTHON), "ray")
        subprocess.run([ray, "stop", "--force"], capture_output=True, timeout=120,
                       env=self.env())
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.kill_leftovers()


class OursServer(Server):
    kind = "actorserve"

    def __init__(self, app, tmp, config):
        super().__init__(app, tmp)
        self.config = os.path.join(tmp, "%s.json" % app)
        with open(self.config, "w") as f:
            json.dump(config, f)

    def argv(self):
        return [BIN, "run", self.config, "--port", "0"]

    def env(self):
        return dict(os.environ, OPENBLAS_NUM_THREADS="1")

    def find_port(self):
        if self.port is None:
            m = re.search(r"listening on http://[^\s:]+:(\d+)", self.log_text())
            if m:
                self.port = int(m.group(1))
        return self.port

    def after_stop(self):
        self.kill_leftovers()


# ---- load --------------------------------------------------------------------------------------

def run_load(url, method, body, concs, seconds, warmup, tmp):
    cmd = [BIN, "bench", url, "--connections-list", ",".join(map(str, concs)), "-d", str(seconds),
           "--warmup", str(warmup), "--json", "-q", "-m", method]
    if body is not None:
        path = os.path.join(tmp, "body.json")
        with open(path, "w") as f:
            f.write(body)
        cmd += ["--body", path]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError("actorserve bench failed (%d): %s\n%s" % (
            out.returncode, shlex.join(cmd), (out.stdout + out.stderr)[-2000:]))
    steps = {}
    for s in json.loads(out.stdout)["steps"]:
        steps[s["connections"]] = {"rps": s["rps"], "p50": s["latency_us"]["p50"],
                                   "p99": s["latency_us"]["p99"],
                                   "errors": s["errors"]["total"],
                                   "non200": sum(v for k, v in s.get("status", {}).items()
                                                 if k != "200")}
    return steps


# ---- parity ------------------------------------------------------------------------------------

def shape(text):
    """The JSON shape of a reply: object keys with value types, array element types."""
    try:
        v = json.loads(text)
    except ValueError:
        return "not JSON: %r" % text[:40]

    def t(x):
        if isinstance(x, bool):
            return "bool"
        if isinstance(x, (int, float)):
            return "number"
        if isinstance(x, str):
            return "string"
        if isinstance(x, list):
            return "[" + ", ".join(t(e) for e in x) + "]"
        if isinstance(x, dict):
            return "{" + ", ".join("%r: %s" % (k, t(x[k])) for k in sorted(x)) + "}"
        return "null"
    return t(v)


def reply_shapes(server, route, method, body, n=20):
    shapes, statuses = set(), {}
    for _ in range(n):
        status, text = http(server.url(route), method, body)
        statuses[status] = statuses.get(status, 0) + 1
        shapes.add("%d %s" % (status, shape(text)))
    return shapes


def flood(server, n=20, sleep_s=1.0):
    """n concurrent slow requests to /sleep: status -> count, and one 503 body."""
    results = []
    lock = threading.Lock()

    def one():
        r = http(server.url("/sleep"), "POST", json.dumps({"sleep_s": sleep_s}), timeout=60)
        with lock:
            results.append(r)
    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = {}
    for status, _ in results:
        counts[status] = counts.get(status, 0) + 1
    body503 = next((text for status, text in results if status == 503), "")
    return counts, body503.strip()[:80]


# ---- output ------------------------------------------------------------------------------------

def fmt_us(us):
    return "%.0f us" % us if us < 10_000 else "%.1f ms" % (us / 1000)


def verdict(ok):
    return "PASS" if ok else "MISS"


def print_app_table(app, res):
    r, o = res["ray"], res["ours"]
    unit = "rows/s" if app == "mlp" else "req/s"
    print()
    print("== %s" % app)
    print("%5s | %10s %10s %7s | %9s %9s %7s | %9s %9s | %s" % (
        "c", "ray " + unit, "ours", "ratio", "ray p50", "ours p50", "ratio", "ray p99",
        "ours p99", "errors ray/ours"))
    for c in sorted(r["steps"]):
        rs, os_ = r["steps"][c], o["steps"].get(c)
        if os_ is None:
            continue
        print("%5d | %10.0f %10.0f %6.1fx | %9s %9s %6.2fx | %9s %9s | %d/%d" % (
            c, rs["rps"], os_["rps"], os_["rps"] / max(rs["rps"], 1e-9), fmt_us(rs["p50"]),
            fmt_us(os_["p50"]), os_["p50"] / max(rs["p50"], 1e-9), fmt_us(rs["p99"]),
            fmt_us(os_["p99"]), rs["errors"] + rs["non200"], os_["errors"] + os_["non200"]))
    mem = o["rss_mib"] / max(r["rss_mib"], 1e-9)
    start = o["startup_s"] / max(r["startup_s"], 1e-9)
    print("peak RSS (all server processes): ray %.0f MiB (%d processes), ours %.1f MiB "
          "(%d) -> %.3fx  [target <= %.2fx: %s]" % (
              r["rss_mib"], r["procs"], o["rss_mib"], o["procs"], mem, MEMORY,
              verdict(mem <= MEMORY)))
    print("peak PSS (shared pages split):   ray %.0f MiB, ours %.1f MiB -> %.3fx" % (
        r["pss_mib"], o["pss_mib"], o["pss_mib"] / max(r["pss_mib"], 1e-9)))
    print("start-up to first 200:           ray %.2f s, ours %.3f s -> %.4fx  [target <= "
          "%.2fx: %s]" % (r["startup_s"], o["startup_s"], start, STARTUP,
                           verdict(start <= STARTUP)))
    return mem, start


def summary(results):
    print()
    print("== targets (issue 6; ratios ours/ray from this run)")
    lines = []
    if "noop" in results:
        r, o = results["noop"]["ray"]["steps"], results["noop"]["ours"]["steps"]
        if 32 in r and 32 in o:
            x = o[32]["rps"] / r[32]["rps"]
            lines.append(("no-op req/s at c=32 >= %.0fx" % NOOP_RPS_AT_32, "%.1fx" % x,
                          x >= NOOP_RPS_AT_32))
        if 1 in r and 1 in o:
            x = o[1]["p50"] / r[1]["p50"]
            lines.append(("no-op p50 at c=1 <= %.2fx" % NOOP_P50_AT_1, "%.3fx" % x,
                          x <= NOOP_P50_AT_1))
    if "mlp" in results:
        r, o = results["mlp"]["ray"]["steps"], results["mlp"]["ours"]["steps"]
        best_r = max(s["rps"] for s in r.values())
        best_o = max(s["rps"] for s in o.values())
        x = best_o / best_r
        lines.append(("MLP rows/s (best level each) >= %.0fx" % MLP_ROWS,
                      "%.1fx (%.0f vs %.0f)" % (x, best_o, best_r), x >= MLP_ROWS))
    for app, res in results.items():
        mem = res["ours"]["rss_mib"] / res["ray"]["rss_mib"]
        lines.append(("%s peak RSS <= %.2fx" % (app, MEMORY), "%.3fx" % mem, mem <= MEMORY))
        st = res["ours"]["startup_s"] / res["ray"]["startup_s"]
        lines.append(("%s start-up <= %.2fx" % (app, STARTUP), "%.4fx" % st, st <= STARTUP))
    for what, value, ok in lines:
        print("  %-40s %-24s %s" % (what, value, verdict(ok)))


def write_csv(results, path):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["app", "server", "connections", "rps", "p50_us", "p99_us", "errors",
                    "peak_rss_mib", "peak_pss_mib", "startup_s"])
        for app, res in results.items():
            for side in ("ray", "ours"):
                s = res[side]
                for c, st in sorted(s["steps"].items()):
                    w.writerow([app, "ray-serve" if side == "ray" else "actorserve", c,
                                "%.1f" % st["rps"], "%.1f" % st["p50"], "%.1f" % st["p99"],
                                st["errors"] + st["non200"], "%.1f" % s["rss_mib"],
                                "%.1f" % s["pss_mib"],
                                "%.3f" % s["startup_s"]])


def write_png(results, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        print("plot: SKIPPED, matplotlib not importable (%s)" % e)
        return
    apps = list(results)
    fig, axes = plt.subplots(len(apps), 2, figsize=(11, 3.6 * len(apps)), squeeze=False)
    for row, app in enumerate(apps):
        tput, lat = axes[row]
        for side, label, color in (("ray", "Ray Serve", "tab:orange"),
                                   ("ours", "ActorServe", "tab:blue")):
            steps = results[app][side]["steps"]
            cs = sorted(steps)
            tput.plot(cs, [steps[c]["rps"] for c in cs], "o-", color=color, label=label)
            xs = [steps[c]["rps"] for c in cs]
            lat.plot(xs, [steps[c]["p50"] / 1000 for c in cs], "o-", color=color,
                     label=label + " p50")
            lat.plot(xs, [steps[c]["p99"] / 1000 for c in cs], "x--", color=color,
                     label=label + " p99")
            for c, x, y in zip(cs, xs, [steps[c]["p50"] / 1000 for c in cs]):
                lat.annotate("c=%d" % c, (x, y), fontsize=7, xytext=(3, 3),
                             textcoords="offset points")
        unit = "rows/s" if app == "mlp" else "requests/s"
        tput.set(xscale="log", yscale="log", xlabel="concurrency (connections)", ylabel=unit,
                 title="%s: throughput vs concurrency" % app)
        tput.set_xticks(cs)
        tput.set_xticklabels([str(c) for c in cs])
        lat.set(xscale="log", yscale="log", xlabel=unit, ylabel="latency (ms)",
                title="%s: latency vs throughput" % app)
        for ax in (tput, lat):
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print("plot: %s" % path)


# ---- main --------------------------------------------------------------------------------------

def bench_side(server, route, method, body, concs, seconds, warmup, tmp, parity):
    server.start(route, method, body)
    try:
        extra = parity(server) if parity else None
        steps = run_load(server.url(route), method, body, concs, seconds, warmup, tmp)
    finally:
        server.stop()
    print("  %-10s start-up %.2f s, peak RSS %.1f MiB over %d processes, %s" % (
        server.kind, server.startup_s, server.peak_rss_mib(), server.sampler.peak_procs,
        ", ".join("c=%d %.0f/s" % (c, s["rps"]) for c, s in sorted(steps.items()))),
        flush=True)
    return {"steps": steps, "rss_mib": server.peak_rss_mib(), "pss_mib": server.peak_pss_mib(),
            "procs": server.sampler.peak_procs,
            "startup_s": server.startup_s, "parity": extra}


def main():
    if not RAY_PYTHON or not os.access(RAY_PYTHON, os.X_OK):
        sys.exit("bench-vs-ray: RAY_PYTHON (the venv of scripts/ray-requirements.txt) is not set")
    seconds = float(os.environ.get("DURATION", "5"))
    warmup = float(os.environ.get("WARMUP", "2"))
    concs = [int(c) for c in env_list("CONCURRENCY", "1 8 32 128")]
    apps = env_list("APPS", "noop mlp composed ensemble")
    out_dir = os.path.abspath(os.environ.get("OUT_DIR", os.path.join(ROOT, "build-bench",
                                                                     "vs-ray")))
    os.makedirs(out_dir, exist_ok=True)
    configs = ours_configs(max(concs))
    requests = app_requests()
    ray_version = sh([RAY_PYTHON, "-c", "import ray; print(ray.__version__)"])

    print("== bench-vs-ray: Ray Serve %s vs ActorServe, same apps, same load, one at a time"
          % ray_version)
    print("date:        %s" % time.strftime("%Y-%m-%d %H:%M:%S %z"))
    print("git commit:  %s" % git_commit())
    print("nproc:       %s" % sh(["nproc"]))
    print("cpu:         %s" % cpu_model())
    print("memory:      %s" % sh(["sh", "-c", "grep MemTotal /proc/meminfo"]))
    print("load:        %s bench URL --connections-list %s -d %g --warmup %g (closed loop, "
          "1 client thread, keep-alive)" % (os.path.relpath(BIN, ROOT),
                                            ",".join(map(str, concs)), seconds, warmup))
    print("ray:         scripts/ray_apps.py APP (ray.init(num_cpus=%d), replicas num_cpus=0.1, "
          "onnxruntime 1 intra-op thread)" % (os.cpu_count() or 2))
    print("actorserve:  example configs trimmed to the app, default http_options, "
          "OPENBLAS_NUM_THREADS=1")
    print("memory:      peak of summed VmRSS over the server's process tree (and, for Ray, "
          "every ray:: / venv-ray process), sampled every 100 ms from start to stop; Pss every "
          "%.1f s" % (RSS_PERIOD_S * PSS_EVERY))
    print("start-up:    from process start to the first 200 on the app's route", flush=True)

    results, parity = {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-vs-ray-") as tmp:
        for app in apps:
            route, method, body = requests[app]
            print("\n-- %s (%s %s)" % (app, method, route), flush=True)
            probe = None
            if app in ("composed", "ensemble"):
                def probe(server, route=route, method=method, body=body):
                    return reply_shapes(server, route, method, body)
            res = {}
            res["ray"] = bench_side(RayServer(app, tmp), route, method, body, concs, seconds,
                                    warmup, tmp, probe)
            res["ours"] = bench_side(OursServer(app, tmp, configs[app]), route, method, body,
                                     concs, seconds, warmup, tmp, probe)
            results[app] = res
            if probe:
                parity[app] = (res["ray"]["parity"], res["ours"]["parity"])
        if os.environ.get("SKIP_BACKPRESSURE", "0") != "1":
            print("\n-- backpressure (/sleep, max_ongoing_requests=1, max_queued_requests=1, "
                  "20 concurrent {\"sleep_s\": 1})", flush=True)
            for server in (RayServer("sleep", tmp), OursServer("sleep", tmp, configs["sleep"])):
                server.start("/sleep", "POST", '{"sleep_s": 0}')
                try:
                    parity.setdefault("backpressure", []).append(flood(server))
                finally:
                    server.stop()

    for app, res in results.items():
        print_app_table(app, res)

    print()
    print("== behavioural parity")
    for app in ("composed", "ensemble"):
        if app in parity:
            ray_shapes, our_shapes = parity[app]
            print("  %-9s ray:  %s" % (app, " | ".join(sorted(ray_shapes))))
            print("  %-9s ours: %s" % ("", " | ".join(sorted(our_shapes))))
            print("  %-9s same reply shapes over 20 requests each: %s" % (
                "", verdict(ray_shapes == our_shapes)))
    if "backpressure" in parity:
        (rc, rb), (oc, ob) = parity["backpressure"]
        print("  backpressure ray:  statuses %s; 503 body %r" % (rc, rb))
        print("  backpressure ours: statuses %s; 503 body %r" % (oc, ob))
        print("  backpressure: 503s on both (and some 200s): %s" % verdict(
            rc.get(503, 0) > 0 and oc.get(503, 0) > 0 and rc.get(200, 0) > 0 and
            oc.get(200, 0) > 0))

    summary(results)
    csv_path = os.path.join(out_dir, "bench-vs-ray.csv")
    write_csv(results, csv_path)
    print()
    print("csv: %s" % csv_path)
    write_png(results, os.path.join(out_dir, "bench-vs-ray.png"))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:
        sys.exit("bench-vs-ray: %s" % e)
