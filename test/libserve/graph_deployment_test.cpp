#include "libserve/graph_deployment.hpp"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <doctest/doctest.h>

using namespace serve;

namespace {

/// Records every call and answers only when the test says so, in the order the test picks.
class fake_backend : public handle_backend {
public:
  struct call_record {
    std::string deployment;
    request req;
  };

  future<response> call(const std::string& deployment, request req) const override {
    calls.push_back({deployment, std::move(req)});
    promise<response> p;
    pending.emplace(calls.size() - 1, p);
    return p.get_future();
  }

  void answer(size_t call_index, std::string body) const {
    response r;
    r.body = std::move(body);
    pending.at(call_index).set_value(std::move(r));
  }

  void fail(size_t call_index, errc code, std::string message) const {
    pending.at(call_index).set_error({code, std::move(message)});
  }

  mutable std::vector<call_record> calls;
  mutable std::map<size_t, promise<response>> pending;
};

/// The outcome of a future once it settles.
struct outcome {
  std::optional<response> value;
  std::optional<error_info> error;
  bool ready() const { return value || error; }
};

std::shared_ptr<outcome> watch(const future<response>& f) {
  auto out = std::make_shared<outcome>();
  f.subscribe([out](response* v, const error_info* e) {
    if (v)
      out->value = *v;
    else
      out->error = *e;
  });
  return out;
}

struct graph_fixture {
  std::shared_ptr<fake_backend> backend = std::make_shared<fake_backend>();
  std::unique_ptr<deployment> graph;

  explicit graph_fixture(const std::string& graph_json) {
    rapidjson::Document doc;
    doc.Parse(graph_json.c_str());
    REQUIRE_FALSE(doc.HasParseError());
    deployment_context ctx;
    ctx.application = "app";
    ctx.deployment = "Graph";
    ctx.graph_config = &doc;
    ctx.backend = backend;
    graph = make_graph_deployment(ctx);
  }

  std::shared_ptr<outcome> send(std::string body) {
    request req;
    req.id = "req-1";
    req.method = "POST";
    req.path = "/predict";
    req.query = "verbose=1";
    req.body = std::move(body);
    return watch(graph->handle(std::move(req)));
  }

  /// Ensemble helper: sends "in", answers the members in reverse order, returns the result.
  std::shared_ptr<outcome> ensemble_with(const std::vector<std::string>& answers) {
    auto out = send("in");
    REQUIRE(backend->calls.size() == answers.size());
    for (size_t i = answers.size(); i-- > 0;)
      backend->answer(i, answers[i]);
    REQUIRE(out->ready());
    return out;
  }
};

void check_forwarded_header(const request& sub) {
  CHECK(sub.id == "req-1");
  CHECK(sub.method == "POST");
  CHECK(sub.path == "/predict");
  CHECK(sub.query == "verbose=1");
}

} // namespace

TEST_CASE("a sequence feeds each response body to the next deployment") {
  graph_fixture g(R"({"sequence": ["A", "B", "C"]})");
  auto out = g.send("x");
  REQUIRE(g.backend->calls.size() == 1);
  CHECK(g.backend->calls[0].deployment == "A");
  CHECK(g.backend->calls[0].req.body == "x");
  g.backend->answer(0, "\"a\"");
  REQUIRE(g.backend->calls.size() == 2);
  CHECK(g.backend->calls[1].deployment == "B");
  CHECK(g.backend->calls[1].req.body == "\"a\"");
  g.backend->answer(1, "\"b\"");
  REQUIRE(g.backend->calls.size() == 3);
  CHECK(g.backend->calls[2].deployment == "C");
  CHECK(g.backend->calls[2].req.body == "\"b\"");
  CHECK_FALSE(out->ready());
  g.backend->answer(2, "\"c\"");
  REQUIRE(out->value);
  CHECK(out->value->body == "\"c\"");
  for (auto& c : g.backend->calls)
    check_forwarded_header(c.req);
}

TEST_CASE("a sequence stops at the first error and returns it unchanged") {
  graph_fixture g(R"({"sequence": ["A", "B", "C"]})");
  auto out = g.send("x");
  g.backend->answer(0, "1");
  g.backend->fail(1, errc::unavailable, "B is overloaded");
  REQUIRE(out->error);
  CHECK(out->error->code == errc::unavailable);
  CHECK(out->error->message == "B is overloaded");
  CHECK(g.backend->calls.size() == 2);
}

TEST_CASE("an ensemble calls every member before any of them answers") {
  graph_fixture g(R"({"ensemble": ["A", "B"]})");
  auto out = g.send("{\"x\":1}");
  REQUIRE(g.backend->calls.size() == 2);
  CHECK(g.backend->calls[0].deployment == "A");
  CHECK(g.backend->calls[1].deployment == "B");
  for (auto& c : g.backend->calls) {
    CHECK(c.req.body == "{\"x\":1}");
    check_forwarded_header(c.req);
  }
  g.backend->answer(1, "2");
  CHECK_FALSE(out->ready());
  g.backend->answer(0, "1");
  REQUIRE(out->value);
  CHECK(out->value->body == "[1,2]");
  CHECK(out->value->content_type == "application/json");
}

