#!/usr/bin/env python3
"""Runs the ONNX kernel benchmark for scripts/bench-kernels: our executor against onnxruntime.

Our side is build/apps/bench_onnx (apps/bench/bench_onnx.cpp), one process per measurement,
with OPENBLAS_NUM_THREADS=THREADS. onnxruntime runs in this process with
intra_op_num_threads=THREADS and inter_op_num_threads=1, timed the same way: a warm-up of 10
runs or 0.5 s, then one run after another for SECONDS, each timed; rows/s = batch * runs /
elapsed. Both get the same kind of input: uniform [-1, 1) floats in the model's first input,
batch dim = the batch size. Per model and batch size the two alternate (ours first on odd
repeats, onnxruntime first on even ones); each figure is the median of REPEATS.

Target: ours >= 1.0x onnxruntime's rows/s at batch >= 8. When our executor cannot run (not
built yet, or a model it refuses), the table says so and still shows onnxruntime's figures.
See scripts/bench-kernels for the environment variables.
"""
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort

from bench_common import cpu_model, git_commit, sh  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_BIN = os.path.join(ROOT, os.environ.get("BENCH_ONNX_BIN",
                                              os.path.join("build", "apps", "bench_onnx")))
FIXTURES = os.path.join(ROOT, "test", "fixtures", "models")
DEFAULT_MODELS = ["torch_mlp_784", "sk_gb_3class", "sk_gb_synthetic"]
DEFAULT_BATCHES = [1, 8, 32, 128]
TARGET_RATIO = 1.0
TARGET_MIN_BATCH = 8
WARMUP_RUNS, WARMUP_S = 10, 0.5


def display_path(path):
    rel = os.path.relpath(path, ROOT)
    return path if rel.startswith("..") else rel


def env_list(name, default, cast=str):
    text = os.environ.get(name, "").strip()
    return [cast(v) for v in text.replace(",", " ").split()] if text else list(default)


# ----------------------------------------------------------------------------------------------

class Ours:
    """build/apps/bench_onnx, one process per measurement."""

    def __init__(self, threads, seconds):
        self.threads = threads
        self.seconds = seconds
        self.failed = {}  # model -> reason; a model that failed once is not tried again

    def unavailable(self):
        """Why bench_onnx cannot run at all, or None."""
        if os.environ.get("BENCH_ONNX_BUILD_FAILED"):
            return "bench_onnx did not build (see %s)" % os.environ["BENCH_ONNX_BUILD_FAILED"]
        if not os.access(BENCH_BIN, os.X_OK):
            return "%s is not built" % display_path(BENCH_BIN)
        return None

    def measure(self, model, path, batch):
        if model in self.failed:
            return None
        if self.unavailable():
            self.failed[model] = self.unavailable()
            return None
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(self.threads),
                   OMP_NUM_THREADS=str(self.threads))
        cmd = [BENCH_BIN, path, "--batch", str(batch), "--seconds", str(self.seconds),
               "--threads", str(self.threads)]
        try:
            out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                                 timeout=self.seconds + 120)
        except subprocess.TimeoutExpired:
            self.failed[model] = "bench_onnx timed out"
            return None
        result = None
        for line in reversed(out.stdout.splitlines()):
            if line.startswith("{"):
                try:
                    result = json.loads(line)
                except ValueError:
                    pass
                break
        if out.returncode != 0 or not result or "error" in result:
            reason = (result or {}).get("error") or (out.stderr.strip().splitlines() or
                                                     ["exit status %d" % out.returncode])[-1]
            if out.returncode < 0:
                reason = "killed by signal %d; %s" % (-out.returncode, reason)
            self.failed[model] = reason
            return None
        return {"rows_per_s": result["rows_per_s"], "p50_us": result["p50_us"],
                "p99_us": result["p99_us"]}


class OnnxRuntime:
    """onnxruntime in this process, timed like bench_onnx."""

    def __init__(self, threads, seconds):
        self.threads = threads
        self.seconds = seconds
        self.sessions = {}

    def session(self, path):
        if path not in self.sessions:
            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            self.sessions[path] = ort.InferenceSession(path, options,
                                                       providers=["CPUExecutionProvider"])
        return self.sessions[path]

    def measure(self, model, path, batch):
        session = self.session(path)
        rng = np.random.default_rng(42)
        feeds = {}
        for info in session.get_inputs():
            shape = [batch] + [d if isinstance(d, int) and d > 0 else 1 for d in info.shape[1:]]
            if info.type != "tensor(float)":
                raise RuntimeError("%s: input %s is %s; only float inputs are benchmarked"
                                   % (model, info.name, info.type))
            feeds[info.name] = rng.uniform(-1, 1, size=shape).astype(np.float32)
        names = [o.name for o in session.get_outputs()]
        warm_end = time.perf_counter() + WARMUP_S
        for _ in range(WARMUP_RUNS):
            if time.perf_counter() >= warm_end:
                break
            session.run(names, feeds)
        latencies = []
        start = now = time.perf_counter()
        end = start + self.seconds
        while now < end:
            t0 = time.perf_counter()
            session.run(names, feeds)
            now = time.perf_counter()
            latencies.append((now - t0) * 1e6)
        latencies.sort()
        pick = lambda p: latencies[min(len(latencies) - 1, int(p * (len(latencies) - 1) + 0.5))]
        return {"rows_per_s": batch * len(latencies) / (now - start), "p50_us": pick(0.5),
                "p99_us": pick(0.99)}


