// The engine behind `actorserve bench`: drives HTTP/1.1 load at a server over non-blocking
// keep-alive sockets and measures the latency of every reply.
//
// Two shapes of load:
//  - closed loop (rate_per_s == 0): `connections` connections; each sends its next request when
//    the previous reply has arrived (once the event loop has read the replies that arrived with
//    it, as wrk does). Latency runs from the send.
//  - open loop (rate_per_s > 0): arrivals are scheduled at a fixed rate (evenly spaced) or as a
//    Poisson process, whatever the replies do. Each arrival goes out on an idle connection, on a
//    new one while fewer than `max_connections` are open, or waits in a queue for one. Latency
//    runs from the SCHEDULED time, so a server that falls behind shows up as latency instead of
//    as a slower client (no coordinated omission).
//
// Each of `threads` event-loop threads (load_worker.hpp) owns an epoll instance, its share of
// the connections (or of the rate) and its own counters; they are merged when the run ends.
// Responses are parsed by http_response_parser.hpp (a `Connection: close` reply makes the
// connection reconnect); what is counted is a load_result (load_result.hpp).
//
// Only what completes inside the measured window [start + warmup, start + warmup + duration]
// is counted; requests still pending when the window closes are reported as `unfinished`.
// No CAF here: plain threads, sockets and the steady clock.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "apps/actorserve/load_result.hpp"

namespace serve::bench {

/// What one run sends and how. Validated by run_load (see validate_load_options).
struct load_options {
  /// Numeric IPv4/IPv6 address or host name, resolved once before the run.
  std::string host = "127.0.0.1";
  uint16_t port = 80;
  /// Complete HTTP/1.1 requests (request line, headers, body), sent in turn. Must not be empty.
  /// Kept by reference during the run: the caller owns them and must not change them.
  std::vector<std::string> requests;
  /// Closed loop: connections, each with one request in flight. Must be >= 1.
  size_t connections = 1;
  /// Open loop when > 0: requests per second over all threads. 0 = closed loop.
  double rate_per_s = 0;
  /// Open loop: exponential gaps between arrivals (Poisson process) instead of even spacing.
  bool poisson = false;
  /// Open loop: the most connections open at once over all threads. Must be >= threads.
  size_t max_connections = 256;
  /// Event-loop threads. Must be >= 1; the closed loop uses at most `connections` of them.
  size_t threads = 1;
  /// Load before the measured window; not counted.
  std::chrono::nanoseconds warmup = std::chrono::seconds(2);
  /// The measured window. Must be > 0.
  std::chrono::nanoseconds duration = std::chrono::seconds(10);
  /// A request with no complete reply this long after its latency origin (scheduled time in the
  /// open loop, send in the closed loop) fails as a timeout and its connection is closed.
  std::chrono::nanoseconds timeout = std::chrono::seconds(10);
  /// Seed for Poisson arrivals (each thread derives its own).
  uint64_t seed = 1;
};

/// Once a second while a run goes on: counts since its start, warm-up included.
struct load_progress {
  double elapsed_s = 0;
  bool warming_up = true;
  uint64_t completed = 0;
  uint64_t errors = 0; ///< socket errors plus replies with status >= 400
};

/// An empty string when `opts` can run, else what is wrong, naming the field and value.
std::string validate_load_options(const load_options& opts);

/// Runs the load described by `opts` on `opts.threads` new threads and blocks until the window
/// closes. `on_progress` (may be empty) is called on the calling thread once a second.
/// Returns false with `error` set when the options are invalid or the host cannot be resolved;
/// socket and HTTP failures during the run are counted in the result instead.
/// Thread-safe: concurrent runs share nothing.
bool run_load(const load_options& opts,
              const std::function<void(const load_progress&)>& on_progress, load_result& result,
              std::string& error);

} // namespace serve::bench
