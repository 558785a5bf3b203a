// Unit tests of the replica actor with real executors running small deployment classes defined
// here: init, unbatched calls, batch forming and timing, batch failures, expired calls and
// replica_failure.
#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <caf/all.hpp>
#include <doctest/doctest.h>

#include "test/actors/actor_fixture.hpp"

#include "actors/call_context.hpp"
#include "actors/interfaces.hpp"
#include "actors/messages.hpp"
#include "actors/replica.hpp"
#include "actors/runtime.hpp"
#include "libserve/deployment.hpp"
#include "libserve/error.hpp"

namespace replica_test {

using namespace std::chrono_literals;

/// What the test deployments saw: batch sizes and request bodies, in order. Thread-safe
/// (executors run on their own threads).
class batch_recorder {
public:
  void clear() {
    std::lock_guard<std::mutex> guard(mtx_);
    sizes_.clear();
    bodies_.clear();
  }
  void record(const std::vector<serve::request>& batch) {
    std::lock_guard<std::mutex> guard(mtx_);
    sizes_.push_back(batch.size());
    for (auto& req : batch)
      bodies_.push_back(req.body);
  }
  std::vector<size_t> sizes() const {
    std::lock_guard<std::mutex> guard(mtx_);
    return sizes_;
  }
  std::vector<std::string> bodies() const {
    std::lock_guard<std::mutex> guard(mtx_);
    return bodies_;
  }

private:
  mutable std::mutex mtx_;
  std::vector<size_t> sizes_;        // protected by mtx_
  std::vector<std::string> bodies_;  // protected by mtx_
};

batch_recorder recorder;
std::atomic<int> handle_calls{0};

/// "x" -> "echo:x" from handle().
class test_echo : public serve::deployment {
public:
  explicit test_echo(const serve::deployment_context&) {}
  serve::future<serve::response> handle(serve::request req) override {
    ++handle_calls;
    return serve::response{"echo:" + req.body, "text/plain"};
  }
};

class test_ctor_throws : public serve::deployment {
public:
  explicit test_ctor_throws(const serve::deployment_context&) {
    throw std::runtime_error("weights file missing");
  }
};

/// Records every batch and answers each request with its own body.
class test_batch_sizes : public serve::deployment {
public:
  explicit test_batch_sizes(const serve::deployment_context&) {}
  serve::future<std::vector<serve::response>> handle_batch(
    std::vector<serve::request> requests) override {
    recorder.record(requests);
    std::vector<serve::response> out;
    for (auto& req : requests)
      out.push_back(serve::response{req.body, "text/plain"});
    return out;
  }
};

/// Returns one result too few.
class test_short_batch : public serve::deployment {
public:
  explicit test_short_batch(const serve::deployment_context&) {}
  serve::future<std::vector<serve::response>> handle_batch(
    std::vector<serve::request> requests) override {
    std::vector<serve::response> out(requests.size() - 1, serve::response{"x", "text/plain"});
    return out;
  }
};

/// Throws when any request of the batch says "fail"; otherwise answers with the bodies.
class test_throwing_batch : public serve::deployment {
public:
  explicit test_throwing_batch(const serve::deployment_context&) {}
  serve::future<std::vector<serve::response>> handle_batch(
    std::vector<serve::request> requests) override {
    std::vector<serve::response> out;
    for (auto& req : requests) {
      if (req.body == "fail")
        throw std::runtime_error("batch failed on purpose");
      out.push_back(serve::response{req.body, "text/plain"});
    }
    return out;
  }
};

/// "crash" -> throws replica_failure; anything else is echoed.
class test_replica_failure : public serve::deployment {
public:
  explicit test_replica_failure(const serve::deployment_context&) {}
  serve::future<serve::response> handle(serve::request req) override {
    if (req.body == "crash")
      throw serve::replica_failure("device lost");
    return serve::response{req.body, "text/plain"};
  }
};

SERVE_REGISTER_DEPLOYMENT("TestEcho", test_echo);
SERVE_REGISTER_DEPLOYMENT("TestCtorThrows", test_ctor_throws);
SERVE_REGISTER_DEPLOYMENT("TestBatchSizes", test_batch_sizes);
SERVE_REGISTER_DEPLOYMENT("TestShortBatch", test_short_batch);
SERVE_REGISTER_DEPLOYMENT("TestThrowingBatch", test_throwing_batch);
SERVE_REGISTER_DEPLOYMENT("TestReplicaFailure", test_replica_failure);

serve::replica_options options_for(const std::string& class_name) {
  serve::replica_options opts;
  opts.exec.application = "app";
  opts.exec.deployment = class_name;
  opts.exec.replica_id = class_name + "#1";
  opts.exec.class_name = class_name;
  return opts;
}

serve::replica_options batched(const std::string& class_name, uint64_t max_batch_size,
                               std::chrono::milliseconds wait) {
  auto opts = options_for(class_name);
  opts.batching.enabled = true;
  opts.batching.max_batch_size = max_batch_size;
  opts.batching.batch_wait_timeout_us
    = std::chrono::duration_cast<std::chrono::microseconds>(wait).count();
  opts.batching.max_concurrent_batches = 1;
  return opts;
}

/// init succeeded when it names the actor routers should call.
bool init_succeeded(const serve::replica_ready& ready) {
  return static_cast<bool>(ready.call_target);
}

/// init's answer: success, or the error it came back with.
struct init_outcome {
  bool ok = false;
  serve::error_info error;
};

init_outcome init(caf::scoped_actor& self, const serve::replica_actor& replica) {
  init_outcome out;
  self->request(replica, 2s, serve::init_atom::value)
    .receive([&](serve::replica_ready& answer) { out.ok = init_succeeded(answer); },
             [&](caf::error& err) { out.error = serve::to_error_info(err); });
  return out;
}



/// Sends a call without waiting; collect it with await_reply (2 s at most).
auto send_call(caf::scoped_actor& self, const serve::replica_actor& replica, std::string body,
               int64_t deadline_ns = 0) {
  return self->request(replica, 2s, serve::call_atom::value,
                       make_call(std::move(body), deadline_ns));
}

outcome call(caf::scoped_actor& self, const serve::replica_actor& replica, std::string body,
             int64_t deadline_ns = 0) {
  auto handle = send_call(self, replica, std::move(body), deadline_ns);
  return await_reply(handle);
}

} // namespace replica_test

