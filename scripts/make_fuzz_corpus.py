#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (test/fuzz/corpus/NAME/) from the committed
fixtures and a few hand-made inputs. The corpus is committed; run this again after adding a
fixture worth seeding with (it rewrites only the files it makes, named by content).

Run: python3 scripts/make_fuzz_corpus.py
Each input starts as the target reads it (see test/fuzz/*_fuzz.cpp): http_request's first byte
is the read size, json_payload's chooses model and path, v2_request's two choose the header
length.
"""
import glob
import hashlib
import json
import os

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CORPUS = os.path.join(ROOT, "test", "fuzz", "corpus")


def write(target, data):
    if isinstance(data, str):
        data = data.encode()
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def http_requests():
    def req(method, path, body=b"", headers=(), version="HTTP/1.1"):
        lines = [f"{method} {path} {version}", "Host: 127.0.0.1:8000", *headers]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    seeds = [
        req("GET", "/noop"),
        req("GET", "/hello", b'"Hey!"', ["User-Agent: python-requests/2.31.0",
                                         "Accept-Encoding: gzip, deflate", "Accept: */*",
                                         "Connection: keep-alive"]),
        req("POST", "/regressor", json.dumps({"sepal length": 6.3}).encode(),
            ["Content-Type: application/json"]),
        req("POST", "/v2/models/mlp/infer", b'{"inputs":[]}',
            ["Inference-Header-Content-Length: 13"]),
        req("GET", "/noop") * 3,
        b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n0\r\nTrailer: t\r\n\r\n",
        req("POST", "/echo", b'"x"', ["Expect: 100-continue"]),
        b"GET /noop HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        b"GET http://example.com/p?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\r\n\r\nGET /a%20b HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n",
        b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    ]
    for i, seed in enumerate(seeds):
        write("http_request", bytes([(i * 7) % 64]) + seed)
        write("http_request", bytes([63]) + seed)


def json_payloads():
    with open(os.path.join(ROOT, "apps", "examples", "models", "iris", "samples.json")) as f:
        for sample in json.load(f):
            write("json_payload", b"\x01" + json.dumps(sample["request"]).encode())
    write("json_payload", b"\x01" + b'{"inputs": [[5.1, 3.5, 1.4, 0.2]]}')
    write("json_payload", b"\x03" + json.dumps(
        {"dataframe_split": {"columns": ["sepal length", "sepal width", "petal length",
                                         "petal width"], "data": [[5.1, 3.5, 1.4, 0.2]]}}).encode())
    write("json_payload", b"\x03" + json.dumps(
        {"dataframe_records": [{"sepal length": 5.1, "sepal width": 3.5, "petal length": 1.4,
                                "petal width": 0.2}]}).encode())
    write("json_payload", b"\x02" + b'{"instances": [[0.5, -1.0, 2.0, 0.25]]}')
    write("json_payload", b"\x00" + b'{"inputs": {"input": [[0.5, -1.0, 2.0, 0.25]]}}')
    write("json_payload", b"\x00" + b'{"inputs": [0.5, -1.0, 2.0, 0.25]}')
    for i, value in enumerate(['[[1, 2], [3, 4]]', '[true, false]', '["a", "b"]', '1e300',
                               '[-1, 255, 256]', '[[[[1]]]]']):
        write("json_payload", bytes([i << 2]) + value.encode())


def v2_requests():
    """Prefix: selector (% 3: no header length, raw, or the next two bytes little-endian)."""
    v2 = os.path.join(ROOT, "test", "fixtures", "v2")
    with open(os.path.join(v2, "manifest.json")) as f:
        manifest = json.load(f)
    with open(os.path.join(v2, "all_json_request.json"), "rb") as f:
        write("v2_request", b"\x00\x00\x00" + f.read())
    with open(os.path.join(v2, "mixed_binary_request.bin"), "rb") as f:
        body = f.read()
    header = manifest["mixed_binary_request.bin"]["header_length"]
    write("v2_request", b"\x02" + header.to_bytes(2, "little") + body)
    write("v2_request", b"\x00\x00\x00" + json.dumps({"inputs": [
        {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]},
        {"name": "ids", "shape": [2], "datatype": "INT64", "data": [1, 2]},
        {"name": "text", "shape": [1], "datatype": "BYTES", "data": ["hi"]}],
        "outputs": [{"name": "y", "parameters": {"binary_data": True}}]}).encode())
    json_head = json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                                        "parameters": {"binary_data_size": 16}}]}).encode()
    write("v2_request", b"\x05" + len(json_head).to_bytes(2, "little") + json_head + bytes(16))
    write("v2_request", b"\x04\x00\x00" + bytes(16))  # raw binary: header length 0


def configs():
    paths = glob.glob(os.path.join(ROOT, "apps", "examples", "configs", "*.json"))
    for path in sorted(paths):
        with open(path, "rb") as f:
            write("config", f.read())


def onnx_models():
    for path in sorted(glob.glob(os.path.join(ROOT, "test", "fixtures", "*", "*", "model.onnx"))):
        if os.path.getsize(path) <= 8192:
            with open(path, "rb") as f:
                write("onnx_loader", f.read())


def mlmodels():
    for path in sorted(glob.glob(os.path.join(ROOT, "**", "MLmodel"), recursive=True)):
        if "/build" in path:
            continue
        with open(path, "rb") as f:
            write("mlmodel", f.read())
    write("mlmodel", "flavors:\n  onnx:\n    data: model.onnx\nsignature:\n"
          "  inputs: '[{\"type\": \"tensor\", \"tensor-spec\": {\"dtype\": \"float32\", "
          "\"shape\": [-1, 4]}}]'\n")


if __name__ == "__main__":
    http_requests()
    json_payloads()
    v2_requests()
    configs()
    onnx_models()
    mlmodels()
    for target in sorted(os.listdir(CORPUS)):
        print(target, len(os.listdir(os.path.join(CORPUS, target))))
