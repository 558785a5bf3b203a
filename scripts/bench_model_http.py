"""Served (HTTP + batching) vs offline throughput of one ONNX model; see scripts/bench-model-http."""
import json
import os
import random
import re
import subprocess
import sys
import tempfile

from bench_common import ROOT, ServerProcess

BIN = os.path.join(ROOT, "build", "apps")
MODEL = os.path.join(ROOT, "test", "fixtures", "models", "torch_mlp_784")
BATCH = int(os.environ.get("BATCH", "32"))
DURATION = int(os.environ.get("DURATION", "10"))
THREADS = os.environ.get("THREADS", "1")
# "cpu" (default) or a GPU ("cuda:0"): the served deployment's "device".
DEVICE = os.environ.get("DEVICE", "cpu")


def offline():
    out = subprocess.run([os.path.join(BIN, "bench_onnx"), os.path.join(MODEL, "model.onnx"),
                          "--batch", str(BATCH), "--seconds", str(DURATION), "--threads", THREADS],
                         capture_output=True, text=True, env=dict(os.environ,
                                                                    OPENBLAS_NUM_THREADS=THREADS))
    if out.returncode != 0:
        sys.exit("bench_onnx failed: " + out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def served(tmp):
    cfg = {"http_options": {"host": "127.0.0.1", "port": 0},
           "applications": [{"name": "mlp", "route_prefix": "/mlp", "deployments": [{
               "name": "MLP", "model": {"uri": MODEL}, "max_ongoing_requests": 4 * BATCH,
               "device": DEVICE,
               "batching": {"max_batch_size": BATCH, "batch_wait_timeout_s": 0.002}}]}]}
    cfg_path = os.path.join(tmp, "mlp.json")
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    rng = random.Random(7)
    body = json.dumps({"inputs": [[round(rng.uniform(-1, 1), 4) for _ in range(784)]]})
    lua = os.path.join(tmp, "post.lua")
    with open(lua, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f"wrk.body = {json.dumps(body)}\n")
    with ServerProcess("model-http", [os.path.join(BIN, "actorserve"), "run", cfg_path,
                                      "--port", "0"],
                       env=dict(os.environ, OPENBLAS_NUM_THREADS=THREADS)) as server:
        url = server.url("/mlp")
        conc = 2 * BATCH
        subprocess.run(["wrk", "-t2", f"-c{conc}", "-d2s", "-s", lua, url], capture_output=True)
        out = subprocess.run(["wrk", "-t2", f"-c{conc}", f"-d{DURATION}s", "--latency", "-s", lua,
                              url], capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)

    def pct(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        scale = {"us": 1, "ms": 1000, "s": 1e6}[m.group(2)]
        return float(m.group(1)) * scale
    return {"rows_per_s": rps, "p50_us": pct(50), "p99_us": pct(99),
            "errors": int(non2xx.group(1)) if non2xx else 0, "concurrency": conc}


def main():
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=ROOT).stdout.strip()
    print(f"== bench-model-http: MLP 784-512-512-10, max_batch_size {BATCH}, "
          f"{THREADS} model thread(s), served on {DEVICE}, {DURATION}s runs; nproc {os.cpu_count()}, "
          f"commit {commit}")
    with tempfile.TemporaryDirectory() as tmp:
        off = offline()
        http = served(tmp)
    print(f"{'path':<34}{'rows/s':>10}{'p50':>12}{'p99':>12}")
    print(f"{'offline executor, batch ' + str(BATCH):<34}{off['rows_per_s']:>10.0f}"
          f"{off['p50_us']:>10.0f}us{off['p99_us']:>10.0f}us  (per batch)")
    print(f"{'HTTP, 1 row/request, c=' + str(http['concurrency']):<34}{http['rows_per_s']:>10.0f}"
          f"{http['p50_us']:>10.0f}us{http['p99_us']:>10.0f}us  (per request), "
          f"errors {http['errors']}")
    print(f"served / offline rows/s: {http['rows_per_s'] / off['rows_per_s']:.2f}x")


if __name__ == "__main__":
    main()
