"""Several machines: a head and worker nodes (`actorserve node`) as separate processes on
127.0.0.1, joined through CAF's network layer.

Placement and routing across nodes, model files shipped to a node, a worker SIGKILLed under
load (every request sent gets exactly one reply; in-flight ones fail at once with 503), rejoin,
heartbeat detection of a stopped worker, token refusal, no orphaned replicas after the head
dies, and TLS between nodes.
"""
import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from harness import BIN, ROOT, Server, app, config, main, run_cli, wait_until

TOKEN = "correct horse battery staple"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    """A running `actorserve node` on 127.0.0.1; stopped by pid on exit."""

    def __init__(self, name, token=TOKEN, port=None, extra=()):
        self.name = name
        self.port = port or free_port()
        self.token = token
        self.extra = list(extra)
        self.proc = None
        self.output = []
        self._lock = threading.Lock()
        self._tmp = tempfile.mkdtemp(prefix=f"actorserve-node-{name}-")
        # Also when a test stops the node without leaving a `with` block.
        atexit.register(shutil.rmtree, self._tmp, ignore_errors=True)

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        args = [BIN, "node", "--listen", self.address, "--name", self.name,
                "--work-dir", os.path.join(self._tmp, "work"), *self.extra]
        if self.token is not None:
            path = os.path.join(self._tmp, "token")
            with open(path, "w") as f:
                f.write(self.token + "\n")
            args += ["--token-file", path]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        ready = threading.Event()

        def pump(proc):
            for line in proc.stdout:
                with self._lock:
                    self.output.append(line)
                if "listening on" in line:
                    ready.set()
            ready.set()

        threading.Thread(target=pump, args=(self.proc,), daemon=True).start()
        ready.wait(15)
        assert self.proc.poll() is None, "node did not start:\n" + self.log()
        return self

    def log(self):
        with self._lock:
            return "".join(self.output)

    def signal(self, sig):
        self.proc.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            self.proc.wait(15)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        shutil.rmtree(self._tmp, ignore_errors=True)


# The heads' token files, in one folder removed when the tests end.
TOKEN_DIR = tempfile.mkdtemp(prefix="actorserve-head-token-")
atexit.register(shutil.rmtree, TOKEN_DIR, ignore_errors=True)


def head_config(nodes, *apps, token=TOKEN, **cluster):
    cfg = config(*apps)
    cfg["nodes"] = [{"name": n.name, "address": n.address} for n in nodes]
    fd, path = tempfile.mkstemp(prefix="token-", dir=TOKEN_DIR)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    cfg["cluster"] = dict({"token_file": path, "heartbeat_interval_s": 0.3,
                           "heartbeat_timeout_s": 1.5, "reconnect_interval_s": 0.3}, **cluster)
    return cfg


def deployment_status(server, app_name, dep_name):
    return server.status()["applications"][app_name]["deployments"][dep_name]


def per_node(server, app_name, dep_name):
    return deployment_status(server, app_name, dep_name)["replicas_per_node"]


def node_states(server):
    return {n["name"]: (n["status"], n["message"]) for n in server.status().get("nodes", [])}


def greeter(replicas, nodes=None):
    d = {"name": "Greeter", "class": "Greeter", "num_replicas": replicas}
    if nodes:
        d["placement"] = {"nodes": nodes}
    return d


def iris_model(nodes, source="head"):
    return {"name": "Iris", "placement": {"nodes": nodes, "model_source": source},
            "model": {"uri": "models:/iris@production",
                      "registry_uri": os.path.join(ROOT, "apps/examples/registry/mlruns"),
                      "labels": "labels.json",
                      "features": ["sepal length", "sepal width", "petal length", "petal width"]}}


VIRGINICA = {"sepal length": 6.3, "sepal width": 3.3, "petal length": 6.0, "petal width": 2.5}


