// Unit tests of the router actor, driven through fake replicas that speak replica_actor's
// interface: one that answers at once, one that holds calls until told to release them (its
// flush_atom handler) and can quit while holding them (abort_atom), and one that leaves every
// call in its mailbox and quits on flush_atom, so CAF bounces them with request_receiver_down.
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <caf/all.hpp>
#include <doctest/doctest.h>

#include "test/actors/actor_fixture.hpp"

#include "actors/call_context.hpp"
#include "actors/direct_route.hpp"
#include "actors/interfaces.hpp"
#include "actors/messages.hpp"
#include "actors/router.hpp"
#include "actors/runtime.hpp"
#include "libserve/error.hpp"

namespace {

using namespace std::chrono_literals;
using serve::call_atom;
using serve::call_reply;
using serve::call_request;
using serve::replica_actor;

/// The fakes' answer to init (the router never sends it): themselves as call target.
template <class Self>
serve::replica_ready init_reply(Self* self) {
  return serve::replica_ready{caf::actor_cast<caf::actor>(self), ""};
}

/// The bodies of the calls a fake replica received, in order. Thread-safe.
class call_log {
public:
  void add(const std::string& body) {
    std::lock_guard<std::mutex> guard(mtx_);
    bodies_.push_back(body);
  }
  std::vector<std::string> bodies() const {
    std::lock_guard<std::mutex> guard(mtx_);
    return bodies_;
  }

private:
  mutable std::mutex mtx_;
  std::vector<std::string> bodies_; // protected by mtx_
};

/// Answers every call at once with "<name>:<body>".
replica_actor::behavior_type echo_replica(replica_actor::pointer self, std::string name,
                                          std::shared_ptr<call_log> log) {
  return {
    [=](serve::init_atom) { return init_reply(self); },
    [=](call_atom, call_request& req) -> call_reply {
      log->add(req.body);
      return call_reply{name + ":" + req.body, "text/plain", 0, {}};
    },
    [=](call_atom, serve::local_call& call) -> call_reply {
      auto req = call.take();
      log->add(req.body);
      return call_reply{name + ":" + req.body, "text/plain", 0, {}};
    },
    [](serve::reconfig_atom, std::string&, serve::batch_settings&) {},
    [](serve::flush_atom) {},
    [](serve::abort_atom) {},
  };
}

struct holding_state {
  std::string label;
  std::shared_ptr<call_log> log;
  std::deque<std::pair<std::string, caf::typed_response_promise<call_reply>>> held;
  /// Releases asked for before a call arrived: the next calls are answered at once.
  int credits = 0;
  static inline const char* name = "holding_replica";
};

caf::result<call_reply> hold(replica_actor::stateful_pointer<holding_state> self,
                             call_request req) {
  auto& st = self->state;
  st.log->add(req.body);
  if (st.credits > 0) {
    --st.credits;
    return call_reply{st.label + ":" + req.body, "text/plain", 0, {}};
  }
  auto rp = self->make_response_promise<call_reply>();
  st.held.emplace_back(req.body, rp);
  return rp;
}

/// Holds every call; each flush_atom answers the oldest one ("<name>:<body>"); abort_atom
/// quits with the held calls unanswered.
replica_actor::behavior_type holding_replica(replica_actor::stateful_pointer<holding_state> self,
                                             std::string name, std::shared_ptr<call_log> log) {
  self->state.label = std::move(name);
  self->state.log = std::move(log);
  return {
    [=](serve::init_atom) { return init_reply(self); },
    [=](call_atom, call_request& req) { return hold(self, std::move(req)); },
    [=](call_atom, serve::local_call& call) { return hold(self, call.take()); },
    [](serve::reconfig_atom, std::string&, serve::batch_settings&) {},
    [=](serve::flush_atom) {
      auto& st = self->state;
      if (st.held.empty()) {
        ++st.credits;
        return;
      }
      auto [body, rp] = std::move(st.held.front());
      st.held.pop_front();
      rp.deliver(call_reply{st.label + ":" + body, "text/plain", 0, {}});
    },
    [=](serve::abort_atom) { self->quit(caf::exit_reason::user_shutdown); },
  };
}

/// Never starts a call (skips it: it stays in the mailbox); flush_atom makes it quit, and CAF
/// answers the calls still in its mailbox with request_receiver_down.
replica_actor::behavior_type bouncing_replica(replica_actor::pointer self,
                                              std::shared_ptr<call_log> log) {
  return {
    [=](serve::init_atom) { return init_reply(self); },
    [=](call_atom, call_request& req) -> caf::result<call_reply> {
      log->add(req.body);
      return caf::skip;
    },
    [=](call_atom, serve::local_call& call) -> caf::result<call_reply> {
      log->add(call.peek().body); // not taken: the router may send it elsewhere
      return caf::skip;
    },
    [](serve::reconfig_atom, std::string&, serve::batch_settings&) {},
    [=](serve::flush_atom) { self->quit(caf::exit_reason::user_shutdown); },
    [](serve::abort_atom) {},
  };
}



/// Sends a call without waiting; the reply is collected with await_reply (2 s at most).
auto send_call(caf::scoped_actor& self, const serve::router_actor& router, std::string body,
               int64_t deadline_ns = 0) {
  return self->request(router, 2s, call_atom::value, make_call(std::move(body), deadline_ns));
}

outcome call(caf::scoped_actor& self, const serve::router_actor& router, std::string body,
             int64_t deadline_ns = 0) {
  auto handle = send_call(self, router, std::move(body), deadline_ns);
  return await_reply(handle);
}

serve::router_status status_of(caf::scoped_actor& self, const serve::router_actor& router) {
  serve::router_status out;
  self->request(router, 2s, serve::status_atom::value)
    .receive([&](serve::router_status& st) { out = std::move(st); },
             [&](caf::error& err) { FAIL_CHECK("status failed: " << caf::to_string(err)); });
  return out;
}

serve::replica_set make_set(std::vector<replica_actor> replicas, uint64_t max_ongoing,
                            int64_t max_queued = -1) {
  serve::replica_set set;
  for (size_t i = 0; i < replicas.size(); ++i) {
    set.replicas.push_back(caf::actor_cast<caf::actor>(replicas[i]));
    set.replica_ids.push_back("r" + std::to_string(i + 1));
  }
  set.max_ongoing = max_ongoing;
  set.max_queued = max_queued;
  return set;
}

/// Polls the router until `pred(status)` holds (1 s at most).
template <class Pred>
bool wait_for_status(caf::scoped_actor& self, const serve::router_actor& router, Pred pred) {
  auto until = std::chrono::steady_clock::now() + 1s;
  while (std::chrono::steady_clock::now() < until) {
    if (pred(status_of(self, router)))
      return true;
    std::this_thread::sleep_for(2ms);
  }
  return false;
}

serve::router_options test_router_options() {
  serve::router_options opts;
  opts.deployment_label = "app/model";
  opts.seed = 42;
  return opts;
}

template <class... Handles>
void stop_all(caf::scoped_actor& self, const Handles&... handles) {
  (self->send_exit(handles, caf::exit_reason::user_shutdown), ...);
}

} // namespace

