// The one place where ActorServe's error codes become HTTP statuses.
#pragma once

#include "libserve/error.hpp"

namespace serve {

/// invalid_argument 400, not_found 404, request_timeout 408, payload_too_large 413,
/// internal 500, unavailable 503.
int http_status(errc code);

} // namespace serve
