// The event-driven HTTP/1.1 server under the ingress: Boost.Asio event loops, Beast's parser.
//
// `io_threads` threads each run one io_context and own the connections placed on them; one
// listening socket (no SO_REUSEPORT, so a port in use fails at start) accepts on io thread 0 and
// places each connection on the thread with the fewest. A connection holds no thread while it
// is idle or slow. Each io thread has its own CAF bridge actor (http/io_bridge.hpp), so a request
// handler reaches the actors in one hop and its continuation runs back on the connection's
// thread.
//
// Per connection (http/session.cpp): keep-alive; pipelining of up to max_pipelined requests,
// answered in order, reading paused at the limit; one deadline for a whole request's header and
// body; an idle keep-alive timeout; a write deadline; refusals with their statuses
// (http/request_reader.hpp), after which the connection closes. Server-wide: max_connections
// (accepting pauses at the limit).
//
// Shutdown: begin_drain() closes the listener, closes idle connections at once and makes every
// later response close its connection; in_flight() falls to 0 as requests are answered;
// fail_unanswered() answers what is left; stop() closes everything and joins the threads.
//
// Thread-safe: every public member may be called from any thread. Exchanges are touched only on
// their connection's io thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "http/http_message.hpp"
#include "http/request_log.hpp"
#include "http/request_reader.hpp"
#include "libserve/config.hpp"

namespace serve {

class io_bridge;
class session;
class http_server;
struct io_worker;

struct server_options {
  std::string host = "127.0.0.1";
  /// 0 = any free port.
  int port = 0;
  /// Event-loop threads. 0 = one per core.
  int io_threads = 0;
  /// Connections open at once; accepting pauses at the limit. >= 1.
  size_t max_connections = 10000;
  /// Requests read ahead on one connection. >= 1.
  size_t max_pipelined = 16;
  /// Requests served on one connection before it closes. >= 1.
  uint64_t keep_alive_max_count = 10000;
  request_limits limits;
  /// Idle keep-alive connections close after this.
  std::chrono::milliseconds keep_alive_timeout{5000};
  /// A request's header and body must arrive within this of its first byte (408 after).
  std::chrono::milliseconds request_read_timeout{30000};
  /// A response write that makes no progress for this long closes the connection.
  std::chrono::milliseconds write_timeout{30000};
  /// After a response that closes the connection, bytes still arriving are read and dropped
  /// for at most this long, so the client sees the response instead of a reset.
  std::chrono::milliseconds linger_timeout{5000};
  /// Pending-connection queue of the listening socket (capped by the kernel's somaxconn).
  int listen_backlog = 4096;

  /// The options an http_options section asks for.
  static server_options from(const http_options& http);
};

/// One request on its way through the server, from parsed to answered. Handlers keep a
/// shared_ptr to it while they wait for the actors.
///
/// Accessed only from its connection's io thread; reply() may be called from another thread
/// and then posts itself there.
class exchange : public std::enable_shared_from_this<exchange> {
public:
  exchange(io_worker& worker, std::weak_ptr<session> owner);

  /// The request; handlers may move its body out.
  http_request request;
  /// What handlers found out (route, application, model, request id), for metrics and the
  /// access log.
  request_log_info log;

  /// The io thread's bridge into CAF.
  io_bridge& bridge() const;

  /// Answers the request. Exactly once: later calls are ignored. If the connection is gone the
  /// response is dropped (and still counted).
  void reply(http_response response);

  bool answered() const { return answered_; }
  /// The status answered, or 0.
  int status() const { return status_; }

private:
  friend class session;
  friend class http_server;

  io_worker& worker_;
  std::weak_ptr<session> owner_;
  http_response response_;
  bool answered_ = false;
  int status_ = 0;
  /// A "100 Continue" interim response: not a request, takes no pipelining slot.
  bool interim_ = false;
  /// Stop the connection after this response (no keep-alive, last allowed request, refusal).
  bool close_after_ = false;
  bool head_request_ = false;
};

/// What the server calls with each request it read. Implemented by the ingress.
class request_handler {
public:
  virtual ~request_handler() = default;

  /// Answers `ex` through ex->reply(), now or later, on the io thread that calls this.
  virtual void handle(const std::shared_ptr<exchange>& ex) = 0;

  /// The response to a request refused while it was read (400, 408, 413, 414, 431, ...) or to
  /// one cut off at shutdown (503); `ex.request` holds what was read of it.
  virtual http_response refusal(const exchange& ex, int status, const std::string& message) = 0;

  /// Called once per answered exchange, refusals included, right after reply(): metrics and
  /// the access log.
  virtual void finished(const exchange& ex) = 0;
};

/// An io thread: its event loop, its bridge actor and the connections placed on it.
struct io_worker {
  io_worker(http_server& server, size_t index);
  ~io_worker();

  http_server& server;
  const size_t index;
  boost::asio::io_context io{1};
  caf::actor bridge_handle;
  io_bridge* bridge = nullptr;
  std::thread thread;
  /// Connections placed here (for placement; written by this thread, read by the acceptor).
  std::atomic<size_t> connections{0};
  /// This thread's sessions, for deadlines and shutdown. Touched only on this thread.
  std::vector<std::shared_ptr<session>> sessions;
  boost::asio::steady_timer sweep_timer{io};
  /// The current HTTP-date, refreshed by the sweep. This thread only.
  std::string date;
  long long date_second = 0;

  void refresh_date();
  void schedule_sweep();
};

class http_server {
public:
  http_server(caf::actor_system& sys, server_options opts, request_handler& handler);
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// Binds, listens and starts the io threads. Returns the bound port, or -1 with `error` set
  /// ("cannot listen on 127.0.0.1:8000: Address already in use").
  int start(std::string& error);

  /// Closes the listener; idle connections close at once; every later response closes its
  /// connection. Requests in flight go on.
  void begin_drain();

  /// Requests read and not yet answered and written.
  int64_t in_flight() const { return in_flight_.load(); }

  /// Answers every request still unanswered with `status` and `message` (shutdown).
  void fail_unanswered(int status, const std::string& message);

  /// Closes every connection, stops the bridges and joins the io threads. Idempotent.
  void stop();

  const server_options& options() const { return opts_; }
  request_handler& handler() { return handler_; }

private:
  friend class session;
  friend struct io_worker;

  void accept_next();
  void on_accept(const boost::system::error_code& ec, boost::asio::ip::tcp::socket socket,
                 size_t worker);
  /// A connection closed (any thread): accepting resumes if it was paused at the limit.
  void connection_closed();
  void run_on_each_worker(const std::function<void(io_worker&)>& fn, bool wait);

  caf::actor_system& sys_;
  server_options opts_;
  request_handler& handler_;
  std::vector<std::unique_ptr<io_worker>> workers_;
  std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_; // io thread 0 only
  boost::asio::steady_timer* accept_retry_ = nullptr;        // io thread 0 only
  std::atomic<size_t> connections_{0};
  std::atomic<int64_t> in_flight_{0};
  std::atomic<bool> accept_paused_{false};
  std::atomic<bool> draining_{false};
  std::atomic<bool> stopped_{false};
  bool started_ = false;
};

} // namespace serve
