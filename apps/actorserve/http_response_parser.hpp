// An incremental HTTP/1.1 response parser for `actorserve bench`'s event loops: it is fed the
// bytes of each read as they arrive and says when one whole response has been seen, so a
// client can tell where a keep-alive connection's next reply begins.
//
// Understood: the status line (HTTP/1.0 and 1.1), Content-Length, Transfer-Encoding: chunked
// (with trailers), Connection: close / keep-alive, bodies that run to the connection's close,
// interim 1xx responses (skipped), and replies without a body (HEAD, 204, 304). Bodies are
// skipped, not kept. A head or chunk-size line longer than 64 KiB is rejected as not HTTP.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace serve::bench {

/// Parses one HTTP/1.1 response at a time, for a client that never pipelines.
/// Not thread-safe: each connection owns one.
class http_response_parser {
public:
  enum class outcome { need_more, complete, bad };
  /// Begins a new response; `head_request`: the reply to HEAD has no body.
  void start(bool head_request);
  /// Consumes bytes of the response; `used` says how many (fewer than `len` only when complete).
  outcome feed(const char* data, size_t len, size_t& used);
  /// The peer closed the connection: complete when the body runs to the close, else bad.
  outcome finish_at_eof();
  int status() const { return status_; }
  /// The server will close the connection after this response (Connection: close, HTTP/1.0).
  bool close_after() const { return close_; }

private:
  enum class state { head, fixed_body, chunk_size, chunk_data, chunk_end, trailers, to_eof, done };
  /// What the headers say about the body.
  struct body_framing {
    bool chunked = false;
    bool has_length = false;
    uint64_t length = 0;
  };

  outcome parse_head(const char* begin, const char* end);
  outcome on_header(std::string_view name, std::string_view value, body_framing& framing);
  void start_body(const body_framing& framing);
  size_t feed_head(const char* data, size_t len, outcome& bad);
  size_t feed_body(size_t available);
  outcome feed_line_state(const char* data, size_t len, size_t& pos);
  size_t feed_line(const char* data, size_t len, bool& have_line);
  outcome on_chunk_size_line();

  state state_ = state::head;
  std::string pending_; ///< a head or chunk line split across reads
  uint64_t remaining_ = 0;
  int status_ = 0;
  bool close_ = false;
  bool head_request_ = false;
};

} // namespace serve::bench
