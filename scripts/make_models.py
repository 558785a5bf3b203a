#!/usr/bin/env python3
"""Exports the ONNX test fixtures and the iris example model (run through scripts/make-models).

Writes, for every fixture NAME, test/fixtures/models/NAME/model.onnx and cases.json:

  {"inputs":  {input_name: {"dtype": "float32", "shape": [...], "data": [flat list]}},
   "outputs": [{"name", "dtype", "shape", "data"}, ...]}   # in the model's output order

The expected outputs are onnxruntime's, on the same inputs. A ZipMap output (a list of
{label: probability} maps) is stored as {"name", "dtype": "map", "key_type": "int64"|"string",
"shape": [rows], "data": [{"0": p0, ...}, ...]} (JSON keys are strings; key_type says what they
were). Float32 values are written in their shortest round-trip form (read back as float32 they
are the exact same numbers).

Also writes apps/examples/models/iris/{model.onnx, labels.json, features.json, samples.json}:
the Ray Serve guide's iris GradientBoostingClassifier behind /regressor, and
test/fixtures/models/README.md, which lists the fixtures and the ops inside each.

The helper_* fixtures are built node by node with onnx.helper: tensors that are not floats
(INT64 in, STRING in and out) for the Open Inference Protocol tests
(test/e2e/test_v2_tritonclient.py serves them through test/e2e/v2_models.json).

Everything is seeded: a rerun writes the same bytes (checked with --check).
"""
import argparse
import hashlib
import io
import json
import os
import re
import shutil
import sys
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import sklearn
import skl2onnx
import torch
from onnx import helper
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_iris, make_classification
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "test", "fixtures", "models")
IRIS_EXAMPLE = os.path.join(ROOT, "apps", "examples", "models", "iris")
REGENERATE = "scripts/make-models"

IRIS_LABELS = ["setosa", "versicolor", "virginica"]
IRIS_FEATURES = ["sepal length", "sepal width", "petal length", "petal width"]
# 12 iris rows spread over the three classes (every 13th row), plus two near the
# versicolor/virginica border (rows 70 and 133), so that probabilities are not all ~0/1.
IRIS_CASE_ROWS = list(range(0, 150, 13)) + [70, 133]


# ----------------------------------------------------------------------------------------------
# JSON encoding of tensors

def f32_list(array):
    """Float32 values in their shortest round-trip decimal form."""
    return [float(str(v)) for v in np.asarray(array, dtype=np.float32).ravel()]


def tensor_json(array):
    array = np.asarray(array)
    if array.dtype == np.float32:
        data, dtype = f32_list(array), "float32"
    elif array.dtype == np.float64:
        data, dtype = [float(v) for v in array.ravel()], "float64"
    elif array.dtype.kind in "iu":
        data, dtype = [int(v) for v in array.ravel()], str(array.dtype)
    elif array.dtype == np.bool_:
        data, dtype = [bool(v) for v in array.ravel()], "bool"
    elif array.dtype.kind in "OUS":
        data, dtype = [str(v) for v in array.ravel()], "string"
    else:
        raise ValueError("unsupported dtype %s" % array.dtype)
    return {"dtype": dtype, "shape": list(array.shape), "data": data}


def output_json(name, value):
    if isinstance(value, list) and value and isinstance(value[0], dict):  # ZipMap
        keys = list(value[0].keys())
        key_type = "int64" if isinstance(keys[0], (int, np.integer)) else "string"
        rows = [{str(k): float(str(np.float32(v))) for k, v in row.items()} for row in value]
        return {"name": name, "dtype": "map", "key_type": key_type, "shape": [len(value)],
                "data": rows}
    out = {"name": name}
    out.update(tensor_json(value))
    return out


def write_json(path, obj, compact_lists=True):
    text = json.dumps(obj, indent=1, sort_keys=False)
    if compact_lists:
        # Keep flat number/string lists on one line: the files stay readable and small.
        text = re.sub(r"\[\s*([^\[\]{}]*?)\s*\]",
                      lambda m: "[" + re.sub(r",\s+", ", ", m.group(1)) + "]", text)
        # and flat objects (ZipMap rows): one row per line
        text = re.sub(r"\{\s*([^\[\]{}]*?)\s*\}",
                      lambda m: "{" + re.sub(r",\s+", ", ", m.group(1)) + "}", text)
    with open(path, "w") as f:
        f.write(text + "\n")