def test_replicas_are_placed_on_the_listed_nodes_and_serve_from_there():
    with Node("w1") as w1, Node("w2") as w2:
        composed = [
            {"name": "ComposedModel", "class": "ComposedModel", "placement": {"nodes": ["w2"]}},
            {"name": "model_one", "class": "RandomScore", "placement": {"nodes": ["head"]}},
            {"name": "model_two", "class": "Echo", "placement": {"nodes": ["w1"]}}]
        cfg = head_config([w1, w2], app("g", "/g", [greeter(4, ["w1", "w2"])]),
                          app("iris", "/iris", [iris_model(["w1"])]),
                          app("c", "/c", composed, ingress="ComposedModel"))
        with Server(cfg) as s:
            assert node_states(s) == {"w1": ("UP", ""), "w2": ("UP", "")}, s.status()
            assert per_node(s, "g", "Greeter") == {"w1": 2, "w2": 2}
            assert per_node(s, "iris", "Iris") == {"w1": 1}
            replicas = deployment_status(s, "g", "Greeter")["replicas"]
            assert sorted(r["node"] for r in replicas) == ["w1", "w1", "w2", "w2"]
            seen = set()
            for _ in range(40):
                r = s.post("/g", {"name": "node"})
                assert r.status == 200, r
                seen.add(r.json()["replica_id"])
            assert len(seen) == 4, seen  # every replica, on both nodes, took calls
            # The model's files went from the head to w1, which loaded and serves them.
            r = s.post("/iris", VIRGINICA)
            assert r.status == 200 and r.json() == {"result": "virginica"}, r
            model = deployment_status(s, "iris", "Iris")["model"]
            assert model["version"] == "1" and "session-" in model["uri"], model
            # Composition across nodes: the ingress on w2 calls the head and w1.
            r = s.post("/c", {"x": 1})
            assert r.status == 200, r
            text = run_cli("status", "--address", f"http://127.0.0.1:{s.port}").stdout
            assert re.search(r"node w1 +127\.0\.0\.1:\d+ +UP", text), text
            assert re.search(r"g#Greeter#\d+ +RUNNING +in-flight \d+ +node w2", text), text
        for w in (w1, w2):
            assert re.search(r"head \S+ at \S+ joined", w.log()), w.log()
        assert w1.log().count("started replica g#Greeter") == 2, w1.log()
        assert "started replica iris#Iris#0" in w1.log()
        assert "started replica c#ComposedModel#0" in w2.log()


def test_a_model_source_node_is_resolved_by_the_node_itself():
    with Node("w1") as w1:
        cfg = head_config([w1], app("iris", "/iris", [iris_model(["w1"], source="node")]))
        with Server(cfg) as s:
            r = s.post("/iris", VIRGINICA)
            assert r.status == 200 and r.json() == {"result": "virginica"}, r
            model = deployment_status(s, "iris", "Iris")["model"]
            assert "session-" not in model["uri"], model  # read where the registry has it


def load(server, path, body, stop, results, lock):
    """One closed-loop client: records (status, seconds) of every request it sent."""
    while not stop.is_set():
        try:
            sent_at = time.monotonic()
            r = server.post(path, body, timeout=60)
            entry = (r.status, r.elapsed, r.body[:200], sent_at)
        except Exception as e:  # a dropped connection would be a lost reply
            entry = ("no reply", 0.0, repr(e), 0.0)
        with lock:
            results.append(entry)


def test_a_worker_killed_under_load_fails_in_flight_at_once_and_every_request_gets_one_reply():
    with Node("w1") as w1, Node("w2") as w2:
        sleeper = {"name": "Sleeper", "class": "Sleeper", "num_replicas": 4,
                   "max_ongoing_requests": 2, "placement": {"nodes": ["w1", "w2"]}}
        cfg = head_config([w1, w2], app("s", "/s", [sleeper]))
        with Server(cfg) as s:
            assert per_node(s, "s", "Sleeper") == {"w1": 2, "w2": 2}
            stop, lock, results = threading.Event(), threading.Lock(), []
            clients = [threading.Thread(target=load, args=(s, "/s", {"sleep_s": 0.3}, stop,
                                                           results, lock))
                       for _ in range(12)]
            for c in clients:
                c.start()
            time.sleep(1.5)
            w1.signal(signal.SIGKILL)
            killed_at = time.monotonic()
            time.sleep(2.5)
            stop.set()
            for c in clients:
                c.join(60)
            sent = len(results)  # one entry per request sent, written when its reply came
            statuses = [r[0] for r in results]
            assert "no reply" not in statuses, [r for r in results if r[0] == "no reply"]
            assert set(statuses) <= {200, 503}, [r for r in results if r[0] not in (200, 503)]
            failed = [r for r in results if r[0] == 503]
            # The requests running on w1 when it died: failed with 503 at once, not at a timeout.
            assert 1 <= len(failed) <= 4, ([(r[0], round(r[1], 3), round(r[3] - killed_at, 3))
                                            for r in failed], s.log())
            assert all(r[1] < 2.0 for r in failed), failed
            assert all("was lost" in r[2] for r in failed), failed
            assert statuses.count(200) + len(failed) == sent
            print(f"    {sent} requests sent, {sent} answered: {statuses.count(200)} x 200, "
                  f"{len(failed)} x 503 (in flight on the killed worker)")
            # Its replicas were placed again on the node that remains, and serve.
            assert wait_until(lambda: per_node(s, "s", "Sleeper") == {"w2": 4}, timeout=10), \
                s.status()
            assert node_states(s)["w1"][0] == "DOWN"
            assert s.post("/s", {"sleep_s": 0}).status == 200
            assert time.monotonic() - killed_at < 30

            # The worker comes back on its port: it rejoins and takes replicas again.
            w1b = Node("w1", port=w1.port).start()
            try:
                assert wait_until(lambda: node_states(s)["w1"][0] == "UP", timeout=10), s.status()
                assert wait_until(lambda: per_node(s, "s", "Sleeper") == {"w1": 2, "w2": 2},
                                  timeout=15), s.status()
                assert "started replica s#Sleeper" in w1b.log()
                replies, _ = s.concurrently([("POST", "/s", {"sleep_s": 0})] * 8)
                assert all(r.status == 200 for r in replies), replies
            finally:
                w1b.stop()


