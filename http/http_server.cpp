#include "http/http_server.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <future>

#include <sys/resource.h>

#include <boost/asio/post.hpp>

#include "actors/call_context.hpp"
#include "http/io_bridge.hpp"
#include "http/response_writer.hpp"
#include "http/session.hpp"

namespace serve {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

std::chrono::milliseconds to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(std::ceil(seconds * 1000.0)));
}

/// Lets this process open as many sockets as the hard limit allows (the soft limit is often
/// 1024, below max_connections).
void raise_open_files_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

bool out_of_descriptors(const boost::system::error_code& ec) {
  return ec == net::error::no_descriptors || ec == net::error::no_buffer_space
         || ec == net::error::no_memory || ec.value() == ENFILE;
}

} // namespace

server_options server_options::from(const http_options& http) {
  server_options o;
  o.host = http.host;
  o.port = http.port;
  o.io_threads = http.io_threads;
  o.max_connections = static_cast<size_t>(http.max_connections);
  o.max_pipelined = static_cast<size_t>(http.max_pipelined_requests);
  o.keep_alive_max_count = static_cast<uint64_t>(http.keep_alive_max_count);
  o.limits.max_body_bytes = http.max_body_bytes;
  o.limits.max_header_bytes = http.max_header_bytes;
  o.limits.max_header_count = static_cast<size_t>(http.max_header_count);
  o.limits.max_url_bytes = http.max_url_bytes;
  o.keep_alive_timeout = to_ms(http.keep_alive_timeout_s);
  o.request_read_timeout = to_ms(http.request_read_timeout_s);
  o.write_timeout = std::max(o.request_read_timeout, std::chrono::milliseconds(30000));
  return o;
}

// ---- io_worker ----------------------------------------------------------------------------

io_worker::io_worker(http_server& s, size_t i) : server(s), index(i) {}

io_worker::~io_worker() = default;

void io_worker::refresh_date() {
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
  if (seconds != date_second) {
    date_second = seconds;
    date = http_date(seconds);
  }
}

void io_worker::schedule_sweep() {
  // Often enough that the shortest timeout is kept to within a quarter of itself.
  auto& o = server.options();
  auto shortest = std::min({o.keep_alive_timeout, o.request_read_timeout, o.linger_timeout});
  auto interval = std::clamp(shortest / 4, std::chrono::milliseconds(10),
                             std::chrono::milliseconds(250));
  sweep_timer.expires_after(interval);
  sweep_timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec)
      return;
    refresh_date();
    int64_t now = steady_now_ns();
    // check_deadlines may close sessions (only flags them): sweep them out afterwards.
    for (size_t i = 0; i < sessions.size(); ++i)
      sessions[i]->check_deadlines(now);
    sessions.erase(std::remove_if(sessions.begin(), sessions.end(),
                                  [](const std::shared_ptr<session>& s) { return s->closed(); }),
                   sessions.end());
    schedule_sweep();
  });
}

// ---- http_server --------------------------------------------------------------------------

http_server::http_server(caf::actor_system& sys, server_options opts, request_handler& handler)
  : sys_(sys), opts_(std::move(opts)), handler_(handler) {}

http_server::~http_server() {
  stop();
}

int http_server::start(std::string& error) {
  raise_open_files_limit();
  size_t threads = opts_.io_threads > 0 ? static_cast<size_t>(opts_.io_threads)
                                        : std::max(1u, std::thread::hardware_concurrency());
  for (size_t i = 0; i < threads; ++i)
    workers_.push_back(std::make_unique<io_worker>(*this, i));
  auto& io0 = workers_[0]->io;
  std::string where = opts_.host + ":" + std::to_string(opts_.port);
  boost::system::error_code ec;
  tcp::resolver resolver(io0);
  auto endpoints = resolver.resolve(opts_.host, std::to_string(opts_.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty()) {
    error = "cannot listen on " + where + ": cannot resolve host \"" + opts_.host
            + "\" (" + ec.message() + ")";
    workers_.clear();
    return -1;
  }
  tcp::endpoint endpoint = endpoints.begin()->endpoint();
  acceptor_ = std::make_unique<tcp::acceptor>(io0);
  acceptor_->open(endpoint.protocol(), ec);
  // SO_REUSEADDR lets a restarted server bind while old connections sit in TIME_WAIT; unlike
  // SO_REUSEPORT it does not let two servers listen on one port.
  if (!ec)
    acceptor_->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec)
    acceptor_->bind(endpoint, ec);
  if (!ec)
    acceptor_->listen(opts_.listen_backlog, ec);
  if (ec) {
    error = "cannot listen on " + where + ": " + ec.message();
    if (ec == net::error::address_in_use)
      error += " (is another server already listening on this port?)";
    acceptor_.reset();
    workers_.clear();
    return -1;
  }
  int port = acceptor_->local_endpoint(ec).port();
  for (auto& w : workers_) {
    w->bridge = make_io_bridge(sys_, w->io, w->bridge_handle);
    io_worker* worker = w.get();
    net::post(worker->io, [worker] {
      worker->bridge->start();
      worker->refresh_date();
      worker->schedule_sweep();
    });
    worker->thread = std::thread([worker] { worker->io.run(); });
  }
  net::post(io0, [this] { accept_next(); });
  started_ = true;
  return port;
}

