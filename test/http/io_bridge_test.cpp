// The io thread's bridge actor: requests sent from the io thread are answered there, timeouts
// too, many may be in flight at once, and stop() drops what is still pending.
#include "http/io_bridge.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <vector>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <caf/all.hpp>

using namespace serve;
namespace net = boost::asio;

namespace {

/// An io_context on its own thread with a bridge, the way http_server runs one.
struct io_thread {
  caf::actor_system& sys;
  net::io_context io{1};
  net::executor_work_guard<net::io_context::executor_type> work = net::make_work_guard(io);
  caf::actor handle;
  io_bridge* bridge = nullptr;
  std::thread thread;

  explicit io_thread(caf::actor_system& s) : sys(s) {
    bridge = make_io_bridge(sys, io, handle);
    net::post(io, [this] { bridge->start(); });
    thread = std::thread([this] { io.run(); });
  }
  ~io_thread() {
    run([this] { bridge->stop(); });
    work.reset();
    io.stop();
    thread.join();
  }
  /// Runs `fn` on the io thread and waits for it.
  template <class F> void run(F fn) {
    std::promise<void> done;
    net::post(io, [&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }
};

/// Multiplies by `factor`; never answers a string.
caf::behavior multiplier(int factor) {
  return {[factor](int x) { return x * factor; },
          [](const std::string&) -> caf::result<int> { return caf::delegated<int>{}; }};
}

} // namespace

TEST_CASE("a bridge's replies and their continuations arrive on its io thread") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto target = sys.spawn(multiplier, 2);
  io_thread io(sys);
  std::promise<std::pair<int, std::thread::id>> reply;
  std::thread::id io_id;
  io.run([&] {
    io_id = std::this_thread::get_id();
    io.bridge->request(target, caf::infinite, 21)
      .then([&](int x) { reply.set_value({x, std::this_thread::get_id()}); },
            [&](caf::error&) { reply.set_value({-1, std::this_thread::get_id()}); });
  });
  auto [value, thread] = reply.get_future().get();
  CHECK(value == 42);
  CHECK(thread == io_id);
  caf::anon_send_exit(target, caf::exit_reason::user_shutdown);
}

TEST_CASE("many requests are in flight at once and each is answered once") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto target = sys.spawn(multiplier, 2);
  io_thread io(sys);
  constexpr int n = 1000;
  std::atomic<int> answered{0}, sum{0};
  std::promise<void> all;
  io.run([&] {
    for (int i = 0; i < n; ++i)
      io.bridge->request(target, caf::infinite, i)
        .then(
          [&](int x) {
            sum += x;
            if (++answered == n)
              all.set_value();
          },
          [&](caf::error&) {});
  });
  REQUIRE(all.get_future().wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  CHECK(answered == n);
  CHECK(sum == n * (n - 1)); // 2 * (0 + ... + n-1)
  caf::anon_send_exit(target, caf::exit_reason::user_shutdown);
}

TEST_CASE("a request nobody answers times out on the io thread") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto target = sys.spawn(multiplier, 2);
  io_thread io(sys);
  std::promise<std::pair<caf::error, std::thread::id>> failure;
  std::thread::id io_id;
  io.run([&] {
    io_id = std::this_thread::get_id();
    io.bridge->request(target, std::chrono::milliseconds(50), std::string("silence"))
      .then([&](int) { failure.set_value({caf::error{}, std::this_thread::get_id()}); },
            [&](caf::error& e) { failure.set_value({e, std::this_thread::get_id()}); });
  });
  auto [error, thread] = failure.get_future().get();
  CHECK(error == caf::sec::request_timeout);
  CHECK(thread == io_id);
  caf::anon_send_exit(target, caf::exit_reason::user_shutdown);
}

TEST_CASE("a request to an actor that is gone fails instead of hanging") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto target = sys.spawn(multiplier, 2);
  caf::scoped_actor self{sys};
  self->send_exit(target, caf::exit_reason::kill);
  self->wait_for(target);
  io_thread io(sys);
  std::promise<bool> failed;
  io.run([&] {
    io.bridge->request(target, caf::infinite, 1)
      .then([&](int) { failed.set_value(false); }, [&](caf::error&) { failed.set_value(true); });
  });
  REQUIRE(failed.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready);
}

namespace {

/// Holds every string request (never answers it) and leaves ints in its mailbox.
caf::behavior holder(caf::event_based_actor* self) {
  return {[self](const std::string&) -> caf::result<int> {
            return self->make_response_promise<int>(); // dropped: never delivered
          },
          [](int) -> caf::result<int> { return caf::skip; }};
}

} // namespace

TEST_CASE("a watched call whose target dies holding it is reported lost, after the bounces of "
          "the calls it never started") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto target = sys.spawn(holder);
  io_thread io(sys);
  std::mutex mtx;
  std::vector<std::string> events; // protected by mtx
  auto note = [&](std::string what) {
    std::lock_guard<std::mutex> guard(mtx);
    events.push_back(std::move(what));
  };
  std::promise<void> lost;
  auto addr = target.address();
  io.run([&] {
    auto held = io.bridge->watch(addr, [&] {
      note("held lost");
      lost.set_value();
    });
    io.bridge->request(target, caf::infinite, std::string("hold"))
      .then([&](int) { note("held answered"); }, [&](caf::error&) { note("held failed"); });
    for (int i = 0; i < 2; ++i) {
      auto key = io.bridge->watch(addr, [&] { note("unstarted lost"); });
      io.bridge->request(target, caf::infinite, i)
        .then([&](int) { note("unstarted answered"); },
              [&, key](caf::error& err) {
                if (io.bridge->unwatch(addr, key))
                  note(err == caf::sec::request_receiver_down ? "bounced" : "failed");
              });
    }
    (void) held;
  });
  // Wait until both ints sit in its mailbox, then stop it.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  caf::anon_send_exit(target, caf::exit_reason::user_shutdown);
  REQUIRE(lost.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  io.run([] {}); // everything posted before has run
  std::lock_guard<std::mutex> guard(mtx);
  CHECK(events == std::vector<std::string>{"bounced", "bounced", "held lost"});
}

TEST_CASE("an unwatched call is not reported lost when its target goes down later") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto target = sys.spawn(multiplier, 2);
  io_thread io(sys);
  std::atomic<int> lost{0};
  std::promise<bool> answered;
  io.run([&] {
    auto key = io.bridge->watch(target.address(), [&] { ++lost; });
    io.bridge->request(target, caf::infinite, 4)
      .then([&, key](int) { answered.set_value(io.bridge->unwatch(target.address(), key)); },
            [&](caf::error&) { answered.set_value(false); });
  });
  CHECK(answered.get_future().get());
  caf::scoped_actor self{sys};
  self->send_exit(target, caf::exit_reason::user_shutdown);
  self->wait_for(target);
  io.run([] {});
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  io.run([] {});
  CHECK(lost == 0);
}
