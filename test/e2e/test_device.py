"""Model deployments and their "device" (issue 7): which device each replica got, and why.

On a machine without a usable GPU (or a build without CUDA), "auto" serves on the CPU and the
status says why; "cuda:0" fails to deploy naming the reason. With a GPU, both serve on cuda:0.
"""
import json
import math
import os

from harness import ROOT, Server, app, config, main

FIXTURES = os.path.join(ROOT, "test", "fixtures", "models")


def model_app(name, prefix, fixture, **options):
    dep = dict({"name": "Model", "model": {"uri": os.path.join(FIXTURES, fixture)}}, **options)
    return app(name, prefix, [dep])


def fixture_case(name):
    with open(os.path.join(FIXTURES, name, "cases.json")) as f:
        return json.load(f)


def described(server, app_name):
    dep = server.status()["applications"][app_name]["deployments"]["Model"]
    return dep["model"], dep["deployment_config"]


def test_auto_serves_the_mlp_and_the_status_says_where_and_why():
    cfg = config(model_app("mlp", "/mlp", "torch_mlp", device="auto",
                           batching={"max_batch_size": 8, "batch_wait_timeout_s": 0.01}))
    case = fixture_case("torch_mlp")
    inp = case["inputs"]["input"]
    rows = [inp["data"][i * 4:(i + 1) * 4] for i in range(inp["shape"][0])]
    with Server(cfg) as s:
        r = s.post("/mlp", json.dumps({"inputs": rows}))
        assert r.status == 200, r
        got = [x for row in r.json()["outputs"]["output"] for x in row]
        want = case["outputs"][0]["data"]
        # CPU: the fixture tolerance; a GPU computes in TF32 by default.
        model, dep_config = described(s, "mlp")
        tol = 1e-4 if model["device"] == "cpu" else 2e-2
        assert all(math.isclose(a, b, rel_tol=tol, abs_tol=tol) for a, b in zip(got, want)), got
        assert dep_config["device"] == "auto" and dep_config["precision"] == "tf32", dep_config
        replica = s.status()["applications"]["mlp"]["deployments"]["Model"]["replicas"][0]
        assert replica["device"] == model["device"], replica  # each replica says where it runs
        assert replica["device_reason"] == model["device_reason"], replica
        if model["device"] == "cpu":
            assert model["device_reason"].endswith(": using CPU"), model
            assert "device cpu (" in s.log(), s.log()
        else:
            assert model["device"] == "cuda:0", model
            assert model["gpu_plan"] == "3 layers 4-16-16-3 (relu, relu, none), softmax", model


def test_a_model_without_gpu_kernels_stays_on_the_cpu_under_auto():
    cfg = config(model_app("trees", "/trees", "sk_rf_3class", device="auto"))
    with Server(cfg) as s:
        model, _ = described(s, "trees")
        assert model["device"] == "cpu", model
        reason = model["device_reason"]
        assert reason.endswith(": using CPU"), reason
        # Without a GPU the device is the first reason; with one, the graph is.
        assert ("TreeEnsembleClassifier (ai.onnx.ml) which has no GPU kernel" in reason
                or "CUDA" in reason), reason


def test_cpu_is_the_default_and_says_requested():
    cfg = config(model_app("mlp", "/mlp", "torch_mlp"))
    with Server(cfg) as s:
        model, dep_config = described(s, "mlp")
        assert model["device"] == "cpu" and model["device_reason"] == "requested", model
        assert dep_config["device"] == "cpu", dep_config


def test_cuda_0_without_a_gpu_fails_to_deploy_with_the_reason():
    cfg = config(model_app("mlp", "/mlp", "torch_mlp", device="cuda:0"))
    try:
        with Server(cfg, start_timeout=15) as s:
            model, _ = described(s, "mlp")  # a machine with a GPU: it serves there
            assert model["device"] == "cuda:0", model
    except RuntimeError as e:
        assert 'device "cuda:0" requested, but no CUDA device is usable' in str(e), str(e)


def test_a_bad_device_is_refused_with_its_path():
    cfg = config(model_app("mlp", "/mlp", "torch_mlp", device="gpu0"))
    try:
        with Server(cfg, start_timeout=10):
            raise AssertionError("server started with device \"gpu0\"")
    except RuntimeError as e:
        assert "applications[0].deployments[0].device: must be" in str(e), str(e)


if __name__ == "__main__":
    main(globals())