TEST_CASE_FIXTURE(actor_fixture, "a call is answered with the replica's reply") {
  auto log = std::make_shared<call_log>();
  auto replica = sys.spawn(echo_replica, "a", log);
  auto router = serve::spawn_router(sys, test_router_options());
  self->send(router, serve::update_atom::value, make_set({replica}, 5));

  auto out = call(self, router, "hello");
  REQUIRE(out.ok);
  CHECK(out.reply.body == "a:hello");
  CHECK(out.reply.content_type == "text/plain");
  CHECK(log->bodies() == std::vector<std::string>{"hello"});
  stop_all(self, router, replica);
}

TEST_CASE_FIXTURE(actor_fixture, "calls are spread by power of two choices: with two idle replicas and a cap of 1 "
          "each, two concurrent calls land on different replicas") {
  auto log_a = std::make_shared<call_log>();
  auto log_b = std::make_shared<call_log>();
  auto a = sys.spawn(holding_replica, "a", log_a);
  auto b = sys.spawn(holding_replica, "b", log_b);
  auto router = serve::spawn_router(sys, test_router_options());
  self->send(router, serve::update_atom::value, make_set({a, b}, 1));

  auto first = send_call(self, router, "1");
  auto second = send_call(self, router, "2");
  auto st = status_of(self, router);
  CHECK(st.queued == 0);
  CHECK(st.in_flight == std::vector<uint64_t>{1, 1});
  self->send(a, serve::flush_atom::value);
  self->send(b, serve::flush_atom::value);
  auto r1 = await_reply(first);
  auto r2 = await_reply(second);
  REQUIRE(r1.ok);
  REQUIRE(r2.ok);
  CHECK(r1.reply.body.substr(0, 2) != r2.reply.body.substr(0, 2));
  CHECK(log_a->bodies().size() == 1);
  CHECK(log_b->bodies().size() == 1);
  stop_all(self, router, a, b);
}