# ----------------------------------------------------------------------------------------------
# Saving a fixture

def ort_session(path, threads=1):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def save_fixture(name, model, inputs, external_data=False):
    """Writes model.onnx (+ weights.bin) and cases.json; returns the onnxruntime outputs."""
    folder = os.path.join(FIXTURES, name)
    shutil.rmtree(folder, ignore_errors=True)  # onnx appends to an existing weights.bin
    os.makedirs(folder)
    path = os.path.join(folder, "model.onnx")
    if external_data:
        onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location="weights.bin", size_threshold=1024)
    else:
        onnx.save_model(model, path)
    outputs = run_and_record(path, inputs, os.path.join(folder, "cases.json"))
    return outputs


def run_and_record(path, inputs, cases_path):
    session = ort_session(path)
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, inputs)
    cases = {
        "inputs": {k: tensor_json(v) for k, v in inputs.items()},
        "outputs": [output_json(n, v) for n, v in zip(names, values)],
    }
    write_json(cases_path, cases)
    return dict(zip(names, values))


# ----------------------------------------------------------------------------------------------
# PyTorch

class Mlp(torch.nn.Module):
    def __init__(self, sizes, flatten=False):
        super().__init__()
        layers = []
        for i in range(len(sizes) - 1):
            layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                layers.append(torch.nn.ReLU())
        layers.append(torch.nn.Softmax(dim=-1))
        self.layers = torch.nn.Sequential(*layers)
        self.flatten = flatten

    def forward(self, x):
        if self.flatten:
            x = x.view(x.size(0), -1)
        return self.layers(x)


def torch_model(sizes, seed, example, opset, flatten=False):
    torch.manual_seed(seed)
    module = Mlp(sizes, flatten).eval()
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(module, torch.from_numpy(example), buffer, opset_version=opset,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                          do_constant_folding=True)
    model = onnx.load_from_string(buffer.getvalue())
    # torch writes its own version; keep the files identical across torch patch releases.
    model.producer_version = torch.__version__.split("+")[0]
    return model, module


def random_input(rng, shape):
    return np.round(rng.normal(size=shape), 3).astype(np.float32)


def make_torch_fixtures():
    rng = np.random.default_rng(13)
    x = random_input(rng, (12, 4))
    model, _ = torch_model([4, 16, 16, 3], seed=1, example=x, opset=13)
    save_fixture("torch_mlp", model, {"input": x})

    x = random_input(rng, (12, 2, 2))
    model, _ = torch_model([4, 16, 16, 3], seed=1, example=x, opset=14, flatten=True)
    save_fixture("torch_mlp_view", model, {"input": x})

    x = random_input(rng, (8, 784))
    model, _ = torch_model([784, 512, 512, 10], seed=2, example=x, opset=17)
    save_fixture("torch_mlp_784", model, {"input": x}, external_data=True)


# ----------------------------------------------------------------------------------------------
# scikit-learn

def sk_to_onnx(model, features, zipmap=False):
    options = None if zipmap else {id(model): {"zipmap": False}}
    if isinstance(model, LinearRegression):
        options = None
    onx = to_onnx(model, initial_types=[("float_input", FloatTensorType([None, features]))],
                  options=options)
    return onx


def iris():
    data = load_iris()
    return data.data.astype(np.float32), data.target.astype(np.int64)


