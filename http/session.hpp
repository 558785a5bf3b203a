// One client connection of the HTTP server (see http_server.hpp for the rules it follows).
//
// Invariants:
//  - pending_ holds the exchanges read and not yet written, in request order; responses are
//    written strictly from its front, so pipelined requests are answered in order;
//  - at most options().max_pipelined requests (interim responses not counted) are in pending_;
//    reading pauses at the limit and resumes when a write frees a slot;
//  - after an exchange marked close_after_, nothing further is read; once it is written the
//    connection half-closes and lingers, dropping what still arrives, then closes;
//  - input_ never holds more than one header's worth of unparsed bytes plus one read
//    (the reader refuses a header or chunk line past max_header_bytes).
// Accessed only from its io thread.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include "http/http_server.hpp"
#include "http/request_reader.hpp"

namespace serve {

class session : public std::enable_shared_from_this<session> {
public:
  session(io_worker& worker, boost::asio::ip::tcp::socket socket);
  ~session();

  void start();

  /// An exchange of this session was answered: write what is ready.
  void on_answered();

  /// Shutdown began: an idle connection closes now; a busy one closes after its last response.
  void drain();

  /// Applies the deadlines (read, idle, write, linger) at steady time `now_ns`.
  void check_deadlines(int64_t now_ns);

  /// Answers every unanswered exchange with the handler's refusal for `status`.
  void fail_unanswered(int status, const std::string& message);

  /// Closes the socket at once, dropping whatever is pending.
  void close();

  bool closed() const { return closed_; }

private:
  const server_options& options() const;
  void read_some();
  void on_read(const boost::system::error_code& ec, size_t n);
  void on_body_read(const boost::system::error_code& ec, size_t n);
  void on_end_of_input();
  /// Parses what input_ holds and dispatches complete requests, up to the pipelining limit.
  void process_input();
  void dispatch();
  void refuse(int status, const std::string& message);
  void push(std::shared_ptr<exchange> ex);
  void write_ready();
  void on_write(const boost::system::error_code& ec, size_t n);
  void finish_written(size_t count);
  void begin_linger();
  void linger_read();
  bool idle() const;

  io_worker& worker_;
  boost::asio::ip::tcp::socket socket_;
  boost::beast::flat_buffer input_;
  std::optional<request_reader> reader_;
  /// Steady ns when the first byte of the request in reader_ arrived; 0 = none started.
  int64_t request_started_ns_ = 0;
  std::deque<std::shared_ptr<exchange>> pending_;
  /// pending_ entries that are requests (not interim responses); each counts once in the
  /// server's in_flight() until it is written or the connection closes.
  size_t requests_pending_ = 0;
  uint64_t requests_read_ = 0;
  /// Buffers of the write in progress, and how many exchanges of pending_ it covers.
  std::vector<boost::asio::const_buffer> write_buffers_;
  std::vector<std::string> write_heads_;
  size_t writing_count_ = 0;
  int64_t write_started_ns_ = 0;
  bool reading_ = false;
  bool writing_ = false;
  /// The peer sent EOF.
  bool read_closed_ = false;
  /// No further request is read (a close_after_ exchange was read, or a refusal was queued).
  bool stop_reading_ = false;
  bool draining_ = false;
  bool lingering_ = false;
  int64_t linger_deadline_ns_ = 0;
  bool closed_ = false;
  /// Steady ns since when the connection is idle (nothing pending, nothing partly read).
  int64_t idle_since_ns_ = 0;
  bool continue_sent_ = false;
};

} // namespace serve
