// What one `actorserve bench` run counts: replies per status, errors by kind, bytes, queueing
// and the latency histogram of its measured window. Filled by the event loops, merged across
// them, and read by the report.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "apps/actorserve/latency_histogram.hpp"

namespace serve::bench {

/// Why a request failed without an HTTP status.
enum class error_kind : size_t {
  connect, ///< connecting failed (refused, unreachable, reset during connect)
  timeout, ///< no complete reply within load_options::timeout
  read,    ///< the connection failed or closed mid-reply, or the reply was not HTTP
  write,   ///< sending the request failed
};
constexpr size_t error_kind_count = 4;
const char* to_string(error_kind kind);

/// Totals of the measured window of one run. Not thread-safe: each event loop fills its own
/// and the calling thread merges them once the loops have stopped.
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
  /// Adds another event loop's counts; measured_s becomes `part`'s (every loop shares the
  /// window).
  void merge(const load_result& part);
};

} // namespace serve::bench