def make_sklearn_fixtures():
    X, y = iris()
    rows = X[IRIS_CASE_ROWS]
    binary = (y == 0).astype(np.int64)  # setosa vs rest
    # string labels for one binary model, so the string-label path of the ML ops is covered
    binary_str = np.where(y == 0, "setosa", "other")

    def fit(model, X_, y_):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X_, y_)
        return model

    specs = [
        ("sk_logreg_binary", fit(LogisticRegression(max_iter=1000), X, binary), False),
        ("sk_logreg_3class", fit(LogisticRegression(max_iter=1000), X, y), False),
        ("sk_logreg_3class_zipmap", fit(LogisticRegression(max_iter=1000), X, y), True),
        ("sk_mlp_3class", fit(MLPClassifier(hidden_layer_sizes=(16,), max_iter=2000,
                                            random_state=0), X, y), False),
        ("sk_gb_binary", fit(GradientBoostingClassifier(n_estimators=20, random_state=0),
                             X, binary), False),
        ("sk_gb_3class", fit(GradientBoostingClassifier(n_estimators=20, random_state=0),
                             X, y), False),
        ("sk_rf_binary", fit(RandomForestClassifier(n_estimators=10, max_depth=5,
                                                    random_state=0), X, binary_str), False),
        ("sk_rf_3class", fit(RandomForestClassifier(n_estimators=10, max_depth=5,
                                                    random_state=0), X, y), False),
        ("sk_scaler_pipeline", fit(make_pipeline(StandardScaler(),
                                                 LogisticRegression(max_iter=1000)), X, y), False),
    ]
    for name, model, zipmap in specs:
        save_fixture(name, sk_to_onnx(model, 4, zipmap), {"float_input": rows})

    # Linear regression on iris: petal width from the other three measurements.
    reg = LinearRegression().fit(X[:, :3], X[:, 3])
    save_fixture("sk_linreg", sk_to_onnx(reg, 3), {"float_input": rows[:, :3].copy()})

    # Synthetic: 10 features, 3 classes (also a kernel benchmark model).
    Xs, ys = make_classification(n_samples=600, n_features=10, n_informative=6, n_redundant=2,
                                 n_classes=3, random_state=0)
    Xs = np.round(Xs, 3).astype(np.float32)
    gb = GradientBoostingClassifier(n_estimators=20, random_state=0).fit(Xs[:500], ys[:500])
    save_fixture("sk_gb_synthetic", sk_to_onnx(gb, 10), {"float_input": Xs[500:516]})


# ----------------------------------------------------------------------------------------------
# Hand-built with onnx.helper: INT64 and STRING tensors, for the v2 protocol tests

HELPER_OPSET = 13
HELPER_IR_VERSION = 7
INT64_SCALE = [0.5, 2.0, -1.0]


def helper_model(name, nodes, inputs, outputs, initializers=()):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, producer_name="scripts/make_models.py",
                              opset_imports=[helper.make_opsetid("", HELPER_OPSET)])
    model.ir_version = HELPER_IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def make_helper_fixtures():
    # counts INT64 [N, 3] -> scaled = float(counts) * [0.5, 2, -1] (FP32), and counts_out = counts
    tensor = helper.make_tensor_value_info
    int64_scale = helper_model(
        "int64_scale",
        [helper.make_node("Cast", ["counts"], ["counts_float"], to=onnx.TensorProto.FLOAT),
         helper.make_node("Mul", ["counts_float", "scale"], ["scaled"]),
         helper.make_node("Identity", ["counts"], ["counts_out"])],
        [tensor("counts", onnx.TensorProto.INT64, ["N", 3])],
        [tensor("scaled", onnx.TensorProto.FLOAT, ["N", 3]),
         tensor("counts_out", onnx.TensorProto.INT64, ["N", 3])],
        [helper.make_tensor("scale", onnx.TensorProto.FLOAT, [3], INT64_SCALE)])
    counts = np.array([[1, 2, 3], [-4, 5, 60], [0, 2**40, -(2**33)]], dtype=np.int64)
    save_fixture("helper_int64_scale", int64_scale, {"counts": counts})

    # text STRING [N, 1] -> text_out, the same strings
    string_echo = helper_model(
        "string_echo", [helper.make_node("Identity", ["text"], ["text_out"])],
        [tensor("text", onnx.TensorProto.STRING, ["N", 1])],
        [tensor("text_out", onnx.TensorProto.STRING, ["N", 1])])
    text = np.array([["hello"], [""], ["gr\u00fc\u00dfe, \u4e16\u754c"]], dtype=object)
    save_fixture("helper_string_echo", string_echo, {"text": text})


# ----------------------------------------------------------------------------------------------
# The guide's iris example (/regressor)

