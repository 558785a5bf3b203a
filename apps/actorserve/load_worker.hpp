// One event loop of `actorserve bench`'s load generator: an epoll instance with its share of
// the connections (closed loop) or of the arrival rate (open loop), the requests it sends on
// them and the counters of what came back. run_load (load_generator.hpp) starts one per thread
// and merges their results; see there for what a run measures.
//
// A connection moves closed -> connecting -> idle -> writing -> reading -> idle (or closed on a
// failure, a timeout or a reply that ends the connection). Closed loop: each connection carries
// one request at a time and sends the next when its reply has been read. Open loop: arrivals
// come from a schedule, go out on the warmest idle connection or a new one, else wait in a
// queue whose time counts as latency.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include "apps/actorserve/http_response_parser.hpp"
#include "apps/actorserve/load_generator.hpp"
#include "apps/actorserve/load_result.hpp"
#include "apps/actorserve/tcp_connect.hpp"

namespace serve::bench {

/// The steady clock in nanoseconds: every mark of a run is on it.
inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// The counters a worker publishes for the progress line; written by the worker only, read by
/// the thread that runs the load.
struct alignas(64) worker_progress {
  std::atomic<uint64_t> completed{0};
  std::atomic<uint64_t> errors{0};
};

/// What one worker is given: its share of the load and the run's clock marks (now_ns()).
struct worker_plan {
  size_t connections = 0;     ///< closed loop
  size_t max_connections = 0; ///< open loop
  double rate_per_s = 0;      ///< open loop, this worker's share
  int64_t first_arrival_ns = 0;
  int64_t start_ns = 0;
  int64_t window_start_ns = 0;
  int64_t window_end_ns = 0;
  uint64_t seed = 1;
};

enum class conn_phase { closed, connecting, idle, writing, reading };

/// One keep-alive connection and the request it carries.
struct connection {
  int fd = -1;
  conn_phase phase = conn_phase::closed;
  bool has_request = false;
  bool in_idle_stack = false;
  bool watching_writes = false;
  int64_t origin_ns = 0;   ///< latency origin of the request in hand
  int64_t retry_at_ns = 0; ///< closed loop: when a closed connection reconnects
  const std::string* out = nullptr;
  size_t out_offset = 0;
  http_response_parser parser;
};

/// One event loop: owns an epoll instance, its connections and its counters. `opts`, `addr`
/// and `progress` must outlive it. Accessed only from its own thread until run() returns.
class load_worker {
public:
  load_worker(const load_options& opts, const socket_address& addr, const worker_plan& plan,
              worker_progress& progress);

  /// Sleeps until plan.start_ns, drives the load until plan.window_end_ns, then closes every
  /// connection and counts what was still pending.
  void run();
  load_result& result() { return result_; }

private:
  bool in_window(int64_t t) const { return t >= plan_.window_start_ns && t < plan_.window_end_ns; }
  void open(connection& c, int64_t now);
  void close_connection(connection& c);
  void assign(connection& c, int64_t origin, int64_t now);
  void start_write(connection& c, int64_t now);
  void write_some(connection& c, int64_t now);
  void on_event(connection& c, uint32_t events, int64_t now);
  void on_connected(connection& c, int64_t now);
  void on_readable(connection& c, int64_t now);
  void complete(connection& c, int64_t now, bool must_close);
  void fail(connection& c, error_kind kind, int64_t now);
  void become_idle(connection& c, int64_t now);
  bool try_send(int64_t origin, int64_t now);
  int64_t next_arrival_ns() const;
  void schedule_arrivals(int64_t now);
  void drain_queue(int64_t now);
  void housekeeping(int64_t now);
  void wait_for_events(int64_t until_ns);
  void finish();
  void watch(connection& c, uint32_t events, int op);

  const load_options& opts_;
  const socket_address& addr_;
  const worker_plan plan_;
  worker_progress& progress_;
  const bool open_loop_;
  std::vector<connection> conns_;          // never resized: epoll data points into it
  std::vector<connection*> idle_;          // open loop, LIFO: the warmest connection goes first
  std::vector<connection*> ready_to_send_; // closed loop: replied during this batch of events
  std::deque<int64_t> queue_; // open loop: origins of arrivals waiting for a connection
  std::vector<bool> head_requests_;
  std::mt19937_64 rng_;
  std::exponential_distribution<double> gap_{1.0};
  std::vector<char> buffer_;
  double interval_ns_ = 0;
  double next_arrival_offset_ns_ = 0; ///< from plan_.start_ns, in double to keep fractions
  int64_t reconnect_not_before_ns_ = 0;
  int64_t housekeeping_ns_ = 10'000'000;
  size_t next_request_ = 0;
  size_t open_count_ = 0;
  int epoll_fd_ = -1;
  uint64_t total_completed_ = 0;
  uint64_t total_errors_ = 0;
  load_result result_;
};

} // namespace serve::bench
