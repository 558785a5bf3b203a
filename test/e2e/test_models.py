"""ONNX model deployments over HTTP: payload formats, batching, per-request errors."""
import json
import math
import os
import re

from harness import BIN, ROOT, Server, app, config, main, wait_until

FIXTURES = os.path.join(ROOT, "test", "fixtures", "models")
IRIS = os.path.join(ROOT, "apps", "examples", "models", "iris")


def fixture(name):
    with open(os.path.join(FIXTURES, name, "cases.json")) as f:
        return json.load(f)


def model_app(name, prefix, model, **options):
    dep = dict({"name": "Model", "model": model}, **options)
    return app(name, prefix, [dep])


def rows(flat, shape):
    if len(shape) <= 1:
        return list(flat)
    width = len(flat) // shape[0]
    return [rows(flat[i * width:(i + 1) * width], shape[1:]) for i in range(shape[0])]


def close(a, b, tol=1e-4):
    if isinstance(a, list):
        return len(a) == len(b) and all(close(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], tol) for k in a)
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=tol, abs_tol=tol)
    return a == b


BATCHING = {"max_batch_size": 16, "batch_wait_timeout_s": 0.05}
CONFIG = config(
    app("iris", "/regressor", [{
        "name": "BoostingModel",
        "model": {"uri": IRIS, "labels": os.path.join(IRIS, "labels.json"),
                  "features": ["sepal length", "sepal width", "petal length", "petal width"]},
        "max_ongoing_requests": 16, "batching": BATCHING}]),
    model_app("logreg", "/logreg", {"uri": os.path.join(FIXTURES, "sk_logreg_3class")}),
    model_app("zipmap", "/zipmap",
              {"uri": os.path.join(FIXTURES, "sk_logreg_3class_zipmap", "model.onnx")}),
    model_app("mlp", "/mlp", {"uri": os.path.join(FIXTURES, "torch_mlp")},
              max_ongoing_requests=16, batching=BATCHING))


def test_the_guides_iris_requests_answer_virginica_setosa_versicolor():
    with open(os.path.join(IRIS, "samples.json")) as f:
        samples = json.load(f)
    with Server(CONFIG) as s:
        for sample in samples:
            r = s.post("/regressor", sample["request"])
            assert r.status == 200, r
            assert r.json() == {"result": sample["expected"]}, (sample, r.body)
        # The guide sends its JSON with GET (requests.get(url, json=...)): same answer.
        get = s.request("GET", "/regressor", json.dumps(samples[0]["request"]),
                        headers={"Content-Type": "application/json"})
        assert get.status == 200 and get.json() == {"result": samples[0]["expected"]}, get
        missing = s.post("/regressor", {"sepal length": 6.3})
        assert missing.status == 400 and "missing feature \"sepal width\"" in missing.body


def test_inputs_format_matches_onnxruntime():
    case = fixture("torch_mlp")
    (name, spec), = case["inputs"].items()
    expected = case["outputs"][0]
    with Server(CONFIG) as s:
        r = s.post("/mlp", {"inputs": {name: rows(spec["data"], spec["shape"])}})
        assert r.status == 200, r
        got = r.json()["outputs"][expected["name"]]
        assert close(got, rows(expected["data"], expected["shape"]), 1e-5), got
        # one row without its batch dimension comes back without it too
        one = s.post("/mlp", {"inputs": rows(spec["data"], spec["shape"])[0]})
        assert close(one.json()["outputs"][expected["name"]],
                     rows(expected["data"], expected["shape"])[0], 1e-5), one.body


def test_mlflow_scoring_formats_at_invocations():
    case = fixture("sk_logreg_3class")
    spec = case["inputs"]["float_input"]
    data = rows(spec["data"], spec["shape"])
    labels = case["outputs"][0]["data"]
    probs = rows(case["outputs"][1]["data"], case["outputs"][1]["shape"])
    cols = ["a", "b", "c", "d"]
    bodies = [
        {"instances": data},
        {"inputs": data},
        {"dataframe_split": {"columns": cols, "data": data}},
        {"dataframe_records": [dict(zip(cols, row)) for row in data]},
    ]
    with Server(CONFIG) as s:
        for body in bodies:
            r = s.post("/logreg/invocations", body)
            assert r.status == 200, (body.keys(), r)
            pred = r.json()["predictions"]
            assert pred["label"] == labels, (list(body), pred)
            assert close(pred["probabilities"], probs, 1e-5)
        two = s.post("/logreg/invocations", {"instances": data, "inputs": data})
        assert two.status == 400 and "exactly one of" in two.body


