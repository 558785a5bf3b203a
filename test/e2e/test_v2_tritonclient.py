"""The Open Inference Protocol v2 through Triton's own Python client, tritonclient[http].

Serves test/e2e/v2_models.json: the guide's iris model as BoostingModel (batching: up to 8
requests, 50 ms wait) and two onnx.helper fixtures with INT64 and BYTES tensors (Int64Scale,
StringEcho; made by scripts/make-models). Every call goes through the client as a Triton user
makes it; raw HTTP is used only for the plain JSON route and /metrics.

Needs tritonclient[http] and numpy: scripts/test makes the test venv from
scripts/test-requirements.txt and ctest runs this file with its python (ACTORSERVE_TEST_PYTHON).
Run it directly:
    ACTORSERVE_BIN=build/apps/actorserve ~/.cache/actorserve/venv-test/bin/python \\
        test/e2e/test_v2_tritonclient.py
"""
import json
import os
import re
import threading

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from harness import ROOT, Server, main

IRIS = os.path.join(ROOT, "apps", "examples", "models", "iris")
with open(os.path.join(IRIS, "samples.json")) as f:
    SAMPLES = json.load(f)
with open(os.path.join(IRIS, "labels.json")) as f:
    LABELS = json.load(f)
with open(os.path.join(IRIS, "features.json")) as f:
    FEATURES = json.load(f)
# The guide's three requests as rows: virginica, setosa, versicolor.
ROWS = np.array([[s["request"][k] for k in FEATURES] for s in SAMPLES], dtype=np.float32)
SCALE = np.array([0.5, 2.0, -1.0], dtype=np.float32)  # Int64Scale: scaled = counts * SCALE
TEXTS = [b"hello", b"", "gr\u00fc\u00dfe, \u4e16\u754c".encode(), b"nul\x00inside"]


def v2_config(**http_options):
    """test/e2e/v2_models.json with its model paths made absolute (it names them from ROOT)."""
    with open(os.path.join(ROOT, "test", "e2e", "v2_models.json")) as f:
        cfg = json.load(f)
    cfg["http_options"].update(http_options)
    for application in cfg["applications"]:
        for dep in application["deployments"]:
            model = dep["model"]
            for key in ("uri", "labels"):
                if key in model:
                    model[key] = os.path.join(ROOT, model[key])
    return cfg


def client(server, concurrency=1):
    return httpclient.InferenceServerClient(f"127.0.0.1:{server.port}", concurrency=concurrency,
                                            network_timeout=30.0)


def tensor(name, array, datatype, binary=True):
    t = httpclient.InferInput(name, list(array.shape), datatype)
    t.set_data_from_numpy(array, binary_data=binary)
    return t


def wanted(*names, binary=True):
    return [httpclient.InferRequestedOutput(n, binary_data=binary) for n in names]


def iris_input(rows, binary=True):
    return tensor("float_input", np.asarray(rows, dtype=np.float32), "FP32", binary)


def json_route_probabilities(server, rows):
    """The same rows through the plain JSON route, /regressor {"inputs": ...}."""
    r = server.post("/regressor", {"inputs": {"float_input": np.asarray(rows).tolist()}})
    assert r.status == 200, r
    return np.array(r.json()["outputs"]["probabilities"], dtype=np.float32)


def raises(call):
    """The InferenceServerException `call` raises for the server's error reply."""
    try:
        call()
    except InferenceServerException as e:
        assert e.status() is not None, f"the client refused the call itself: {e}"
        return e
    raise AssertionError("expected an InferenceServerException")


def metric(text, name, **labels):
    """The value of the Prometheus series `name` whose labels include `labels`, or None."""
    for line in text.splitlines():
        m = re.match(r"(\w+)(?:\{(.*)\})? (\S+)$", line)
        if m and m.group(1) == name:
            found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(m.group(3))
    return None


def model_stats(c, model):
    stats = c.get_inference_statistics(model)["model_stats"]
    assert len(stats) == 1 and stats[0]["name"] == model and stats[0]["version"] == "1", stats
    return stats[0]


