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
// Each of `threads` event-loop threads owns an epoll instance, its share of the connections (or
// of the rate) and its own counters; they are merged when the run ends. Responses are parsed by
// a minimal HTTP/1.1 parser (status line, headers, Content-Length or chunked bodies, bodies up to
// connection close; a `Connection: close` reply makes the connection reconnect).
//
// Only what completes inside the measured window [start + warmup, start + warmup + duration]
// is counted; requests still pending when the window closes are reported as `unfinished`.
// No CAF here: plain threads, sockets and the steady clock.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace serve::bench {

/// Log-linear histogram of latencies in nanoseconds: 128 linear sub-buckets per power of two,
/// so a percentile is reported within 0.4 % of a recorded value (bucket midpoint). Values from
/// 1 ns to about 4.9 hours; larger ones land in the last bucket. Not thread-safe: each event
/// loop records into its own and the results are merged.
class latency_histogram {
public:
  latency_histogram();
  void record(uint64_t ns);
  void merge(const latency_histogram& other);
  uint64_t count() const { return count_; }
  /// The latency below which `percent` % of the values lie (0 when empty). percent in [0, 100].
  uint64_t percentile(double percent) const;
  double mean_ns() const { return count_ ? static_cast<double>(sum_ns_) / count_ : 0.0; }
  uint64_t min_ns() const { return count_ ? min_ns_ : 0; }
  uint64_t max_ns() const { return max_ns_; }

private:
  static size_t index_of(uint64_t ns);
  static uint64_t midpoint_of(size_t index);

  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t sum_ns_ = 0;
  uint64_t min_ns_ = UINT64_MAX;
  uint64_t max_ns_ = 0;
};

/// Incremental parser of one HTTP/1.1 response at a time, for a client that never pipelines:
/// status line, headers (Content-Length, Transfer-Encoding: chunked, Connection), and a body
/// that is skipped, not kept. Interim 1xx responses are skipped. Not thread-safe.
class response_parser {
public:
  enum class outcome { need_more, complete, bad };
  /// Begins a new response; `head_request`: the reply to HEAD has no body.
  void start(bool head_request);
  /// Consumes bytes of the response; `used` says how many (fewer than `len` only when complete).
  outcome feed(const char* data, size_t len, size_t& used);
  /// The peer closed the connection: complete when the body runs to the close, else bad.
  outcome finish_at_eof();
  int status() const { return status_; }
  /// The server will close the connection after this response (Connection: close, HTTP/1.0).
  bool close_after() const { return close_; }

private:
  enum class state { head, fixed_body, chunk_size, chunk_data, chunk_end, trailers, to_eof, done };
  outcome parse_head(const char* begin, const char* end);
  size_t feed_head(const char* data, size_t len, outcome& bad);
  size_t feed_line(const char* data, size_t len, bool& have_line);
  outcome on_chunk_size_line();

  state state_ = state::head;
  std::string pending_; ///< a head or chunk line split across reads
  uint64_t remaining_ = 0;
  int status_ = 0;
  bool close_ = false;
  bool head_request_ = false;
};

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

/// Why a request failed without an HTTP status.
enum class error_kind : size_t {
  connect, ///< connecting failed (refused, unreachable, reset during connect)
  timeout, ///< no complete reply within load_options::timeout
  read,    ///< the connection failed or closed mid-reply, or the reply was not HTTP
  write,   ///< sending the request failed
};
constexpr size_t error_kind_count = 4;
const char* to_string(error_kind kind);

/// Totals of the measured window of one run.
struct load_result {
  double measured_s = 0;  ///< the window's length
  uint64_t completed = 0; ///< replies with any HTTP status
  uint64_t sent = 0;      ///< requests whose sending started in the window
  /// Replies per status code; index 0 counts codes outside [100, 599].
  std::array<uint64_t, 600> status_counts{};
  std::array<uint64_t, error_kind_count> errors{};
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
  /// Open loop: arrivals that found no free connection and waited in the queue.
  uint64_t queued = 0;
  /// Requests scheduled or sent in the window and still pending when it closed.
  uint64_t unfinished = 0;
  /// The most connections that were open at once (summed over threads).
  uint64_t peak_connections = 0;
  /// Latency of every completed reply (any status).
  latency_histogram latency;

  uint64_t http_errors() const; ///< replies with status >= 400
  uint64_t socket_errors() const;
  double completed_per_s() const { return measured_s > 0 ? completed / measured_s : 0; }
  double sent_per_s() const { return measured_s > 0 ? sent / measured_s : 0; }
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

/// Connects once to host:port within `timeout`; an empty string on success, else the reason.
std::string probe_connect(const std::string& host, uint16_t port,
                          std::chrono::milliseconds timeout);

/// Runs the load described by `opts` on `opts.threads` new threads and blocks until the window
/// closes. `on_progress` (may be empty) is called on the calling thread once a second.
/// Returns false with `error` set when the options are invalid or the host cannot be resolved;
/// socket and HTTP failures during the run are counted in the result instead.
bool run_load(const load_options& opts,
              const std::function<void(const load_progress&)>& on_progress, load_result& result,
              std::string& error);

} // namespace serve::bench
