// The one error vocabulary of ActorServe.
//
// Every failure that reaches a caller is one of these codes plus a human-readable message that
// says which field or input was wrong and what was expected. `http/` maps codes to HTTP statuses;
// nothing else does. "Retry later" (unavailable) and "your request is wrong" (invalid_argument)
// are never mixed up. The codes travel between actors as caf::error with category "serve".
#pragma once

#include <cstdint>
#include <string>

#include <caf/atom.hpp>
#include <caf/error.hpp>

namespace serve {

enum class errc : uint8_t {
  /// Malformed JSON, wrong shape or type, missing field or input. HTTP 400.
  invalid_argument = 1,
  /// Unknown route, model, deployment or version. HTTP 404.
  not_found,
  /// Request body over the configured limit. HTTP 413.
  payload_too_large,
  /// request_timeout_s passed while queued or running. HTTP 408.
  request_timeout,
  /// Queue full ("Request dropped due to backpressure"), no healthy replica, draining. HTTP 503.
  unavailable,
  /// User code threw, a batch handler returned the wrong number of results. HTTP 500.
  internal,
};

/// Name of a code as it appears in logs ("invalid_argument", ...).
const char* to_string(errc code);

/// An error code with its message; the plain-C++ form used inside libserve.
struct error_info {
  errc code = errc::internal;
  std::string message;
};

/// The CAF error category atom for errc.
constexpr caf::atom_value error_category_atom = caf::atom("serve");

/// Wraps a code and message into a caf::error of category "serve".
caf::error make_error(errc code, std::string message);

/// Converts any caf::error into our vocabulary: "serve" errors keep their code and message;
/// CAF's own errors (timeouts, dead receivers) map to the closest code.
error_info to_error_info(const caf::error& err);

} // namespace serve
