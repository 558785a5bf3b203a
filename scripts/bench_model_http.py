"""Served (HTTP + batching) vs offline throughput of one ONNX model; see scripts/bench-model-http.

Three served paths, one row per request: the Ray-style JSON route (wrk), the Open Inference
Protocol with JSON tensors and with binary tensors (`actorserve bench --v2-model`). With
BASELINE_BIN, the same served runs with another actorserve binary (e.g. an older commit's),
alternating with this one."""
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


def served(tmp, binary_path):
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
    results = {}
    with ServerProcess("model-http", [binary_path, "run", cfg_path, "--port", "0"],
                       env=dict(os.environ, OPENBLAS_NUM_THREADS=THREADS)) as server:
        url = server.url("/mlp")
        conc = 2 * BATCH
        subprocess.run(["wrk", "-t2", f"-c{conc}", "-d2s", "-s", lua, url], capture_output=True)
        out = subprocess.run(["wrk", "-t2", f"-c{conc}", f"-d{DURATION}s", "--latency", "-s", lua,
                              url], capture_output=True, text=True).stdout
        for name, extra in (("v2 JSON", []), ("v2 binary", ["--binary"])):
            results[name] = v2_run(server.url(""), conc, extra)
    results["Ray JSON"] = wrk_result(out, conc)
    return results


def v2_run(base_url, conc, extra):
    """`actorserve bench` (this checkout's) against the v2 model MLP, one 784-float row each."""
    out = subprocess.run([os.path.join(BIN, "actorserve"), "bench", base_url, "--v2-model", "MLP",
                          "--shape", "input=1,784", "-c", str(conc), "-d", str(DURATION),
                          "--warmup", "2", "--json"] + extra, capture_output=True, text=True)
    try:
        doc = json.loads(out.stdout)
    except ValueError:
        sys.exit("actorserve bench failed: " + out.stdout + out.stderr)
    step = doc["steps"][0] if "steps" in doc else doc
    bad = step["errors"]["total"] + sum(v for k, v in step["status"].items() if k != "200")
    return {"rows_per_s": step["rps"], "p50_us": step["latency_us"]["p50"],
            "p99_us": step["latency_us"]["p99"], "errors": bad, "concurrency": conc}


def wrk_result(out, conc):
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
    baseline = os.environ.get("BASELINE_BIN", "")
    print(f"== bench-model-http: MLP 784-512-512-10, max_batch_size {BATCH}, "
          f"{THREADS} model thread(s), served on {DEVICE}, {DURATION}s runs; nproc {os.cpu_count()}, "
          f"commit {commit}" + (f"; baseline {baseline}" if baseline else ""))
    binaries = [("this build", os.path.join(BIN, "actorserve"))]
    if baseline:
        binaries.append(("baseline", baseline))
    with tempfile.TemporaryDirectory() as tmp:
        off = offline()
        served_by = {label: served(tmp, path) for label, path in binaries}
    print(f"{'path':<44}{'rows/s':>10}{'p50':>12}{'p99':>12}{'served/offline':>16}")
    print(f"{'offline executor, batch ' + str(BATCH):<44}{off['rows_per_s']:>10.0f}"
          f"{off['p50_us']:>10.0f}us{off['p99_us']:>10.0f}us  (per batch)")
    for label, results in served_by.items():
        for name, http in results.items():
            row = f"{label}: {name}, 1 row/request, c={http['concurrency']}"
            print(f"{row:<44}{http['rows_per_s']:>10.0f}{http['p50_us']:>10.0f}us"
                  f"{http['p99_us']:>10.0f}us{http['rows_per_s'] / off['rows_per_s']:>15.2f}x"
                  f"  errors {http['errors']}")


if __name__ == "__main__":
    main()