TEST_CASE("the list combiner keeps member order whatever the answer order") {
  graph_fixture g(R"({"ensemble": ["A", "B", "C"], "combiner": "list"})");
  auto out = g.ensemble_with({"{\"a\":1}", "[2]", "\"c\""});
  REQUIRE(out->value);
  CHECK(out->value->body == R"([{"a":1},[2],"c"])");
}

TEST_CASE("the mean combiner averages numbers") {
  graph_fixture g(R"({"ensemble": ["A", "B", "C"], "combiner": "mean"})");
  auto out = g.ensemble_with({"1", "2", "4.5"});
  REQUIRE(out->value);
  CHECK(out->value->body == "2.5");
}

TEST_CASE("the mean combiner averages equally shaped nested arrays elementwise") {
  graph_fixture g(R"({"ensemble": ["A", "B"], "combiner": "mean"})");
  auto out = g.ensemble_with({"[[1,2],[3,4]]", "[[3,4],[5,8]]"});
  REQUIRE(out->value);
  CHECK(out->value->body == "[[2.0,3.0],[4.0,6.0]]");
}

TEST_CASE("the mean combiner refuses results of different shapes, naming the member") {
  graph_fixture g(R"({"ensemble": ["A", "B"], "combiner": "mean"})");
  auto out = g.ensemble_with({"[1,2]", "[1,2,3]"});
  REQUIRE(out->error);
  CHECK(out->error->code == errc::internal);
  CHECK(out->error->message.find("\"B\" returned [1,2,3]") != std::string::npos);
}

TEST_CASE("the mean combiner refuses results that are not numbers") {
  graph_fixture g(R"({"ensemble": ["A", "B"], "combiner": "mean"})");
  auto out = g.ensemble_with({"\"cat\"", "1"});
  REQUIRE(out->error);
  CHECK(out->error->code == errc::internal);
  CHECK(out->error->message.find("\"A\" returned \"cat\"") != std::string::npos);
  graph_fixture mixed(R"({"ensemble": ["A", "B"], "combiner": "mean"})");
  out = mixed.ensemble_with({"[1,\"x\"]", "[1,2]"});
  REQUIRE(out->error);
  CHECK(out->error->message.find("\"A\" returned [1,\"x\"]") != std::string::npos);
}

TEST_CASE("the majority combiner returns the most common result") {
  graph_fixture g(R"({"ensemble": ["A", "B", "C"], "combiner": "majority"})");
  auto out = g.ensemble_with({"\"cat\"", "\"dog\"", "\"dog\""});
  REQUIRE(out->value);
  CHECK(out->value->body == "\"dog\"");
}

TEST_CASE("the majority combiner compares results as compact JSON") {
  graph_fixture g(R"({"ensemble": ["A", "B", "C"], "combiner": "majority"})");
  auto out = g.ensemble_with({"[1, 2]", "{\"k\": 1}", "[1,2]"});
  REQUIRE(out->value);
  CHECK(out->value->body == "[1,2]");
}

TEST_CASE("the majority combiner breaks ties in favour of the first member's result") {
  graph_fixture g(R"({"ensemble": ["A", "B", "C", "D"], "combiner": "majority"})");
  auto out = g.ensemble_with({"\"x\"", "\"y\"", "\"y\"", "\"x\""});
  REQUIRE(out->value);
  CHECK(out->value->body == "\"x\"");
  graph_fixture all_different(R"({"ensemble": ["A", "B"], "combiner": "majority"})");
  out = all_different.ensemble_with({"2", "1"});
  REQUIRE(out->value);
  CHECK(out->value->body == "2");
}

TEST_CASE("the concat combiner joins arrays and appends other results") {
  graph_fixture g(R"({"ensemble": ["A", "B", "C"], "combiner": "concat"})");
  auto out = g.ensemble_with({"[1,2]", "3", "[[4],5]"});
  REQUIRE(out->value);
  CHECK(out->value->body == "[1,2,3,[4],5]");
}

TEST_CASE("an ensemble returns the first error to arrive") {
  graph_fixture g(R"({"ensemble": ["A", "B", "C"]})");
  auto out = g.send("in");
  g.backend->answer(0, "1");
  g.backend->fail(2, errc::request_timeout, "C timed out");
  REQUIRE(out->error);
  g.backend->fail(1, errc::internal, "B threw");
  CHECK(out->error->code == errc::request_timeout);
  CHECK(out->error->message == "C timed out");
}

TEST_CASE("an ensemble member that answers with something other than JSON is an internal error") {
  graph_fixture g(R"({"ensemble": ["A", "B"]})");
  auto out = g.ensemble_with({"1", "not json"});
  REQUIRE(out->error);
  CHECK(out->error->code == errc::internal);
  CHECK(out->error->message.find("\"B\"") != std::string::npos);
}

