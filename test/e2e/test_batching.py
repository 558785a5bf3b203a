"""Batching with Ray Serve's @serve.batch semantics, end to end."""
import time

from harness import Server, app, config, main


def batch_app(name, prefix, cls, max_batch_size, wait_s, max_ongoing=None, concurrent=1):
    dep = {"name": cls, "class": cls,
           "batching": {"max_batch_size": max_batch_size, "batch_wait_timeout_s": wait_s,
                        "max_concurrent_batches": concurrent}}
    if max_ongoing is not None:
        dep["max_ongoing_requests"] = max_ongoing
    return app(name, prefix, [dep])


CONFIG = config(
    batch_app("b5", "/b5", "BatchRecorder", 5, 0.1, max_ongoing=5),
    batch_app("b10", "/b10", "BatchRecorder", 10, 0.5, max_ongoing=10),
    batch_app("full", "/full", "BatchRecorder", 10, 3.0, max_ongoing=10),
    batch_app("throw", "/throw", "Thrower", 4, 0.2, max_ongoing=4),
    batch_app("wrong", "/wrong", "WrongBatch", 4, 0.2, max_ongoing=4),
    batch_app("capped", "/capped", "BatchRecorder", 8, 0.05, max_ongoing=2))


def test_twenty_concurrent_requests_form_batches_of_at_most_five():
    with Server(CONFIG) as s:
        replies, _ = s.concurrently([("POST", "/b5", str(i)) for i in range(20)])
        assert all(r.status == 200 for r in replies), replies
        sizes = [r.json()["batch_size"] for r in replies]
        assert max(sizes) <= 5, sizes
        assert max(sizes) > 1, sizes
        # every reply carries its own input back
        assert sorted(r.json()["input"] for r in replies) == list(range(20))


def test_a_lone_request_waits_for_the_batch_timeout():
    with Server(CONFIG) as s:
        s.post("/b10", "0")  # warm up the connection path
        time.sleep(0.6)      # an idle period must not let the next request skip the wait
        r = s.post("/b10", "1")
        assert r.status == 200 and r.json()["batch_size"] == 1
        assert r.elapsed >= 0.45, r.elapsed


def test_ten_concurrent_requests_go_at_once_as_one_full_batch():
    with Server(CONFIG) as s:
        replies, elapsed = s.concurrently([("POST", "/full", str(i)) for i in range(10)])
        sizes = [r.json()["batch_size"] for r in replies]
        # a full batch is sent at once, without waiting for its 3 s timer
        assert sizes == [10] * 10, sizes
        assert elapsed < 2.0, elapsed


def test_a_throwing_batch_fails_all_its_callers_and_the_next_batch_works():
    with Server(CONFIG) as s:
        calls = [("POST", "/throw", {"fail": i == 0}) for i in range(4)]
        replies, _ = s.concurrently(calls)
        assert [r.status for r in replies] == [500] * 4, replies
        assert all("user code failed on purpose" in r.body for r in replies)
        replies, _ = s.concurrently([("POST", "/throw", {"fail": False})] * 4)
        assert [r.status for r in replies] == [200] * 4, replies


def test_a_wrong_length_batch_result_is_a_500_naming_the_mismatch():
    with Server(CONFIG) as s:
        calls = [("POST", "/wrong", {"short": i == 0}) for i in range(4)]
        replies, _ = s.concurrently(calls)
        assert [r.status for r in replies] == [500] * 4, replies
        assert "returned 3 results for 4 requests" in replies[0].body, replies[0].body
        assert s.post("/wrong", {"short": False}).status == 200


def test_batching_is_not_capped_by_max_ongoing_requests_and_status_warns():
    with Server(CONFIG) as s:
        replies, _ = s.concurrently([("POST", "/capped", str(i)) for i in range(8)])
        sizes = [r.json()["batch_size"] for r in replies]
        assert max(sizes) > 2, sizes  # Ray Serve would cap every batch at 2 here
        dep = s.status()["applications"]["capped"]["deployments"]["BatchRecorder"]
        assert dep["effective_max_ongoing_requests"] == 8
        assert any("max_ongoing_requests (2) < max_batch_size (8)" in w
                   for w in dep["warnings"]), dep["warnings"]
        assert "max_ongoing_requests (2) < max_batch_size (8)" in s.log()


def test_requests_timed_out_while_waiting_are_dropped_and_the_deployment_keeps_working():
    cfg = config(batch_app("slow", "/slow", "BatchRecorder", 10, 1.0, max_ongoing=10),
                 request_timeout_s=0.3)
    with Server(cfg) as s:
        r = s.post("/slow", "1")
        assert r.status == 408, r
        assert "timed out" in r.body
        # the batch that held only cancelled requests was skipped; a full batch still runs
        replies, _ = s.concurrently([("POST", "/slow", str(i)) for i in range(10)])
        assert all(x.status == 200 for x in replies), replies
        assert all(x.json()["batch_size"] == 10 for x in replies)


if __name__ == "__main__":
    main(globals())