using namespace replica_test;

TEST_CASE_FIXTURE(actor_fixture, "init constructs the deployment and reports a constructor failure as an error") {

  auto good = serve::spawn_replica(sys, options_for("TestEcho"));
  auto good_init = init(self, good);
  CHECK(good_init.ok);
  auto out = call(self, good, "hi");
  REQUIRE(out.ok);
  CHECK(out.reply.body == "echo:hi");

  auto bad = serve::spawn_replica(sys, options_for("TestCtorThrows"));
  auto bad_init = init(self, bad);
  CHECK_FALSE(bad_init.ok);
  CHECK(bad_init.error.code == serve::errc::internal);
  CHECK(bad_init.error.message.find("TestCtorThrows") != std::string::npos);
  CHECK(bad_init.error.message.find("weights file missing") != std::string::npos);

  auto unknown = serve::spawn_replica(sys, options_for("NoSuchTestClass"));
  auto unknown_init = init(self, unknown);
  CHECK_FALSE(unknown_init.ok);
  CHECK(unknown_init.error.code == serve::errc::not_found);
  CHECK(unknown_init.error.message.find("NoSuchTestClass") != std::string::npos);

  for (auto& r : {good, bad, unknown})
    self->send_exit(r, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(actor_fixture, "without batching each call reaches handle()") {
  auto replica = serve::spawn_replica(sys, options_for("TestEcho"));
  REQUIRE(init(self, replica).ok);

  handle_calls = 0;
  std::vector<decltype(send_call(self, replica, ""))> calls;
  for (int i = 0; i < 5; ++i)
    calls.push_back(send_call(self, replica, std::to_string(i)));
  for (int i = 0; i < 5; ++i) {
    auto out = await_reply(calls[i]);
    REQUIRE(out.ok);
    CHECK(out.reply.body == "echo:" + std::to_string(i));
    CHECK(out.reply.content_type == "text/plain");
  }
  CHECK(handle_calls == 5);
  self->send_exit(replica, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(actor_fixture, "with batching, concurrent calls arrive as one batch no larger than max_batch_size") {
  recorder.clear();
  auto replica = serve::spawn_replica(sys, batched("TestBatchSizes", 5, 100ms));
  REQUIRE(init(self, replica).ok);

  std::vector<decltype(send_call(self, replica, ""))> calls;
  for (int i = 0; i < 12; ++i)
    calls.push_back(send_call(self, replica, std::to_string(i)));
  for (int i = 0; i < 12; ++i) {
    auto out = await_reply(calls[i]);
    REQUIRE(out.ok);
    CHECK(out.reply.body == std::to_string(i)); // each caller gets its own result
  }
  auto sizes = recorder.sizes();
  REQUIRE_FALSE(sizes.empty());
  CHECK(sizes.front() == 5); // the first five arrived together: one full batch
  size_t total = 0;
  for (auto s : sizes) {
    CHECK(s <= 5);
    total += s;
  }
  CHECK(total == 12);
  CHECK(sizes.size() == 3);
  self->send_exit(replica, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(actor_fixture, "a lone call waits for batch_wait_timeout before its batch runs") {
  recorder.clear();
  auto replica = serve::spawn_replica(sys, batched("TestBatchSizes", 5, 200ms));
  REQUIRE(init(self, replica).ok);

  auto start = std::chrono::steady_clock::now();
  auto out = call(self, replica, "alone");
  auto elapsed = std::chrono::steady_clock::now() - start;
  REQUIRE(out.ok);
  CHECK(out.reply.body == "alone");
  CHECK(elapsed >= 180ms);
  CHECK(elapsed < 1500ms);
  CHECK(recorder.sizes() == std::vector<size_t>{1});
  self->send_exit(replica, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(actor_fixture, "a batch handler returning the wrong number of results fails every caller with "
          "internal naming the counts") {
  auto replica = serve::spawn_replica(sys, batched("TestShortBatch", 3, 100ms));
  REQUIRE(init(self, replica).ok);

  std::vector<decltype(send_call(self, replica, ""))> calls;
  for (int i = 0; i < 3; ++i)
    calls.push_back(send_call(self, replica, std::to_string(i)));
  for (auto& handle : calls) {
    auto out = await_reply(handle);
    REQUIRE(out.answered);
    CHECK_FALSE(out.ok);
    CHECK(out.error.code == serve::errc::internal);
    CHECK(out.error.message.find("returned 2 results for 3 requests") != std::string::npos);
  }
  self->send_exit(replica, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(actor_fixture, "a throwing batch handler fails every caller of that batch and the next batch works") {
  auto replica = serve::spawn_replica(sys, batched("TestThrowingBatch", 3, 50ms));
  REQUIRE(init(self, replica).ok);

  std::vector<decltype(send_call(self, replica, ""))> failing;
  for (auto body : {"a", "fail", "b"})
    failing.push_back(send_call(self, replica, body));
  for (auto& handle : failing) {
    auto out = await_reply(handle);
    REQUIRE(out.answered);
    CHECK_FALSE(out.ok);
    CHECK(out.error.code == serve::errc::internal);
    CHECK(out.error.message.find("batch failed on purpose") != std::string::npos);
  }

  auto c = send_call(self, replica, "c");
  auto d = send_call(self, replica, "d");
  auto out_c = await_reply(c);
  auto out_d = await_reply(d);
  REQUIRE(out_c.ok);
  REQUIRE(out_d.ok);
  CHECK(out_c.reply.body == "c");
  CHECK(out_d.reply.body == "d");
  self->send_exit(replica, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(actor_fixture, "a call whose deadline has passed is dropped from its batch with request_timeout") {
  recorder.clear();
  auto replica = serve::spawn_replica(sys, batched("TestBatchSizes", 2, 50ms));
  REQUIRE(init(self, replica).ok);

  auto expired = send_call(self, replica, "late", serve::steady_now_ns() - 1);
  auto fresh = send_call(self, replica, "fresh");
  auto late_out = await_reply(expired);
  REQUIRE(late_out.answered);
  CHECK_FALSE(late_out.ok);
  CHECK(late_out.error.code == serve::errc::request_timeout);
  auto fresh_out = await_reply(fresh);
  REQUIRE(fresh_out.ok);
  CHECK(fresh_out.reply.body == "fresh");
  CHECK(recorder.bodies() == std::vector<std::string>{"fresh"});
  CHECK(recorder.sizes() == std::vector<size_t>{1});
  self->send_exit(replica, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(actor_fixture, "user code throwing replica_failure takes the replica down") {
  auto replica = serve::spawn_replica(sys, options_for("TestReplicaFailure"));
  REQUIRE(init(self, replica).ok);
  self->monitor(replica);

  auto fine = call(self, replica, "ok");
  REQUIRE(fine.ok);
  CHECK(fine.reply.body == "ok");

  auto out = call(self, replica, "crash");
  REQUIRE(out.answered);
  CHECK_FALSE(out.ok);
  CHECK(out.error.code == serve::errc::internal);
  CHECK(out.error.message.find("device lost") != std::string::npos);

  bool down = false;
  self->receive(
    [&](caf::down_msg& dm) {
      down = dm.source == replica.address();
      CHECK(serve::to_error_info(dm.reason).code == serve::errc::internal);
    },
    caf::after(2s) >> [] {});
  CHECK(down);
}
