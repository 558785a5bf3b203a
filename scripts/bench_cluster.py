"""Replicas on worker nodes vs on the head; see scripts/bench-cluster."""
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile

from bench_common import ROOT, ServerProcess, cpu_model, git_commit

BIN = os.path.join(os.environ.get("BUILD_DIR", os.path.join(ROOT, "build")), "apps", "actorserve")
MODEL = os.path.join(ROOT, "test", "fixtures", "models", "torch_mlp_784")
DURATION = os.environ.get("DURATION", "5")
REPEATS = int(os.environ.get("REPEATS", "3"))
TOKEN = "bench-cluster-token"
ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A head serving `deployment` and `workers` nodes, one process each."""

    def __init__(self, tmp, deployment, workers):
        self.tmp, self.deployment, self.workers = tmp, deployment, workers

    def __enter__(self):
        token = os.path.join(self.tmp, "token")
        with open(token, "w") as f:
            f.write(TOKEN)
        self.nodes = []
        for i in range(self.workers):
            name, port = f"w{i + 1}", free_port()
            self.nodes.append((name, port, ServerProcess(
                name, [BIN, "node", "--listen", f"127.0.0.1:{port}", "--name", name,
                       "--token-file", token, "--work-dir", os.path.join(self.tmp, name),
                       "--workers", "2"], ready_pattern=r"listening on", env=ENV).start()))
        cfg = {"http_options": {"host": "127.0.0.1", "port": 0},
               "nodes": [{"name": n, "address": f"127.0.0.1:{p}"} for n, p, _ in self.nodes],
               "cluster": {"token_file": token},
               "applications": [{"name": "a", "route_prefix": "/a",
                                 "deployments": [self.deployment]}]}
        path = os.path.join(self.tmp, "head.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        self.head = ServerProcess("head", [BIN, "run", path, "--workers", "2"], env=ENV).start()
        self.url = self.head.url("/a")
        return self

    def __exit__(self, *exc):
        self.head.stop()
        for _, _, node in self.nodes:
            node.stop()


def bench(url, body, connections):
    out = subprocess.run([BIN, "bench", url, "--body-text", body, "-c", str(connections),
                          "-d", DURATION, "--warmup", "1", "--json", "-q"],
                         capture_output=True, text=True, env=ENV)
    if out.returncode != 0:
        sys.exit("actorserve bench failed: " + out.stderr)
    step = json.loads(out.stdout)["steps"][0]
    return {"rps": step["rps"], "p50": step["latency_us"]["p50"],
            "p99": step["latency_us"]["p99"], "errors": step["errors"]["total"]}


def median_runs(tmp, deployment, workers, body, connections):
    runs = []
    for _ in range(REPEATS):
        with Cluster(tmp, deployment, workers) as c:
            runs.append(bench(c.url, body, connections))
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def row(name, r):
    print(f"  {name:<44}{r['rps']:>10.0f}{r['p50']:>10.0f}{r['p99']:>10.0f}{r['errors']:>8.0f}")


def header(title):
    print(f"\n{title}\n  {'':<44}{'req/s':>10}{'p50 us':>10}{'p99 us':>10}{'errors':>8}")


def main():
    print(f"== bench-cluster: {REPEATS} runs of {DURATION}s each (medians); {cpu_model()}, "
          f"nproc {os.cpu_count()}, commit {git_commit()}")
    print("   head and nodes are separate processes on 127.0.0.1 (BASP over loopback TCP)")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        noop = {"name": "Noop", "class": "Noop", "max_ongoing_requests": 100}
        for c in (1, 32):
            header(f"no-op deployment, 1 replica, {c} connection(s)")
            local = median_runs(tmp, dict(noop, placement={"nodes": ["head"]}), 1, "{}", c)
            remote = median_runs(tmp, dict(noop, placement={"nodes": ["w1"]}), 1, "{}", c)
            row("replica on the head", local)
            row("replica on a worker node", remote)
            print(f"  hop cost: p50 +{remote['p50'] - local['p50']:.0f} us, "
                  f"throughput {remote['rps'] / local['rps']:.2f}x")
            results[f"noop_c{c}"] = {"local": local, "remote": remote}
        rng = random.Random(7)
        body = json.dumps({"inputs": [[round(rng.uniform(-1, 1), 4) for _ in range(784)]]})
        mlp = {"name": "MLP", "model": {"uri": MODEL}, "max_ongoing_requests": 64,
               "batching": {"max_batch_size": 32, "batch_wait_timeout_s": 0.002}}
        header("batched MLP 784-512-512-10 (max_batch_size 32), 64 connections")
        on_head = median_runs(tmp, dict(mlp, placement={"nodes": ["head"]}), 1, body, 64)
        one = median_runs(tmp, dict(mlp, placement={"nodes": ["w1"]}), 1, body, 64)
        two = median_runs(tmp, dict(mlp, num_replicas=2, placement={"nodes": ["w1", "w2"]}), 2,
                          body, 64)
        row("1 replica on the head", on_head)
        row("1 replica on one worker", one)
        row("2 replicas on two workers", two)
        print(f"  worker vs head: {one['rps'] / on_head['rps']:.2f}x; "
              f"two workers vs one: {two['rps'] / one['rps']:.2f}x "
              f"(all processes share {os.cpu_count()} cores)")
        results["mlp"] = {"head": on_head, "one_worker": one, "two_workers": two}
    print("\nJSON " + json.dumps(results))


if __name__ == "__main__":
    main()
