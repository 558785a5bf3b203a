"""The HTTP/1.1 front door as clients and attackers use it: GET bodies from the Ray Serve guide's
clients, pipelining, half-close, chunked bodies and their limit, strict framing, limits with
their own statuses, deadlines, idle and slow connections, deep JSON on every route kind, the
port check and /metrics for early errors."""
import json
import os
import socket
import subprocess
import threading
import time

from harness import BIN, ROOT, Server, app, config, main, wait_until
from http_client import (Connection, raise_open_files_limit, request_bytes, requests_style,
                         timed)

IRIS = os.path.join(ROOT, "apps", "examples", "models", "iris")
IRIS_MODEL = {"uri": IRIS, "labels": os.path.join(IRIS, "labels.json"),
              "features": ["sepal length", "sepal width", "petal length", "petal width"]}
MLP = os.path.join(ROOT, "test", "fixtures", "models", "torch_mlp")

CONFIG = config(
    app("noop", "/noop", [{"name": "Noop", "class": "Noop"}]),
    app("echo", "/echo", [{"name": "Echo", "class": "Echo", "max_ongoing_requests": 64}]),
    app("composed", "/composed", [
        {"name": "ComposedModel", "class": "ComposedModel", "max_ongoing_requests": 10},
        {"name": "model_one", "class": "RandomScore"},
        {"name": "model_two", "class": "Echo"}], ingress="ComposedModel"),
    app("iris", "/regressor", [{"name": "BoostingModel", "model": IRIS_MODEL}]),
    app("mlp", "/mlp", [{"name": "mlp", "model": {"uri": MLP}}]),
    app("graph", "/graph", [
        {"name": "Score", "class": "Echo"},
        {"name": "Pipeline", "graph": {"sequence": ["Score", "Score"]}}], ingress="Pipeline"),
    app("slow", "/slow", [{"name": "Sleeper", "class": "Sleeper", "max_ongoing_requests": 8}]),
    max_body_bytes=1024 * 1024, max_header_count=50, max_url_bytes=2048,
    max_header_bytes=8192)

IRIS_REQUEST = {"sepal length": 6.3, "sepal width": 3.3, "petal length": 6.0,
                "petal width": 2.5}


