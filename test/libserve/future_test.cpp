#include "libserve/future.hpp"

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <doctest/doctest.h>

using namespace serve;

namespace {

/// The outcome of a future once it settles.
template <class T> struct outcome {
  std::optional<T> value;
  std::optional<error_info> error;
  int deliveries = 0;
};

template <class T> std::shared_ptr<outcome<T>> watch(const future<T>& f) {
  auto out = std::make_shared<outcome<T>>();
  f.subscribe([out](T* v, const error_info* e) {
    ++out->deliveries;
    if (v)
      out->value = *v;
    else
      out->error = *e;
  });
  return out;
}

} // namespace

TEST_CASE("then runs its continuation when the value arrives") {
  promise<int> p;
  auto out = watch(p.get_future().then([](int x) { return x * 2; }).then([](int x) {
    return std::to_string(x);
  }));
  CHECK_FALSE(out->value);
  p.set_value(21);
  REQUIRE(out->value);
  CHECK(*out->value == "42");
  CHECK(out->deliveries == 1);
}

TEST_CASE("then flattens a continuation that returns a future") {
  promise<int> first;
  promise<std::string> second;
  auto out = watch(first.get_future().then([&second](int x) {
    CHECK(x == 1);
    return second.get_future();
  }));
  first.set_value(1);
  CHECK_FALSE(out->value);
  second.set_value("done");
  REQUIRE(out->value);
  CHECK(*out->value == "done");
}

TEST_CASE("a continuation attached after the value arrived runs at once") {
  promise<int> p;
  p.set_value(5);
  auto out = watch(p.get_future().then([](int x) { return x + 1; }));
  REQUIRE(out->value);
  CHECK(*out->value == 6);
}

TEST_CASE("an error skips every continuation and arrives unchanged") {
  promise<int> p;
  int calls = 0;
  auto out = watch(p.get_future()
                       .then([&calls](int x) {
                         ++calls;
                         return x;
                       })
                       .then([&calls](int x) {
                         ++calls;
                         return x;
                       }));
  p.set_error({errc::unavailable, "no replica"});
  CHECK(calls == 0);
  REQUIRE(out->error);
  CHECK(out->error->code == errc::unavailable);
  CHECK(out->error->message == "no replica");
}

TEST_CASE("on_error replaces an error with a value and lets values through") {
  promise<int> failing;
  auto recovered = watch(failing.get_future().on_error([](const error_info& e) {
    CHECK(e.code == errc::request_timeout);
    return -1;
  }));
  failing.set_error({errc::request_timeout, "slow"});
  REQUIRE(recovered->value);
  CHECK(*recovered->value == -1);

  promise<int> fine;
  bool called = false;
  auto passed = watch(fine.get_future().on_error([&called](const error_info&) {
    called = true;
    return -1;
  }));
  fine.set_value(7);
  CHECK_FALSE(called);
  REQUIRE(passed->value);
  CHECK(*passed->value == 7);
}

TEST_CASE("an exception thrown by on_error becomes the new error") {
  promise<int> p;
  auto out = watch(p.get_future().on_error(
      [](const error_info&) -> int { throw serve_exception(errc::not_found, "still missing"); }));
  p.set_error({errc::internal, "first"});
  REQUIRE(out->error);
  CHECK(out->error->code == errc::not_found);
  CHECK(out->error->message == "still missing");
}

TEST_CASE("a serve_exception thrown by a continuation keeps its code") {
  promise<int> p;
  auto out = watch(p.get_future().then(
      [](int) -> int { throw serve_exception(errc::invalid_argument, "field \"x\" is missing"); }));
  p.set_value(1);
  REQUIRE(out->error);
  CHECK(out->error->code == errc::invalid_argument);
  CHECK(out->error->message == "field \"x\" is missing");
}