def test_the_server_is_live_ready_and_advertises_binary_tensor_data():
    with Server(v2_config()) as s, client(s) as c:
        assert c.is_server_live() and c.is_server_ready()
        meta = c.get_server_metadata()
        assert meta["name"] == "actorserve" and meta["version"], meta
        assert {"binary_tensor_data", "model_repository", "statistics"} <= set(meta["extensions"])


def test_iris_metadata_and_config_describe_its_tensors():
    with Server(v2_config()) as s, client(s) as c:
        assert c.is_model_ready("BoostingModel") and c.is_model_ready("BoostingModel", "1")
        for version in ("", "1"):
            meta = c.get_model_metadata("BoostingModel", version)
            assert meta["name"] == "BoostingModel" and meta["versions"] == ["1"], meta
            assert meta["inputs"] == [
                {"name": "float_input", "datatype": "FP32", "shape": [-1, 4]}], meta
            assert meta["outputs"] == [
                {"name": "label", "datatype": "INT64", "shape": [-1]},
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]}], meta
        config = c.get_model_config("BoostingModel")
        assert config["name"] == "BoostingModel" and config["max_batch_size"] == 8, config
        # Triton's dims leave out the batch dimension when max_batch_size > 0.
        assert [(t["name"], t["data_type"], t["dims"]) for t in config["input"]] == [
            ("float_input", "TYPE_FP32", [4])], config
        assert [(t["name"], t["data_type"]) for t in config["output"]] == [
            ("label", "TYPE_INT64"), ("probabilities", "TYPE_FP32")], config
        assert config["dynamic_batching"]["max_queue_delay_microseconds"] == 50000, config
        echo = c.get_model_metadata("StringEcho")
        assert echo["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1, 1]}], echo


def test_binary_and_json_tensors_give_the_json_routes_answers():
    with Server(v2_config()) as s, client(s) as c:
        expected = json_route_probabilities(s, ROWS)
        for binary_in in (True, False):
            for binary_out in (True, False):
                case = f"binary inputs {binary_in}, binary outputs {binary_out}"
                result = c.infer("BoostingModel", [iris_input(ROWS, binary_in)],
                                 outputs=wanted("label", "probabilities", binary=binary_out),
                                 request_id=f"iris-{binary_in}-{binary_out}")
                reply = result.get_response()
                assert reply["id"] == f"iris-{binary_in}-{binary_out}", (case, reply)
                assert reply["model_name"] == "BoostingModel", (case, reply)
                assert reply["model_version"] == "1", (case, reply)
                for out in reply["outputs"]:  # the reply is in the form each output asked for
                    assert ("binary_data_size" in out.get("parameters", {})) == binary_out, out
                    assert ("data" in out) == (not binary_out), out
                labels = result.as_numpy("label")
                assert labels.dtype == np.int64 and labels.tolist() == [2, 0, 1], (case, labels)
                assert [LABELS[i] for i in labels] == [x["expected"] for x in SAMPLES], case
                probabilities = result.as_numpy("probabilities")
                assert probabilities.dtype == np.float32 and probabilities.shape == (3, 3), case
                assert np.allclose(probabilities, expected, rtol=0, atol=1e-6), (
                    case, probabilities, expected)


def test_asking_for_one_output_returns_only_that_one():
    with Server(v2_config()) as s, client(s) as c:
        for binary in (True, False):
            result = c.infer("BoostingModel", [iris_input(ROWS)],
                             outputs=wanted("label", binary=binary))
            assert [o["name"] for o in result.get_response()["outputs"]] == ["label"], binary
            assert result.as_numpy("label").tolist() == [2, 0, 1]
            assert result.as_numpy("probabilities") is None
        # No outputs named: all of them, and no id in the reply when the request had none.
        result = c.infer("BoostingModel", [iris_input(ROWS[:1])])
        reply = result.get_response()
        assert [o["name"] for o in reply["outputs"]] == ["label", "probabilities"], reply
        assert "id" not in reply, reply


def test_int64_and_bytes_tensors_round_trip():
    counts = np.array([[1, 2, 3], [-4, 5, 60], [0, 2**40, -(2**33)]], dtype=np.int64)
    texts = np.array(TEXTS, dtype=np.object_).reshape(-1, 1)
    with Server(v2_config()) as s, client(s) as c:
        for binary in (True, False):
            result = c.infer("Int64Scale", [tensor("counts", counts, "INT64", binary)],
                             outputs=wanted("scaled", "counts_out", binary=binary))
            scaled, echoed = result.as_numpy("scaled"), result.as_numpy("counts_out")
            assert scaled.dtype == np.float32 and np.array_equal(scaled, counts * SCALE), scaled
            assert echoed.dtype == np.int64 and np.array_equal(echoed, counts), echoed

            result = c.infer("StringEcho", [tensor("text", texts, "BYTES", binary)],
                             outputs=wanted("text_out", binary=binary))
            out = result.as_numpy("text_out")
            assert out.shape == (len(TEXTS), 1), out
            # Binary BYTES come back as bytes; JSON ones as str (the client decodes them).
            got = [v if isinstance(v, bytes) else v.encode() for v in out.ravel()]
            assert got == TEXTS, (binary, out)


def test_64_requests_in_flight_to_three_models_each_get_their_own_answer():
    with Server(v2_config()) as s, client(s, concurrency=16) as c:
        expected_iris = json_route_probabilities(s, ROWS)
        pending = []
        for i in range(64):
            kind = i % 3
            if kind == 0:
                row = ROWS[i % len(ROWS)][np.newaxis]
                req = c.async_infer("BoostingModel", [iris_input(row)], request_id=f"r{i}")
            elif kind == 1:
                counts = np.array([[i, -i, 1000 * i]], dtype=np.int64)
                req = c.async_infer("Int64Scale", [tensor("counts", counts, "INT64")],
                                    request_id=f"r{i}")
            else:
                text = np.array([[f"request {i}".encode()]], dtype=np.object_)
                req = c.async_infer("StringEcho", [tensor("text", text, "BYTES")],
                                    request_id=f"r{i}")
            pending.append(req)
        for i, req in enumerate(pending):
            result = req.get_result(timeout=30)
            assert result.get_response()["id"] == f"r{i}", result.get_response()
            if i % 3 == 0:
                k = i % len(ROWS)
                assert result.as_numpy("label").tolist() == [[2, 0, 1][k]], (i, result)
                assert np.allclose(result.as_numpy("probabilities")[0], expected_iris[k],
                                   rtol=0, atol=1e-6), i
            elif i % 3 == 1:
                assert result.as_numpy("counts_out").tolist() == [[i, -i, 1000 * i]], i
                assert result.as_numpy("scaled").tolist() == [[0.5 * i, -2.0 * i, -1000.0 * i]]
            else:
                assert result.as_numpy("text_out").tolist() == [[f"request {i}".encode()]], i


def test_errors_say_what_is_wrong_with_triton_statuses():
    with Server(v2_config()) as s, client(s) as c:
        e = raises(lambda: c.infer("NoSuchModel", [iris_input(ROWS)]))
        assert e.status() == "404" and "unknown model" in e.message() and "NoSuchModel" in (
            e.message()), e
        e = raises(lambda: c.get_model_metadata("NoSuchModel"))
        assert e.status() == "404" and "NoSuchModel" in e.message(), e
        assert not c.is_model_ready("NoSuchModel")
        e = raises(lambda: c.infer("BoostingModel", [iris_input(ROWS)], model_version="2"))
        assert e.status() == "404" and "version 2" in e.message(), e

        # The wrong datatype, in binary and in JSON: 400 naming the input and both datatypes.
        for binary in (True, False):
            wrong = tensor("float_input", ROWS.astype(np.float64), "FP64", binary)
            e = raises(lambda: c.infer("BoostingModel", [wrong]))
            assert e.status() == "400", e
            assert "'float_input'" in e.message() and "FP64" in e.message(), e
            assert "expects 'FP32'" in e.message(), e
        e = raises(lambda: c.infer("BoostingModel", [iris_input(ROWS)], outputs=wanted("nope")))
        assert e.status() == "400" and "unknown output 'nope'" in e.message(), e
        stray = tensor("float_inptu", ROWS, "FP32")
        e = raises(lambda: c.infer("BoostingModel", [stray]))
        assert e.status() == "400" and "'float_inptu'" in e.message(), e
        narrow = tensor("float_input", ROWS[:, :3].copy(), "FP32")
        e = raises(lambda: c.infer("BoostingModel", [narrow]))
        assert e.status() == "400" and "float_input" in e.message(), e
        # ...and the model still answers.
        assert c.infer("BoostingModel", [iris_input(ROWS)]).as_numpy("label").tolist() == [2, 0, 1]


def test_an_oversized_body_is_refused_with_an_error_the_client_reads():
    with Server(v2_config(max_body_bytes=4096)) as s, client(s) as c:
        rows = np.zeros((400, 4), dtype=np.float32)  # 6400 bytes of binary tensor data
        e = raises(lambda: c.infer("BoostingModel", [iris_input(rows)]))
        assert e.status() == "413", e
        assert e.message().startswith("request body of") and "max_body_bytes=4096" in (
            e.message()), e
        assert c.infer("BoostingModel", [iris_input(ROWS)]).as_numpy("label").tolist() == [2, 0, 1]


def test_unloading_one_model_leaves_the_others_serving_and_load_brings_it_back():
    texts = np.array([[b"still here?"]], dtype=np.object_)
    counts = np.array([[1, 2, 3]], dtype=np.int64)
    with Server(v2_config()) as s, client(s) as c:
        index = {m["name"]: m for m in c.get_model_repository_index()}
        assert set(index) == {"BoostingModel", "Int64Scale", "StringEcho"}, index
        assert all(m["state"] == "READY" and m["version"] == "1" for m in index.values()), index

        c.unload_model("StringEcho")
        assert not c.is_model_ready("StringEcho")
        index = {m["name"]: m for m in c.get_model_repository_index()}
        assert index["StringEcho"]["state"] == "UNAVAILABLE", index
        assert index["Int64Scale"]["state"] == "READY", index
        e = raises(lambda: c.infer("StringEcho", [tensor("text", texts, "BYTES")]))
        assert e.status() == "503" and "unloaded" in e.message(), e
        # The other models keep serving, and the server stays ready (Triton: an unloaded model
        # does not make the server unready).
        assert c.is_model_ready("Int64Scale") and c.is_model_ready("BoostingModel")
        assert c.is_server_ready()
        out = c.infer("Int64Scale", [tensor("counts", counts, "INT64")]).as_numpy("counts_out")
        assert out.tolist() == [[1, 2, 3]], out
        labels = c.infer("BoostingModel", [iris_input(ROWS)]).as_numpy("label")
        assert labels.tolist() == [2, 0, 1], labels

        c.load_model("StringEcho")
        assert c.is_model_ready("StringEcho")
        out = c.infer("StringEcho", [tensor("text", texts, "BYTES")]).as_numpy("text_out")
        assert out.tolist() == [[b"still here?"]], out

        e = raises(lambda: c.unload_model("NoSuchModel"))
        assert e.status() == "404" and "NoSuchModel" in e.message(), e
        e = raises(lambda: c.load_model("NoSuchModel"))
        assert e.status() == "404" and "NoSuchModel" in e.message(), e


def test_statistics_and_metrics_count_the_requests_sent():
    with Server(v2_config()) as s, client(s) as c:
        for i in range(5):
            c.infer("BoostingModel", [iris_input(ROWS[: 1 + i % 3])])  # 1, 2, 3, 1, 2 rows
        wrong = tensor("float_input", ROWS.astype(np.float64), "FP64")
        assert raises(lambda: c.infer("BoostingModel", [wrong])).status() == "400"
        c.infer("Int64Scale", [tensor("counts", np.ones((2, 3), dtype=np.int64), "INT64")])

        iris = model_stats(c, "BoostingModel")
        assert iris["inference_stats"]["success"]["count"] == 5, iris
        assert iris["inference_stats"]["fail"]["count"] == 1, iris
        assert iris["inference_count"] == 9, iris  # rows, as Triton counts inferences
        assert iris["inference_count"] >= iris["execution_count"] >= 1, iris
        assert iris["last_inference"] > 0, iris
        assert model_stats(c, "Int64Scale")["inference_stats"]["success"]["count"] == 1
        everything = c.get_inference_statistics()["model_stats"]
        assert {m["name"] for m in everything} == {"BoostingModel", "Int64Scale", "StringEcho"}

        text = s.get("/metrics").body
        assert metric(text, "nv_inference_request_success",
                      model="BoostingModel", version="1") == 5, text
        assert metric(text, "nv_inference_request_failure",
                      model="BoostingModel", version="1") == 1, text
        assert metric(text, "nv_inference_count", model="BoostingModel", version="1") == 9
        assert metric(text, "nv_inference_request_success",
                      model="StringEcho", version="1") == 0, text
        infers = metric(text, "ray_serve_num_http_requests_total",
                        route="/v2/models/{model}/infer", method="POST", application="iris",
                        status_code="200")
        assert infers == 5, text


def test_json_route_and_v2_requests_share_batches():
    """Pairs of one JSON-route request and one v2 request sent together: with a 50 ms batch
    wait a pair runs as one execution of two requests, so both kinds meet in one batch queue.
    Then 12 of each kind at once: fewer executions than requests."""
    with Server(v2_config()) as s, client(s, concurrency=12) as c:
        expected = json_route_probabilities(s, ROWS)  # one execution of one request
        for k in range(4):
            sample = SAMPLES[k % len(ROWS)]
            replies = []
            json_call = threading.Thread(
                target=lambda: replies.append(s.post("/regressor", sample["request"])))
            json_call.start()
            result = c.infer("BoostingModel", [iris_input(ROWS[k % len(ROWS)][np.newaxis])])
            json_call.join()
            assert replies[0].status == 200, replies
            assert replies[0].json() == {"result": sample["expected"]}, replies
            assert [LABELS[i] for i in result.as_numpy("label")] == [sample["expected"]]
        batches = {b["batch_size"]: b["compute_infer"]["count"]
                   for b in model_stats(c, "BoostingModel")["batch_stats"]}
        assert batches.get(2, 0) >= 1, batches  # a JSON and a v2 request shared an execution

        before = model_stats(c, "BoostingModel")
        rows = [ROWS[k % len(ROWS)][np.newaxis] for k in range(12)]
        json_replies = [None] * len(rows)

        def json_request(k):
            json_replies[k] = s.post("/regressor", {"inputs": {"float_input": rows[k].tolist()}})

        threads = [threading.Thread(target=json_request, args=(k,)) for k in range(len(rows))]
        for t in threads:
            t.start()
        pending = [c.async_infer("BoostingModel", [iris_input(row)]) for row in rows]
        for k, req in enumerate(pending):
            probabilities = req.get_result(timeout=30).as_numpy("probabilities")
            assert np.allclose(probabilities, expected[k % len(ROWS)], rtol=0, atol=1e-6), k
        for k, t in enumerate(threads):
            t.join()
            assert json_replies[k].status == 200, json_replies[k]
            probabilities = json_replies[k].json()["outputs"]["probabilities"]
            assert np.allclose(probabilities, expected[k % len(ROWS)], rtol=0, atol=1e-6), k
        after = model_stats(c, "BoostingModel")
        requests = (after["inference_stats"]["success"]["count"]
                    - before["inference_stats"]["success"]["count"])
        executions = after["execution_count"] - before["execution_count"]
        assert requests == 2 * len(rows), (before, after)
        assert executions < requests, (executions, after["batch_stats"])
        assert any(b["batch_size"] > 1 for b in after["batch_stats"]), after["batch_stats"]


if __name__ == "__main__":
    main(globals())