def make_iris_example():
    X, y = iris()
    # The guide: GradientBoostingClassifier() fitted on the whole iris set (seeded here).
    model = GradientBoostingClassifier(random_state=0).fit(X, y)
    os.makedirs(IRIS_EXAMPLE, exist_ok=True)
    path = os.path.join(IRIS_EXAMPLE, "model.onnx")
    onnx.save_model(sk_to_onnx(model, 4), path)
    write_json(os.path.join(IRIS_EXAMPLE, "labels.json"), IRIS_LABELS)
    write_json(os.path.join(IRIS_EXAMPLE, "features.json"), IRIS_FEATURES)

    requests = [
        dict(zip(IRIS_FEATURES, [6.3, 3.3, 6.0, 2.5])),         # the guide's request
        dict(zip(IRIS_FEATURES, [float(v) for v in load_iris().data[0]])),   # row 0, setosa
        dict(zip(IRIS_FEATURES, [float(v) for v in load_iris().data[55]])),  # row 55, versicolor
    ]
    batch = np.array([[r[f] for f in IRIS_FEATURES] for r in requests], dtype=np.float32)
    label, proba = ort_session(path).run(None, {"float_input": batch})
    sk_label = model.predict(batch)
    samples = []
    print("iris example (%s):" % os.path.relpath(path, ROOT))
    for request, l, p, s in zip(requests, label, proba, sk_label):
        if int(l) != int(s):
            raise SystemExit("iris: onnxruntime says %d, scikit-learn %d for %s" % (l, s, request))
        name = IRIS_LABELS[int(l)]
        samples.append({"request": request, "expected": name})
        print("  %s -> %s (p=%s)" % (json.dumps(request), name,
                                      ", ".join("%.4f" % v for v in p)))
    if samples[0]["expected"] != "virginica":
        raise SystemExit("iris: the guide's request should be virginica, got %s"
                         % samples[0]["expected"])
    write_json(os.path.join(IRIS_EXAMPLE, "samples.json"), samples)


# ----------------------------------------------------------------------------------------------
# README

FIXTURE_NOTES = {
    "torch_mlp": "PyTorch MLP 4-16-16-3 (Linear/ReLU/Linear/ReLU/Linear/Softmax), opset 13, "
                 "dynamic batch axis",
    "torch_mlp_view": "the same MLP after `x.view(x.size(0), -1)` on a [N, 2, 2] input, opset 14: "
                      "shape arithmetic feeding Reshape",
    "torch_mlp_784": "PyTorch MLP 784-512-512-10, random weights, opset 17; weights in "
                     "`weights.bin` (ONNX external data); the dense-kernel benchmark model",
    "sk_logreg_binary": "LogisticRegression, iris setosa (1) vs rest (0), zipmap off",
    "sk_logreg_3class": "LogisticRegression, iris 3 classes, zipmap off",
    "sk_logreg_3class_zipmap": "the same with skl2onnx's default ZipMap: output_probability is a "
                               "list of {int64 label: probability} maps",
    "sk_mlp_3class": "MLPClassifier (16 hidden), iris 3 classes, zipmap off",
    "sk_gb_binary": "GradientBoostingClassifier (20 trees), iris setosa vs rest: binary "
                    "TreeEnsembleClassifier rules",
    "sk_gb_3class": "GradientBoostingClassifier (20 estimators x 3 classes), iris; a tree "
                    "benchmark model",
    "sk_rf_binary": "RandomForestClassifier (10 trees, depth <= 5), iris, STRING labels "
                    "\"other\"/\"setosa\" (label output is a string tensor)",
    "sk_rf_3class": "RandomForestClassifier (10 trees, depth <= 5), iris 3 classes",
    "sk_gb_synthetic": "GradientBoostingClassifier (20 estimators x 3 classes) on "
                       "make_classification, 10 features; a tree benchmark model",
    "sk_linreg": "LinearRegression, iris petal width from the other three features",
    "sk_scaler_pipeline": "StandardScaler + LogisticRegression pipeline, iris 3 classes",
    "helper_int64_scale": "onnx.helper: INT64 [N, 3] in; Cast to float times [0.5, 2, -1] "
                          "(FP32 out) and the INT64 input unchanged (second output)",
    "helper_string_echo": "onnx.helper: STRING [N, 1] in, the same strings out (Identity)",
}


def op_summary(path):
    model = onnx.load(path, load_external_data=False)
    ops = []
    for node in model.graph.node:
        op = (node.domain + ":" if node.domain not in ("", "ai.onnx") else "") + node.op_type
        if op not in ops:
            ops.append(op)
    opsets = ", ".join("%s %d" % (o.domain or "ai.onnx", o.version) for o in model.opset_import)
    return ops, opsets, model.ir_version


