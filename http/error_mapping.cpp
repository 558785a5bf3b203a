#include "http/error_mapping.hpp"

namespace serve {

int http_status(errc code) {
  switch (code) {
    case errc::invalid_argument: return 400;
    case errc::not_found: return 404;
    case errc::request_timeout: return 408;
    case errc::payload_too_large: return 413;
    case errc::internal: return 500;
    case errc::unavailable: return 503;
  }
  return 500;
}

} // namespace serve
