"""A real `mlflow server` on a loopback port, and the iris model logged and registered in it.

Shared by scripts/check-mlflow-server, scripts/mlflow-example and test/e2e/test_mlflow_server.py,
which check ActorServe's tracking-server registry (libserve/registry/tracking_server_store)
against MLflow itself. Run it with the MLflow venv's python (scripts/venv.sh with
scripts/mlflow-requirements.txt: ~/.cache/actorserve/venv-mlflow). Importing this module is
cheap: MLflow, scikit-learn and skl2onnx are imported by the functions that use them.

The server runs from a work folder of its own: a SQLite backend store (WORK/mlflow.db), the
artifact proxy (--serve-artifacts) storing under WORK/artifacts, its log in WORK/server.log. It
runs in a process group of its own (`mlflow server` starts uvicorn as a child), so stopping it
stops everything it started: SIGTERM to the group, SIGKILL after a timeout. MLflow's job
execution is switched off (MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false): registering models does not
need it, and its job runner and six huey consumers made the server take ~27 s instead of ~6 s to
come up on a 2-core machine.

As a library:
    with tracking_server(work) as server:                      # server.uri: http://127.0.0.1:PORT
        _, model = train_iris_onnx(n_estimators=100)
        info = log_and_register(server.uri, model, "labels.json", "iris", alias="production")
        # info: {"run_id", "model_id", "version", "download_uri"}

From bash (scripts/check-mlflow-server):
    python scripts/mlflow_server.py start WORK    # prints {"uri", "pgid"} once the server is up;
                                                 # the server keeps running
    python scripts/mlflow_server.py stop PGID
    python scripts/mlflow_server.py register URI ONNX_FILE LABELS_FILE NAME [--alias ALIAS]
                                                 # prints log_and_register's dict as JSON
"""
import argparse
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

IRIS_FEATURES = ["sepal length", "sepal width", "petal length", "petal width"]
IRIS_LABELS = ["setosa", "versicolor", "virginica"]


def free_loopback_port():
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _group_alive(pgid):
    """True while a process of group pgid runs (zombies, which wait for their parent to reap
    them and hold no port, do not count)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()  # after "pid (comm)"
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


def stop_process_group(pgid, timeout_s=20.0):
    """SIGTERM to the group, SIGKILL to what is left after timeout_s. Never raises."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _group_alive(pgid):
            return
        time.sleep(0.2)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class tracking_server:
    """`mlflow server` on 127.0.0.1 (a free port unless one is given); a context manager.

    Not thread-safe. start() returns once GET /health answers, or raises RuntimeError with the
    end of the server's log when it exits or does not answer within start_timeout_s."""

    def __init__(self, work, port=None, start_timeout_s=120.0):
        self.work = os.path.abspath(work)
        self.port = port or free_loopback_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.start_timeout_s = start_timeout_s
        self.log_path = os.path.join(self.work, "server.log")
        self.proc = None

    @property
    def pgid(self):
        return self.proc.pid if self.proc else None  # start_new_session: pid == pgid

    def start(self):
        os.makedirs(self.work, exist_ok=True)
        env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
                 "--port", str(self.port),
                 "--backend-store-uri", "sqlite:///" + os.path.join(self.work, "mlflow.db"),
                 "--serve-artifacts",
                 "--artifacts-destination", os.path.join(self.work, "artifacts"),
                 "--workers", "1"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                cwd=self.work, start_new_session=True)
        try:
            self._wait_until_up()
        except BaseException:  # not up, or interrupted meanwhile: stop what was started
            self.stop()
            raise
        return self

    def _wait_until_up(self):
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            try:
                with urllib.request.urlopen(self.uri + "/health", timeout=1):
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited ({self.proc.returncode}):\n"
                                   + self.log_tail())
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server not up after {self.start_timeout_s:.0f} s:\n"
                                   + self.log_tail())
            time.sleep(0.25)

    def stop(self, timeout_s=20.0):
        """Stops the server's process group; idempotent."""
        if self.proc is None:
            return
        stop_process_group(self.proc.pid, timeout_s)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no server log)"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def train_iris_onnx(n_estimators=100, random_state=0):
    """The guide's iris GradientBoostingClassifier fitted on the whole iris set, and its ONNX
    conversion (skl2onnx, zipmap off: outputs label [N] int64 and probabilities [N, 3]), as
    (sklearn model, onnx ModelProto). The defaults give apps/examples/models/iris/model.onnx."""
    import numpy as np
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_iris
    from sklearn.ensemble import GradientBoostingClassifier

    data = load_iris()
    X, y = data.data.astype(np.float32), data.target.astype(np.int64)
    model = GradientBoostingClassifier(n_estimators=n_estimators,
                                       random_state=random_state).fit(X, y)
    onx = to_onnx(model, initial_types=[("float_input", FloatTensorType([None, 4]))],
                  options={id(model): {"zipmap": False}})
    return model, onx


