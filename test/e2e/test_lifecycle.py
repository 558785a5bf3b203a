"""Backpressure, timeouts, replica failure, reconfiguration, the CLI and graceful shutdown."""
import json
import os
import signal
import tempfile
import threading
import time

from harness import BIN, Server, app, config, main, run_cli, wait_until


def run_with_config(cfg, *args, timeout=20):
    """Runs `actorserve <args...> CONFIG_FILE` with cfg written to a temporary file."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(cfg, f)
    try:
        return run_cli(*args[:1], f.name, *args[1:], timeout=timeout)
    finally:
        os.unlink(f.name)


def sleeper(max_ongoing=1, max_queued=-1, replicas=1):
    return {"name": "Sleeper", "class": "Sleeper", "num_replicas": replicas,
            "max_ongoing_requests": max_ongoing, "max_queued_requests": max_queued}


def test_beyond_max_queued_requests_callers_get_503_backpressure():
    cfg = config(app("bp", "/bp", [sleeper(max_ongoing=1, max_queued=1)]))
    with Server(cfg) as s:
        replies, _ = s.concurrently([("POST", "/bp", {"sleep_s": 0.5})] * 4)
        statuses = sorted(r.status for r in replies)
        assert statuses == [200, 200, 503, 503], replies
        dropped = [r for r in replies if r.status == 503]
        assert all(r.body.startswith("Request dropped due to backpressure") for r in dropped)
        assert s.post("/bp", {"sleep_s": 0}).status == 200  # 503 means retry later: it works


def test_request_timeout_s_gives_408_whether_running_or_queued():
    cfg = config(app("slow", "/slow", [sleeper(max_ongoing=1)]), request_timeout_s=0.4)
    with Server(cfg) as s:
        replies, elapsed = s.concurrently([("POST", "/slow", {"sleep_s": 1.0})] * 2)
        assert [r.status for r in replies] == [408, 408], replies
        assert elapsed < 0.9, elapsed
        assert "timed out after" in replies[0].body
        time.sleep(1.2)  # let the running call finish
        assert s.post("/slow", {"sleep_s": 0}).status == 200


def test_a_dead_replica_is_replaced_and_requests_it_had_not_started_are_rerouted():
    dep = {"name": "Crasher", "class": "Crasher", "num_replicas": 2, "max_ongoing_requests": 5}
    with Server(config(app("crash", "/crash", [dep]))) as s:
        before = {r["replica_id"] for r in
                  s.status()["applications"]["crash"]["deployments"]["Crasher"]["replicas"]}
        calls = [("POST", "/crash", {"crash": True, "sleep_s": 0.3})]
        calls += [("POST", "/crash", {"sleep_s": 0.05})] * 8
        replies, _ = s.concurrently(calls)
        assert replies[0].status == 500 and "replica failed" in replies[0].body, replies[0]
        # 8 calls over two replicas capped at 5: some sat behind the crashing call and were
        # routed again; none is lost or failed
        assert [r.status for r in replies[1:]] == [200] * 8, replies

        def replaced():
            dep = s.status()["applications"]["crash"]["deployments"]["Crasher"]
            ids = {r["replica_id"] for r in dep["replicas"] if r["state"] == "RUNNING"}
            return dep["status"] == "HEALTHY" and len(ids) == 2 and ids != before
        assert wait_until(replaced, timeout=10), s.status()
        assert "stopped unexpectedly" in s.log()


def test_user_config_is_reapplied_through_reconfigure_without_restarting_replicas():
    greeter = {"name": "Greeter", "class": "Greeter", "user_config": {"greeting": "Hello"}}
    cfg = config(app("greet", "/greet", [greeter]))
    with Server(cfg) as s:
        first = s.post("/greet", {"name": "Ada"}).json()
        assert first["message"] == "Hello, Ada!"
        greeter["user_config"] = {"greeting": "Bonjour"}
        out = run_with_config(cfg, "deploy", "--address", f"http://127.0.0.1:{s.port}")
        assert out.returncode == 0, out.stderr
        second = s.post("/greet", {"name": "Ada"}).json()
        assert second["message"] == "Bonjour, Ada!"
        assert second["instance"] == first["instance"]          # same object: no restart
        assert second["replica_id"] == first["replica_id"]
        assert second["reconfigures"] == first["reconfigures"] + 1


def test_put_applications_scales_and_removes_applications():
    cfg = config(app("a", "/a", [{"name": "Echo", "class": "Echo"}]),
                 app("b", "/b", [{"name": "Noop", "class": "Noop"}]))
    with Server(cfg) as s:
        cfg["applications"][0]["deployments"][0]["num_replicas"] = 3
        del cfg["applications"][1]
        r = s.request("PUT", "/api/serve/applications/", json.dumps(cfg))
        assert r.status == 200, r
        st = s.status()["applications"]
        assert set(st) == {"a"}
        assert len(st["a"]["deployments"]["Echo"]["replicas"]) == 3
        assert s.get("/b").status == 404
        assert s.post("/a", '"x"').body == '"x"'
        bad = s.request("PUT", "/api/serve/applications/", '{"applications": []}')
        assert bad.status == 400 and "applications" in bad.body
        # An apply that fails half-way (a constructor throws) still updates the routes.
        cfg["applications"] = [app("c", "/c", [{"name": "B", "class": "BrokenConstructor"}])]
        failed = s.request("PUT", "/api/serve/applications/", json.dumps(cfg))
        assert failed.status == 500 and "on purpose" in failed.body, failed
        assert s.get("/-/routes").json() == {"/c": "c"}
        assert s.get("/a").status == 404
        assert s.get("/c").status == 503


def test_a_code_change_rolls_out_without_failing_requests_in_flight():
    cfg = config(app("roll", "/roll", [{"name": "M", "class": "Echo", "num_replicas": 2}]))
    with Server(cfg) as s:
        before = {r["replica_id"] for r in
                  s.status()["applications"]["roll"]["deployments"]["M"]["replicas"]}
        stop = threading.Event()
        statuses = []

        def hammer():
            while not stop.is_set():
                statuses.append(s.post("/roll", '"x"').status)

        workers = [threading.Thread(target=hammer) for _ in range(4)]
        for w in workers:
            w.start()
        time.sleep(0.2)
        cfg["applications"][0]["deployments"][0]["class"] = "Noop"
        r = s.request("PUT", "/api/serve/applications/", json.dumps(cfg))
        time.sleep(0.2)
        stop.set()
        for w in workers:
            w.join()
        assert r.status == 200, r
        assert statuses and set(statuses) == {200}, sorted(set(statuses))
        assert s.get("/roll").body == '"ok"'  # the new code serves

        def old_gone():
            reps = s.status()["applications"]["roll"]["deployments"]["M"]["replicas"]
            ids = {x["replica_id"] for x in reps}
            return len(ids) == 2 and not (ids & before)
        assert wait_until(old_gone, timeout=10), s.status()


def test_a_bad_config_exits_non_zero_naming_the_json_path():
    bad = config(app("x", "/x", [{"name": "N", "class": "Noop",
                                  "batching": {"max_batch_size": 0}}]))
    out = run_with_config(bad, "run", "--port", "0")
    check = run_with_config(bad, "check")
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    assert "applications[0].deployments[0].batching.max_batch_size" in out.stderr, out.stderr
    assert "listening" not in out.stdout
    assert check.returncode == 2 and "max_batch_size" in check.stderr
    unknown = run_cli("check", os.path.join(tempfile.gettempdir(), "missing-config.json"))
    assert unknown.returncode == 2 and "cannot read" in unknown.stderr


def test_a_failing_constructor_stops_start_up_with_its_message():
    cfg = config(app("broken", "/broken", [{"name": "B", "class": "BrokenConstructor"}]))
    out = run_with_config(cfg, "run", "--port", "0")
    assert out.returncode == 1, (out.returncode, out.stderr)
    assert "model file is missing (on purpose)" in out.stderr, out.stderr


def test_a_registry_uri_without_a_registry_is_refused_naming_what_to_set():
    cfg = config(app("m", "/m", [{"name": "M", "model": {"uri": "models:/iris@production"}}]))
    out = run_with_config(cfg, "run", "--port", "0")
    assert out.returncode == 1, (out.returncode, out.stderr)
    assert "models:/iris@production" in out.stderr, out.stderr
    assert "registry_uri" in out.stderr, out.stderr


def test_every_command_has_help():
    for args in (["--help"], ["run", "--help"], ["status", "--help"], ["deploy", "--help"],
                 ["check", "--help"]):
        out = run_cli(*args)
        assert out.returncode == 0 and "Usage" in out.stdout, (args, out.stdout, out.stderr)
    assert run_cli("frobnicate").returncode == 2


def test_status_command_prints_applications_readably():
    cfg = config(app("noop", "/noop", [{"name": "Noop", "class": "Noop", "num_replicas": 2}]))
    with Server(cfg) as s:
        out = run_cli("status", "--address", f"http://127.0.0.1:{s.port}")
        assert out.returncode == 0, out.stderr
        assert "noop  RUNNING  route /noop" in out.stdout, out.stdout
        assert "replicas 2/2 running" in out.stdout, out.stdout
    down = run_cli("status", "--address", "http://127.0.0.1:1")
    assert down.returncode == 1 and "cannot reach" in down.stderr


def test_sigterm_drains_in_flight_requests_then_exits_zero():
    cfg = config(app("slow", "/slow", [sleeper(max_ongoing=4)]))
    with Server(cfg) as s:
        results = []
        t = threading.Thread(target=lambda: results.append(s.post("/slow", {"sleep_s": 1.0})))
        t.start()
        time.sleep(0.3)
        code = s.stop(signal.SIGTERM)
        t.join()
        assert results and results[0].status == 200, results
        assert code == 0, (code, s.log())
        assert "draining" in s.log()


if __name__ == "__main__":
    main(globals())
