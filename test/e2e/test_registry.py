"""Models from MLflow registries: models:/ URIs resolved natively against the file store and the
SQLite store that real MLflow wrote (test/fixtures/mlflow, scripts/make_mlflow_fixtures.py)."""
import glob
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

from harness import ROOT, Server, app, config, main
from test_lifecycle import run_with_config

STORES = os.path.join(ROOT, "test", "fixtures", "mlflow")
IRIS = os.path.join(ROOT, "apps", "examples", "models", "iris")
FEATURES = ["sepal length", "sepal width", "petal length", "petal width"]


_fresh_stores = []


def fresh_stores():
    """With MLflow installed (ACTORSERVE_MLFLOW_PYTHON, set by scripts/test), a file store and a
    SQLite store written by MLflow right now, in this test's setup (scripts/make_mlflow_fixtures.py
    --store, the same content as the committed fixtures); else the committed fixtures, which the
    same MLflow wrote. Made once per run."""
    python = os.environ.get("ACTORSERVE_MLFLOW_PYTHON")
    if not python:
        return STORES
    if not _fresh_stores:
        work = tempfile.mkdtemp(prefix="actorserve-registry-mlflow-")
        for store in ("file", "sqlite"):
            subprocess.run([python, os.path.join(ROOT, "scripts", "make_mlflow_fixtures.py"),
                            "--store", store, work], check=True, stdout=subprocess.DEVNULL,
                           timeout=300)
        # Move them: the absolute paths MLflow recorded no longer exist, as on a fresh clone of
        # the committed fixtures, so the tests also cover relocated stores.
        moved = work + "-moved"
        os.rename(work, moved)
        _fresh_stores.append(moved)
        work = moved
        print("stores written by MLflow for this run in " + work, flush=True)
    return _fresh_stores[0]


def copied_stores():
    """A private copy of the stores (the readers never write, but tests stay apart)."""
    tmp = tempfile.mkdtemp(prefix="actorserve-registry-")
    shutil.copytree(fresh_stores(), os.path.join(tmp, "mlflow"))
    return tmp, os.path.join(tmp, "mlflow")


def iris_app(uri, registry_uri, **model):
    return config(app("iris", "/regressor", [{
        "name": "BoostingModel", "num_replicas": 2,
        "model": dict({"uri": uri, "registry_uri": registry_uri,
                       "labels": os.path.join(IRIS, "labels.json"), "features": FEATURES},
                      **model)}]))


def move_alias(mlruns, alias, version):
    """What MLflow's file store does for set_registered_model_alias: the alias file holds the
    version. Written atomically (temp + rename), as a writer should."""
    path = os.path.join(mlruns, "models", "iris", "aliases", alias)
    with open(path + ".tmp", "w") as f:
        f.write(str(version))
    os.replace(path + ".tmp", path)


def version_2_model_file(mlruns):
    """The model.onnx of registered version 2 (its source is models:/m-<id>, a logged model)."""
    with open(os.path.join(mlruns, "models", "iris", "version-2", "meta.yaml")) as f:
        source = [l.split("models:/", 1)[1].strip() for l in f if l.startswith("source:")][0]
    found = glob.glob(os.path.join(mlruns, "*", "models", source, "artifacts", "model.onnx"))
    assert len(found) == 1, (source, found)
    return found[0]


class steady_client:
    """Sends the guide's setosa request in a loop from a thread; counts replies by status."""

    def __init__(self, server):
        self.server, self.stop, self.statuses = server, threading.Event(), {}
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        body = {"sepal length": 5.1, "sepal width": 3.5, "petal length": 1.4, "petal width": 0.2}
        while not self.stop.is_set():
            r = self.server.post("/regressor", body)
            key = r.status if r.status != 200 or r.json() == {"result": "setosa"} else "wrong"
            self.statuses[key] = self.statuses.get(key, 0) + 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return predicate()


def served_model(server):
    status = server.status()
    dep = status["applications"]["iris"]["deployments"]["BoostingModel"]
    return dep["model"]


