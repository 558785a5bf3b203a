"""Models from a real MLflow tracking server: `mlflow server` (SQLite store, artifact proxy) on a
free 127.0.0.1 port, in its own process group, started and stopped by this test
(scripts/mlflow_server.py). It holds iris version 1 (the guide's model,
apps/examples/models/iris/model.onnx) and version 2 (a 20-tree GradientBoostingClassifier), both
logged with mlflow.onnx and labels.json in the model folder; alias production -> 1. ActorServe
resolves models:/ URIs through the REST API and downloads into a temp cache (XDG_CACHE_HOME).

The tests share the server and run in order; the last one stops it.

Needs MLflow: scripts/test makes the MLflow venv (scripts/venv.sh with
scripts/mlflow-requirements.txt) and ctest runs this file with its python, exported as
ACTORSERVE_MLFLOW_PYTHON. Run it directly:
    ACTORSERVE_BIN=build/apps/actorserve ~/.cache/actorserve/venv-mlflow/bin/python \\
        test/e2e/test_mlflow_server.py
"""
import json
import os
import signal
import sys
import tempfile
import time

from harness import ROOT, Server, app, config, main
from test_lifecycle import run_with_config
from test_registry import served_model, steady_client, wait_for

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import mlflow_server  # noqa: E402

IRIS = os.path.join(ROOT, "apps", "examples", "models", "iris")
with open(os.path.join(IRIS, "samples.json")) as f:
    SAMPLES = json.load(f)

# Filled in by the __main__ block below: the running server.
REGISTRY = {}


def iris_app(uri, **model):
    """models:/... from the test's server at /regressor; labels.json from the model folder."""
    return config(app("iris", "/regressor", [{
        "name": "BoostingModel", "num_replicas": 2,
        "model": dict({"uri": uri, "registry_uri": REGISTRY["server"].uri,
                       "labels": "labels.json", "features": mlflow_server.IRIS_FEATURES},
                      **model)}]))


def deployment(server):
    return server.status()["applications"]["iris"]["deployments"]["BoostingModel"]


def test_the_guides_requests_through_models_iris_at_production_on_a_tracking_server():
    with Server(iris_app("models:/iris@production")) as s:
        for sample in SAMPLES:
            r = s.post("/regressor", sample["request"])
            assert r.status == 200 and r.json() == {"result": sample["expected"]}, (sample, r)
        model = served_model(s)
        assert model["version"] == "1", model
        assert "models:/iris@production -> version 1" in model["resolved"], model
    port = REGISTRY["server"].port
    cached = os.path.join(REGISTRY["cache"], "actorserve", "registry", f"127.0.0.1_{port}",
                          "iris", "1")
    files = sorted(os.listdir(cached))
    assert {"MLmodel", "model.onnx", "labels.json"} <= set(files), files


def test_moving_the_alias_rolls_to_the_new_version_without_a_failed_request():
    server = REGISTRY["server"]
    with Server(iris_app("models:/iris@production", poll_interval_s=0.2)) as s:
        assert served_model(s)["version"] == "1"
        try:
            with steady_client(s) as client:
                time.sleep(0.3)
                mlflow_server.set_alias(server.uri, "iris", "production", 2)
                assert wait_for(lambda: served_model(s)["version"] == "2"), s.status()
                time.sleep(0.3)
        finally:
            mlflow_server.set_alias(server.uri, "iris", "production", 1)
        assert set(client.statuses) == {200}, client.statuses
        assert client.statuses[200] > 20, client.statuses
        assert "models:/iris@production -> version 2" in served_model(s)["resolved"]
        assert wait_for(lambda: served_model(s)["version"] == "1"), s.status()  # and back


def test_an_unknown_alias_or_version_fails_the_deploy_naming_the_uri():
    for uri, missing in [("models:/iris@staging", "has no alias 'staging'"),
                         ("models:/iris/9", "models:/iris/9"),
                         ("models:/nope@production", "no registered model 'nope'")]:
        out = run_with_config(iris_app(uri), "run", "--port", "0")
        assert out.returncode == 1, (uri, out.returncode, out.stderr)
        assert uri in out.stderr and missing in out.stderr, (uri, out.stderr)


def test_a_stopped_registry_leaves_the_running_deployment_serving():
    # Runs last: it stops the shared server.
    server = REGISTRY["server"]
    with Server(iris_app("models:/iris@production", poll_interval_s=0.2)) as s:
        assert served_model(s)["version"] == "1"
        with steady_client(s) as client:
            server.stop()

            def unreachable():
                message = deployment(s)["message"]
                return message if "unreachable" in message else None
            message = wait_for(unreachable)
            assert message and server.uri in message, deployment(s)
            assert "still serving version 1" in message, message
            time.sleep(0.5)
        assert set(client.statuses) == {200}, client.statuses
        assert deployment(s)["status"] == "HEALTHY", deployment(s)
        for sample in SAMPLES:
            r = s.post("/regressor", sample["request"])
            assert r.status == 200 and r.json() == {"result": sample["expected"]}, (sample, r)


def on_sigterm(signum, frame):
    raise SystemExit(f"stopped by signal {signum}")  # the with blocks stop the server


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, on_sigterm)
    with tempfile.TemporaryDirectory(prefix="actorserve-mlflow-e2e-") as tmp:
        REGISTRY["cache"] = os.environ["XDG_CACHE_HOME"] = os.path.join(tmp, "cache")
        with mlflow_server.tracking_server(os.path.join(tmp, "mlflow")) as server:
            REGISTRY["server"] = server
            import onnx

            labels = os.path.join(IRIS, "labels.json")
            try:
                v1 = mlflow_server.log_and_register(
                    server.uri, onnx.load(os.path.join(IRIS, "model.onnx")), labels, "iris",
                    alias="production")
                v2 = mlflow_server.log_and_register(
                    server.uri, mlflow_server.train_iris_onnx(n_estimators=20)[1], labels, "iris")
                assert (v1["version"], v2["version"]) == ("1", "2"), (v1, v2)
            except BaseException:
                print("--- mlflow server log\n" + server.log_tail(), file=sys.stderr)
                raise
            main(globals())