TEST_CASE("a conditional above the threshold calls the above branch with the first response") {
  graph_fixture g(
      R"({"conditional": {"call": "A", "field": "score", "threshold": 0.5, "above": "B", "below": "C"}})");
  auto out = g.send("img");
  REQUIRE(g.backend->calls.size() == 1);
  CHECK(g.backend->calls[0].deployment == "A");
  CHECK(g.backend->calls[0].req.body == "img");
  g.backend->answer(0, R"({"score":0.9})");
  REQUIRE(g.backend->calls.size() == 2);
  CHECK(g.backend->calls[1].deployment == "B");
  CHECK(g.backend->calls[1].req.body == R"({"score":0.9})");
  check_forwarded_header(g.backend->calls[1].req);
  g.backend->answer(1, "\"high\"");
  REQUIRE(out->value);
  CHECK(out->value->body == "\"high\"");
}

TEST_CASE("a conditional at or below the threshold calls the below branch") {
  graph_fixture g(
      R"({"conditional": {"call": "A", "field": "score", "threshold": 0.5, "above": "B", "below": "C"}})");
  auto out = g.send("img");
  g.backend->answer(0, "0.5");
  REQUIRE(g.backend->calls.size() == 2);
  CHECK(g.backend->calls[1].deployment == "C");
  CHECK(g.backend->calls[1].req.body == "0.5");
  g.backend->answer(1, "\"low\"");
  REQUIRE(out->value);
  CHECK(out->value->body == "\"low\"");
}

TEST_CASE("a conditional without the chosen branch returns the first response unchanged") {
  graph_fixture g(
      R"({"conditional": {"call": "A", "field": "score", "threshold": 0.5, "above": null}})");
  auto out = g.send("img");
  g.backend->answer(0, R"({"score": 0.7, "label": "cat"})");
  REQUIRE(out->value);
  CHECK(out->value->body == R"({"score": 0.7, "label": "cat"})");
  CHECK(g.backend->calls.size() == 1);

  graph_fixture below_only(
      R"({"conditional": {"call": "A", "field": "score", "threshold": 0.5, "below": "C"}})");
  out = below_only.send("img");
  below_only.backend->answer(0, "0.7");
  REQUIRE(out->value);
  CHECK(out->value->body == "0.7");
  CHECK(below_only.backend->calls.size() == 1);
}

TEST_CASE("a conditional refuses a result without a numeric field, naming field and result") {
  graph_fixture g(
      R"({"conditional": {"call": "A", "field": "score", "threshold": 0.5, "above": "B"}})");
  auto out = g.send("img");
  g.backend->answer(0, R"({"score":"high"})");
  REQUIRE(out->error);
  CHECK(out->error->code == errc::internal);
  CHECK(out->error->message.find("\"score\"") != std::string::npos);
  CHECK(out->error->message.find(R"({"score":"high"})") != std::string::npos);
  CHECK(g.backend->calls.size() == 1);

  out = g.send("img");
  g.backend->answer(1, "[0.9]");
  REQUIRE(out->error);
  CHECK(out->error->code == errc::internal);
  CHECK(out->error->message.find("\"A\" returned [0.9]") != std::string::npos);
}

TEST_CASE("a conditional passes errors of either call through unchanged") {
  graph_fixture g(
      R"({"conditional": {"call": "A", "field": "score", "threshold": 0.5, "above": "B"}})");
  auto out = g.send("img");
  g.backend->fail(0, errc::invalid_argument, "bad image");
  REQUIRE(out->error);
  CHECK(out->error->code == errc::invalid_argument);
  CHECK(out->error->message == "bad image");

  out = g.send("img");
  g.backend->answer(1, "1");
  g.backend->fail(2, errc::unavailable, "B has no replica");
  REQUIRE(out->error);
  CHECK(out->error->code == errc::unavailable);
  CHECK(out->error->message == "B has no replica");
}

TEST_CASE("a malformed graph config is refused when the deployment is built") {
  auto build = [](const char* json) { graph_fixture g(json); };
  CHECK_THROWS_AS(build(R"({"sequence": []})"), serve_exception);
  CHECK_THROWS_AS(build(R"({"ensemble": ["A"], "combiner": "median"})"), serve_exception);
  CHECK_THROWS_AS(build(R"({"conditional": {"call": "A"}})"), serve_exception);
  CHECK_THROWS_AS(build(R"({"pipeline": ["A"]})"), serve_exception);
  CHECK_THROWS_WITH_AS(build(R"({"sequence": ["A", 3]})"), doctest::Contains("graph.sequence[1]"),
                       serve_exception);
  deployment_context no_graph;
  no_graph.deployment = "Graph";
  CHECK_THROWS_AS(make_graph_deployment(no_graph), serve_exception);
}
