"""`actorserve bench`: closed and open loop against the real server, errors by status, v2
payloads (against a small validating fake v2 server), bad flags and an unreachable target.

One actorserve server is shared by the tests that need it (started on first use, stopped by
PID at exit); the whole file runs in about 10 s.
"""
import atexit
import json
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import Server, app, config, main, run_cli

CONFIG = config(app("noop", "/noop", [{"name": "Noop", "class": "Noop",
                                       "max_ongoing_requests": 100}]))
_server = None


def server():
    global _server
    if _server is None:
        _server = Server(CONFIG).__enter__()
        atexit.register(_server.__exit__, None, None, None)
    return _server


def bench(*args, timeout=60):
    """Runs `actorserve bench ... --json -q`; returns (process, the single step's summary)."""
    proc = run_cli("bench", *args, "--json", "-q", timeout=timeout)
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    summary = json.loads(proc.stdout)
    assert len(summary["steps"]) == 1, summary
    return proc, summary["steps"][0]


def test_a_closed_loop_run_counts_requests_without_errors_and_orders_its_percentiles():
    url = "http://127.0.0.1:%d/noop" % server().port
    _, step = bench(url, "-c", "4", "-d", "1", "--warmup", "0.2")
    assert step["mode"] == "closed" and step["connections"] == 4, step
    assert step["requests"] > 0 and step["rps"] > 0, step
    assert step["errors"]["total"] == 0 and step["status"] == {"200": step["requests"]}, step
    lat = step["latency_us"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["max"]
    assert step["bytes"]["read"] > 0 and step["bytes"]["written"] > 0, step


def test_an_open_loop_run_achieves_its_fixed_rate_within_20_percent():
    url = "http://127.0.0.1:%d/noop" % server().port
    _, step = bench(url, "--rate", "200", "-d", "2", "--warmup", "0.3")
    assert step["mode"] == "open" and step["target_rate"] == 200, step
    assert 160 <= step["rps"] <= 240, step
    assert step["kept_up"] and step["errors"]["total"] == 0, step


def test_a_missing_route_shows_up_under_errors_by_status():
    url = "http://127.0.0.1:%d/nope" % server().port
    _, step = bench(url, "-d", "0.5", "--warmup", "0")
    assert step["requests"] > 0, step
    assert step["status"] == {"404": step["requests"]}, step
    assert step["errors"]["http"] == step["requests"] == step["errors"]["total"], step


def test_bad_flags_exit_2_naming_the_flag():
    url = "http://127.0.0.1:9/noop"  # never contacted: arguments are checked first
    cases = [(["-c", "abc"], "-c/--connections"), (["--rate", "0"], "--rate"),
             (["--duration", "soon"], "-d/--duration"), (["--bogus"], "--bogus"),
             (["--poisson"], "--poisson"), (["--rate", "5", "-c", "2"], "--connections"),
             (["--shape", "x=1"], "--v2-model")]
    for args, flag in cases:
        proc = run_cli("bench", url, *args)
        assert proc.returncode == 2, (args, proc.returncode, proc.stderr)
        assert flag in proc.stderr, (args, proc.stderr)
    proc = run_cli("bench", "https://127.0.0.1/noop")
    assert proc.returncode == 2 and "https" in proc.stderr, proc.stderr


def test_an_unreachable_target_exits_1():
    with socket.socket() as s:  # a port that nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = run_cli("bench", "http://127.0.0.1:%d/noop" % port, "-d", "1")
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert "cannot connect" in proc.stderr, proc.stderr


# ---- v2 payloads against a fake v2 server that checks every request -------------------------

SIZES = {"BOOL": 1, "UINT8": 1, "INT64": 8, "FP16": 2, "FP32": 4}
METADATA = {"name": "m", "versions": ["1"], "platform": "fake",
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]},
                       {"name": "ids", "datatype": "INT64", "shape": [2]},
                       {"name": "mask", "datatype": "BOOL", "shape": [3]},
                       {"name": "half", "datatype": "FP16", "shape": [-1]},
                       {"name": "u8", "datatype": "UINT8", "shape": [5]},
                       {"name": "text", "datatype": "BYTES", "shape": [2]}],
            "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 1]}]}


