#!/usr/bin/env python3
"""Ray Serve versions of the ActorServe applications that scripts/bench-vs-ray compares.

Each application is the Ray Serve twin of one ActorServe config, with the same route, request
and reply:

  noop      /noop      -> "ok"                       (apps/examples/configs/basics.json, Noop)
  mlp       /mlp       {"inputs": [[784 floats]]} -> {"outputs": {"output": [[10 floats]]}}:
                       test/fixtures/models/torch_mlp_784/model.onnx through onnxruntime,
                       @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.002),
                       max_ongoing_requests=128 (as scripts/bench-model-http serves it)
  composed  /composed  the guide's ComposedModel: model_one a random score, model_two an echo
                       (apps/examples/configs/composed.json)
  ensemble  /ensemble  the guide's EnsembleModel, sub-models DelayedConstant with user_config
                       {"value": 1|2, "delay_s": 0}, 2 replicas each -> [1, 2]
  sleep     /sleep     {"sleep_s": x} -> {"slept_s": x}, max_ongoing_requests=1,
                       max_queued_requests=1 (apps/examples/configs/failures.json, Sleeper)

Run (with the venv of scripts/ray-requirements.txt):
  python scripts/ray_apps.py APP --port PORT [--num-cpus 2]
It starts a local Ray cluster (ray.init), Serve's HTTP proxy on 127.0.0.1:PORT and the app,
prints "ready" and serves until SIGTERM/SIGINT, then shuts Serve and Ray down.
"""
import argparse
import asyncio
import os
import random
import signal
import sys
import threading

import numpy as np
import ray
from ray import serve
from starlette.requests import Request
from starlette.responses import Response

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
MLP_ONNX = os.path.join(ROOT, "test", "fixtures", "models", "torch_mlp_784", "model.onnx")

# Ray reserves CPUs per replica (1 by default); the ensemble needs 5 replicas and the cluster is
# told it has the machine's 2 cores, so every replica asks for a fraction instead.
ACTOR_OPTIONS = {"num_cpus": 0.1}


def json_response(text):
    return Response(text, media_type="application/json")


# ---- no-op ---------------------------------------------------------------------------------

@serve.deployment(max_ongoing_requests=100, ray_actor_options=ACTOR_OPTIONS)
class Noop:
    async def __call__(self, request: Request):
        return json_response('"ok"')


# ---- batched MLP ---------------------------------------------------------------------------

@serve.deployment(max_ongoing_requests=128, ray_actor_options=ACTOR_OPTIONS)
class MLP:
    def __init__(self, path: str, threads: int):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.outputs = [o.name for o in self.session.get_outputs()]

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.002)
    async def predict(self, rows):
        x = np.stack(rows).astype(np.float32, copy=False)
        results = self.session.run(self.outputs, {self.input: x})
        return [{"outputs": {name: [out[i].tolist()] for name, out in zip(self.outputs, results)}}
                for i in range(len(rows))]

    async def __call__(self, request: Request):
        body = await request.json()
        return await self.predict(np.asarray(body["inputs"][0], dtype=np.float32))


# ---- the guide's composition and ensemble ----------------------------------------------------

@serve.deployment(ray_actor_options=ACTOR_OPTIONS)
class RandomScore:
    def __call__(self, data):
        return random.random()


@serve.deployment(ray_actor_options=ACTOR_OPTIONS)
class Echo:
    def __call__(self, data):
        return data


@serve.deployment(max_ongoing_requests=10, ray_actor_options=ACTOR_OPTIONS)
class ComposedModel:
    def __init__(self, model_one, model_two):
        self.model_one = model_one
        self.model_two = model_two

    async def __call__(self, request: Request):
        data = await request.body()
        score = await self.model_one.remote(data)
        if score > 0.5:
            await self.model_two.remote(data)
            return {"model_used: 1 & 2;  score": score}
        return {"model_used: 1 ; score": score}


@serve.deployment(num_replicas=2, ray_actor_options=ACTOR_OPTIONS)
class DelayedConstant:
    def __init__(self):
        self.value = 1
        self.delay_s = 1.0

    def reconfigure(self, config):
        self.value = config.get("value", self.value)
        self.delay_s = config.get("delay_s", self.delay_s)

    async def __call__(self, data):
        if self.delay_s > 0:
            await asyncio.sleep(self.delay_s)
        return self.value


@serve.deployment(max_ongoing_requests=10, ray_actor_options=ACTOR_OPTIONS)
class EnsembleModel:
    def __init__(self, model_one, model_two):
        self.models = [model_one, model_two]

    async def __call__(self, request: Request):
        data = await request.body()
        return list(await asyncio.gather(*(m.remote(data) for m in self.models)))


# ---- backpressure ------------------------------------------------------------------------------

@serve.deployment(max_ongoing_requests=1, max_queued_requests=1, ray_actor_options=ACTOR_OPTIONS)
class Sleeper:
    async def __call__(self, request: Request):
        try:
            s = float((await request.json()).get("sleep_s", 0.0))
        except Exception:  # noqa: BLE001 - no body or not JSON: no sleep, as ours
            s = 0.0
        await asyncio.sleep(s)
        return json_response('{"slept_s":%f}' % s)


def build(app, mlp_threads):
    """(bound application, route prefix) for APP."""
    if app == "noop":
        return Noop.bind(), "/noop"
    if app == "mlp":
        return MLP.bind(MLP_ONNX, mlp_threads), "/mlp"
    if app == "composed":
        return ComposedModel.bind(RandomScore.options(name="model_one").bind(),
                                  Echo.options(name="model_two").bind()), "/composed"
    if app == "ensemble":
        one = DelayedConstant.options(name="model_one", user_config={"value": 1, "delay_s": 0})
        two = DelayedConstant.options(name="model_two", user_config={"value": 2, "delay_s": 0})
        return EnsembleModel.bind(one.bind(), two.bind()), "/ensemble"
    if app == "sleep":
        return Sleeper.bind(), "/sleep"
    raise SystemExit("ray_apps: unknown app %r" % app)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("app", choices=["noop", "mlp", "composed", "ensemble", "sleep"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--num-cpus", type=float, default=float(os.cpu_count() or 2))
    p.add_argument("--mlp-threads", type=int, default=1, help="onnxruntime intra-op threads")
    args = p.parse_args()

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    serve.start(http_options={"host": "127.0.0.1", "port": args.port})
    app, route = build(args.app, args.mlp_threads)
    serve.run(app, name=args.app, route_prefix=route)
    print("ready: http://127.0.0.1:%d%s" % (args.port, route), flush=True)
    stop.wait()
    try:
        serve.shutdown()
    finally:
        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