TEST_CASE("any other exception thrown by a continuation becomes an internal error") {
  promise<int> p;
  auto out = watch(p.get_future().then([](int) -> int { throw std::runtime_error("boom"); }));
  p.set_value(1);
  REQUIRE(out->error);
  CHECK(out->error->code == errc::internal);
  CHECK(out->error->message == "boom");

  promise<int> q;
  auto strange = watch(q.get_future().then([](int) -> int { throw 42; }));
  q.set_value(1);
  REQUIRE(strange->error);
  CHECK(strange->error->code == errc::internal);
}

TEST_CASE("an exception thrown by a future-returning continuation becomes an error") {
  promise<int> p;
  auto out = watch(p.get_future().then(
      [](int) -> future<int> { throw serve_exception(errc::payload_too_large, "too big"); }));
  p.set_value(1);
  REQUIRE(out->error);
  CHECK(out->error->code == errc::payload_too_large);
}

TEST_CASE("when_all keeps the input order whatever the settle order") {
  promise<int> a, b, c;
  auto out = watch(when_all<int>({a.get_future(), b.get_future(), c.get_future()}));
  c.set_value(3);
  a.set_value(1);
  CHECK_FALSE(out->value);
  b.set_value(2);
  REQUIRE(out->value);
  CHECK(*out->value == std::vector<int>{1, 2, 3});
}

TEST_CASE("when_all fails with the first error to arrive") {
  promise<int> a, b, c;
  auto out = watch(when_all<int>({a.get_future(), b.get_future(), c.get_future()}));
  a.set_value(1);
  c.set_error({errc::unavailable, "c failed"});
  REQUIRE(out->error);
  b.set_error({errc::internal, "b failed"});
  CHECK(out->error->code == errc::unavailable);
  CHECK(out->error->message == "c failed");
  CHECK(out->deliveries == 1);
}

TEST_CASE("when_all of nothing is an empty vector at once") {
  auto out = watch(when_all(std::vector<future<int>>{}));
  REQUIRE(out->value);
  CHECK(out->value->empty());
}

TEST_CASE("when_all accepts futures that are already settled") {
  promise<int> late;
  auto out = watch(when_all<int>({future<int>(1), late.get_future()}));
  CHECK_FALSE(out->value);
  late.set_value(2);
  REQUIRE(out->value);
  CHECK(*out->value == std::vector<int>{1, 2});
}

TEST_CASE("settling a promise twice keeps the first result") {
  promise<int> p;
  auto out = watch(p.get_future());
  p.set_value(1);
  p.set_value(2);
  p.set_error({errc::internal, "late"});
  CHECK(p.settled());
  REQUIRE(out->value);
  CHECK(*out->value == 1);
  CHECK(out->deliveries == 1);

  promise<int> q;
  auto failed = watch(q.get_future());
  q.set_error({errc::not_found, "first"});
  q.set_value(3);
  REQUIRE(failed->error);
  CHECK(failed->error->message == "first");
  CHECK_FALSE(failed->value);
}

TEST_CASE("a plain value converts into a ready future") {
  auto make = []() -> future<std::string> { return std::string("ready"); };
  auto f = make();
  CHECK(f.ready());
  CHECK_FALSE(f.has_error());
  auto out = watch(f);
  REQUIRE(out->value);
  CHECK(*out->value == "ready");

  auto failed = future<int>::failed({errc::not_found, "gone"});
  CHECK(failed.ready());
  CHECK(failed.has_error());
}

TEST_CASE("an abandoned promise frees its continuations") {
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> alive = token;
  {
    promise<int> p;
    p.get_future().then([token](int x) { return x + *token; });
    token.reset();
    CHECK_FALSE(alive.expired());
  }
  CHECK(alive.expired());
}

TEST_CASE("a continuation may drop the last reference to the promise that runs it") {
  auto p = std::make_unique<promise<int>>();
  std::vector<int> seen;
  auto f = p->get_future();
  f.subscribe([&p](int*, const error_info*) { p.reset(); });
  f.subscribe([&seen](int* v, const error_info*) { seen.push_back(*v); });
  f = future<int>(0); // only the promise owns the state now
  p->set_value(9);
  CHECK(seen == std::vector<int>{9});
}
