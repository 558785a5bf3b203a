// Sums over a load_result's counters. See load_result.hpp.
#include "apps/actorserve/load_result.hpp"

namespace serve::bench {

const char* to_string(error_kind kind) {
  switch (kind) {
  case error_kind::connect:
    return "connect";
  case error_kind::timeout:
    return "timeout";
  case error_kind::read:
    return "read";
  case error_kind::write:
    return "write";
  }
  return "?";
}

uint64_t load_result::http_errors() const {
  uint64_t n = 0;
  for (size_t code = 400; code < status_counts.size(); ++code)
    n += status_counts[code];
  return n;
}

uint64_t load_result::socket_errors() const {
  uint64_t n = 0;
  for (auto e : errors)
    n += e;
  return n;
}

void load_result::merge(const load_result& part) {
  completed += part.completed;
  sent += part.sent;
  for (size_t i = 0; i < status_counts.size(); ++i)
    status_counts[i] += part.status_counts[i];
  for (size_t i = 0; i < errors.size(); ++i)
    errors[i] += part.errors[i];
  bytes_read += part.bytes_read;
  bytes_written += part.bytes_written;
  queued += part.queued;
  unfinished += part.unfinished;
  peak_connections += part.peak_connections;
  latency.merge(part.latency);
  measured_s = part.measured_s;
}

} // namespace serve::bench
