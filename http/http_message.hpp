// An HTTP request as the ingress reads it and a response as a handler gives it. Plain values
// with no I/O attached: the session (http/session.hpp) fills and writes them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace serve {

struct http_header {
  /// Lower-case for request headers; as given for response headers.
  std::string name;
  std::string value;
};

struct http_request {
  /// As sent ("GET", "POST", ...); a token, case-sensitive.
  std::string method;
  /// The request target as sent.
  std::string target;
  /// The target's path, percent-decoded; "*" for OPTIONS *.
  std::string path;
  /// The target's query, after '?', not decoded.
  std::string query;
  /// 10 for HTTP/1.0, 11 for HTTP/1.1.
  int version = 11;
  /// Header fields in arrival order, names in lower case. At most max_header_count.
  std::vector<http_header> headers;
  /// The body, de-chunked. At most max_body_bytes.
  std::string body;
  /// The client allows the connection to stay open after this request.
  bool keep_alive = true;
  /// Steady clock ns when the first byte of this request arrived.
  int64_t received_ns = 0;

  /// GET or HEAD: HEAD is answered as GET, without the body.
  bool is_get_or_head() const { return method == "GET" || method == "HEAD"; }

  /// The first value of header `lower_name`, or nullptr.
  const std::string* header(std::string_view lower_name) const {
    for (auto& h : headers)
      if (h.name == lower_name)
        return &h.value;
    return nullptr;
  }
};

struct http_response {
  int status = 200;
  /// "" = no Content-Type header.
  std::string content_type;
  /// Further headers. Names and values with bytes that would break the header block (CR, LF,
  /// other controls) are dropped when the response is written.
  std::vector<http_header> headers;
  std::string body;
  /// Close the connection once this response is written.
  bool close = false;

  static http_response text(int status, std::string body) {
    http_response r;
    r.status = status;
    r.content_type = "text/plain; charset=utf-8";
    r.body = std::move(body);
    return r;
  }
  static http_response json(int status, std::string body) {
    http_response r;
    r.status = status;
    r.content_type = "application/json";
    r.body = std::move(body);
    return r;
  }
};

} // namespace serve