# ----------------------------------------------------------------------------------------------

def fmt_rate(v):
    return "n/a" if v is None else ("%.0f" % v if v >= 100 else "%.1f" % v)


def fmt_us(v):
    return "n/a" if v is None else ("%.0f" % v if v >= 100 else "%.1f" % v)


def median_of(samples, key):
    values = [s[key] for s in samples if s is not None]
    return statistics.median(values) if values else None


def main():
    threads = int(os.environ.get("THREADS", "1"))
    seconds = float(os.environ.get("SECONDS_PER_RUN", "2"))
    repeats = int(os.environ.get("REPEATS", "3"))
    models = env_list("MODELS", DEFAULT_MODELS)
    batches = env_list("BATCHES", DEFAULT_BATCHES, int)
    if threads < 1 or seconds <= 0 or repeats < 1 or not batches or min(batches) < 1:
        sys.exit("bench-kernels: THREADS >= 1, SECONDS_PER_RUN > 0, REPEATS >= 1 and batch "
                 "sizes >= 1 required")
    paths = {}
    for m in models:
        paths[m] = os.path.join(FIXTURES, m, "model.onnx")
        if not os.path.exists(paths[m]):
            sys.exit("bench-kernels: %s is missing; run scripts/make-models"
                     % os.path.relpath(paths[m], ROOT))

    ours, theirs = Ours(threads, seconds), OnnxRuntime(threads, seconds)

    print("== bench-kernels: ActorServe ONNX executor vs onnxruntime (CPU)")
    print("date:         %s" % time.strftime("%Y-%m-%d %H:%M:%S %z"))
    print("git commit:   %s" % git_commit())
    print("nproc:        %s (os.cpu_count %s)" % (sh(["nproc"]), os.cpu_count()))
    print("cpu:          %s" % cpu_model())
    print("load average: %s" % " ".join("%.2f" % v for v in os.getloadavg()))
    print("onnxruntime:  %s (CPUExecutionProvider, intra_op_num_threads=%d, inter 1), numpy %s"
          % (ort.__version__, threads, np.__version__))
    print("ours:         %s (OPENBLAS_NUM_THREADS=%d)%s"
          % (display_path(BENCH_BIN), threads,
             "  -- " + ours.unavailable() if ours.unavailable() else ""))
    print("runs:         %g s each after a warm-up (%d runs or %g s), %d repeat(s), medians; "
          "ours and onnxruntime alternate" % (seconds, WARMUP_RUNS, WARMUP_S, repeats))
    print(flush=True)

    samples = {}
    for model in models:
        for batch in batches:
            for rep in range(repeats):
                order = [("ours", ours), ("onnxruntime", theirs)]
                if rep % 2:
                    order.reverse()
                for side, runner in order:
                    r = runner.measure(model, paths[model], batch)
                    samples.setdefault((model, batch, side), []).append(r)
                    if r is None:
                        continue
                    print("  %-16s batch %-4d repeat %d/%d  %-11s %10s rows/s  p50 %7s us  "
                          "p99 %7s us" % (model, batch, rep + 1, repeats, side,
                                          fmt_rate(r["rows_per_s"]), fmt_us(r["p50_us"]),
                                          fmt_us(r["p99_us"])), flush=True)

    print()
    header = ("%-16s %5s %14s %14s %7s %17s %17s  %s"
              % ("model", "batch", "ours rows/s", "ort rows/s", "ratio", "ours p50/p99 us",
                 "ort p50/p99 us", "target >= %.1fx at batch >= %d"
                 % (TARGET_RATIO, TARGET_MIN_BATCH)))
    print(header)
    print("-" * len(header))
    misses = 0
    for model in models:
        for batch in batches:
            o = samples[(model, batch, "ours")]
            t = samples[(model, batch, "onnxruntime")]
            o_rate, t_rate = median_of(o, "rows_per_s"), median_of(t, "rows_per_s")
            ratio = o_rate / t_rate if o_rate and t_rate else None
            if batch < TARGET_MIN_BATCH:
                verdict = "-"
            elif ratio is None:
                verdict = "MISS (ours did not run)"
            else:
                verdict = "PASS" if ratio >= TARGET_RATIO else "MISS"
            misses += verdict.startswith("MISS")
            print("%-16s %5d %14s %14s %7s %17s %17s  %s" % (
                model, batch, fmt_rate(o_rate), fmt_rate(t_rate),
                "n/a" if ratio is None else "%.2fx" % ratio,
                "%s/%s" % (fmt_us(median_of(o, "p50_us")), fmt_us(median_of(o, "p99_us"))),
                "%s/%s" % (fmt_us(median_of(t, "p50_us")), fmt_us(median_of(t, "p99_us"))),
                verdict))
    print()
    if ours.failed:
        print("OUR EXECUTOR DID NOT RUN (only onnxruntime's figures above are real):")
        for model, reason in ours.failed.items():
            print("  %-16s %s" % (model, reason))
        print()
    print("target >= %.1fx onnxruntime rows/s at batch >= %d: %s" % (
        TARGET_RATIO, TARGET_MIN_BATCH,
        "PASS" if misses == 0 else "MISS (%d of %d rows)" % (
            misses, len(models) * len([b for b in batches if b >= TARGET_MIN_BATCH]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
