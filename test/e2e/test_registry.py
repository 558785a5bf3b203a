"""Models from MLflow registries: models:/ URIs resolved natively against the file store and the
SQLite store that real MLflow wrote (test/fixtures/mlflow, scripts/make_mlflow_fixtures.py)."""
import json
import os
import shutil
import tempfile

from harness import ROOT, Server, app, config, main
from test_lifecycle import run_with_config

STORES = os.path.join(ROOT, "test", "fixtures", "mlflow")
IRIS = os.path.join(ROOT, "apps", "examples", "models", "iris")
FEATURES = ["sepal length", "sepal width", "petal length", "petal width"]


def copied_stores():
    """A private copy of the fixture stores (the readers never write, but tests stay apart)."""
    tmp = tempfile.mkdtemp(prefix="actorserve-registry-")
    shutil.copytree(STORES, os.path.join(tmp, "mlflow"))
    return tmp, os.path.join(tmp, "mlflow")


def iris_app(uri, registry_uri):
    return config(app("iris", "/regressor", [{
        "name": "BoostingModel",
        "model": {"uri": uri, "registry_uri": registry_uri,
                  "labels": os.path.join(IRIS, "labels.json"), "features": FEATURES}}]))


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


if __name__ == "__main__":
    main(globals())
