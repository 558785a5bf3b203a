#include "libserve/replica_chooser.hpp"

#include <vector>

#include <doctest/doctest.h>

using namespace serve;

namespace {

replica_load load(size_t in_flight, size_t max_in_flight = 10, bool alive = true) {
  replica_load r;
  r.in_flight = in_flight;
  r.max_in_flight = max_in_flight;
  r.alive = alive;
  return r;
}

/// How often each replica is chosen over `picks` calls.
std::vector<size_t> pick_counts(replica_chooser& chooser, const std::vector<replica_load>& rs,
                                size_t picks) {
  std::vector<size_t> counts(rs.size());
  for (size_t i = 0; i < picks; ++i) {
    auto chosen = chooser.choose(rs);
    REQUIRE(chosen);
    ++counts[*chosen];
  }
  return counts;
}

} // namespace

TEST_CASE("the chooser never picks a dead or full replica") {
  replica_chooser chooser(1);
  std::vector<replica_load> rs{load(0, 10, false), load(5, 5), load(9, 10),
                               load(0, 1, false),  load(2, 2), load(3, 10)};
  auto counts = pick_counts(chooser, rs, 500);
  CHECK(counts[0] == 0);
  CHECK(counts[1] == 0);
  CHECK(counts[3] == 0);
  CHECK(counts[4] == 0);
  CHECK(counts[2] + counts[5] == 500);
}

TEST_CASE("the chooser gives nullopt when no replica can take a request") {
  replica_chooser chooser(1);
  CHECK_FALSE(chooser.choose({}));
  CHECK_FALSE(chooser.choose({load(1, 1), load(0, 5, false), load(7, 5)}));
}

TEST_CASE("a single candidate is always chosen") {
  replica_chooser chooser(1);
  std::vector<replica_load> rs{load(4, 4), load(3, 4), load(0, 4, false)};
  auto counts = pick_counts(chooser, rs, 100);
  CHECK(counts[1] == 100);
}

TEST_CASE("with two candidates the less loaded one is always chosen") {
  replica_chooser chooser(7);
  auto counts = pick_counts(chooser, {load(3), load(2)}, 200);
  CHECK(counts[1] == 200);
  counts = pick_counts(chooser, {load(0), load(1), load(0, 10, false)}, 200);
  CHECK(counts[0] == 200);
}

TEST_CASE("with many replicas the choice favours lower load") {
  replica_chooser chooser(42);
  std::vector<replica_load> rs{load(8), load(0), load(4), load(2), load(6)};
  auto counts = pick_counts(chooser, rs, 1000);
  // Power of two choices: the most loaded replica loses every comparison.
  CHECK(counts[0] == 0);
  CHECK(counts[1] > counts[3]);
  CHECK(counts[3] > counts[2]);
  CHECK(counts[2] > counts[4]);
  // Every replica but the most loaded one still gets some traffic.
  CHECK(counts[4] > 0);
}

TEST_CASE("replicas with equal load share the traffic") {
  replica_chooser chooser(3);
  auto counts = pick_counts(chooser, {load(1), load(1), load(1)}, 3000);
  for (auto c : counts) {
    CHECK(c > 800);
    CHECK(c < 1200);
  }
}

TEST_CASE("the same seed gives the same choices") {
  std::vector<replica_load> rs{load(1), load(1), load(2), load(1), load(3), load(1)};
  replica_chooser a(99), b(99);
  std::vector<size_t> from_a, from_b;
  for (int i = 0; i < 200; ++i) {
    from_a.push_back(*a.choose(rs));
    from_b.push_back(*b.choose(rs));
  }
  CHECK(from_a == from_b);
}
