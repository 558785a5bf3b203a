#!/usr/bin/env python3
"""Runs the GPU MLP benchmark for scripts/bench-gpu: ours vs a cuBLASLt chain vs PyTorch eager.

(a) ours and (b) the cuBLASLt chain run in build/apps/bench_gpu (apps/bench/bench_gpu.cu), one
process for all measurements, alternating per repeat; it first checks that both give the same
output (max error printed). (c) PyTorch eager runs in this process afterwards on the same
device: nn.Linear + ReLU layers of the same shapes (its own random weights, seed 0), TF32
matmuls allowed for tf32, .half() model and input for fp16. Every side is timed the same way:
one forward pass + device synchronize per run, p50 over SECONDS_PER_RUN, median of REPEATS.

Targets: ours >= 1.0x the cuBLAS chain's rows/s at every batch; ours >= 2x PyTorch eager at
batch <= 32. See scripts/bench-gpu for the environment variables. Standard library only
(+ torch, optional).
"""
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import cpu_model, git_commit, sh  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_BIN = os.path.join(ROOT, os.environ.get("BENCH_GPU_BIN",
                                              os.path.join("build", "apps", "bench_gpu")))
MODELS = {"mlp784": [784, 512, 512, 10], "wide4096": [4096] * 5}
TARGET_CUBLAS = 1.0
TARGET_TORCH = 2.0
TARGET_TORCH_MAX_BATCH = 32
WARMUP_RUNS, WARMUP_S = 10, 0.2


def env_list(name, default, cast=str):
    text = os.environ.get(name, "").strip()
    return [cast(v) for v in text.replace(",", " ").split()] if text else list(default)


def query_device():
    """(device_count, reason, name) from bench_gpu --query."""
    if not os.access(BENCH_BIN, os.X_OK):
        return 0, "%s is not built" % os.path.relpath(BENCH_BIN, ROOT), ""
    out = subprocess.run([BENCH_BIN, "--query"], capture_output=True, text=True, timeout=120)
    try:
        info = json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return 0, "bench_gpu --query failed: %s" % (out.stderr.strip() or out.stdout.strip()), ""
    return info.get("device_count", 0), info.get("reason", ""), info.get("name", "")


def run_ours_and_cublas(models, batches, precisions, seconds, repeats):
    """Measurements and agreement checks from bench_gpu, echoed as they come."""
    cmd = [BENCH_BIN, "--models", ",".join(models), "--batches", ",".join(map(str, batches)),
           "--precisions", ",".join(precisions), "--seconds", str(seconds),
           "--repeats", str(repeats)]
    samples, checks, error = {}, {}, None
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        if "error" in r:
            error = r["error"]
            print("  bench_gpu error: %s" % error, flush=True)
        elif r.get("check"):
            checks[(r["model"], r["precision"], r["batch"])] = r
            print("  %-9s %-4s batch %-5d ours vs cuBLAS: max abs err %.3g, max rel err %.3g "
                  "(limit %g) %s" % (r["model"], r["precision"], r["batch"], r["max_abs_err"],
                                     r["max_rel_err"], r["limit"],
                                     "ok" if r["ok"] else "MISMATCH"), flush=True)
        else:
            key = (r["model"], r["precision"], r["batch"], r["impl"])
            samples.setdefault(key, []).append(r)
            print("  %-9s %-4s batch %-5d repeat %d  %-6s %-18s p50 %9.1f us  %12.0f rows/s"
                  % (r["model"], r["precision"], r["batch"], r["repeat"], r["impl"], r["path"],
                     r["p50_us"], r["rows_per_s"]), flush=True)
    if proc.wait() != 0 and error is None:
        error = "bench_gpu exited with status %d" % proc.returncode
    return samples, checks, error


