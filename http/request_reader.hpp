// Reads one HTTP/1.1 request (RFC 9112) from bytes as they arrive, strictly and within limits.
//
// Boost.Beast's parser reads the request line, the header fields and chunked bodies; this class
// adds what a server facing the internet needs on top and gives every refusal its own status:
//   400  malformed request line or field (control bytes, missing colon, bad Content-Length),
//        conflicting framing (Content-Length with Transfer-Encoding, chunked not last), a
//        missing or repeated Host on HTTP/1.1, a request cut short by the peer
//   413  a body over max_body_bytes, by Content-Length at once or while chunks arrive:
//        nothing past the limit is kept
//   414  a request target over max_url_bytes          431  header bytes or fields over the limits
//   417  an Expect other than 100-continue             501  a transfer coding other than chunked
//   505  an HTTP version other than 1.0 and 1.1
// A body framed by Content-Length is not copied through the connection's buffer: body_window()
// says where the socket may write it directly. Bodies are read for every method, GET included.
//
// Not thread-safe; one reader per request, owned by its connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "http/http_message.hpp"

namespace serve {

struct request_limits {
  /// Largest body, Content-Length or chunked (413).
  uint64_t max_body_bytes = 64 * 1024 * 1024;
  /// Largest request line plus header fields (431).
  size_t max_header_bytes = 16 * 1024;
  /// Most header fields (431).
  size_t max_header_count = 100;
  /// Longest request target (414).
  size_t max_url_bytes = 8 * 1024;
};

/// Why a request was refused while it was read.
struct read_failure {
  /// The status to answer; 0 while nothing failed.
  int status = 0;
  std::string message;
};

class request_reader {
public:
  enum class phase {
    /// Waiting for the request line and header fields.
    header,
    /// The header is in; body bytes are expected.
    body,
    /// The request is complete; request() holds it.
    done,
    /// Refused; failure() says why. The connection must be closed after the answer, since the
    /// end of this request in the byte stream is unknown.
    failed,
  };

  explicit request_reader(const request_limits& limits);
  ~request_reader();
  request_reader(const request_reader&) = delete;
  request_reader& operator=(const request_reader&) = delete;

  /// Offers the bytes the connection has buffered; returns how many this request used. While
  /// the phase is header, bytes not used are needed again together with more. Once done, the
  /// bytes not used belong to the next request (pipelining).
  size_t feed(std::string_view bytes);

  /// While a Content-Length body is read: the place the next body bytes go, and in `size` how
  /// many are still expected. nullptr (size 0) otherwise, e.g. for chunked bodies.
  char* body_window(size_t& size);
  /// `n` bytes were written into body_window().
  void body_received(size_t n);

  /// The peer sent no more bytes (EOF). A request of which some bytes came fails with 400.
  void end_of_input();

  phase current() const { return phase_; }
  /// Some byte of this request (other than leading empty lines) has arrived.
  bool started() const { return started_; }
  /// The header asked for "100 Continue" (HTTP/1.1, Expect: 100-continue, a body expected) and
  /// no body byte has arrived yet.
  bool wants_continue() const;
  const read_failure& failure() const { return failure_; }
  /// The request: method, target and headers once the phase is past header; whole when done.
  http_request& request() { return request_; }

private:
  class parser;
  friend class parser;

  void fail(int status, std::string message);
  size_t feed_header(std::string_view bytes);
  size_t feed_body(std::string_view bytes);
  void check_header();
  void header_limit_reached(std::string_view bytes);

  request_limits limits_;
  std::unique_ptr<parser> parser_;
  http_request request_;
  phase phase_ = phase::header;
  read_failure failure_;
  bool started_ = false;
  bool expect_continue_ = false;
  bool body_started_ = false;
  bool chunked_ = false;
  /// Content-Length framing: body bytes still expected.
  uint64_t body_remaining_ = 0;
  uint64_t body_received_ = 0;
  size_t field_count_ = 0;
  size_t host_count_ = 0;
  /// Fields after the last chunk (trailers) are counted but not kept.
  bool in_trailer_ = false;
  std::string transfer_encoding_;
  std::string expect_;
  /// The Content-Length as sent, for messages.
  std::string content_length_;
};

/// Percent-decodes `text` ("%2F" -> "/"); malformed escapes are kept as they are.
std::string percent_decode(std::string_view text);

} // namespace serve
