"""HTTP ingress: routing, Ray's helper routes, request ids, body limit, user exceptions."""
import subprocess

from harness import Server, app, config, main

CONFIG = config(
    app("noop", "/noop", [{"name": "Noop", "class": "Noop"}]),
    app("outer", "/a", [{"name": "Echo", "class": "Echo"}]),
    app("inner", "/a/b", [{"name": "Greeter", "class": "Greeter"}]),
    app("throw", "/throw", [{"name": "Thrower", "class": "Thrower"}]),
    max_body_bytes=1024)


def test_routes_health_and_longest_prefix():
    with Server(CONFIG) as s:
        routes = s.get("/-/routes")
        assert routes.status == 200
        assert routes.json() == {"/noop": "noop", "/a": "outer", "/a/b": "inner",
                                 "/throw": "throw"}
        health = s.get("/-/healthz")
        assert (health.status, health.body) == (200, "success")
        assert s.get("/noop").body == '"ok"'
        # "/a/b/x" belongs to the longest prefix; "/ab" belongs to nobody.
        assert "message" in s.post("/a/b/x", {"name": "Ada"}).json()
        assert s.post("/a/x", {"v": 1}).json() == {"v": 1}
        missing = s.get("/ab")
        assert missing.status == 404
        assert "/-/routes" in missing.body and "'/ab'" in missing.body


def test_request_id_is_echoed_or_generated():
    with Server(CONFIG) as s:
        given = s.get("/noop", headers={"x-request-id": "req-42"})
        assert given.headers["x-request-id"] == "req-42"
        generated = s.get("/noop").headers["x-request-id"]
        assert len(generated) >= 16 and generated != "req-42"
        assert s.get("/noop").headers["x-request-id"] != generated


def test_body_over_the_limit_is_413():
    with Server(CONFIG) as s:
        too_big = s.post("/a", '"' + "x" * 2000 + '"')
        assert too_big.status == 413
        assert "max_body_bytes=1024" in too_big.body, too_big.body
        assert s.post("/a", '"small"').status == 200


def test_user_exception_is_500_and_the_server_stays_up():
    with Server(CONFIG) as s:
        bad = s.post("/throw", {"fail": True})
        assert bad.status == 500
        assert "user code failed on purpose" in bad.body
        invalid = s.post("/throw", "{not json")
        assert invalid.status == 400 and "not valid JSON" in invalid.body
        assert s.post("/throw", {"fail": False}).status == 200
        assert s.get("/noop").status == 200


def listen_backlog(port):
    """The accept-queue size of the socket listening on `port` (ss's Send-Q column)."""
    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True)
    fields = out.stdout.split()
    return int(fields[2])


def test_a_burst_of_new_connections_is_accepted_without_syn_retransmits():
    # cpp-httplib's default listen backlog of 5 drops SYNs of bursts like this one when the
    # accept thread waits for a core, costing the unlucky clients a 1 s retransmit.
    with Server(CONFIG) as s:
        assert listen_backlog(s.port) >= 1024
        replies, elapsed = s.concurrently([("GET", "/noop", None)] * 64)
        assert all(r.status == 200 for r in replies)
        assert max(r.elapsed for r in replies) < 0.9, sorted(r.elapsed for r in replies)[-3:]


def test_status_api_speaks_ray_serve_vocabulary():
    with Server(CONFIG) as s:
        st = s.status()
        assert set(st["applications"]) == {"noop", "outer", "inner", "throw"}
        noop = st["applications"]["noop"]
        assert noop["status"] == "RUNNING" and noop["route_prefix"] == "/noop"
        dep = noop["deployments"]["Noop"]
        assert dep["status"] == "HEALTHY"
        assert dep["deployment_config"]["max_ongoing_requests"] == 5
        assert dep["deployment_config"]["num_replicas"] == 1
        assert [r["state"] for r in dep["replicas"]] == ["RUNNING"]
        assert dep["replicas"][0]["ongoing_requests"] == 0


if __name__ == "__main__":
    main(globals())