def test_get_bodies_as_the_guides_clients_send_them():
    with Server(CONFIG) as s, Connection(s.port) as c:
        # requests.get(url, data="Hey!") and requests.get(url, json=payload), byte for byte.
        c.send(requests_style("GET", "/echo", s.port, '"Hey!"'))
        r = c.read_response()
        assert (r.status, r.text()) == (200, '"Hey!"'), r
        c.send(requests_style("GET", "/regressor", s.port, json.dumps(IRIS_REQUEST),
                              "application/json"))
        r = c.read_response()
        assert r.status == 200 and json.loads(r.body) == {"result": "virginica"}, r
        c.send(requests_style("GET", "/composed", s.port, json.dumps("hello"),
                              "application/json"))
        r = c.read_response()
        assert r.status == 200 and "model_used" in r.text(), r
    # The real library, as the guide's client code calls it: with the test venv's python, which
    # scripts/test makes (scripts/test-requirements.txt has requests) and exports.
    python = os.environ.get("ACTORSERVE_TEST_PYTHON")
    if not python:
        print("  (requests itself skipped: ACTORSERVE_TEST_PYTHON is not set)")
        return
    client = f"""
import json, requests
base = "http://127.0.0.1:%d"
r = requests.get(base + "/echo", data='"Hey!"')
assert (r.status_code, r.text) == (200, '"Hey!"'), r.text
r = requests.get(base + "/regressor", json={json.dumps(IRIS_REQUEST)})
assert r.json() == {{"result": "virginica"}}, r.text
r = requests.get(base + "/composed", json="hello")
assert r.status_code == 200 and "model_used" in r.text, r.text
print("requests ok")
"""
    with Server(CONFIG) as s:
        out = subprocess.run([python, "-c", client % s.port], capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0 and "requests ok" in out.stdout, out.stdout + out.stderr


def test_pipelined_requests_are_answered_in_order():
    with Server(CONFIG) as s, Connection(s.port) as c:
        burst = b"".join(request_bytes("POST", "/echo", json.dumps({"n": i})) for i in range(40))
        c.send(burst)  # more than max_pipelined_requests (16): reading pauses and resumes
        for i in range(40):
            r = c.read_response()
            assert r.status == 200 and json.loads(r.body) == {"n": i}, (i, r)
        # Mixed methods and a slow one first: answers still come back in request order.
        c.send(request_bytes("POST", "/slow", json.dumps({"sleep_s": 0.3}))
               + request_bytes("GET", "/noop") + request_bytes("GET", "/-/healthz"))
        first = c.read_response()
        assert first.status == 200 and "slept_s" in first.text(), first
        assert c.read_response().text() == '"ok"'
        assert c.read_response().text() == "success"


def test_a_half_closed_client_still_gets_its_replies():
    with Server(CONFIG) as s, Connection(s.port) as c:
        c.send(request_bytes("POST", "/slow", json.dumps({"sleep_s": 0.2}))
               + request_bytes("GET", "/noop"))
        c.shutdown_write()
        assert c.read_response().status == 200
        assert c.read_response().text() == '"ok"'
        assert c.at_eof()


def test_chunked_bodies_are_read_and_the_limit_holds_while_they_arrive():
    with Server(CONFIG) as s:
        with Connection(s.port) as c:
            c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"4\r\n[1, \r\n3\r\n2, \r\n2\r\n3]\r\n0\r\n\r\n")
            r = c.read_response()
            assert (r.status, r.text()) == (200, "[1, 2, 3]"), r
        rss_before = rss_kib(s.proc.pid)
        with Connection(s.port) as c:
            c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
            status = None
            try:
                for _ in range(50 * 16):  # 50 MB in all, if the server let it in
                    c.send(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
            try:
                r = c.read_response()
                status = r.status
                assert "max_body_bytes=1048576" in r.text(), r
            except (EOFError, ConnectionResetError):
                pass
            assert status == 413, status
        assert rss_kib(s.proc.pid) - rss_before < 20 * 1024, (rss_before, rss_kib(s.proc.pid))
        assert s.get("/noop").status == 200


def test_malformed_framing_is_refused_at_once():
    cases = {
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n": 400,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n": 400,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n": 400,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n": 400,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n": 400,
        b"GET /noop HTTP/1.1\r\nHost: x\r\nX-Evil: a\x01b\r\n\r\n": 400,
        b"GET /noop HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n": 400,
        b"GET /noop HTTP/1.1\r\n\r\n": 400,  # no Host
        b"GET /noop HTTP/3.0\r\nHost: x\r\n\r\n": 505,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n": 417,
        b"GARBAGE\r\n\r\n": 400,
    }
    with Server(CONFIG) as s:
        for raw, expected in cases.items():
            with Connection(s.port) as c:
                c.send(raw)
                r, elapsed = timed(c.read_response)
                assert r.status == expected, (raw, r)
                assert elapsed < 1.0, (raw, elapsed)
                assert r.headers.get("connection") == "close", (raw, r.headers)
                assert c.at_eof(), raw
        # A POST without Content-Length has an empty body (RFC 9112 §6.3), answered at once.
        with Connection(s.port) as c:
            c.send(b"POST /noop HTTP/1.1\r\nHost: x\r\n\r\n")
            r, elapsed = timed(c.read_response)
            assert r.status == 200 and elapsed < 1.0, (r, elapsed)
        assert s.get("/-/healthz").status == 200


def test_limits_have_their_own_statuses():
    with Server(CONFIG) as s:
        def status_of(raw):
            with Connection(s.port) as c:
                c.send(raw)
                return c.read_response().status
        many = "".join(f"X-H{i}: v\r\n" for i in range(60))
        assert status_of(f"GET /noop HTTP/1.1\r\nHost: x\r\n{many}\r\n".encode()) == 431
        big = "X-Big: " + "v" * 9000 + "\r\n"
        assert status_of(f"GET /noop HTTP/1.1\r\nHost: x\r\n{big}\r\n".encode()) == 431
        assert status_of(f"GET /noop?{'q' * 3000} HTTP/1.1\r\nHost: x\r\n\r\n".encode()) == 414
        assert status_of(f"GET /{'p' * 20000} HTTP/1.1\r\nHost: x\r\n\r\n".encode()) == 414
        over = request_bytes("POST", "/echo", b"x" * (1024 * 1024 + 1))
        assert status_of(over) == 413
        # 413 from the header alone: the body is never sent.
        with Connection(s.port) as c:
            c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n")
            r = c.read_response()
            assert r.status == 413 and "999999999" in r.text(), r


def test_expect_100_continue_and_http_1_0():
    with Server(CONFIG) as s:
        with Connection(s.port) as c:
            c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                   b"Content-Length: 7\r\n\r\n")
            interim = c.read_any_response()
            assert interim.status == 100, interim
            c.send(b'"hello"')
            r = c.read_response()
            assert (r.status, r.text()) == (200, '"hello"'), r
        with Connection(s.port) as c:
            c.send(b"GET /noop HTTP/1.0\r\n\r\n")
            r = c.read_response()
            assert r.status == 200 and r.text() == '"ok"', r
            assert c.at_eof()
        with Connection(s.port) as c:
            c.send(b"GET /noop HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" * 2)
            assert c.read_response().headers.get("connection") == "keep-alive"
            assert c.read_response().status == 200
        with Connection(s.port) as c:
            c.send(request_bytes("HEAD", "/noop"))
            r = c.read_response(head_request=True)
            assert r.status == 200 and r.headers["content-length"] == "4" and r.body == b""