TEST_CASE_FIXTURE(actor_fixture, "when every replica is at its cap, calls wait in FIFO order and are sent as replicas "
          "free up") {
  auto log = std::make_shared<call_log>();
  auto replica = sys.spawn(holding_replica, "a", log);
  auto router = serve::spawn_router(sys, test_router_options());
  self->send(router, serve::update_atom::value, make_set({replica}, 1));

  std::vector<decltype(send_call(self, router, ""))> calls;
  for (int i = 1; i <= 4; ++i)
    calls.push_back(send_call(self, router, std::to_string(i)));
  auto st = status_of(self, router);
  CHECK(st.queued == 3);
  CHECK(st.in_flight == std::vector<uint64_t>{1});

  for (int i = 1; i <= 4; ++i) {
    self->send(replica, serve::flush_atom::value);
    auto out = await_reply(calls[i - 1]);
    REQUIRE(out.ok);
    CHECK(out.reply.body == "a:" + std::to_string(i));
  }
  CHECK(log->bodies() == std::vector<std::string>{"1", "2", "3", "4"});
  CHECK(status_of(self, router).queued == 0);
  stop_all(self, router, replica);
}

TEST_CASE_FIXTURE(actor_fixture, "beyond max_queued_requests a call fails at once with unavailable and 'Request "
          "dropped due to backpressure'") {
  auto log = std::make_shared<call_log>();
  auto replica = sys.spawn(holding_replica, "a", log);
  auto router = serve::spawn_router(sys, test_router_options());
  self->send(router, serve::update_atom::value, make_set({replica}, 1, 2));

  auto running = send_call(self, router, "1");
  auto queued_1 = send_call(self, router, "2");
  auto queued_2 = send_call(self, router, "3");
  auto start = std::chrono::steady_clock::now();
  auto dropped = call(self, router, "4");
  auto elapsed = std::chrono::steady_clock::now() - start;
  REQUIRE(dropped.answered);
  CHECK_FALSE(dropped.ok);
  CHECK(dropped.error.code == serve::errc::unavailable);
  CHECK(dropped.error.message.find("Request dropped due to backpressure") != std::string::npos);
  CHECK(elapsed < 500ms);
  auto st = status_of(self, router);
  CHECK(st.queued == 2);
  CHECK(st.rejected == 1);

  // The accepted calls still complete.
  for (int i = 0; i < 3; ++i)
    self->send(replica, serve::flush_atom::value);
  CHECK(await_reply(running).ok);
  CHECK(await_reply(queued_1).ok);
  CHECK(await_reply(queued_2).ok);
  stop_all(self, router, replica);
}