def quiet_server(handler):
    """A threading HTTP server on an ephemeral port that does not print connection resets
    (the load generator drops its connections with requests in flight when a run ends)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.handle_error = lambda request, address: None
    return httpd


def elements(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def check_v2_request(headers, body, shapes):
    """Raises AssertionError unless `body` is a well-formed JSON or binary v2 request."""
    header_length = headers.get("Inference-Header-Content-Length")
    binary = header_length is not None
    head = json.loads(body[:int(header_length)] if binary else body)
    assert [i["name"] for i in head["inputs"]] == [i["name"] for i in METADATA["inputs"]]
    offset = int(header_length or 0)
    for given, declared in zip(head["inputs"], METADATA["inputs"]):
        assert given["datatype"] == declared["datatype"], given
        assert given["shape"] == shapes[given["name"]], given
        n = elements(given["shape"])
        if not binary:
            assert len(given["data"]) == n, given
            continue
        size = given["parameters"]["binary_data_size"]
        raw = body[offset:offset + size]
        offset += size
        if given["datatype"] == "BYTES":
            pos = count = 0
            while pos < len(raw):
                pos += 4 + struct.unpack_from("<I", raw, pos)[0]
                count += 1
            assert pos == size and count == n, given
        else:
            assert size == SIZES[given["datatype"]] * n, given
    if binary:
        assert offset == len(body), (offset, len(body))
        assert headers.get("Content-Type") == "application/octet-stream", headers
        assert head["parameters"]["binary_data_output"] is True, head


class FakeV2Server:
    """GET /v2/models/m answers METADATA; POST .../infer answers 200 or 400 with the problem."""

    def __init__(self, shapes):
        outer = self
        self.problems = []
        self.accepted = 0

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 64 * 1024  # head and body in one segment (no delayed-ACK stalls)

            def log_message(self, *args):
                pass

            def reply(self, status, text):
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/v2/models/m":
                    return self.reply(200, json.dumps(METADATA))
                self.reply(404, "{}")

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    assert self.path == "/v2/models/m/infer", self.path
                    check_v2_request(self.headers, body, shapes)
                    outer.accepted += 1
                    self.reply(200, '{"outputs": []}')
                except (AssertionError, KeyError, ValueError) as e:
                    outer.problems.append(repr(e))
                    self.reply(400, json.dumps({"error": repr(e)}))

        self.httpd = quiet_server(Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_v2_json_and_binary_payloads_follow_the_model_metadata_and_shape_overrides():
    shapes = {"x": [3, 4], "ids": [2], "mask": [3], "half": [1], "u8": [5], "text": [2]}
    fake = FakeV2Server(shapes)
    try:
        base = "http://127.0.0.1:%d" % fake.port
        for extra in ([], ["--binary"]):
            _, step = bench(base, "--v2-model", "m", "--shape", "x=3,4", "-c", "2", "-d", "0.5",
                            "--warmup", "0", *extra)
            assert step["requests"] > 0 and step["errors"]["total"] == 0, (extra, step,
                                                                           fake.problems[:3])
        assert fake.accepted > 0 and not fake.problems, fake.problems[:3]
        missing = run_cli("bench", base, "--v2-model", "nope", "-d", "1")
        assert missing.returncode == 1 and "404" in missing.stderr, missing.stderr
    finally:
        fake.close()


# ---- response framings ----------------------------------------------------------------------

RAW_REPLIES = {
    "/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n",
    "/close": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbye",
    "/eof": b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end",
}


class RawReplyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        reply = RAW_REPLIES[self.path]
        self.wfile.write(reply)
        self.close_connection = self.path != "/chunked"


def test_chunked_connection_close_and_read_to_eof_replies_all_count_as_completed():
    httpd = quiet_server(RawReplyHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        for path in RAW_REPLIES:
            url = "http://127.0.0.1:%d%s" % (httpd.server_address[1], path)
            _, step = bench(url, "-c", "2", "-d", "0.3", "--warmup", "0")
            assert step["requests"] > 0 and step["errors"]["total"] == 0, (path, step)
            assert step["status"] == {"200": step["requests"]}, (path, step)
    finally:
        httpd.shutdown()
        httpd.server_close()


if __name__ == "__main__":
    main(globals())