def folder_size(folder):
    return sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))


def write_readme():
    lines = [
        "# ONNX model fixtures",
        "",
        "Generated by `%s` (scripts/make_models.py; Python tooling in the venv made by" % REGENERATE,
        "scripts/venv.sh from scripts/python-requirements.txt). Do not edit by hand: change the",
        "script and run it again. It is deterministic: a rerun writes the same bytes",
        "(`%s --check` verifies that)." % REGENERATE,
        "",
        "Each folder holds `model.onnx` and `cases.json`: the inputs (dtype, shape, flat data) and",
        "onnxruntime's outputs on them, in the model's output order. ZipMap outputs are stored",
        "with `\"dtype\": \"map\"`, `\"key_type\"` and one JSON object per row.",
        "test/libserve/onnx/fixtures_test.cpp runs every folder through our executor and compares",
        "(floats within 1e-5 absolute or relative, labels exactly, maps key by key).",
        "",
        "Versions: torch %s (Debian python3-torch), scikit-learn %s, skl2onnx %s, onnx %s,"
        % (torch.__version__, sklearn.__version__, skl2onnx.__version__, onnx.__version__),
        "onnxruntime %s, numpy %s." % (ort.__version__, np.__version__),
        "",
        "| fixture | what it exercises | opsets (IR) | ops | size |",
        "|---|---|---|---|---|",
    ]
    total = 0
    for name in sorted(os.listdir(FIXTURES)):
        folder = os.path.join(FIXTURES, name)
        if not os.path.isdir(folder):
            continue
        ops, opsets, ir = op_summary(os.path.join(folder, "model.onnx"))
        size = folder_size(folder)
        total += size
        lines.append("| `%s` | %s | %s (IR %d) | %s | %s |" % (
            name, FIXTURE_NOTES.get(name, ""), opsets, ir, ", ".join(ops), human(size)))
    lines += ["", "Total: %s." % human(total), "",
              "The iris example model of the guide's `/regressor` (apps/examples/models/iris/) is",
              "made by the same script; its samples.json holds three requests and the expected",
              "class name.", ""]
    with open(os.path.join(FIXTURES, "README.md"), "w") as f:
        f.write("\n".join(lines))
    return total


def human(size):
    return "%.1f KB" % (size / 1000) if size < 1_000_000 else "%.2f MB" % (size / 1e6)


# ----------------------------------------------------------------------------------------------

def tree_digest(folders):
    h = hashlib.sha256()
    for top in folders:
        for dirpath, dirnames, filenames in sorted(os.walk(top)):
            dirnames.sort()
            for f in sorted(filenames):
                p = os.path.join(dirpath, f)
                h.update(os.path.relpath(p, ROOT).encode())
                with open(p, "rb") as fh:
                    h.update(fh.read())
    return h.hexdigest()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="regenerate and fail if any byte changed")
    args = parser.parse_args()

    torch.set_num_threads(1)
    before = tree_digest([FIXTURES, IRIS_EXAMPLE]) if args.check else None
    os.makedirs(FIXTURES, exist_ok=True)
    for name in os.listdir(FIXTURES):  # the folder is all generated: drop fixtures gone from here
        if os.path.isdir(os.path.join(FIXTURES, name)):
            shutil.rmtree(os.path.join(FIXTURES, name))
    make_torch_fixtures()
    make_sklearn_fixtures()
    make_helper_fixtures()
    make_iris_example()
    total = write_readme()

    print("fixtures (%s):" % os.path.relpath(FIXTURES, ROOT))
    for name in sorted(os.listdir(FIXTURES)):
        folder = os.path.join(FIXTURES, name)
        if os.path.isdir(folder):
            ops, _, _ = op_summary(os.path.join(folder, "model.onnx"))
            print("  %-24s %9s  %s" % (name, human(folder_size(folder)), " ".join(ops)))
    print("  total %s" % human(total))
    if total > 4_000_000:
        raise SystemExit("fixtures exceed 4 MB")
    if args.check:
        after = tree_digest([FIXTURES, IRIS_EXAMPLE])
        if before != after:
            raise SystemExit("make-models --check: the regenerated files differ")
        print("make-models --check: identical")


if __name__ == "__main__":
    main()
