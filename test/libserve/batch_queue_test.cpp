#include "libserve/batch_queue.hpp"

#include <chrono>
#include <vector>

#include <doctest/doctest.h>

using namespace serve;
using namespace std::chrono_literals;

namespace {

using queue = batch_queue<int>;

/// A fixed origin for injected time points; tests add offsets to it.
const queue::time_point t0 = queue::time_point{} + 1h;

batch_options options(size_t max_batch_size, std::chrono::microseconds timeout) {
  batch_options opts;
  opts.max_batch_size = max_batch_size;
  opts.batch_wait_timeout = timeout;
  return opts;
}

} // namespace

TEST_CASE("an empty queue is never due and has no deadline") {
  queue q(options(2, 10ms));
  CHECK(q.empty());
  CHECK_FALSE(q.deadline());
  CHECK_FALSE(q.due(t0 + 1h));
  CHECK(q.pop_batch(t0).empty());
}

TEST_CASE("a full batch is due without waiting for the timer") {
  queue q(options(3, 10ms));
  q.push(1, t0);
  q.push(2, t0 + 1ms);
  CHECK_FALSE(q.due(t0 + 1ms));
  q.push(3, t0 + 2ms);
  CHECK(q.full());
  CHECK(q.due(t0 + 2ms));
  CHECK(q.pop_batch(t0 + 2ms) == std::vector<int>{1, 2, 3});
  CHECK(q.empty());
}

TEST_CASE("a lone request waits for the whole timeout") {
  queue q(options(4, 10ms));
  q.push(1, t0);
  REQUIRE(q.deadline());
  CHECK(*q.deadline() == t0 + 10ms);
  CHECK_FALSE(q.due(t0));
  CHECK_FALSE(q.due(t0 + 9999us));
  CHECK(q.due(t0 + 10ms));
  CHECK(q.pop_batch(t0 + 10ms) == std::vector<int>{1});
}

TEST_CASE("a zero timeout sends whatever is there at once") {
  queue q(options(4, 0us));
  q.push(1, t0);
  CHECK(q.due(t0));
}

TEST_CASE("the timer starts at the first request of a batch, not after an idle period") {
  queue q(options(4, 10ms));
  q.push(1, t0);
  CHECK(q.pop_batch(t0 + 10ms) == std::vector<int>{1});
  // A long idle period: the next lone request still waits its full timeout from its arrival.
  q.push(2, t0 + 1h);
  CHECK(*q.deadline() == t0 + 1h + 10ms);
  CHECK_FALSE(q.due(t0 + 1h + 5ms));
  CHECK(q.due(t0 + 1h + 10ms));
  // Later requests of the same batch do not restart the timer.
  q.push(3, t0 + 1h + 8ms);
  CHECK(*q.deadline() == t0 + 1h + 10ms);
}

TEST_CASE("items left behind open the next batch at pop time") {
  queue q(options(2, 10ms));
  q.push(1, t0);
  q.push(2, t0 + 1ms);
  q.push(3, t0 + 2ms);
  CHECK(q.pop_batch(t0 + 3ms) == std::vector<int>{1, 2});
  REQUIRE(q.deadline());
  CHECK(*q.deadline() == t0 + 3ms + 10ms);
  CHECK_FALSE(q.due(t0 + 12ms));
  CHECK(q.due(t0 + 13ms));
  CHECK(q.pop_batch(t0 + 13ms) == std::vector<int>{3});
}

TEST_CASE("dropped items are removed without taking places in the batch") {
  queue q(options(2, 10ms));
  for (int i = 1; i <= 5; ++i)
    q.push(i, t0);
  std::vector<int> dropped;
  auto cancelled = [](const int& x) { return x == 1 || x == 3; };
  CHECK(q.pop_batch(t0, cancelled, dropped) == std::vector<int>{2, 4});
  CHECK(dropped == std::vector<int>{1, 3});
  CHECK(q.size() == 1);
  CHECK(q.pop_batch(t0) == std::vector<int>{5});
}

TEST_CASE("a batch never exceeds max_batch_size") {
  queue q(options(3, 10ms));
  for (int i = 0; i < 8; ++i)
    q.push(i, t0);
  CHECK(q.pop_batch(t0).size() == 3);
  CHECK(q.pop_batch(t0).size() == 3);
  CHECK(q.pop_batch(t0).size() == 2);
  CHECK(q.empty());
}

TEST_CASE("set_options applies to the next batch while the open batch keeps its start time") {
  queue q(options(4, 10ms));
  q.push(1, t0);
  q.push(2, t0 + 1ms);
  q.push(3, t0 + 2ms);
  CHECK_FALSE(q.full());
  q.set_options(options(2, 20ms));
  CHECK(q.options().max_batch_size == 2);
  CHECK(q.full());
  CHECK(*q.deadline() == t0 + 20ms);
  CHECK(q.pop_batch(t0 + 3ms) == std::vector<int>{1, 2});
  CHECK(*q.deadline() == t0 + 3ms + 20ms);
  CHECK_FALSE(q.full());
}

TEST_CASE("remove_if takes matching items from anywhere in the queue") {
  queue q(options(10, 10ms));
  for (int i = 1; i <= 6; ++i)
    q.push(i, t0);
  auto removed = q.remove_if([](const int& x) { return x % 2 == 0; });
  CHECK(removed == std::vector<int>{2, 4, 6});
  CHECK(q.size() == 3);
  CHECK(q.pop_batch(t0) == std::vector<int>{1, 3, 5});
}

TEST_CASE("take_all empties the queue in arrival order") {
  queue q(options(2, 10ms));
  for (int i = 1; i <= 3; ++i)
    q.push(i, t0);
  CHECK(q.take_all() == std::vector<int>{1, 2, 3});
  CHECK(q.empty());
  CHECK_FALSE(q.deadline());
  q.push(4, t0 + 1s);
  CHECK(*q.deadline() == t0 + 1s + 10ms);
}