def test_a_stopped_worker_is_detected_by_heartbeat_and_rejoins_when_it_continues():
    with Node("w1") as w1, Node("w2") as w2:
        cfg = head_config([w1, w2], app("g", "/g", [greeter(2, ["w1", "w2"])]))
        with Server(cfg) as s:
            assert per_node(s, "g", "Greeter") == {"w1": 1, "w2": 1}
            w2.signal(signal.SIGSTOP)  # no RST: only the heartbeat can tell
            stopped_at = time.monotonic()
            assert wait_until(lambda: node_states(s)["w2"][0] == "DOWN", timeout=6), s.status()
            detected = time.monotonic() - stopped_at
            assert detected < 1.5 + 0.3 + 1.0, detected  # timeout + interval + slack
            assert "no heartbeat answer within 1.5 s" in node_states(s)["w2"][1]
            assert wait_until(lambda: per_node(s, "g", "Greeter") == {"w1": 2}, timeout=10)
            for _ in range(6):
                assert s.post("/g", {}, timeout=10).status == 200
            w2.signal(signal.SIGCONT)
            assert wait_until(lambda: node_states(s)["w2"][0] == "UP", timeout=10), s.status()
            assert wait_until(lambda: per_node(s, "g", "Greeter") == {"w1": 1, "w2": 1},
                              timeout=15), s.status()
        # The session it had before the stop was ended (by its own watchdog, as no ping came
        # while it was stopped, or when the head joined again); its replica was stopped by then
        # or then (the head's stop message arrives once the node runs again).
        assert re.search(r"ending the session of head \S+ \((no ping for 1500 ms|the head joined "
                         r"again)\)", w2.log()), w2.log()
        assert w2.log().count("started replica") == 2, w2.log()


def test_a_node_refuses_a_head_with_the_wrong_token():
    with Node("w1") as w1:
        cfg = head_config([w1], app("g", "/g", [greeter(1, ["w1"])]), token="wrong token")
        with Server(cfg) as s:
            state, message = node_states(s)["w1"]
            assert state == "DOWN" and "bad token" in message, s.status()
            dep = deployment_status(s, "g", "Greeter")
            assert dep["status"] == "UNHEALTHY" and "no node of its placement" in dep["message"]
            r = s.post("/g", {})
            assert r.status == 503 and "bad token" in r.body, r
            assert "bad token" in s.log()
        assert "refused a join" in w1.log() and "bad token" in w1.log(), w1.log()
        assert "started replica" not in w1.log()


def test_a_head_that_dies_leaves_no_replicas_running_on_its_nodes():
    with Node("w1") as w1:
        cfg = head_config([w1], app("g", "/g", [greeter(2, ["w1"])]))
        with Server(cfg) as s:
            assert per_node(s, "g", "Greeter") == {"w1": 2}
            s.stop(signal.SIGKILL)
        assert wait_until(lambda: "the head went away" in w1.log(), timeout=10), w1.log()
        assert re.search(r"the head went away[^\n]*stopping 2 replica", w1.log()), w1.log()
        # A new head (the restart) joins and places its own replicas; none of the old remain.
        with Server(cfg) as s2:
            assert per_node(s2, "g", "Greeter") == {"w1": 2}
            assert s2.post("/g", {}).status == 200
            s2.stop()  # SIGTERM: the head leaves
        assert wait_until(lambda: "the head left" in w1.log(), timeout=10), w1.log()


def make_certificate(folder):
    key, cert = os.path.join(folder, "key.pem"), os.path.join(folder, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def test_nodes_and_heads_talk_over_tls_when_configured():
    if shutil.which("openssl") is None:
        print("    skipped: no openssl command to make a certificate")
        return
    folder = tempfile.mkdtemp(prefix="actorserve-tls-")
    try:
        cert, key = make_certificate(folder)
        tls = ["--tls-cert", cert, "--tls-key", key, "--tls-ca", cert]
        with Node("w1", extra=tls) as w1:
            assert "(TLS)" in w1.log()
            cfg = head_config([w1], app("g", "/g", [greeter(1, ["w1"])]),
                              tls={"certificate": cert, "key": key, "ca_file": cert})
            with Server(cfg) as s:
                assert node_states(s)["w1"][0] == "UP", s.status()
                r = s.post("/g", {"name": "tls"})
                assert r.status == 200 and r.json()["message"] == "Hello, tls!", r
            # A head without TLS cannot join a TLS node.
            plain = head_config([w1], app("g", "/g", [greeter(1, ["w1"])]))
            with Server(plain) as s:
                assert node_states(s)["w1"][0] == "DOWN", s.status()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main(globals())
