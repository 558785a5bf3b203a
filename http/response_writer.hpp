// The status line and header block of a response, written by hand: the body is not copied here
// (the session sends it as a second buffer).
//
// Header names and values come partly from deployments (call_reply::headers): a name that is not
// an RFC 9110 token, or a value with CR, LF or another control byte, is dropped rather than
// written, so no deployment can split a response. Stateless; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "http/http_message.hpp"

namespace serve {

struct response_framing {
  /// "Connection: close" is sent and the connection closes after this response.
  bool close = false;
  /// The request was HTTP/1.0 and stays open: "Connection: keep-alive" is sent.
  bool http10_keep_alive = false;
  /// The request was HEAD: Content-Length of the body, but no body.
  bool head_request = false;
};

/// "OK", "Not Found", ...; "" for codes without a phrase here.
const char* reason_phrase(int status);

/// True for statuses whose response has no body (1xx, 204, 304).
bool status_has_no_body(int status);

/// Appends the status line and headers of `res` (Content-Type, Content-Length, the extra headers,
/// Date, Connection) and the blank line to `out`.
void write_response_head(const http_response& res, const response_framing& framing,
                         std::string_view date, std::string& out);

/// An HTTP-date ("Mon, 07 Dec 2026 17:10:12 GMT") for the given seconds since the epoch.
std::string http_date(long long unix_seconds);

/// Whether `name` may be written as a header name (an RFC 9110 token).
bool is_header_name(std::string_view name);

/// Whether `value` may be written as a header value (no control bytes other than tab).
bool is_header_value(std::string_view value);

} // namespace serve