def _iris_signature():
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 4), "float_input")]),
        outputs=Schema([TensorSpec(np.dtype(np.int64), (-1,), "label"),
                        TensorSpec(np.dtype(np.float32), (-1, 3), "probabilities")]))


def log_and_register(tracking_uri, onnx_model, labels_file, name, alias=None,
                     experiment="iris"):
    """Logs onnx_model (a ModelProto) with mlflow.onnx.log_model in a new run of `experiment`,
    adds labels_file to the logged model's artifacts (so it lands in the registered version's
    folder, beside MLmodel), registers it as a new version of `name` and, when alias is given,
    points the alias at it. Returns {"run_id", "model_id", "version", "download_uri"}.

    What MLflow prints meanwhile ("View run ...", "Created version '2' ...") is kept, and
    written to stderr only when something fails."""
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            return _log_and_register(tracking_uri, onnx_model, labels_file, name, alias,
                                     experiment)
    except BaseException:
        sys.stderr.write(chatter.getvalue())
        raise


def _log_and_register(tracking_uri, onnx_model, labels_file, name, alias, experiment):
    import mlflow
    import mlflow.onnx
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=name) as run:
        info = mlflow.onnx.log_model(onnx_model, name="model", signature=_iris_signature())
    client = MlflowClient(tracking_uri, tracking_uri)
    client.log_model_artifact(info.model_id, labels_file)
    version = mlflow.register_model(f"models:/{info.model_id}", name)
    if alias:
        client.set_registered_model_alias(name, alias, version.version)
    return {"run_id": run.info.run_id, "model_id": info.model_id,
            "version": str(version.version),
            "download_uri": client.get_model_version_download_uri(name, version.version)}


def set_alias(tracking_uri, name, alias, version):
    """Points `alias` of registered model `name` at `version`."""
    from mlflow import MlflowClient

    MlflowClient(tracking_uri, tracking_uri).set_registered_model_alias(name, alias, str(version))


def _main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start a server in WORK; print {uri, pgid}; leave it")
    start.add_argument("work")
    stop = sub.add_parser("stop", help="stop the server's process group")
    stop.add_argument("pgid", type=int)
    reg = sub.add_parser("register", help="log an ONNX file with a labels file and register it")
    reg.add_argument("uri")
    reg.add_argument("onnx_file")
    reg.add_argument("labels_file")
    reg.add_argument("name")
    reg.add_argument("--alias")
    args = parser.parse_args(argv)
    if args.command == "start":
        server = tracking_server(args.work)
        try:
            server.start()
        except RuntimeError as e:
            sys.exit(f"FAIL: {e}")
        print(json.dumps({"uri": server.uri, "pgid": server.pgid}), flush=True)
    elif args.command == "stop":
        stop_process_group(args.pgid)
    else:
        import onnx

        info = log_and_register(args.uri, onnx.load(args.onnx_file), args.labels_file, args.name,
                                alias=args.alias)
        print(json.dumps(info), flush=True)


if __name__ == "__main__":
    _main(sys.argv[1:])
