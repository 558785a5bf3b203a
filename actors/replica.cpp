#include "actors/replica.hpp"

#include <map>
#include <optional>

#include <caf/all.hpp>

#include "actors/call_context.hpp"
#include "libserve/batch_queue.hpp"
#include "libserve/metrics.hpp"

namespace serve {

namespace {

using reply_promise = caf::typed_response_promise<call_reply>;

/// A call waiting for its batch. Its request is taken only when the batch starts, so a call the
/// replica never started (it stopped first) goes back to a local caller intact.
struct pending_call {
  local_call call;
  reply_promise promise;
  /// When it joined the batch queue (steady clock ns).
  int64_t enqueued_ns = 0;
};

/// Ray Serve's @serve.batch metrics (reference §2), one set per replica.
struct batch_metrics {
  metrics::histogram wait_time_ms, execution_time_ms, utilization_percent, actual_batch_size;
  metrics::gauge queue_length;
  metrics::counter batches_processed;
  /// The queue length as last added to queue_length.
  int64_t queue_reported = 0;

  void init(const executor_options& exec) {
    auto& reg = metrics::registry::global();
    const metrics::label_set labels{{"deployment", exec.deployment},
                                    {"replica", exec.replica_id},
                                    {"application", exec.application},
                                    {"function_name", "handle_batch"}};
    static const std::vector<double> sizes{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
    static const std::vector<double> percents{10, 20, 30, 40, 50, 60, 70, 80, 90, 100};
    wait_time_ms = reg.get_histogram("ray_serve_batch_wait_time_ms",
                                     "Time the first request of a batch waited for it to form "
                                     "(ms).", metrics::latency_ms_buckets(), labels);
    execution_time_ms = reg.get_histogram("ray_serve_batch_execution_time_ms",
                                          "Time to execute a batch (ms).",
                                          metrics::latency_ms_buckets(), labels);
    utilization_percent = reg.get_histogram(
      "ray_serve_batch_utilization_percent",
      "Batch size as a percentage of max_batch_size.", percents, labels);
    actual_batch_size = reg.get_histogram("ray_serve_actual_batch_size",
                                          "The size of each batch executed.", sizes, labels);
    queue_length = reg.get_gauge("ray_serve_batch_queue_length",
                                 "Requests waiting in the batch queue.", labels);
    batches_processed = reg.get_counter("ray_serve_batches_processed_total",
                                        "The number of batches executed.", labels);
  }

  void report_queue(size_t now) {
    queue_length.add(static_cast<double>(static_cast<int64_t>(now) - queue_reported));
    queue_reported = static_cast<int64_t>(now);
  }
};

struct replica_state {
  replica_options opts;
  std::vector<executor_actor> executors;
  /// The same handles, shared with the cleanup functor that stops them when the replica ends.
  std::shared_ptr<std::vector<executor_actor>> executors_to_stop
    = std::make_shared<std::vector<executor_actor>>();
  std::vector<bool> executor_busy;
  std::optional<batch_queue<pending_call>> queue;
  /// Promises of the batches running on executors, by batch number.
  std::map<uint64_t, std::vector<reply_promise>> running;
  uint64_t next_batch = 0;
  bool timer_armed = false;
  batch_queue<pending_call>::time_point timer_at{};
  /// Shared with the cleanup functor, which zeroes the queue gauge after the state is gone.
  std::shared_ptr<batch_metrics> batch_stats = std::make_shared<batch_metrics>();
  static inline const char* name = "replica";
};

using replica_pointer = replica_actor::stateful_pointer<replica_state>;
using clock_type = std::chrono::steady_clock;

batch_options to_batch_options(const batch_settings& s) {
  batch_options opts;
  opts.max_batch_size = std::max<uint64_t>(1, s.max_batch_size);
  opts.batch_wait_timeout = std::chrono::microseconds(std::max<int64_t>(0, s.batch_wait_timeout_us));
  opts.max_concurrent_batches = std::max<uint64_t>(1, s.max_concurrent_batches);
  return opts;
}

bool expired(const pending_call& p, int64_t now_ns) {
  const auto& req = p.call.peek();
  return req.deadline_ns != 0 && req.deadline_ns <= now_ns;
}

void grow_executors(replica_pointer self, size_t count) {
  auto& st = self->state;
  while (st.executors.size() < count) {
    st.executors.push_back(spawn_executor(self, st.opts.exec));
    st.executors_to_stop->push_back(st.executors.back());
    st.executor_busy.push_back(false);
  }
}

void maybe_flush(replica_pointer self);

void finish_batch(replica_pointer self, uint64_t batch_no, size_t executor_index) {
  self->state.running.erase(batch_no);
  self->state.executor_busy[executor_index] = false;
  maybe_flush(self);
}

void dispatch_batch(replica_pointer self, size_t executor_index, clock_type::time_point now) {
  auto& st = self->state;
  std::vector<pending_call> dropped;
  int64_t now_ns = steady_now_ns();
  auto batch = st.queue->pop_batch(
    now, [now_ns](const pending_call& p) { return expired(p, now_ns); }, dropped);
  for (auto& p : dropped)
    p.promise.deliver(make_error(errc::request_timeout,
                                 "request timed out while waiting for its batch"));
  st.batch_stats->report_queue(st.queue->size());
  if (batch.empty())
    return; // every request of this batch was cancelled: skip it, the loop goes on
  st.batch_stats->wait_time_ms.observe((now_ns - batch.front().enqueued_ns) / 1e6);
  st.batch_stats->actual_batch_size.observe(static_cast<double>(batch.size()));
  st.batch_stats->utilization_percent.observe(
    100.0 * static_cast<double>(batch.size())
    / static_cast<double>(st.queue->options().max_batch_size));
  std::vector<call_request> requests;
  std::vector<reply_promise> promises;
  requests.reserve(batch.size());
  promises.reserve(batch.size());
  for (auto& p : batch) {
    requests.emplace_back(p.call.take());
    promises.emplace_back(std::move(p.promise));
  }
  auto batch_no = st.next_batch++;
  st.running.emplace(batch_no, std::move(promises));
  st.executor_busy[executor_index] = true;
  self->request(st.executors[executor_index], caf::infinite, exec_atom::value,
                std::move(requests))
    .then(
      [=](std::vector<call_reply>& replies) {
        self->state.batch_stats->execution_time_ms.observe((steady_now_ns() - now_ns) / 1e6);
        self->state.batch_stats->batches_processed.inc();
        auto i = self->state.running.find(batch_no);
        if (i != self->state.running.end())
          for (size_t k = 0; k < replies.size() && k < i->second.size(); ++k) {
            if (replies[k].error_code != 0)
              i->second[k].deliver(make_error(static_cast<errc>(replies[k].error_code),
                                              std::move(replies[k].body)));
            else
              i->second[k].deliver(std::move(replies[k]));
          }
        finish_batch(self, batch_no, executor_index);
      },
      [=](caf::error& err) {
        auto i = self->state.running.find(batch_no);
        if (i != self->state.running.end())
          for (auto& p : i->second)
            p.deliver(err);
        finish_batch(self, batch_no, executor_index);
      });
}

std::optional<size_t> free_executor(replica_pointer self) {
  auto& st = self->state;
  size_t allowed = std::min(st.executors.size(), st.queue->options().max_concurrent_batches);
  for (size_t i = 0; i < allowed; ++i)
    if (!st.executor_busy[i])
      return i;
  return std::nullopt;
}

void maybe_flush(replica_pointer self) {
  auto& st = self->state;
  auto now = clock_type::now();
  for (auto idx = free_executor(self); idx && st.queue->due(now); idx = free_executor(self))
    dispatch_batch(self, *idx, now);
  auto deadline = st.queue->deadline();
  if (!deadline || !free_executor(self))
    return; // empty, or every executor busy: a finishing batch calls us again
  if (st.timer_armed && st.timer_at <= *deadline)
    return;
  st.timer_armed = true;
  st.timer_at = *deadline;
  auto delay = std::chrono::duration_cast<std::chrono::microseconds>(*deadline - now);
  self->delayed_send(self, std::max(delay, std::chrono::microseconds(0)), flush_atom::value);
}

/// Answers queued calls whose deadline passed (408) so they stop holding a place; Ray drops
/// cancelled requests before their batch runs.
void drop_expired(replica_pointer self) {
  int64_t now_ns = steady_now_ns();
  for (auto& p : self->state.queue->remove_if(
         [now_ns](const pending_call& p) { return expired(p, now_ns); }))
    p.promise.deliver(make_error(errc::request_timeout,
                                 "request timed out while waiting for its batch"));
}

caf::result<call_reply> enqueue_call(replica_pointer self, local_call call) {
  auto& st = self->state;
  auto rp = self->make_response_promise<call_reply>();
  if (int64_t deadline_ns = call.peek().deadline_ns; deadline_ns != 0) {
    // Wake up when this call expires, to drop it while it waits for its batch.
    auto left = std::chrono::nanoseconds(std::max<int64_t>(0, deadline_ns - steady_now_ns()));
    self->delayed_send(self, std::chrono::duration_cast<std::chrono::microseconds>(left)
                               + std::chrono::microseconds(100),
                       flush_atom::value);
  }
  st.queue->push(pending_call{std::move(call), rp, steady_now_ns()}, clock_type::now());
  maybe_flush(self);
  st.batch_stats->report_queue(st.queue->size());
  return rp;
}

/// Fails everything this replica holds: started batches with `started`, queued calls with
/// `not_started`.
void fail_all(replica_pointer self, const caf::error& started, const caf::error& not_started) {
  auto& st = self->state;
  for (auto& [_, promises] : st.running)
    for (auto& p : promises)
      p.deliver(started);
  st.running.clear();
  if (st.queue)
    for (auto& p : st.queue->take_all())
      p.promise.deliver(not_started);
}

replica_actor::behavior_type replica_impl(replica_pointer self, replica_options opts) {
  auto& st = self->state;
  st.opts = std::move(opts);
  if (!st.opts.exec.slot)
    st.opts.exec.slot = std::make_shared<deployment_slot>();
  if (st.opts.batching.enabled) {
    st.queue.emplace(to_batch_options(st.opts.batching));
    st.batch_stats->init(st.opts.exec);
  }
  self->attach_functor([stats = st.batch_stats, id = st.opts.exec.replica_id](const caf::error&) {
    stats->report_queue(0);
    metrics::registry::global().remove_series_with("replica", id); // a gone replica's series
  });
  grow_executors(self, st.queue ? st.queue->options().max_concurrent_batches : 1);
  self->set_down_handler([=](caf::down_msg& dm) {
    // An executor died: user code asked for it (replica_failure) or crashed.
    auto reason = dm.reason ? dm.reason : make_error(errc::internal, "executor stopped");
    fail_all(self, reason, caf::make_error(caf::sec::request_receiver_down));
    self->quit(reason);
  });
  self->attach_functor([executors = st.executors_to_stop](const caf::error&) {
    for (auto& e : *executors)
      caf::anon_send_exit(e, caf::exit_reason::user_shutdown);
  });
  return {
    [=](init_atom) -> caf::result<replica_ready> {
      auto rp = self->make_response_promise<replica_ready>();
      self->request(self->state.executors.front(), caf::infinite, init_atom::value)
        .then(
          [=](std::string& description) mutable {
            // Without batching the executor serves calls itself; with batching, we do.
            replica_ready ready;
            ready.description = std::move(description);
            if (self->state.queue)
              ready.call_target = caf::actor_cast<caf::actor>(self);
            else
              ready.call_target = caf::actor_cast<caf::actor>(self->state.executors.front());
            rp.deliver(std::move(ready));
          },
          [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
    [=](call_atom, call_request& req) -> caf::result<call_reply> {
      if (!self->state.queue)
        return self->delegate(self->state.executors.front(), call_atom::value, std::move(req));
      return enqueue_call(self, local_call{std::move(req)});
    },
    [=](call_atom, local_call& call) -> caf::result<call_reply> {
      if (!self->state.queue)
        return self->delegate(self->state.executors.front(), call_atom::value, std::move(call));
      return enqueue_call(self, std::move(call));
    },
    [=](reconfig_atom, std::string& user_config, batch_settings& batching) {
      auto& st = self->state;
      if (batching.enabled && st.queue) {
        st.queue->set_options(to_batch_options(batching));
        grow_executors(self, st.queue->options().max_concurrent_batches);
      }
      if (user_config != st.opts.exec.user_config_json) {
        st.opts.exec.user_config_json = user_config;
        self->request(st.executors.front(), caf::infinite, reconfig_atom::value, user_config)
          .then([](bool) {},
                [=](caf::error& err) {
                  std::fprintf(stderr, "[actorserve] replica %s: %s\n",
                               self->state.opts.exec.replica_id.c_str(),
                               to_error_info(err).message.c_str());
                });
      }
      maybe_flush(self);
    },
    [=](flush_atom) {
      auto& st = self->state;
      if (st.timer_armed && clock_type::now() >= st.timer_at)
        st.timer_armed = false;
      if (st.queue) {
        drop_expired(self);
        maybe_flush(self);
      }
    },
    [=](abort_atom) {
      auto shutting_down = make_error(errc::unavailable, "the server is shutting down");
      fail_all(self, shutting_down, shutting_down);
    },
  };
}

} // namespace

replica_actor spawn_replica(caf::actor_system& sys, replica_options opts) {
  return sys.spawn(replica_impl, std::move(opts));
}

} // namespace serve
