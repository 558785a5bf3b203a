#!/usr/bin/env python3
"""Writes test/fixtures/mlflow/ with real MLflow: one file store and one SQLite store.

Both stores hold the same registry, made through MLflow's own Python API:

  experiment "iris", run "iris-full":  the guide's iris GradientBoostingClassifier
      (apps/examples/models/iris/model.onnx) logged with mlflow.onnx.log_model as "model",
      labels.json logged as a plain run artifact
  experiment "iris", run "iris-small": a 10-tree iris GradientBoostingClassifier (skl2onnx),
      logged the same way, so that two versions resolve to different models
  registered model "iris":
      version 1  <- run iris-full's model, alias "production"
      version 2  <- run iris-small's model, stage "Staging"
      version 3  <- run iris-full's model again, then deleted (MLflow keeps it as
                    current_stage Deleted_Internal)

  test/fixtures/mlflow/file/mlruns/            MLFLOW_TRACKING_URI=file:... (MLflow's file store)
  test/fixtures/mlflow/sqlite/mlflow.db        MLFLOW_TRACKING_URI=sqlite:///.../mlflow.db
  test/fixtures/mlflow/sqlite/mlruns/          its artifacts (MLflow's default artifact root,
                                               ./mlruns beside the database)
  test/fixtures/mlflow/ids.json                the run and logged-model ids, for the tests

MLflow records absolute artifact locations. The stores are written under a fresh temporary
folder that is deleted afterwards, so every recorded location is a path that no longer exists;
the C++ readers find the artifacts where the store is now (libserve/registry/
artifact_locator.hpp), which the tests check on copies in their own temporary folders. Nothing
MLflow wrote is edited, except that the SQLite database is VACUUMed into 512-byte pages to keep
it small (MLflow reads it back afterwards) and empty folders are dropped (git keeps none).
MLflow 3.17 refuses to write a file store without MLFLOW_ALLOW_FILE_STORE=true; this sets it.

Run: python3 scripts/make_mlflow_fixtures.py
Without mlflow importable, it makes (or updates) its venv with scripts/venv.sh
(ACTORSERVE_VENV_REQUIREMENTS=scripts/mlflow-requirements.txt, ~/.cache/actorserve/venv-mlflow)
and runs itself again there. Run ids and timestamps differ on every run; the layout does not.
"""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "test", "fixtures", "mlflow")
IRIS_ONNX = os.path.join(ROOT, "apps", "examples", "models", "iris", "model.onnx")
IRIS_LABELS = os.path.join(ROOT, "apps", "examples", "models", "iris", "labels.json")
REQUIREMENTS = os.path.join(ROOT, "scripts", "mlflow-requirements.txt")


def reexec_in_venv():
    """Makes the mlflow venv with scripts/venv.sh and runs this script with its python."""
    env = dict(os.environ, ACTORSERVE_VENV_REQUIREMENTS=REQUIREMENTS)
    python = subprocess.run(
        ["bash", "-c", 'source scripts/venv.sh >&2 && printf %s "$ACTORSERVE_PYTHON"'],
        cwd=ROOT, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    os.execv(python, [python, os.path.abspath(__file__)] + sys.argv[1:])


try:
    import mlflow
except ImportError:
    reexec_in_venv()

import numpy as np
import onnx
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types.schema import Schema, TensorSpec
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_iris
from sklearn.ensemble import GradientBoostingClassifier

SIGNATURE = ModelSignature(
    inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 4), "float_input")]),
    outputs=Schema([TensorSpec(np.dtype(np.int64), (-1,), "label"),
                    TensorSpec(np.dtype(np.float32), (-1, 3), "probabilities")]))


def small_iris_model():
    data = load_iris()
    X, y = data.data.astype(np.float32), data.target.astype(np.int64)
    model = GradientBoostingClassifier(n_estimators=10, max_depth=2, random_state=0).fit(X, y)
    return to_onnx(model, initial_types=[("float_input", FloatTensorType([None, 4]))],
                   options={id(model): {"zipmap": False}})


def log_run(run_name, onnx_model, with_labels):
    """Logs one model in a run of the current experiment; returns (run id, logged model id)."""
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.log_param("model", run_name)
        info = mlflow.onnx.log_model(onnx_model, name="model", signature=SIGNATURE)
        if with_labels:
            mlflow.log_artifact(IRIS_LABELS)
    return run.info.run_id, info.model_id


