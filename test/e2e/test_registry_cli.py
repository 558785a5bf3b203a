"""`actorserve registry`: register, alias and list against MLflow file stores, serve what was
registered, the committed example registry (apps/examples/registry, scripts/make-example-registry)
from any folder, and - with MLflow - proof that MLflow reads what the CLI wrote.

The CLI part is standard library only. The MLflow part runs a snippet with the python named by
ACTORSERVE_MLFLOW_PYTHON (a venv with mlflow, e.g. ~/.cache/actorserve/venv-mlflow/bin/python,
made by `ACTORSERVE_VENV_REQUIREMENTS=scripts/mlflow-requirements.txt bash scripts/venv.sh`);
without it that part prints why it is skipped.

Run: ACTORSERVE_BIN=build/apps/actorserve python3 test/e2e/test_registry_cli.py
"""
import json
import os
import shutil
import subprocess
import tempfile

import harness
from harness import ROOT, Server, app, config, main

# Some tests change the working directory: the binary's path must not depend on it.
harness.BIN = ACTORSERVE = os.path.abspath(harness.BIN)

IRIS = os.path.join(ROOT, "apps", "examples", "models", "iris")
EXAMPLE_REGISTRY = os.path.join(ROOT, "apps", "examples", "registry")
FEATURES = ["sepal length", "sepal width", "petal length", "petal width"]
MLFLOW_PYTHON = os.environ.get("ACTORSERVE_MLFLOW_PYTHON", "")

with open(os.path.join(IRIS, "samples.json")) as _f:
    SAMPLES = json.load(_f)


