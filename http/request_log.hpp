// What the handler of the HTTP request now being served on this thread found out, for the
// access log and Ray Serve's HTTP metrics written after the response (http/observability.cpp).
// cpp-httplib serves a request start to end on one thread, so this is thread-local; the
// pre-routing hook resets it. Accessed only from the serving HTTP thread.
#pragma once

#include <cstdint>
#include <string>

namespace serve {

struct request_log_info {
  /// Steady clock ns when routing started.
  int64_t start_ns = 0;
  std::string request_id;
  /// The matched application route prefix, or the v2 endpoint ("/v2/models/{m}/infer"...).
  std::string route;
  std::string application;
  /// The v2 model addressed, if any.
  std::string model;
};

/// This thread's record of the request it serves.
request_log_info& current_request_log();

} // namespace serve
