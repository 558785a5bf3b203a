// What the ingress found out about one request, for the access log and Ray Serve's HTTP metrics
// written once it is answered (http/observability.cpp). Part of each exchange; accessed only
// from the request's io thread.
#pragma once

#include <cstdint>
#include <string>

namespace serve {

struct request_log_info {
  /// Steady clock ns when the request's first byte arrived.
  int64_t start_ns = 0;
  std::string request_id;
  /// The matched application route prefix, or the v2 endpoint ("/v2/models/{m}/infer"...);
  /// "" for a request refused before routing (400, 413, 431, 404, ...).
  std::string route;
  std::string application;
  /// The v2 model addressed, if any.
  std::string model;
};

} // namespace serve