class Torch:
    """PyTorch eager on cuda:0, or the reason it cannot run."""

    def __init__(self):
        self.unavailable = None
        try:
            import torch  # noqa: F401
        except Exception as e:  # ImportError, or a broken install
            self.unavailable = "import torch failed: %s" % e
            return
        import torch
        if not torch.cuda.is_available():
            self.unavailable = "torch %s has no usable CUDA device" % torch.__version__
            return
        self.torch = torch
        self.version = torch.__version__

    def measure(self, model, precision, batch, seconds):
        torch = self.torch
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        torch.backends.cudnn.allow_tf32 = precision == "tf32"
        torch.manual_seed(0)
        widths = MODELS[model]
        layers = []
        for i in range(len(widths) - 1):
            layers.append(torch.nn.Linear(widths[i], widths[i + 1]))
            if i + 2 < len(widths):
                layers.append(torch.nn.ReLU())
        net = torch.nn.Sequential(*layers).cuda().eval()
        x = torch.rand(batch, widths[0], device="cuda") * 2 - 1
        if precision == "fp16":
            net, x = net.half(), x.half()
        with torch.inference_mode():
            warm_end = time.perf_counter() + WARMUP_S
            for i in range(1000):
                net(x)
                torch.cuda.synchronize()
                if i >= WARMUP_RUNS and time.perf_counter() >= warm_end:
                    break
            us = []
            end = time.perf_counter() + seconds
            while time.perf_counter() < end and len(us) < 200000:
                t0 = time.perf_counter()
                net(x)
                torch.cuda.synchronize()
                us.append((time.perf_counter() - t0) * 1e6)
        us.sort()
        p50 = us[len(us) // 2]
        return {"p50_us": p50, "rows_per_s": batch / (p50 * 1e-6)}


def med(samples, key):
    values = [s[key] for s in samples or [] if s is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=1):
    return "n/a" if v is None else ("%.0f" % v if v >= 1000 else "%.*f" % (digits, v))


def main():
    seconds = float(os.environ.get("SECONDS_PER_RUN", "1"))
    repeats = int(os.environ.get("REPEATS", "3"))
    models = env_list("MODELS", ["mlp784", "wide4096"])
    batches = env_list("BATCHES", [1, 8, 32, 128, 1024], int)
    precisions = env_list("PRECISIONS", ["tf32", "fp16"])
    if seconds <= 0 or repeats < 1 or not batches or min(batches) < 1:
        sys.exit("bench-gpu: SECONDS_PER_RUN > 0, REPEATS >= 1 and batch sizes >= 1 required")
    for m in models:
        if m not in MODELS:
            sys.exit("bench-gpu: unknown model %s (%s)" % (m, ", ".join(MODELS)))
    for p in precisions:
        if p not in ("tf32", "fp16"):
            sys.exit("bench-gpu: unknown precision %s (tf32, fp16)" % p)

    count, reason, name = query_device()
    if count == 0:
        print("skipped: no CUDA device (%s)" % reason)
        return 0

    torch_side = Torch()
    print("== bench-gpu: ActorServe CUDA kernels vs cuBLASLt chain vs PyTorch eager")
    print("date:         %s" % time.strftime("%Y-%m-%d %H:%M:%S %z"))
    print("git commit:   %s" % git_commit())
    print("gpu:          %s (%d device(s); device 0 used)" % (name, count))
    print("driver:       %s" % sh(["nvidia-smi", "--query-gpu=driver_version,clocks.max.sm",
                                   "--format=csv,noheader"], check=False).splitlines()[0])
    print("cpu:          %s" % cpu_model())
    print("ours/cuBLAS:  %s" % os.path.relpath(BENCH_BIN, ROOT))
    print("pytorch:      %s" % (torch_side.unavailable or "torch %s, eager, inference_mode"
                                % torch_side.version))
    print("runs:         %g s each after a warm-up, %d repeat(s), medians; one run = forward + "
          "synchronize, timed on the host" % (seconds, repeats))
    print(flush=True)

    samples, checks, error = run_ours_and_cublas(models, batches, precisions, seconds, repeats)
    if not torch_side.unavailable:
        for model in models:
            for precision in precisions:
                for batch in batches:
                    for rep in range(repeats):
                        r = torch_side.measure(model, precision, batch, seconds)
                        samples.setdefault((model, precision, batch, "torch"), []).append(r)
                        print("  %-9s %-4s batch %-5d repeat %d  torch  p50 %9.1f us  %12.0f "
                              "rows/s" % (model, precision, batch, rep + 1, r["p50_us"],
                                          r["rows_per_s"]), flush=True)
    print()
    header = ("%-9s %-4s %5s %-13s %10s %10s %10s %12s %8s %8s  %-12s %s" % (
        "model", "prec", "batch", "ours path", "ours us", "cuBLAS us", "torch us", "ours rows/s",
        "/cuBLAS", "/torch", ">=%.1fx cuBLAS" % TARGET_CUBLAS,
        ">=%.0fx torch (batch<=%d)" % (TARGET_TORCH, TARGET_TORCH_MAX_BATCH)))
    print(header)
    print("-" * len(header))
    fails = 0
    for model in models:
        for precision in precisions:
            for batch in batches:
                o = samples.get((model, precision, batch, "ours"))
                c = samples.get((model, precision, batch, "cublas"))
                t = samples.get((model, precision, batch, "torch"))
                o_rate, c_rate, t_rate = (med(o, "rows_per_s"), med(c, "rows_per_s"),
                                          med(t, "rows_per_s"))
                vs_c = o_rate / c_rate if o_rate and c_rate else None
                vs_t = o_rate / t_rate if o_rate and t_rate else None
                check = checks.get((model, precision, batch))
                if vs_c is None:
                    v_c = "FAIL (no data)"
                elif check is not None and not check["ok"]:
                    v_c = "FAIL (output)"
                else:
                    v_c = "PASS" if vs_c >= TARGET_CUBLAS else "FAIL"
                if batch > TARGET_TORCH_MAX_BATCH:
                    v_t = "-"
                elif torch_side.unavailable:
                    v_t = "skipped"
                elif vs_t is None:
                    v_t = "FAIL (no data)"
                else:
                    v_t = "PASS" if vs_t >= TARGET_TORCH else "FAIL"
                fails += v_c.startswith("FAIL") + v_t.startswith("FAIL")
                path = o[0]["path"] if o else "n/a"
                print("%-9s %-4s %5d %-13s %10s %10s %10s %12s %8s %8s  %-12s %s" % (
                    model, precision, batch, path, fmt(med(o, "p50_us")), fmt(med(c, "p50_us")),
                    fmt(med(t, "p50_us")), fmt(o_rate, 0), "n/a" if vs_c is None else
                    "%.2fx" % vs_c, "n/a" if vs_t is None else "%.2fx" % vs_t, v_c, v_t))
    print()
    if error:
        print("bench_gpu reported an error: %s" % error)
    if torch_side.unavailable:
        print("PyTorch eager skipped: %s" % torch_side.unavailable)
    mismatches = [k for k, r in checks.items() if not r["ok"]]
    print("output agreement ours vs cuBLAS: %s" % (
        "ok (%d checks)" % len(checks) if not mismatches else
        "MISMATCH in %s" % ", ".join("%s/%s/batch %d" % k for k in mismatches)))
    print("targets: %s" % ("PASS" if fails == 0 else "FAIL (%d verdicts)" % fails))
    return 1 if (error or mismatches) else 0


if __name__ == "__main__":
    sys.exit(main())
