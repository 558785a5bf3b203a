"""Model composition and ensembles: the guide's examples and declarative graphs."""
import json
import os

from harness import ROOT, Server, app, config, main

DELAY = 0.5


def delayed(name, value, replicas=2):
    return {"name": name, "class": "DelayedConstant", "num_replicas": replicas,
            "user_config": {"value": value, "delay_s": DELAY}}


CONFIG = config(
    app("composed", "/composed", [
        {"name": "ComposedModel", "class": "ComposedModel", "max_ongoing_requests": 10},
        {"name": "model_one", "class": "RandomScore"},
        {"name": "model_two", "class": "Echo"}], ingress="ComposedModel"),
    app("ensemble", "/ensemble", [
        {"name": "EnsembleModel", "class": "EnsembleModel", "max_ongoing_requests": 10},
        delayed("model_one", 1), delayed("model_two", 2)], ingress="EnsembleModel"),
    app("ensemble-graph", "/ensemble-graph", [
        {"name": "Ensemble", "graph": {"ensemble": ["model_one", "model_two"]},
         "max_ongoing_requests": 10},
        delayed("model_one", 1), delayed("model_two", 2)], ingress="Ensemble"),
    app("graphs", "/g", [
        {"name": "Router", "graph": {"sequence": ["First", "Decide"]}},
        {"name": "Decide", "graph": {"conditional": {"call": "Echo", "field": "score",
                                                    "threshold": 0.5, "above": "Mean"}}},
        {"name": "Mean", "graph": {"ensemble": ["Three", "Five"], "combiner": "mean"}},
        {"name": "Vote", "graph": {"ensemble": ["Three", "Five", "Three2"],
                                   "combiner": "majority"}},
        {"name": "Cat", "graph": {"ensemble": ["Three", "Five"], "combiner": "concat"}},
        {"name": "First", "class": "Echo"},
        {"name": "Echo", "class": "Echo"},
        {"name": "Three", "class": "DelayedConstant", "user_config": {"value": 3, "delay_s": 0}},
        {"name": "Three2", "class": "DelayedConstant", "user_config": {"value": 3, "delay_s": 0}},
        {"name": "Five", "class": "DelayedConstant", "user_config": {"value": 5, "delay_s": 0}},
    ], ingress="Router"),
    app("vote", "/vote", [
        {"name": "Vote", "graph": {"ensemble": ["Three", "Five", "Three2"],
                                   "combiner": "majority"}},
        {"name": "Three", "class": "DelayedConstant", "user_config": {"value": 3, "delay_s": 0}},
        {"name": "Three2", "class": "DelayedConstant", "user_config": {"value": 3, "delay_s": 0}},
        {"name": "Five", "class": "DelayedConstant", "user_config": {"value": 5, "delay_s": 0}},
    ], ingress="Vote"),
    app("concat", "/concat", [
        {"name": "Cat", "graph": {"ensemble": ["Three", "Five"], "combiner": "concat"}},
        {"name": "Three", "class": "DelayedConstant", "user_config": {"value": 3, "delay_s": 0}},
        {"name": "Five", "class": "DelayedConstant", "user_config": {"value": 5, "delay_s": 0}},
    ], ingress="Cat"))


def test_composed_model_replies_exactly_as_the_guide_and_branches_on_the_score():
    with Server(CONFIG) as s:
        branches = set()
        for i in range(40):
            r = s.post("/composed", f'"request {i}"')
            assert r.status == 200, r
            reply = r.json()
            assert len(reply) == 1, reply
            (key, score), = reply.items()
            assert 0.0 <= score < 1.0
            if score > 0.5:
                assert key == "model_used: 1 & 2;  score", reply
            else:
                assert key == "model_used: 1 ; score", reply
            branches.add(key)
        assert len(branches) == 2, branches  # 40 random scores take both branches


def test_one_ensemble_request_takes_one_delay_not_two():
    with Server(CONFIG) as s:
        for prefix in ("/ensemble", "/ensemble-graph"):
            r = s.get(prefix)
            assert r.status == 200 and r.json() == [1, 2], r
            assert DELAY * 0.9 <= r.elapsed < DELAY * 1.7, (prefix, r.elapsed)


def test_four_concurrent_ensemble_requests_take_about_two_delays_with_two_replicas_each():
    with Server(CONFIG) as s:
        replies, elapsed = s.concurrently([("GET", "/ensemble", None)] * 4)
        assert all(r.json() == [1, 2] for r in replies), replies
        assert DELAY * 1.8 <= elapsed < DELAY * 3.0, elapsed


def test_graph_sequence_conditional_and_combiners():
    with Server(CONFIG) as s:
        # score above the threshold: First -> Echo -> Mean(3, 5)
        assert s.post("/g", {"score": 0.9}).json() == 4.0
        # below: the conditional returns Echo's result unchanged
        assert s.post("/g", {"score": 0.1}).json() == {"score": 0.1}
        assert s.post("/vote", "{}").json() == 3
        assert s.post("/concat", "{}").json() == [3, 5]


def test_the_readmes_sentiment_example_answers_as_shown():
    with open(os.path.join(ROOT, "apps", "examples", "configs", "sentiment.json")) as f:
        cfg = json.load(f)
    cfg["http_options"] = {"host": "127.0.0.1", "port": 0}
    with Server(cfg) as s:
        r = s.post("/sentiment", {"texts": ["short", "a somewhat longer sentence"]})
        assert r.status == 200, r
        assert r.json() == [{"text": "short", "positive": False},
                            {"text": "a somewhat longer sentence", "positive": True}], r
        bad = s.post("/sentiment", {"text": "x"})
        assert (bad.status, bad.body) == (400, 'expected {"texts": [string, ...]}'), bad
        # user_config's threshold is applied without a restart.
        cfg["applications"][0]["deployments"][0]["user_config"] = {"threshold": 0.2}
        assert s.request("PUT", "/api/serve/applications/", json.dumps(cfg)).status == 200
        r = s.post("/sentiment", {"texts": ["short"]})
        assert r.json() == [{"text": "short", "positive": True}], r


if __name__ == "__main__":
    main(globals())