def test_the_guides_requests_through_models_iris_at_production_in_a_file_store():
    tmp, stores = copied_stores()
    try:
        cfg = iris_app("models:/iris@production", os.path.join(stores, "file", "mlruns"))
        with open(os.path.join(IRIS, "samples.json")) as f:
            samples = json.load(f)
        with Server(cfg) as s:
            for sample in samples:
                r = s.post("/regressor", sample["request"])
                assert r.status == 200 and r.json() == {"result": sample["expected"]}, (sample, r)
            model = served_model(s)
            assert model["version"] == "1", model
            assert "models:/iris@production -> version 1" in model["resolved"], model
            meta = s.get("/v2/models/BoostingModel").json()
            assert meta["inputs"][0]["name"] == "float_input", meta
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_stage_in_the_sqlite_store_serves_that_version():
    tmp, stores = copied_stores()
    try:
        db = "sqlite:///" + os.path.join(stores, "sqlite", "mlflow.db")
        with Server(iris_app("models:/iris/Staging", db)) as s:
            model = served_model(s)
            assert model["version"] == "2", model
            r = s.post("/regressor", {"sepal length": 5.1, "sepal width": 3.5,
                                      "petal length": 1.4, "petal width": 0.2})
            assert r.status == 200 and r.json() == {"result": "setosa"}, r
        with Server(iris_app("models:/iris/latest", db)) as s:
            assert served_model(s)["version"] == "2"  # version 3 was deleted
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_unknown_aliases_versions_and_escaping_names_fail_the_deploy_naming_the_uri():
    tmp, stores = copied_stores()
    try:
        mlruns = os.path.join(stores, "file", "mlruns")
        cases = [("models:/iris@prod", "has no alias 'prod'"),
                 ("models:/iris/7", "models:/iris/7"),
                 ("models:/iris/3", "models:/iris/3"),  # deleted
                 ("models:/nope/1", "no registered model 'nope'"),
                 ("models:/../models/iris/1", "models:/../models/iris/1")]
        for uri, expected in cases:
            out = run_with_config(iris_app(uri, mlruns), "run", "--port", "0")
            assert out.returncode == 1, (uri, out.returncode, out.stderr)
            assert expected in out.stderr, (uri, out.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_moving_the_alias_rolls_to_the_new_version_without_a_failed_request():
    tmp, stores = copied_stores()
    try:
        mlruns = os.path.join(stores, "file", "mlruns")
        cfg = iris_app("models:/iris@production", mlruns, poll_interval_s=0.2)
        with Server(cfg) as s:
            assert served_model(s)["version"] == "1"
            with steady_client(s) as client:
                time.sleep(0.5)
                move_alias(mlruns, "production", 2)
                assert wait_for(lambda: served_model(s)["version"] == "2"), s.status()
                time.sleep(0.5)
            assert set(client.statuses) == {200}, client.statuses
            assert client.statuses[200] > 20, client.statuses
            # and back: rolls again
            move_alias(mlruns, "production", 1)
            assert wait_for(lambda: served_model(s)["version"] == "1"), s.status()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_version_that_fails_to_load_leaves_the_serving_one_and_says_why():
    tmp, stores = copied_stores()
    try:
        mlruns = os.path.join(stores, "file", "mlruns")
        with open(version_2_model_file(mlruns), "r+b") as f:
            f.truncate(100)  # a partial model file
        cfg = iris_app("models:/iris@production", mlruns, poll_interval_s=0.2)
        with Server(cfg) as s:
            with steady_client(s) as client:
                move_alias(mlruns, "production", 2)

                def message():
                    dep = s.status()["applications"]["iris"]["deployments"]["BoostingModel"]
                    return dep["message"] if "failed to load" in dep["message"] else None
                text = wait_for(message)
                assert text and "version 2" in text and "still serving version 1" in text, text
            assert set(client.statuses) == {200}, client.statuses
            assert served_model(s)["version"] == "1"
            dep = s.status()["applications"]["iris"]["deployments"]["BoostingModel"]
            assert dep["status"] == "HEALTHY", dep
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_one_definition_served_under_several_names_and_uris():
    """Ray Serve's .options(name=...): the same model definition, instantiated per version, each
    with its own route and v2 model name."""
    tmp, stores = copied_stores()
    try:
        mlruns = os.path.join(stores, "file", "mlruns")

        def instance(name, prefix, uri):
            return app(name, prefix, [{"name": name, "model": {
                "uri": uri, "labels": os.path.join(IRIS, "labels.json"), "features": FEATURES}}])
        cfg = config(instance("iris_v1", "/iris/v1", "models:/iris/1"),
                     instance("iris_v2", "/iris/v2", "models:/iris/2"))
        cfg["registry_uri"] = mlruns
        with Server(cfg) as s:
            index = s.post("/v2/repository/index", {}).json()
            assert sorted(m["name"] for m in index) == ["iris_v1", "iris_v2"], index
            status = s.status()["applications"]
            for name, version in (("iris_v1", "1"), ("iris_v2", "2")):
                assert status[name]["deployments"][name]["model"]["version"] == version
                r = s.post("/iris/v%s" % version, {"sepal length": 5.1, "sepal width": 3.5,
                                                   "petal length": 1.4, "petal width": 0.2})
                assert r.json() == {"result": "setosa"}, r
                v2 = s.post("/v2/models/%s/infer" % name, {"inputs": [
                    {"name": "float_input", "datatype": "FP32", "shape": [1, 4],
                     "data": [6.3, 3.3, 6.0, 2.5]}]})
                assert v2.status == 200 and v2.json()["model_name"] == name, v2
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        main(globals())
    finally:
        for work in _fresh_stores:
            shutil.rmtree(work, ignore_errors=True)
