// The router's call ledger with plain values and a clock passed in: no actors, no sleeps.
#include "libserve/call_ledger.hpp"

#include <string>
#include <vector>

#include <doctest/doctest.h>

namespace {

using ledger = serve::call_ledger<std::string, std::string, int>;

constexpr int64_t max_wait = 1000;

std::vector<std::string> drain(ledger& l, int64_t now, std::vector<std::string>* expired = nullptr) {
  std::vector<std::string> out;
  while (l.next_waiting([now] { return now; }, [&](std::string&& c) {
    if (expired)
      expired->push_back(c);
  }) != nullptr)
    out.push_back(l.take_next());
  return out;
}

} // namespace

TEST_CASE("waiting calls leave in arrival order; a call routed again goes first") {
  ledger l{max_wait};
  l.wait("a", 0, false);
  l.wait("b", 0, false);
  l.wait("bounced", 0, true);
  CHECK(l.waiting() == 3);
  CHECK_FALSE(l.idle());
  CHECK(drain(l, 10) == std::vector<std::string>{"bounced", "a", "b"});
  CHECK(l.waiting() == 0);
  CHECK(l.idle());
}

TEST_CASE("a waiting call past its deadline leaves as expired, when it is reached or at expire()") {
  ledger l{max_wait};
  l.wait("late", 100, false);
  l.wait("on time", 500, false);
  l.wait("no deadline", 0, false);
  std::vector<std::string> expired;
  int clock_reads = 0;
  auto clock = [&] {
    ++clock_reads;
    return int64_t{100};
  };
  auto* next = l.next_waiting(clock, [&](std::string&& c) { expired.push_back(c); });
  REQUIRE(next != nullptr);
  CHECK(*next == "on time"); // a deadline equal to now has passed
  CHECK(expired == std::vector<std::string>{"late"});
  CHECK(clock_reads == 2); // once per call with a deadline that was looked at

  expired.clear();
  l.expire(
    600, [&](std::string&& c) { expired.push_back(c); },
    [](std::string&) { FAIL("nothing runs"); });
  CHECK(expired == std::vector<std::string>{"on time"});
  CHECK(drain(l, 1'000'000) == std::vector<std::string>{"no deadline"});
}

TEST_CASE("calls on a replica finish once; an unknown or finished call is not found") {
  ledger l{max_wait};
  auto first = l.start(7, "x", 0, 0);
  auto second = l.start(7, "y", 0, 0);
  auto other = l.start(8, "z", 0, 0);
  CHECK(first != second);
  CHECK(l.running() == 3);
  CHECK(l.running_on(7));
  auto done = l.finish(7, second);
  REQUIRE(done);
  CHECK(done->call == "y");
  CHECK_FALSE(done->answered);
  CHECK_FALSE(l.finish(7, second)); // exactly once
  CHECK_FALSE(l.finish(8, first));  // the number belongs to another replica
  CHECK(l.finish(7, first));
  CHECK_FALSE(l.running_on(7));
  CHECK(l.finish(8, other));
  CHECK(l.idle());
}

TEST_CASE("a running call expires once, at its deadline or after max_wait without one, and still "
          "counts until its replica answers") {
  ledger l{max_wait};
  auto timed = l.start(1, "timed", 300, 0);
  auto open = l.start(1, "open", 0, 100);
  std::vector<std::string> expired;
  auto sweep = [&](int64_t now) {
    l.expire(
      now, [](std::string&&) { FAIL("nothing waits"); },
      [&](std::string& c) { expired.push_back(c); });
  };
  sweep(299);
  CHECK(expired.empty());
  sweep(300);
  CHECK(expired == std::vector<std::string>{"timed"});
  sweep(1099); // "open" was sent at 100: max_wait (1000) not reached yet
  CHECK(expired == std::vector<std::string>{"timed"});
  sweep(1100);
  CHECK(expired == std::vector<std::string>{"timed", "open"});
  sweep(5000); // each once
  CHECK(expired.size() == 2);
  CHECK(l.running() == 2); // both still on their replica
  auto done = l.finish(1, timed);
  REQUIRE(done);
  CHECK(done->answered); // the caller had its timeout: the late reply is dropped
  CHECK(l.finish(1, open)->answered);
}

TEST_CASE("a lost replica's calls are taken out in the order they were sent; the others stay") {
  ledger l{max_wait};
  auto a1 = l.start(1, "a1", 0, 0);
  l.start(2, "b1", 0, 0);
  l.start(1, "a2", 0, 0);
  l.expire(max_wait, [](std::string&&) {}, [](std::string&) {}); // all answered by timeout
  l.start(1, "a3", 0, max_wait);
  auto lost = l.take_running_on(1);
  REQUIRE(lost.size() == 3);
  CHECK(lost[0].call == "a1");
  CHECK(lost[0].answered);
  CHECK(lost[1].call == "a2");
  CHECK(lost[2].call == "a3");
  CHECK_FALSE(lost[2].answered);
  CHECK_FALSE(l.finish(1, a1)); // its reply, if it still comes, finds nothing
  CHECK(l.running() == 1);
  CHECK(l.take_running_on(1).empty());
}

TEST_CASE("shutdown takes every waiting and running call out") {
  ledger l{max_wait};
  l.wait("w1", 0, false);
  l.wait("w2", 0, false);
  l.start(1, "r1", 0, 0);
  l.start(2, "r2", 0, 0);
  std::vector<std::string> waiting, running;
  l.take_all_waiting([&](std::string&& c) { waiting.push_back(c); });
  l.take_all_running([&](ledger::running_call&& c) { running.push_back(c.call); });
  CHECK(waiting == std::vector<std::string>{"w1", "w2"});
  CHECK(running == std::vector<std::string>{"r1", "r2"});
  CHECK(l.idle());
  CHECK(l.running() == 0);
}