TEST_CASE_FIXTURE(actor_fixture, "a call bounced by a replica that stopped before starting it is routed to another "
          "replica") {
  auto bounced_log = std::make_shared<call_log>();
  auto good_log = std::make_shared<call_log>();
  auto bouncer = sys.spawn(bouncing_replica, bounced_log);
  auto good = sys.spawn(echo_replica, "good", good_log);
  auto router = serve::spawn_router(sys, test_router_options());
  // Only the bouncer at first, so the calls land in its mailbox.
  self->send(router, serve::update_atom::value, make_set({bouncer}, 10));
  std::vector<decltype(send_call(self, router, ""))> calls;
  for (int i = 1; i <= 3; ++i)
    calls.push_back(send_call(self, router, std::to_string(i)));
  REQUIRE(wait_for_status(self, router, [](const serve::router_status& st) {
    return st.in_flight == std::vector<uint64_t>{3};
  }));
  // Wait until the bouncer has looked at (and skipped) all three: they sit in its mailbox.
  auto until = std::chrono::steady_clock::now() + 1s;
  while (bounced_log->bodies().size() < 3 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(1ms);
  REQUIRE(bounced_log->bodies() == std::vector<std::string>{"1", "2", "3"});
  self->send(router, serve::update_atom::value, make_set({bouncer, good}, 10));
  self->send(bouncer, serve::flush_atom::value); // quits with the 3 calls unstarted

  for (int i = 1; i <= 3; ++i) {
    auto out = await_reply(calls[i - 1]);
    REQUIRE(out.answered);
    CHECK_MESSAGE(out.ok, "call " << i << " failed: " << std::string(serve::to_string(out.error.code))
                                  << ": " << out.error.message);
    if (out.ok)
      CHECK(out.reply.body == "good:" + std::to_string(i));
  }
  CHECK(good_log->bodies().size() == 3);
  stop_all(self, router, good);
}

TEST_CASE_FIXTURE(actor_fixture, "a replica that dies while handling a call makes the router fail that call with "
          "internal at once, not at its timeout") {
  auto log = std::make_shared<call_log>();
  auto replica = sys.spawn(holding_replica, "a", log);
  auto router = serve::spawn_router(sys, test_router_options());
  self->send(router, serve::update_atom::value, make_set({replica}, 5));

  // No deadline: the router's own request to the replica would time out after ten minutes.
  auto pending = send_call(self, router, "1");
  REQUIRE(wait_for_status(self, router, [](const serve::router_status& st) {
    return st.in_flight == std::vector<uint64_t>{1};
  }));
  auto start = std::chrono::steady_clock::now();
  self->send(replica, serve::abort_atom::value); // quits holding the promise
  auto out = await_reply(pending);
  auto elapsed = std::chrono::steady_clock::now() - start;
  REQUIRE(out.answered);
  CHECK_FALSE(out.ok);
  CHECK(out.error.code == serve::errc::internal);
  CHECK(out.error.message.find("stopped while handling") != std::string::npos);
  CHECK(elapsed < 500ms);
  // The dead replica is no longer offered.
  CHECK(status_of(self, router).replica_ids.empty());
  stop_all(self, router);
}

TEST_CASE_FIXTURE(actor_fixture, "a call whose deadline passed while queued gets request_timeout") {
  auto log = std::make_shared<call_log>();
  auto replica = sys.spawn(holding_replica, "a", log);
  auto router = serve::spawn_router(sys, test_router_options());
  self->send(router, serve::update_atom::value, make_set({replica}, 1));

  auto running = send_call(self, router, "1");
  auto expiring = send_call(self, router, "2", serve::steady_now_ns() + 50'000'000);
  auto patient = send_call(self, router, "3");
  CHECK(status_of(self, router).queued == 2);
  std::this_thread::sleep_for(100ms); // call 2's deadline passes while it waits
  self->send(replica, serve::flush_atom::value);
  CHECK(await_reply(running).ok);

  auto out = await_reply(expiring);
  REQUIRE(out.answered);
  CHECK_FALSE(out.ok);
  CHECK(out.error.code == serve::errc::request_timeout);
  CHECK(out.error.message.find("queued") != std::string::npos);

  // The expired call never reached the replica; the one behind it did.
  self->send(replica, serve::flush_atom::value);
  auto last = await_reply(patient);
  REQUIRE(last.ok);
  CHECK(last.reply.body == "a:3");
  CHECK(log->bodies() == std::vector<std::string>{"1", "3"});
  stop_all(self, router, replica);
}

TEST_CASE_FIXTURE(actor_fixture, "with no replica and an unavailable_reason, calls fail with unavailable naming the "
          "reason") {
  auto router = serve::spawn_router(sys, test_router_options());

  // Without a reason, a call waits for replicas...
  self->send(router, serve::update_atom::value, serve::replica_set{});
  auto waiting = send_call(self, router, "1");
  CHECK(status_of(self, router).queued == 1);

  // ...and when the deployment is declared failed, the waiting call and new ones fail.
  serve::replica_set failed;
  failed.unavailable_reason = "deployment app/model failed to deploy: constructor threw";
  self->send(router, serve::update_atom::value, failed);
  auto queued_out = await_reply(waiting);
  REQUIRE(queued_out.answered);
  CHECK_FALSE(queued_out.ok);
  CHECK(queued_out.error.code == serve::errc::unavailable);
  CHECK(queued_out.error.message == failed.unavailable_reason);

  auto start = std::chrono::steady_clock::now();
  auto out = call(self, router, "2");
  CHECK(std::chrono::steady_clock::now() - start < 500ms);
  REQUIRE(out.answered);
  CHECK_FALSE(out.ok);
  CHECK(out.error.code == serve::errc::unavailable);
  CHECK(out.error.message.find("constructor threw") != std::string::npos);
  stop_all(self, router);
}

TEST_CASE_FIXTURE(actor_fixture, "abort fails every queued call with unavailable") {
  auto log = std::make_shared<call_log>();
  auto replica = sys.spawn(holding_replica, "a", log);
  auto router = serve::spawn_router(sys, test_router_options());
  self->send(router, serve::update_atom::value, make_set({replica}, 1));

  auto running = send_call(self, router, "1");
  auto queued_1 = send_call(self, router, "2");
  auto queued_2 = send_call(self, router, "3");
  CHECK(status_of(self, router).queued == 2);
  self->send(router, serve::abort_atom::value);
  for (auto* handle : {&queued_1, &queued_2}) {
    auto out = await_reply(*handle);
    REQUIRE(out.answered);
    CHECK_FALSE(out.ok);
    CHECK(out.error.code == serve::errc::unavailable);
  }
  CHECK(status_of(self, router).queued == 0);
  for (auto& body : log->bodies())
    CHECK(body == "1"); // the queued calls never reached the replica
  // The call on the replica is answered too (never left hanging).
  CHECK(await_reply(running).answered);
  stop_all(self, router, replica);
}

TEST_CASE_FIXTURE(actor_fixture, "status reports queued calls and per-replica in-flight counts") {
  auto log_a = std::make_shared<call_log>();
  auto log_b = std::make_shared<call_log>();
  auto a = sys.spawn(holding_replica, "a", log_a);
  auto b = sys.spawn(holding_replica, "b", log_b);
  auto router = serve::spawn_router(sys, test_router_options());
  self->send(router, serve::update_atom::value, make_set({a, b}, 2));

  std::vector<decltype(send_call(self, router, ""))> calls;
  for (int i = 1; i <= 6; ++i)
    calls.push_back(send_call(self, router, std::to_string(i)));
  auto st = status_of(self, router);
  CHECK(st.queued == 2);
  CHECK(st.total_requests == 6);
  CHECK(st.rejected == 0);
  CHECK(st.replica_ids == std::vector<std::string>{"r1", "r2"});
  CHECK(st.in_flight == std::vector<uint64_t>{2, 2});

  // One call finishes on a: a queued call takes its place.
  self->send(a, serve::flush_atom::value);
  REQUIRE(wait_for_status(self, router, [](const serve::router_status& s) {
    return s.queued == 1 && s.in_flight == std::vector<uint64_t>{2, 2};
  }));
  for (int i = 0; i < 3; ++i) {
    self->send(a, serve::flush_atom::value);
    self->send(b, serve::flush_atom::value);
  }
  for (auto& handle : calls)
    CHECK(await_reply(handle).ok);
  st = status_of(self, router);
  CHECK(st.queued == 0);
  CHECK(st.in_flight == std::vector<uint64_t>{0, 0});
  stop_all(self, router, a, b);
}

TEST_CASE_FIXTURE(actor_fixture, "the router answers calls past their deadline itself, queued or on a replica, without "
          "a timer per call") {
  auto log = std::make_shared<call_log>();
  auto replica = sys.spawn(holding_replica, "a", log);
  auto router = serve::spawn_router(sys, test_router_options());
  self->send(router, serve::update_atom::value, make_set({replica}, 1));

  auto deadline = serve::steady_now_ns() + 100'000'000; // 100 ms
  auto running = send_call(self, router, "1", deadline);
  auto queued = send_call(self, router, "2", deadline);
  auto start = std::chrono::steady_clock::now();
  auto on_replica = await_reply(running);
  auto in_queue = await_reply(queued);
  auto elapsed = std::chrono::steady_clock::now() - start;
  REQUIRE(on_replica.answered);
  CHECK(on_replica.error.code == serve::errc::request_timeout);
  CHECK(on_replica.error.message.find("on its replica") != std::string::npos);
  REQUIRE(in_queue.answered);
  CHECK(in_queue.error.code == serve::errc::request_timeout);
  CHECK(elapsed < 1s); // the sweep runs every 250 ms
  // The held call still occupies the replica until the replica answers; then it is free.
  CHECK(status_of(self, router).in_flight == std::vector<uint64_t>{1});
  self->send(replica, serve::flush_atom::value);
  REQUIRE(wait_for_status(self, router, [](const serve::router_status& st) {
    return st.in_flight == std::vector<uint64_t>{0};
  }));
  auto next = send_call(self, router, "3");
  self->send(replica, serve::flush_atom::value);
  auto after = await_reply(next);
  REQUIRE(after.ok);
  CHECK(after.reply.body == "a:3");
  stop_all(self, router, replica);
}

TEST_CASE_FIXTURE(actor_fixture, "a replica set published before the controller heard that a "
          "replica died does not bring that replica back") {
  auto log_a = std::make_shared<call_log>();
  auto log_b = std::make_shared<call_log>();
  auto a = sys.spawn(echo_replica, "a", log_a);
  auto b = sys.spawn(echo_replica, "b", log_b);
  auto router = serve::spawn_router(sys, test_router_options());
  self->send(router, serve::update_atom::value, make_set({a, b}, 5));
  REQUIRE(call(self, router, "warm").ok);
  self->send_exit(a, caf::exit_reason::kill);
  REQUIRE(wait_for_status(self, router, [](const serve::router_status& st) {
    return st.replica_ids.size() == 1;
  }));
  // A stale set still naming the dead replica (the controller published it before its own
  // down_msg arrived): every call must go to b.
  self->send(router, serve::update_atom::value, make_set({a, b}, 5));
  // Answered right after the update, before any new down_msg could come: a is not offered.
  CHECK(status_of(self, router).replica_ids.size() == 1);
  for (int i = 0; i < 20; ++i) {
    auto out = call(self, router, std::to_string(i));
    REQUIRE(out.ok);
    CHECK(out.reply.body.rfind("b:", 0) == 0);
  }
  CHECK(status_of(self, router).replica_ids.size() == 1);
  stop_all(self, router, b);
}

TEST_CASE_FIXTURE(actor_fixture, "when a replica's node is lost, the calls it was handling fail "
          "at once with unavailable and the router stops offering it") {
  auto log = std::make_shared<call_log>();
  auto replica = sys.spawn(holding_replica, "a", log);
  auto router = serve::spawn_router(sys, test_router_options());
  self->send(router, serve::update_atom::value, make_set({replica}, 5));
  auto pending = send_call(self, router, "1");
  REQUIRE(wait_for_status(self, router, [](const serve::router_status& st) {
    return st.in_flight == std::vector<uint64_t>{1};
  }));
  // (Here the "node" is this process: the fake replica lives on it.)
  self->send(router, serve::lost_atom::value, replica.node(),
             std::string("node w1 was lost (connection lost)"));
  auto out = await_reply(pending);
  REQUIRE(out.answered);
  CHECK_FALSE(out.ok);
  CHECK(out.error.code == serve::errc::unavailable);
  CHECK(out.error.message
        == "node w1 was lost (connection lost) while it handled the request; retry");
  CHECK(status_of(self, router).replica_ids.empty());
  // The replica's late answer, if it comes, is dropped: the caller had exactly one reply.
  self->send(replica, serve::flush_atom::value);
  stop_all(self, router, replica);
}

namespace {

/// The router's direct route, once its first replica set has been applied (status answers after
/// update, messages from one sender arriving in order).
std::shared_ptr<serve::direct_route> direct_route_of(caf::scoped_actor& self,
                                                     const serve::router_actor& router) {
  status_of(self, router);
  return serve::direct_routes::global().find(router.id());
}

/// A router over `replicas` (a cap of `max_ongoing` calls each) and its direct route.
std::pair<serve::router_actor, std::shared_ptr<serve::direct_route>>
router_with_direct_route(caf::actor_system& sys, caf::scoped_actor& self,
                         std::vector<replica_actor> replicas, uint64_t max_ongoing) {
  auto router = serve::spawn_router(sys, test_router_options());
  self->send(router, serve::update_atom::value, make_set(std::move(replicas), max_ongoing));
  auto direct = direct_route_of(self, router);
  REQUIRE(direct != nullptr);
  return {router, direct};
}

} // namespace

TEST_CASE_FIXTURE(actor_fixture, "direct callers and the router share each replica's cap; a call queued while a "
          "direct call held the last slot is sent when that slot is released") {
  auto log = std::make_shared<call_log>();
  auto replica = sys.spawn(holding_replica, "a", log);
  auto routed = router_with_direct_route(sys, self, {replica}, 1);
  auto router = routed.first;
  auto direct = routed.second;

  auto slot = direct->acquire();
  REQUIRE(slot != nullptr);
  CHECK(slot->id == "r1");
  CHECK(direct->acquire() == nullptr); // the cap of 1 is taken
  auto queued = send_call(self, router, "1");
  REQUIRE(wait_for_status(self, router, [](const auto& st) { return st.queued == 1; }));
  CHECK(status_of(self, router).in_flight == std::vector<uint64_t>{1});
  CHECK(log->bodies().empty());

  direct->release(*slot); // wakes the router: a call waits
  REQUIRE(wait_for_status(self, router, [](const auto& st) { return st.queued == 0; }));
  CHECK(direct->acquire() == nullptr); // the router's call holds the slot now
  self->send(replica, serve::flush_atom::value);
  auto out = await_reply(queued);
  REQUIRE(out.ok);
  CHECK(out.reply.body == "a:1");
  CHECK(status_of(self, router).total_requests == 2); // one direct, one through the router
  stop_all(self, router, replica);
}

TEST_CASE_FIXTURE(actor_fixture, "while calls wait in the router, direct callers queue behind them") {
  auto log = std::make_shared<call_log>();
  auto replica = sys.spawn(holding_replica, "a", log);
  auto routed = router_with_direct_route(sys, self, {replica}, 1);
  auto router = routed.first;
  auto direct = routed.second;
  auto running = send_call(self, router, "1");
  auto waiting = send_call(self, router, "2");
  REQUIRE(wait_for_status(self, router, [](const auto& st) { return st.queued == 1; }));
  self->send(replica, serve::flush_atom::value); // "1" ends; "2" takes the slot
  REQUIRE(await_reply(running).ok);
  REQUIRE(wait_for_status(self, router, [](const auto& st) { return st.queued == 0; }));
  CHECK(direct->acquire() == nullptr);
  self->send(replica, serve::flush_atom::value);
  REQUIRE(await_reply(waiting).ok);
  REQUIRE(wait_for_status(self, router, [](const auto& st) { return st.in_flight == std::vector<uint64_t>{0}; }));
  auto slot = direct->acquire();
  CHECK(slot != nullptr);
  direct->release(*slot);
  stop_all(self, router, replica);
}

TEST_CASE_FIXTURE(actor_fixture, "a replica removed from the set while a direct call is on it stops only when that "
          "call's slot is released") {
  auto log = std::make_shared<call_log>();
  auto old_replica = sys.spawn(holding_replica, "old", log);
  auto new_replica = sys.spawn(echo_replica, "new", log);
  auto routed = router_with_direct_route(sys, self, {old_replica}, 5);
  auto router = routed.first;
  auto direct = routed.second;
  auto slot = direct->acquire();
  REQUIRE(slot != nullptr);
  self->monitor(old_replica);

  self->send(router, serve::update_atom::value, make_set({new_replica}, 5));
  status_of(self, router);
  CHECK(slot->retired.load());
  bool stopped = false;
  self->receive([&](caf::down_msg&) { stopped = true; }, caf::after(100ms) >> [] {});
  CHECK_FALSE(stopped); // the direct call still runs there
  auto next = direct->acquire(); // new calls go to the new replica
  REQUIRE(next != nullptr);
  CHECK(next->id == "r1");
  CHECK(next->handle == caf::actor_cast<serve::call_target_actor>(new_replica));
  direct->release(*next);

  direct->release(*slot);
  self->receive([&](caf::down_msg& dm) { stopped = dm.source == old_replica.address(); },
                caf::after(2s) >> [] {});
  CHECK(stopped);
  stop_all(self, router, new_replica);
}

TEST_CASE_FIXTURE(actor_fixture, "a closing router offers no direct route and quits when the last direct call "
          "ends") {
  auto log = std::make_shared<call_log>();
  auto replica = sys.spawn(holding_replica, "a", log);
  auto routed = router_with_direct_route(sys, self, {replica}, 5);
  auto router = routed.first;
  auto direct = routed.second;
  auto slot = direct->acquire();
  REQUIRE(slot != nullptr);
  self->monitor(router);
  auto closing = make_set({replica}, 5);
  closing.closing = true;
  self->send(router, serve::update_atom::value, closing);
  status_of(self, router);
  CHECK(direct->acquire() == nullptr);
  bool quit = false;
  self->receive([&](caf::down_msg&) { quit = true; }, caf::after(100ms) >> [] {});
  CHECK_FALSE(quit);
  direct->release(*slot);
  self->receive([&](caf::down_msg& dm) { quit = dm.source == router.address(); },
                caf::after(2s) >> [] {});
  CHECK(quit);
  auto until = std::chrono::steady_clock::now() + 1s; // the route goes with the router's cleanup
  while (serve::direct_routes::global().find(router.id()) != nullptr
         && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(1ms);
  CHECK(serve::direct_routes::global().find(router.id()) == nullptr);
  stop_all(self, replica);
}

TEST_CASE_FIXTURE(actor_fixture, "a caller's view of the direct route follows every replica set the router "
          "publishes") {
  auto log = std::make_shared<call_log>();
  auto old_replica = sys.spawn(echo_replica, "old", log);
  auto new_replica = sys.spawn(echo_replica, "new", log);
  auto routed = router_with_direct_route(sys, self, {old_replica}, 1);
  auto router = routed.first;
  auto direct = routed.second;
  {
    serve::direct_route::view view;
    auto slot = direct->acquire(&view);
    REQUIRE(slot != nullptr);
    CHECK(slot->handle == caf::actor_cast<serve::call_target_actor>(old_replica));
    CHECK(direct->acquire(&view) == nullptr); // the cached replica is at its cap of 1
    direct->release(*slot);

    self->send(router, serve::update_atom::value, make_set({new_replica}, 1));
    status_of(self, router);
    auto next = direct->acquire(&view); // reloaded: the old replica is not offered any more
    REQUIRE(next != nullptr);
    CHECK(next->handle == caf::actor_cast<serve::call_target_actor>(new_replica));
    direct->release(*next);

    auto closing = make_set({new_replica}, 1);
    closing.closing = true;
    self->monitor(router);
    self->send(router, serve::update_atom::value, closing);
    bool quit = false; // nothing in flight: the closing router withdraws its route and quits
    self->receive([&](caf::down_msg& dm) { quit = dm.source == router.address(); },
                  caf::after(2s) >> [] {});
    CHECK(quit);
    CHECK(direct->acquire(&view) == nullptr);
  }
  stop_all(self, router, old_replica, new_replica);
}