def test_deep_json_on_every_route_kind_is_refused_without_a_crash():
    deep = "[" * 300000
    with Server(CONFIG) as s:
        for path in ["/echo", "/composed", "/regressor", "/graph", "/mlp"]:
            r = s.post(path, deep)
            assert r.status == 400 and "nesting deeper than 128" in r.body, (path, r)
        v2 = s.post("/v2/models/mlp/infer", deep)
        assert v2.status == 400 and "nesting deeper" in v2.json()["error"], v2
        put = s.request("PUT", "/api/serve/applications/", deep)
        assert put.status == 400 and "nesting deeper" in put.body, put
        index = s.post("/v2/repository/index", deep)
        assert index.status == 400, index
        assert s.get("/-/healthz").status == 200


def test_replies_stay_valid_utf8_and_json_whatever_the_request_holds():
    with Server(CONFIG) as s, Connection(s.port) as c:
        c.send(b"GET /nope\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        assert r.status == 404
        r.text()  # valid UTF-8
        c.send(b"POST /v2/models/m\xff/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        r = c.read_response()
        assert r.status == 404 and "error" in json.loads(r.body.decode("utf-8")), r
        c.send(request_bytes("POST", "/echo", b'"\xff"'))
        r = c.read_response()
        assert r.status == 400, r
        r.text()


def slow_loris(port, conns, stop):
    """Keeps `conns` connections dripping one header byte at a time."""
    line = b"GET /noop HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
    i = 0
    while not stop.is_set() and i < len(line):
        for c in conns:
            try:
                c.send(line[i:i + 1])
            except OSError:
                pass
        i += 1
        time.sleep(0.05)


def test_hundreds_of_idle_and_slow_connections_do_not_delay_a_normal_client():
    raise_open_files_limit(4096)
    cfg = dict(CONFIG)
    with Server(cfg) as s:
        idle = [Connection(s.port) for _ in range(300)]
        # Half of them made one request and now sit on the keep-alive connection.
        for c in idle[:150]:
            c.send(request_bytes("GET", "/noop"))
        for c in idle[:150]:
            assert c.read_response().status == 200
        slow = [Connection(s.port) for _ in range(200)]
        stop = threading.Event()
        dripper = threading.Thread(target=slow_loris, args=(s.port, slow, stop))
        dripper.start()
        try:
            times = []
            for _ in range(50):
                r, elapsed = timed(lambda: s.get("/noop"))
                assert r.status == 200
                times.append(elapsed)
            times.sort()
            assert times[-1] < 0.5, times[-5:]
        finally:
            stop.set()
            dripper.join()
            for c in idle + slow:
                c.close()


def test_one_deadline_for_a_whole_request_and_an_idle_timeout():
    cfg = config(app("noop", "/noop", [{"name": "Noop", "class": "Noop"}]),
                 request_read_timeout_s=1, keep_alive_timeout_s=1)
    with Server(cfg) as s:
        with Connection(s.port) as c:
            start = time.monotonic()
            for b in b"GET /noop HTTP/1.1\r\nHost: x\r\nX-Drip: 1234567890":
                try:
                    c.send(bytes([b]))
                except OSError:
                    break
                time.sleep(0.05)  # a byte every 50 ms: each read is quick, the request is not
                if time.monotonic() - start > 3:
                    break
            r = c.read_response()
            assert r.status == 408, r
            assert time.monotonic() - start < 2.5
        with Connection(s.port) as c:
            c.send(request_bytes("GET", "/noop"))
            assert c.read_response().status == 200
            closed, elapsed = timed(lambda: c.at_eof(timeout=5))
            assert closed and 0.5 < elapsed < 2.5, elapsed


def test_max_connections_pauses_accepting_without_failing():
    cfg = config(app("noop", "/noop", [{"name": "Noop", "class": "Noop"}]), max_connections=8)
    with Server(cfg) as s:
        held = [Connection(s.port) for _ in range(8)]
        for c in held:
            c.send(request_bytes("GET", "/noop"))
            assert c.read_response().status == 200
        waiting = Connection(s.port)  # accepted by the kernel, not yet by the server
        waiting.send(request_bytes("GET", "/noop"))
        waiting.sock.settimeout(0.5)
        try:
            waiting.read_response()
            raise AssertionError("served beyond max_connections")
        except socket.timeout:
            pass
        held[0].close()
        waiting.sock.settimeout(5)
        assert waiting.read_response().status == 200
        for c in held[1:] + [waiting]:
            c.close()
        assert s.get("/noop").status == 200


def test_a_port_in_use_fails_at_start_with_a_clear_message():
    with Server(CONFIG) as s:
        path = os.path.join(s._tmp.name, "second.json")
        with open(path, "w") as f:
            json.dump(CONFIG, f)
        second = subprocess.run([BIN, "run", path, "--port", str(s.port)], capture_output=True,
                                text=True, timeout=30)
        assert second.returncode != 0
        assert "Address already in use" in second.stderr, second.stderr
        assert str(s.port) in second.stderr
        assert s.get("/noop").status == 200


def test_early_errors_are_counted_in_metrics():
    with Server(CONFIG) as s:
        for raw in [b"GET /noop HTTP/1.1\r\nNoColon\r\n\r\n",
                    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n"]:
            with Connection(s.port) as c:
                c.send(raw)
                c.read_response()
        s.get("/missing")
        metrics = s.get("/metrics").body
        for status in ("400", "413", "404"):
            assert (f'ray_serve_num_http_requests_total{{route="",method="' in metrics
                    and f'status_code="{status}"}}' in metrics), (status, metrics[:3000])


def test_sigterm_closes_idle_keep_alive_connections_and_exits_at_once():
    with Server(CONFIG) as s:
        conns = [Connection(s.port) for _ in range(50)]
        for c in conns:
            c.send(request_bytes("GET", "/noop"))
            assert c.read_response().status == 200
        code, elapsed = timed(lambda: s.stop())
        assert code == 0 and elapsed < 3.0, (code, elapsed, s.log())
        assert all(c.at_eof(timeout=1) for c in conns)
        for c in conns:
            c.close()


def test_sigterm_answers_503_when_a_handler_outlives_the_grace():
    cfg = config(app("slow", "/slow", [{"name": "Sleeper", "class": "Sleeper",
                                        "graceful_shutdown_timeout_s": 1}]))
    with Server(cfg) as s:
        results = []
        t = threading.Thread(target=lambda: results.append(
            s.post("/slow", {"sleep_s": 30}, timeout=60)))
        t.start()
        time.sleep(0.3)
        code, elapsed = timed(lambda: s.stop(timeout=20))
        t.join()
        assert code == 0, (code, s.log())
        assert elapsed < 1 + 4.5, elapsed  # the grace plus a small constant
        assert results and results[0].status == 503, results
        assert "grace period over" in s.log()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


if __name__ == "__main__":
    main(globals())