def populate(tracking_uri):
    """Writes the experiment, runs and registry described above into the store at tracking_uri."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    mlflow.set_experiment("iris")
    full_run, full_model = log_run("iris-full", onnx.load(IRIS_ONNX), with_labels=True)
    small_run, small_model = log_run("iris-small", small_iris_model(), with_labels=False)

    client = MlflowClient(tracking_uri, tracking_uri)
    v1 = mlflow.register_model(f"models:/{full_model}", "iris")
    v2 = mlflow.register_model(f"models:/{small_model}", "iris")
    v3 = mlflow.register_model(f"models:/{full_model}", "iris")
    # The file store says 1, the SQL store "1".
    assert [str(v.version) for v in (v1, v2, v3)] == ["1", "2", "3"], (v1, v2, v3)
    client.set_registered_model_alias("iris", "production", "1")
    client.transition_model_version_stage("iris", "2", "Staging")
    client.delete_model_version("iris", "3")
    return {"full_run": full_run, "full_model": full_model,
            "small_run": small_run, "small_model": small_model}


def check(tracking_uri):
    """Reads the store back through MLflow: what the C++ tests expect must be what MLflow says."""
    client = MlflowClient(tracking_uri, tracking_uri)
    assert str(client.get_model_version_by_alias("iris", "production").version) == "1"
    staging = client.get_latest_versions("iris", ["Staging"])
    assert [str(v.version) for v in staging] == ["2"], staging
    live = sorted(int(v.version) for v in client.search_model_versions("name='iris'"))
    assert live == [1, 2], live
    path = mlflow.artifacts.download_artifacts("models:/iris@production", tracking_uri=tracking_uri)
    assert os.path.exists(os.path.join(path, "MLmodel")), os.listdir(path)


def in_subprocess(store, work):
    """Runs populate()+check() for one store in a child process: MLflow caches its stores per
    process, and the SQLite store must find ./mlruns (its default artifact root) in its cwd."""
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--store", store, work],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def child(store, work):
    """Child process: writes one store under work/<store> and prints its ids as JSON."""
    folder = os.path.join(work, store)
    os.makedirs(folder)
    os.chdir(folder)
    if store == "file":
        uri = "file://" + os.path.join(folder, "mlruns")
        # MLflow 3.17 keeps the file store "in maintenance mode" and refuses it without this.
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    else:
        uri = "sqlite:///" + os.path.join(folder, "mlflow.db")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    ids = populate(uri)
    if store == "sqlite":
        compact(os.path.join(folder, "mlflow.db"))
    check(uri)
    print(json.dumps(ids))


def compact(db):
    """MLflow's schema has some 200 tables and indexes, each at least one page: with SQLite's
    default 4 KiB pages the database is 950 KiB, with 512-byte pages 180 KiB. Same rows."""
    con = sqlite3.connect(db)
    con.execute("PRAGMA page_size = 512")
    con.execute("VACUUM")
    con.close()


def prune_empty_dirs(root):
    """Git keeps no empty folders (MLflow leaves metrics/, .trash/, ...): removing them here
    makes the tests on this machine see what a fresh clone has."""
    for folder, subfolders, files in os.walk(root, topdown=False):
        if not os.listdir(folder):
            os.rmdir(folder)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--store":
        child(sys.argv[2], sys.argv[3])
        return
    work = tempfile.mkdtemp(prefix="actorserve-mlflow-")
    try:
        ids = {store: in_subprocess(store, work) for store in ("file", "sqlite")}
        shutil.rmtree(OUT, ignore_errors=True)
        os.makedirs(OUT)
        for store in ("file", "sqlite"):
            shutil.copytree(os.path.join(work, store), os.path.join(OUT, store))
        prune_empty_dirs(OUT)
        ids["mlflow_version"] = mlflow.__version__
        ids["written_under"] = work
        with open(os.path.join(OUT, "ids.json"), "w") as f:
            json.dump(ids, f, indent=1, sort_keys=True)
            f.write("\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote {os.path.relpath(OUT, ROOT)} with MLflow {mlflow.__version__} "
          f"({size // 1024} KiB)")


if __name__ == "__main__":
    main()
