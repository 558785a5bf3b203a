// The controller's replica plan as a pure function: placement, scaling, rebalancing and the
// rolling replacement of old code, without actors or nodes.
#include "libserve/replica_plan.hpp"

#include <string>
#include <vector>

#include <doctest/doctest.h>

namespace {

using serve::replica_phase;
using serve::replica_view;
using strings = std::vector<std::string>;

replica_view running(std::string id, std::string node = "head", uint64_t generation = 1) {
  return replica_view{std::move(id), generation, replica_phase::running, std::move(node)};
}

replica_view starting(std::string id, std::string node = "head", uint64_t generation = 1) {
  return replica_view{std::move(id), generation, replica_phase::starting, std::move(node)};
}

} // namespace

TEST_CASE("missing replicas start on the usable nodes with the fewest, in placement order") {
  auto plan = serve::plan_replicas({running("a", "head")}, 1, 4, {"head", "w1", "w2"});
  CHECK(plan.start_on == strings{"w1", "w2", "head"});
  CHECK(plan.stop.empty());
  CHECK(plan.unplaced == 0);
  CHECK_FALSE(plan.whole); // the new ones still load
}

TEST_CASE("with no usable node the missing replicas wait, counted") {
  auto plan = serve::plan_replicas({running("a", "w1")}, 1, 3, {});
  CHECK(plan.start_on.empty());
  CHECK(plan.unplaced == 2);
}

TEST_CASE("extra replicas stop only when none is starting: the newest on the fullest node") {
  std::vector<replica_view> replicas{running("h1", "head"), running("w1a", "w1"),
                                     running("w1b", "w1"), running("h2", "head")};
  auto plan = serve::plan_replicas(replicas, 1, 2, {"head", "w1"});
  CHECK(plan.start_on.empty());
  CHECK(plan.stop == strings{"h2", "w1b"}); // ties: the newest first
  CHECK(plan.whole);

  replicas.push_back(starting("h3", "head"));
  plan = serve::plan_replicas(replicas, 1, 2, {"head", "w1"});
  CHECK(plan.stop.empty()); // a replacement is loading: capacity stays
}

TEST_CASE("a replica on a node it may not use stops first; a starting one before a running one") {
  auto plan = serve::plan_replicas({running("h1"), running("gone", "w9"), running("h2")}, 1, 2,
                                   {"head"});
  CHECK(plan.stop == strings{"gone"});

  plan = serve::plan_replicas({running("h1", "head"), running("w1", "w1")}, 1, 1,
                              {"head", "w1"});
  CHECK(plan.stop == strings{"w1"}); // equal counts: the newest
}

TEST_CASE("a node that joined again takes replicas: one more starts on the emptiest, and the "
          "extra stops on the fullest once it runs") {
  std::vector<replica_view> replicas{running("h1"), running("h2"), running("h3")};
  auto plan = serve::plan_replicas(replicas, 1, 3, {"head", "w1"});
  CHECK(plan.start_on == strings{"w1"});
  CHECK(plan.stop.empty());

  replicas.push_back(running("w1a", "w1"));
  plan = serve::plan_replicas(replicas, 1, 3, {"head", "w1"});
  CHECK(plan.start_on.empty()); // 2 and 1 now: balanced enough
  CHECK(plan.stop == strings{"h3"});
  CHECK(plan.whole);
}

TEST_CASE("old code stops once the new generation runs whole; its starting replicas at once") {
  std::vector<replica_view> replicas{running("old1", "head", 1), running("old2", "head", 1),
                                     starting("old3", "head", 1)};
  auto plan = serve::plan_replicas(replicas, 2, 2, {"head"});
  CHECK(plan.start_on == strings{"head", "head"});
  CHECK(plan.stop == strings{"old3"}); // the running old ones serve until the new ones do
  CHECK_FALSE(plan.whole);

  std::vector<replica_view> rolled{running("old1", "head", 1), running("old2", "head", 1),
                                   running("new1", "head", 2), running("new2", "head", 2)};
  plan = serve::plan_replicas(rolled, 2, 2, {"head"});
  CHECK(plan.start_on.empty());
  CHECK(plan.stop == strings{"old1", "old2"});
  CHECK(plan.whole);
}

TEST_CASE("stopping replicas count for nothing; a target of 0 stops everything") {
  std::vector<replica_view> replicas{running("a"), replica_view{"b", 1, replica_phase::stopping,
                                                                "head"}};
  auto plan = serve::plan_replicas(replicas, 1, 2, {"head"});
  CHECK(plan.start_on == strings{"head"});

  plan = serve::plan_replicas({running("a"), running("b")}, 1, 0, {"head"});
  CHECK(plan.stop == strings{"b", "a"});
  CHECK(plan.whole);
}

TEST_CASE("a failed version is tried again after a delay that doubles up to 5 minutes, and a "
          "version that serves resets it") {
  serve::version_backoff b;
  CHECK(b.may_try("3", 0));
  CHECK(b.failed("3", 100, 0.5) == 1); // at least 1 s
  CHECK(b.failed_version() == "3");
  CHECK_FALSE(b.may_try("3", 100.5));
  CHECK(b.may_try("4", 100.5)); // another version rolls at once
  CHECK(b.may_try("3", 101));
  CHECK(b.failed("3", 101, 0.5) == 2);
  CHECK(b.failed("3", 103, 0.5) == 4);
  for (int i = 0; i < 10; ++i)
    b.failed("3", 200, 0.5);
  CHECK(b.failed("3", 200, 0.5) == 300);
  CHECK_FALSE(b.may_try("3", 499));
  b.reset();
  CHECK(b.failed_version().empty());
  CHECK(b.may_try("3", 0));
  CHECK(b.failed("3", 0, 30) == 30); // starts from the poll interval again
}