void http_server::accept_next() {
  if (stopped_ || draining_ || !acceptor_ || !acceptor_->is_open())
    return;
  if (connections_.load() >= opts_.max_connections) {
    accept_paused_ = true;
    // A connection may have closed between the check and the flag: look again.
    if (connections_.load() >= opts_.max_connections || !accept_paused_.exchange(false))
      return;
  }
  size_t target = 0;
  for (size_t i = 1; i < workers_.size(); ++i)
    if (workers_[i]->connections.load(std::memory_order_relaxed)
        < workers_[target]->connections.load(std::memory_order_relaxed))
      target = i;
  acceptor_->async_accept(workers_[target]->io,
                          [this, target](const boost::system::error_code& ec, tcp::socket s) {
                            on_accept(ec, std::move(s), target);
                          });
}

void http_server::on_accept(const boost::system::error_code& ec, tcp::socket socket,
                            size_t target) {
  if (ec == net::error::operation_aborted || stopped_)
    return;
  if (ec) {
    if (out_of_descriptors(ec)) {
      // Out of file descriptors: wait instead of spinning; established connections go on.
      static std::atomic<int64_t> last_report{0};
      int64_t now = steady_now_ns();
      if (now - last_report.load() > 10'000'000'000) {
        last_report = now;
        std::fprintf(stderr, "[actorserve] cannot accept connections: %s (raise ulimit -n or "
                             "lower http_options.max_connections)\n",
                     ec.message().c_str());
      }
      if (!accept_retry_)
        accept_retry_ = new net::steady_timer(workers_[0]->io);
      accept_retry_->expires_after(std::chrono::milliseconds(100));
      accept_retry_->async_wait([this](const boost::system::error_code& e) {
        if (!e)
          accept_next();
      });
      return;
    }
    return accept_next();
  }
  connections_.fetch_add(1);
  auto& worker = *workers_[target];
  worker.connections.fetch_add(1, std::memory_order_relaxed);
  net::post(worker.io, [w = &worker, s = std::move(socket)]() mutable {
    auto connection = std::make_shared<session>(*w, std::move(s));
    w->sessions.push_back(connection);
    if (w->server.draining_ || w->server.stopped_)
      return connection->close();
    connection->start();
  });
  accept_next();
}

void http_server::connection_closed() {
  connections_.fetch_sub(1);
  if (accept_paused_.load() && connections_.load() < opts_.max_connections
      && accept_paused_.exchange(false) && !workers_.empty())
    net::post(workers_[0]->io, [this] { accept_next(); });
}

void http_server::run_on_each_worker(const std::function<void(io_worker&)>& fn, bool wait) {
  std::vector<std::future<void>> done;
  for (auto& w : workers_) {
    auto promise = std::make_shared<std::promise<void>>();
    done.push_back(promise->get_future());
    io_worker* worker = w.get();
    net::post(worker->io, [worker, fn, promise] {
      fn(*worker);
      promise->set_value();
    });
  }
  if (wait)
    for (auto& f : done)
      f.wait_for(std::chrono::seconds(10));
}

void http_server::begin_drain() {
  if (!started_ || draining_.exchange(true))
    return;
  run_on_each_worker(
    [this](io_worker& w) {
      if (w.index == 0 && acceptor_) {
        boost::system::error_code ec;
        acceptor_->close(ec); // new connections are refused from here on
      }
      for (size_t i = 0; i < w.sessions.size(); ++i)
        w.sessions[i]->drain();
    },
    true);
}

void http_server::fail_unanswered(int status, const std::string& message) {
  if (!started_)
    return;
  run_on_each_worker(
    [status, message](io_worker& w) {
      for (size_t i = 0; i < w.sessions.size(); ++i)
        w.sessions[i]->fail_unanswered(status, message);
    },
    true);
}

void http_server::stop() {
  if (stopped_.exchange(true) || !started_)
    return;
  run_on_each_worker(
    [this](io_worker& w) {
      if (w.index == 0) {
        boost::system::error_code ec;
        if (acceptor_)
          acceptor_->close(ec);
        if (accept_retry_)
          accept_retry_->cancel();
      }
      for (size_t i = 0; i < w.sessions.size(); ++i)
        w.sessions[i]->close();
      w.sessions.clear();
      w.sweep_timer.cancel();
      w.bridge->stop();
      w.io.stop();
    },
    false);
  for (auto& w : workers_)
    if (w->thread.joinable())
      w->thread.join();
  acceptor_.reset();
  delete accept_retry_;
  accept_retry_ = nullptr;
  workers_.clear();
}

} // namespace serve