def test_zipmap_outputs_render_as_json_objects():
    case = fixture("sk_logreg_3class_zipmap")
    spec = case["inputs"]["float_input"]
    with Server(CONFIG) as s:
        r = s.post("/zipmap", {"inputs": rows(spec["data"], spec["shape"])})
        assert r.status == 200, r
        out = r.json()["outputs"]
        assert out["output_label"] == case["outputs"][0]["data"]
        assert close(out["output_probability"], case["outputs"][1]["data"], 1e-5)


def test_a_bad_request_is_refused_alone_and_does_not_poison_its_batch():
    case = fixture("torch_mlp")
    (name, spec), = case["inputs"].items()
    data = rows(spec["data"], spec["shape"])
    expected = rows(case["outputs"][0]["data"], case["outputs"][0]["shape"])
    with Server(CONFIG) as s:
        calls = [("POST", "/mlp", {"inputs": [row]}) for row in data]
        calls.insert(3, ("POST", "/mlp", {"inputs": [[1.0, 2.0]]}))  # wrong width
        calls.insert(5, ("POST", "/mlp", {"inputs": [["x", 1, 2, 3]]}))  # wrong type
        replies, _ = s.concurrently(calls)
        bad = [replies.pop(5), replies.pop(3)]
        assert bad[1].status == 400 and "input \"input\": expected float32 [-1, 4], got float32 [1, 2]" in bad[1].body, bad[1].body
        assert bad[0].status == 400 and "expected float32 values, got a string" in bad[0].body
        for row, r in zip(expected, replies):
            assert r.status == 200, r
            assert close(r.json()["outputs"]["output"], [row], 1e-5)
        dep = s.status()["applications"]["mlp"]["deployments"]["Model"]
        assert dep["status"] == "HEALTHY"


def test_status_reports_what_each_replica_loaded():
    with Server(CONFIG) as s:
        model = s.status()["applications"]["mlp"]["deployments"]["Model"]["model"]
        assert model["parameters"] > 0 and model["parameter_bytes"] >= 4 * model["parameters"]
        assert model["inputs"][0]["name"] == "input" and model["inputs"][0]["datatype"] == "FP32"
        assert "loaded" in s.log()


def test_a_model_that_cannot_load_fails_its_deployment_with_the_reason():
    cfg = config(model_app("gone", "/gone", {"uri": "/nonexistent/model.onnx"}))
    try:
        with Server(cfg, start_timeout=10):
            raise AssertionError("server started with a missing model")
    except RuntimeError as e:
        assert "/nonexistent/model.onnx" in str(e), str(e)


GENERIC_BLAS_CORES = {"prescott", "core2", "penryn", "dunnington", "nehalem", "atom",
                      "sandybridge"}


def test_openblas_runs_kernels_this_cpu_supports():
    # Debian's OpenBLAS 0.3.21 falls back to its generic kernels on CPUs newer than itself
    # (4-7x slower GEMMs); `actorserve run` then starts again with OPENBLAS_CORETYPE set.
    with open("/proc/cpuinfo") as f:
        flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    cfg = config(model_app("mlp", "/mlp", {"uri": os.path.join(FIXTURES, "torch_mlp")}))
    with Server(cfg) as s:
        assert wait_until(lambda: "OpenBLAS kernels:" in s.log(), timeout=5), s.log()
        core = re.search(r"OpenBLAS kernels: (\w+)", s.log()).group(1)
        if "avx2" in flags and "fma" in flags and "OPENBLAS_CORETYPE" not in os.environ:
            assert core not in GENERIC_BLAS_CORES, s.log()
        # Started again or not, the process keeps its name (ps, top, pgrep).
        with open(f"/proc/{s.proc.pid}/comm") as f:
            assert f.read().strip() == os.path.basename(BIN)[:15]
        reply = s.post("/mlp", {"inputs": [[0.5, -1.0, 2.0, 0.25]]})
        assert reply.status == 200, reply


if __name__ == "__main__":
    main(globals())
