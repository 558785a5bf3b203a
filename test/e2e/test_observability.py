"""GET /metrics (Ray Serve's and Triton's vocabularies), the access log, and v2 details that
need no client library: binary tensors by hand, errors as {"error": ...}, versions, stats."""
import json
import os
import re
import struct

from harness import ROOT, Server, app, config, main

IRIS = os.path.join(ROOT, "apps", "examples", "models", "iris")
CONFIG = config(
    app("iris", "/regressor", [{
        "name": "BoostingModel",
        "model": {"uri": IRIS, "labels": os.path.join(IRIS, "labels.json"),
                  "features": ["sepal length", "sepal width", "petal length", "petal width"]},
        "max_ongoing_requests": 16,
        "batching": {"max_batch_size": 8, "batch_wait_timeout_s": 0.01}}]),
    app("noop", "/noop", [{"name": "Noop", "class": "Noop"}]))

ROWS = [[6.3, 3.3, 6.0, 2.5], [5.1, 3.5, 1.4, 0.2], [6.4, 3.2, 4.5, 1.5]]


def metric(text, name, **labels):
    """The value of the series `name` whose labels include `labels`, or None."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        series, value = line.rsplit(" ", 1)
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', series))
        if series.split("{")[0] == name and all(found.get(k) == v for k, v in labels.items()):
            return float(value)
    return None


def infer_binary(s, rows, outputs=None):
    header = {"inputs": [{"name": "float_input", "datatype": "FP32", "shape": [len(rows), 4],
                          "parameters": {"binary_data_size": 16 * len(rows)}}]}
    if outputs is not None:
        header["outputs"] = outputs
    else:
        header["parameters"] = {"binary_data_output": True}
    head = json.dumps(header).encode()
    body = head + struct.pack("<%df" % (4 * len(rows)), *[v for r in rows for v in r])
    return s.request("POST", "/v2/models/BoostingModel/infer", body,
                     headers={"Inference-Header-Content-Length": str(len(head)),
                              "Content-Type": "application/octet-stream"})


def test_metrics_count_http_requests_deployments_and_models():
    with Server(CONFIG) as s:
        for _ in range(3):
            assert s.post("/noop").status == 200
        assert s.get("/missing").status == 404
        v2 = s.post("/v2/models/BoostingModel/infer",
                    {"inputs": [{"name": "float_input", "datatype": "FP32", "shape": [3, 4],
                                 "data": ROWS}]})
        assert v2.status == 200, v2
        assert s.post("/regressor", {"sepal length": 6.3, "sepal width": 3.3,
                                     "petal length": 6.0, "petal width": 2.5}).status == 200
        r = s.get("/metrics")
        assert r.status == 200 and r.headers["content-type"].startswith("text/plain"), r
        text = r.body
        assert "# TYPE ray_serve_http_request_latency_ms histogram" in text
        assert metric(text, "ray_serve_num_http_requests_total", route="/noop", method="POST",
                      application="noop", status_code="200") == 3
        assert metric(text, "ray_serve_deployment_request_counter_total",
                      deployment="Noop", application="noop") == 3
        assert metric(text, "ray_serve_deployment_queued_queries", deployment="Noop") == 0
        assert metric(text, "ray_serve_replica_processing_queries", deployment="Noop") == 0
        # Triton's: the v2 request (3 rows) and the JSON route request (1 row) both count.
        assert metric(text, "nv_inference_request_success", model="BoostingModel") == 2
        assert metric(text, "nv_inference_count", model="BoostingModel") == 4
        execs = metric(text, "nv_inference_exec_count", model="BoostingModel")
        assert 1 <= execs <= 2, execs
        assert metric(text, "nv_inference_pending_request_count", model="BoostingModel") == 0
        assert metric(text, "ray_serve_batches_processed_total", deployment="BoostingModel") \
            == execs
        assert metric(text, "ray_serve_actual_batch_size_count", deployment="BoostingModel") \
            == execs
        stats = s.get("/v2/models/BoostingModel/stats").json()["model_stats"][0]
        assert stats["inference_stats"]["success"]["count"] == 2, stats
        assert stats["inference_count"] == 4 and stats["execution_count"] == execs, stats
        assert sum(b["compute_infer"]["count"] for b in stats["batch_stats"]) == execs, stats


def test_v2_binary_tensors_and_errors_by_hand():
    with Server(CONFIG) as s:
        meta = s.get("/v2").json()
        assert "binary_tensor_data" in meta["extensions"], meta
        r = infer_binary(s, ROWS)
        assert r.status == 200, r
        # The reply: JSON header of the announced length, then label INT64[3], then FP32[3, 3].
        raw = r.raw
        n = int(r.headers["inference-header-content-length"])
        head = json.loads(raw[:n])
        assert [o["name"] for o in head["outputs"]] == ["label", "probabilities"], head
        labels = struct.unpack("<3q", raw[n:n + 24])
        assert labels == (2, 0, 1), labels
        # Only the label, as JSON.
        only = infer_binary(s, ROWS[:1], outputs=[{"name": "label"}])
        assert only.status == 200, only
        assert only.json()["outputs"] == [
            {"name": "label", "datatype": "INT64", "shape": [1], "data": [2]}], only.body
        bad_type = s.post("/v2/models/BoostingModel/infer",
                          {"inputs": [{"name": "float_input", "datatype": "INT64",
                                       "shape": [1, 4], "data": [1, 2, 3, 4]}]})
        assert bad_type.status == 400, bad_type
        assert "float_input" in bad_type.json()["error"] and "FP32" in bad_type.json()["error"]
        short = s.post("/v2/models/BoostingModel/infer",
                       {"inputs": [{"name": "float_input", "datatype": "FP32",
                                    "shape": [2, 4], "data": [1, 2, 3]}]})
        assert short.status == 400 and "needs 8" in short.json()["error"], short
        assert s.get("/v2/models/Nope").status == 404
        assert s.get("/v2/models/BoostingModel/versions/x").status == 400
        assert s.get("/v2/models/BoostingModel/versions/2").status == 404
        assert s.get("/v2/models/BoostingModel/versions/1/ready").status == 200
        # Unloading one model leaves the others serving; loading brings it back.
        assert s.post("/v2/repository/models/BoostingModel/unload", {}).status == 200
        assert s.get("/v2/models/BoostingModel/ready").status == 400
        down = infer_binary(s, ROWS[:1])
        assert down.status == 503 and "unloaded" in down.json()["error"], down
        assert s.post("/noop").status == 200
        index = s.post("/v2/repository/index", {}).json()
        assert index == [{"name": "BoostingModel", "version": "1", "state": "UNAVAILABLE",
                          "reason": "unloaded"}], index
        assert s.post("/v2/repository/models/BoostingModel/load", {}).status == 200
        assert infer_binary(s, ROWS[:1]).status == 200
        assert s.post("/v2/repository/models/Nope/load", {}).status == 404


def test_access_log_writes_one_line_per_request_as_text_or_json():
    with Server(CONFIG, args=["--access-log", "json"]) as s:
        s.request("POST", "/noop", headers={"x-request-id": "req-42"})
        s.get("/v2/models/BoostingModel/ready")
        s.stop()
        lines = [json.loads(l) for l in s.log().splitlines() if l.startswith("{")]
    noop = [l for l in lines if l["request_id"] == "req-42"]
    assert len(noop) == 1 and noop[0]["status"] == 200 and noop[0]["route"] == "/noop", lines
    assert noop[0]["latency_ms"] >= 0 and noop[0]["time"].endswith("Z"), noop
    ready = [l for l in lines if l["path"] == "/v2/models/BoostingModel/ready"]
    assert len(ready) == 1 and ready[0]["model"] == "BoostingModel", lines
    with Server(CONFIG, args=["--access-log", "text"]) as s:
        s.request("POST", "/noop", headers={"x-request-id": "req-43"})
        s.stop()
        text = [l for l in s.log().splitlines() if "req-43" in l]
    assert len(text) == 1 and " POST /noop /noop 200 " in text[0], text


if __name__ == "__main__":
    main(globals())