def registry(*args, cwd=None):
    """Runs `actorserve registry ARGS`; returns the CompletedProcess."""
    return subprocess.run([ACTORSERVE, "registry", *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd)


def registry_json(*args, cwd=None):
    out = registry(*args, "--json", cwd=cwd)
    assert out.returncode == 0, (args, out.returncode, out.stderr)
    return json.loads(out.stdout)


def refused(code, expected, *args):
    out = registry(*args)
    assert out.returncode == code, (args, out.returncode, out.stdout, out.stderr)
    assert expected in out.stderr, (args, out.stderr)


def iris_config(uri, registry_uri, labels="labels.json"):
    return config(app("iris", "/regressor", [{
        "name": "BoostingModel",
        "model": {"uri": uri, "registry_uri": registry_uri, "labels": labels,
                  "features": FEATURES}}]))


def assert_serves_the_guides_answers(server, version):
    for sample in SAMPLES:
        r = server.post("/regressor", sample["request"])
        assert r.status == 200 and r.json() == {"result": sample["expected"]}, (sample, r)
    dep = server.status()["applications"]["iris"]["deployments"]["BoostingModel"]
    assert dep["model"]["version"] == str(version), dep["model"]


def new_store():
    """A temporary folder and the path of a (not yet existing) mlruns store in it."""
    tmp = tempfile.mkdtemp(prefix="actorserve-registry-cli-")
    return tmp, os.path.join(tmp, "mlruns")


def register_two_versions(mlruns):
    v1 = registry_json("register", IRIS, "iris", "--registry", mlruns)
    v2 = registry_json("register", IRIS, "iris", "--registry", mlruns)
    assert (v1["version"], v1["created_model"], v1["wrote_mlmodel"]) == (1, True, True), v1
    assert (v2["version"], v2["created_model"]) == (2, False), v2
    assert v1["storage_location"] == "file://" + v1["artifacts_dir"], v1
    assert os.path.isfile(os.path.join(v1["artifacts_dir"], "labels.json")), v1
    return v1, v2


def test_register_alias_and_list_through_the_cli():
    tmp, mlruns = new_store()
    try:
        v1, v2 = register_two_versions(mlruns)
        assert registry_json("alias", "iris", "production", "1", "--registry", mlruns) == {
            "name": "iris", "alias": "production", "version": 1, "was": None}
        registry_json("alias", "iris", "staging", "2", "--registry", mlruns)
        assert registry_json("aliases", "iris", "--registry", mlruns)["aliases"] == {
            "production": 1, "staging": 2}
        versions = registry_json("versions", "iris", "--registry", mlruns)["versions"]
        assert [(v["version"], v["stage"], v["status"], v["aliases"]) for v in versions] == [
            (1, "None", "READY", ["production"]), (2, "None", "READY", ["staging"])], versions
        assert versions[0]["source"] == "models:/" + v1["model_id"], versions
        assert versions[1]["storage_location"] == v2["storage_location"], versions
        models = registry_json("models", "--registry", "file://" + mlruns)["models"]
        assert models == [{"name": "iris", "versions": 2, "latest": 2,
                           "aliases": {"production": 1, "staging": 2}}], models

        moved = registry("alias", "iris", "production", "2", "--registry", mlruns)
        assert moved.returncode == 0, moved.stderr
        assert moved.stdout.strip() == "iris@production -> version 2 (moved from version 1)"
        deleted = registry_json("alias", "iris", "staging", "--delete", "--registry", mlruns)
        assert deleted == {"name": "iris", "alias": "staging", "version": None, "was": 2}
        text = registry("versions", "iris", "--registry", mlruns).stdout.splitlines()
        assert text[0].split() == ["VERSION", "STAGE", "STATUS", "ALIASES", "SOURCE"], text
        assert text[2].split()[:4] == ["2", "None", "READY", "production"], text
        leftovers = [n for _, dirs, files in os.walk(mlruns) for n in dirs + files if ".tmp-" in n]
        assert leftovers == [], leftovers
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_bad_names_unknown_entries_and_non_file_stores_are_refused():
    tmp, mlruns = new_store()
    try:
        registry_json("register", IRIS, "iris", "--registry", mlruns)
        db = os.path.join(ROOT, "test", "fixtures", "mlflow", "sqlite", "mlflow.db")
        refused(2, "writing needs an MLflow file store folder; sqlite:///" + db + " is an MLflow "
                "SQLite store", "register", IRIS, "iris", "--registry", "sqlite:///" + db)
        refused(2, "writing needs an MLflow file store folder; " + db + " is a SQLite database",
                "alias", "iris", "production", "1", "--registry", db)
        refused(2, "is an MLflow tracking server", "register", IRIS, "iris", "--registry",
                "http://127.0.0.1:9")
        refused(2, "registered model names cannot contain '/'",
                "register", IRIS, "a/b", "--registry", mlruns)
        refused(2, "'..' is not a registered model name", "register", IRIS, "..",
                "--registry", mlruns)
        refused(2, "'latest' is reserved", "alias", "iris", "latest", "1", "--registry", mlruns)
        refused(2, "VERSION must be a version number", "alias", "iris", "prod", "one",
                "--registry", mlruns)
        refused(1, "has no version 7 (versions: 1)", "alias", "iris", "prod", "7",
                "--registry", mlruns)
        refused(1, "no registered model 'nope'", "versions", "nope", "--registry", mlruns)
        refused(1, "has no alias 'prod' (it has no aliases)", "alias", "iris", "prod", "--delete",
                "--registry", mlruns)
        refused(2, "holds neither MLmodel nor model.onnx", "register",
                os.path.join(ROOT, "apps", "examples", "configs"), "m", "--registry", mlruns)
        refused(2, "is not an MLflow file store", "register", IRIS, "m", "--registry",
                os.path.join(ROOT, "apps", "examples", "configs"))
        refused(2, "--registry URI is required", "models")
        # The SQLite store that MLflow wrote is read like any other.
        versions = registry_json("versions", "iris", "--registry", "sqlite:///" + db)["versions"]
        assert [v["version"] for v in versions] == [1, 2], versions
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_registered_folder_serves_through_its_alias_with_labels_found_inside_it():
    tmp, mlruns = new_store()
    try:
        register_two_versions(mlruns)
        registry_json("alias", "iris", "production", "2", "--registry", mlruns)
        with Server(iris_config("models:/iris@production", mlruns)) as s:
            assert_serves_the_guides_answers(s, 2)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_the_example_config_serves_models_iris_at_production_from_the_committed_registry():
    with open(os.path.join(ROOT, "apps", "examples", "configs", "iris.json")) as f:
        cfg = json.load(f)
    model = cfg["applications"][0]["deployments"][0]["model"]
    assert model["uri"] == "models:/iris@production", model
    cfg["http_options"]["port"] = 0
    here = os.getcwd()
    os.chdir(ROOT)  # the config's paths are relative to the repository root
    try:
        with Server(cfg) as s:
            assert_serves_the_guides_answers(s, 1)
    finally:
        os.chdir(here)


def test_the_committed_registry_works_from_another_folder():
    for folder, _, files in os.walk(EXAMPLE_REGISTRY):
        for name in files:
            if name in ("meta.yaml", "MLmodel"):
                with open(os.path.join(folder, name)) as f:
                    text = f.read()
                assert "file://" not in text and ROOT not in text, (folder, name, text)
    tmp = tempfile.mkdtemp(prefix="actorserve-registry-elsewhere-")
    here = os.getcwd()
    try:
        shutil.copytree(EXAMPLE_REGISTRY, os.path.join(tmp, "elsewhere", "registry"))
        os.chdir(tmp)
        versions = registry_json("versions", "iris", "--registry", "elsewhere/registry/mlruns")
        assert [(v["version"], v["aliases"]) for v in versions["versions"]] == [
            (1, ["production"])], versions
        with Server(iris_config("models:/iris@production", "elsewhere/registry/mlruns")) as s:
            assert_serves_the_guides_answers(s, 1)
            resolved = s.status()["applications"]["iris"]["deployments"]["BoostingModel"]
            assert "models:/iris@production -> version 1" in resolved["model"]["resolved"]
    finally:
        os.chdir(here)
        shutil.rmtree(tmp, ignore_errors=True)


# Reads a file store with MLflow's own client and prints what MLflow sees as JSON.
MLFLOW_READER = r"""
import json, os, sys, tempfile
os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
import mlflow
from mlflow import MlflowClient

store, name, alias, set_alias = sys.argv[1:5]
uri = "file://" + store if os.path.isabs(store) else "file:" + store
os.environ["MLFLOW_TRACKING_URI"] = uri
mlflow.set_tracking_uri(uri)
mlflow.set_registry_uri(uri)
client = MlflowClient(tracking_uri=uri, registry_uri=uri)
seen = {"mlflow_version": mlflow.__version__}
seen["models"] = sorted(m.name for m in client.search_registered_models())
seen["aliases"] = dict(client.get_registered_model(name).aliases)
seen["versions"] = sorted(
    ({"version": int(v.version), "stage": v.current_stage, "status": v.status,
      "source": v.source, "aliases": sorted(v.aliases), "model_id": v.model_id}
     for v in client.search_model_versions(f"name='{name}'")), key=lambda v: v["version"])
by_alias = client.get_model_version_by_alias(name, alias)
seen["alias_version"] = int(by_alias.version)
seen["download_uri"] = client.get_model_version_download_uri(name, by_alias.version)
logged = client.get_logged_model(by_alias.model_id)
seen["logged_model"] = {"artifact_location": logged.artifact_location,
                        "status": str(logged.status), "experiment_id": logged.experiment_id}
with tempfile.TemporaryDirectory(prefix="mlflow-download-") as dst:
    path = mlflow.artifacts.download_artifacts(f"models:/{name}@{alias}", dst_path=dst)
    seen["downloaded"] = sorted(os.listdir(path))
    with open(os.path.join(path, "labels.json")) as f:
        seen["labels"] = json.load(f)
try:
    import numpy as np
    import onnxruntime  # noqa: F401  (mlflow.onnx's pyfunc needs it)
    model = mlflow.pyfunc.load_model(f"models:/{name}@{alias}")
    rows = np.array([[6.3, 3.3, 6.0, 2.5], [5.1, 3.5, 1.4, 0.2], [6.4, 3.2, 4.5, 1.5]],
                    dtype=np.float32)
    out = model.predict(rows)
    seen["pyfunc_labels"] = [int(x) for x in out["label"]]
except ImportError as e:
    seen["pyfunc_labels"] = "skipped: " + str(e)
if set_alias:
    alias2, version2 = set_alias.split("=")
    client.set_registered_model_alias(name, alias2, version2)
print(json.dumps(seen))
"""


def mlflow_reads(store, name, alias, cwd, set_alias=""):
    out = subprocess.run([MLFLOW_PYTHON, "-c", MLFLOW_READER, store, name, alias, set_alias],
                         capture_output=True, text=True, timeout=300, cwd=cwd)
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def check_mlflow_agrees(seen, cli_versions, alias, alias_version):
    labels = json.load(open(os.path.join(IRIS, "labels.json")))
    assert seen["alias_version"] == alias_version, seen
    assert seen["aliases"] == {alias: str(alias_version)}, seen
    mine = [(v["version"], v["stage"], v["status"], v["source"], v["aliases"])
            for v in cli_versions]
    theirs = [(v["version"], v["stage"], v["status"], v["source"], v["aliases"])
              for v in seen["versions"]]
    assert mine == theirs, (mine, theirs)
    assert seen["logged_model"]["status"].endswith("READY"), seen
    assert {"MLmodel", "model.onnx", "labels.json"} <= set(seen["downloaded"]), seen
    assert seen["labels"] == labels, seen
    if not str(seen["pyfunc_labels"]).startswith("skipped"):
        assert seen["pyfunc_labels"] == [2, 0, 1], seen  # virginica, setosa, versicolor


def test_mlflow_reads_what_the_cli_wrote():
    if not MLFLOW_PYTHON:
        print("skipped: MLflow read-back: ACTORSERVE_MLFLOW_PYTHON is not set (a python with "
              "mlflow, e.g. ~/.cache/actorserve/venv-mlflow/bin/python)", flush=True)
        return
    tmp, mlruns = new_store()
    try:
        v1, v2 = register_two_versions(mlruns)
        registry_json("alias", "iris", "production", "2", "--registry", mlruns)
        cli = registry_json("versions", "iris", "--registry", mlruns)["versions"]
        # Read from another folder: the store records absolute file:// locations, as MLflow.
        seen = mlflow_reads(mlruns, "iris", "production", cwd=tempfile.gettempdir(),
                            set_alias="champion=1")
        print("MLflow %s read the CLI's absolute store: %s" % (
            seen["mlflow_version"], json.dumps(seen, sort_keys=True)), flush=True)
        check_mlflow_agrees(seen, cli, "production", 2)
        assert seen["download_uri"] == v2["storage_location"], seen
        assert seen["logged_model"]["artifact_location"] == v2["storage_location"], seen
        assert seen["models"] == ["iris"], seen
        # ... and the CLI reads the alias MLflow wrote afterwards.
        assert registry_json("aliases", "iris", "--registry", mlruns)["aliases"] == {
            "champion": 1, "production": 2}

        # The committed example registry (relative locations), copied, read from the folder
        # holding its mlruns/ as MLflow's ./mlruns default expects.
        copy = os.path.join(tmp, "example")
        shutil.copytree(EXAMPLE_REGISTRY, copy)
        cli = registry_json("versions", "iris", "--registry",
                            os.path.join(copy, "mlruns"))["versions"]
        seen = mlflow_reads("mlruns", "iris", "production", cwd=copy)
        print("MLflow %s read the committed example registry: %s" % (
            seen["mlflow_version"], json.dumps(seen, sort_keys=True)), flush=True)
        check_mlflow_agrees(seen, cli, "production", 1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(globals())
