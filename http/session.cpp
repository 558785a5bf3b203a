#include "http/session.hpp"

#include <algorithm>
#include <chrono>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "actors/call_context.hpp"
#include "http/io_bridge.hpp"
#include "http/response_writer.hpp"

namespace serve {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

/// Bytes asked of the socket per read into the connection's buffer.
constexpr size_t read_chunk = 16 * 1024;
/// Responses gathered into one write at most.
constexpr size_t max_responses_per_write = 64;

int64_t to_ns(std::chrono::milliseconds d) {
  return static_cast<int64_t>(d.count()) * 1'000'000;
}

const std::string continue_head = "HTTP/1.1 100 Continue\r\n\r\n";

} // namespace

// ---- exchange -----------------------------------------------------------------------------

exchange::exchange(io_worker& worker, std::weak_ptr<session> owner)
  : worker_(worker), owner_(std::move(owner)) {}

io_bridge& exchange::bridge() const {
  return *worker_.bridge;
}

void exchange::reply(http_response response) {
  if (!worker_.io.get_executor().running_in_this_thread()) {
    net::post(worker_.io, [self = shared_from_this(), r = std::move(response)]() mutable {
      self->reply(std::move(r));
    });
    return;
  }
  if (answered_)
    return;
  answered_ = true;
  status_ = response.status;
  response_ = std::move(response);
  close_after_ |= response_.close;
  if (!interim_)
    worker_.server.handler().finished(*this);
  if (auto owner = owner_.lock())
    owner->on_answered();
}

// ---- session ------------------------------------------------------------------------------

session::session(io_worker& worker, tcp::socket socket)
  : worker_(worker),
    socket_(std::move(socket)),
    input_(worker.server.options().limits.max_header_bytes + 2 * read_chunk) {}

session::~session() = default;

const server_options& session::options() const {
  return worker_.server.options();
}

void session::start() {
  boost::system::error_code ec;
  socket_.set_option(tcp::no_delay(true), ec);
  idle_since_ns_ = steady_now_ns();
  read_some();
}

bool session::idle() const {
  return pending_.empty() && !writing_ && (!reader_ || !reader_->started()) && input_.size() == 0;
}

void session::read_some() {
  if (reading_ || closed_ || read_closed_ || stop_reading_ || lingering_)
    return;
  if (!reader_ && requests_pending_ >= options().max_pipelined)
    return; // paused at the pipelining limit; a finished write resumes
  reading_ = true;
  auto self = shared_from_this();
  size_t room = 0;
  char* window = reader_ && input_.size() == 0 ? reader_->body_window(room) : nullptr;
  if (window != nullptr) {
    // A Content-Length body goes straight from the socket into the request.
    socket_.async_read_some(net::buffer(window, room),
                            [self](const boost::system::error_code& ec, size_t n) {
                              self->on_body_read(ec, n);
                            });
    return;
  }
  size_t want = std::min(read_chunk, input_.max_size() - input_.size());
  socket_.async_read_some(input_.prepare(want),
                          [self](const boost::system::error_code& ec, size_t n) {
                            self->on_read(ec, n);
                          });
}

void session::on_read(const boost::system::error_code& ec, size_t n) {
  reading_ = false;
  if (closed_)
    return;
  if (lingering_) { // dropping what arrives after the last response
    if (ec)
      return close();
    input_.commit(n);
    input_.consume(input_.size());
    return linger_read();
  }
  if (ec) {
    if (ec == net::error::eof)
      return on_end_of_input();
    return close();
  }
  input_.commit(n);
  process_input();
  read_some();
}

void session::on_body_read(const boost::system::error_code& ec, size_t n) {
  reading_ = false;
  if (closed_)
    return;
  if (lingering_)
    return ec ? close() : linger_read();
  if (ec) {
    if (ec == net::error::eof)
      return on_end_of_input();
    return close();
  }
  if (stop_reading_)
    return; // refused (408) while this read was outstanding
  reader_->body_received(n);
  process_input();
  read_some();
}

void session::on_end_of_input() {
  read_closed_ = true;
  if (reader_ && !stop_reading_) {
    reader_->end_of_input();
    if (reader_->current() == request_reader::phase::failed)
      refuse(reader_->failure().status, reader_->failure().message);
  }
  if (pending_.empty() && !writing_)
    close();
  // Otherwise the responses still owed are written first (a half-closed client still reads).
}

void session::process_input() {
  while (!closed_ && !stop_reading_) {
    if (!reader_) {
      if (input_.size() == 0 || requests_pending_ >= options().max_pipelined)
        return;
      reader_.emplace(options().limits);
      continue_sent_ = false;
    }
    auto data = input_.data();
    std::string_view bytes(static_cast<const char*>(data.data()), data.size());
    bool was_started = reader_->started();
    size_t used = reader_->feed(bytes);
    input_.consume(used);
    if (!was_started && reader_->started())
      request_started_ns_ = steady_now_ns();
    switch (reader_->current()) {
      case request_reader::phase::done: dispatch(); continue;
      case request_reader::phase::failed:
        refuse(reader_->failure().status, reader_->failure().message);
        return;
      case request_reader::phase::header:
      case request_reader::phase::body:
        if (reader_->wants_continue() && !continue_sent_) {
          continue_sent_ = true;
          auto interim = std::make_shared<exchange>(worker_, weak_from_this());
          interim->interim_ = true;
          push(interim);
          http_response r;
          r.status = 100;
          interim->reply(std::move(r));
        }
        if (used == 0 || input_.size() == 0)
          return;
        continue;
    }
  }
}

void session::dispatch() {
  auto ex = std::make_shared<exchange>(worker_, weak_from_this());
  ex->request = std::move(reader_->request());
  ex->request.received_ns = request_started_ns_;
  ex->log.start_ns = request_started_ns_;
  reader_.reset();
  request_started_ns_ = 0;
  ++requests_read_;
  ex->head_request_ = ex->request.method == "HEAD";
  if (!ex->request.keep_alive || requests_read_ >= options().keep_alive_max_count || draining_) {
    ex->close_after_ = true;
    stop_reading_ = true;
  }
  push(ex);
  try {
    worker_.server.handler().handle(ex);
  } catch (const std::exception& e) {
    ex->reply(worker_.server.handler().refusal(*ex, 500, std::string("internal error: ")
                                                         + e.what()));
  } catch (...) {
    ex->reply(worker_.server.handler().refusal(*ex, 500, "internal error"));
  }
}

void session::refuse(int status, const std::string& message) {
  auto ex = std::make_shared<exchange>(worker_, weak_from_this());
  if (reader_) {
    // What was read of the request, for the error's format and the log; the reader itself stays
    // (a body read may still be outstanding into it) but nothing more is read.
    const auto& partial = reader_->request();
    ex->request.method = partial.method;
    ex->request.target = partial.target;
    ex->request.path = partial.path;
    ex->request.version = partial.version;
  }
  int64_t started = request_started_ns_ != 0 ? request_started_ns_ : steady_now_ns();
  ex->request.received_ns = started;
  ex->log.start_ns = started;
  ex->close_after_ = true;
  stop_reading_ = true;
  push(ex);
  auto response = worker_.server.handler().refusal(*ex, status, message);
  response.close = true;
  ex->reply(std::move(response));
}

void session::push(std::shared_ptr<exchange> ex) {
  if (!ex->interim_) {
    ++requests_pending_;
    worker_.server.in_flight_.fetch_add(1, std::memory_order_relaxed);
  }
  pending_.push_back(std::move(ex));
}

void session::on_answered() {
  write_ready();
}

void session::write_ready() {
  if (writing_ || closed_ || lingering_)
    return;
  size_t count = 0;
  write_heads_.clear();
  write_buffers_.clear();
  for (auto& ex : pending_) {
    if (!ex->answered_ || count == max_responses_per_write)
      break;
    ++count;
    if (ex->interim_)
      continue;
    bool last = count == pending_.size();
    // Draining, or the client sent EOF: the last response owed closes the connection.
    if (last && (draining_ || read_closed_) && (!reader_ || stop_reading_ || read_closed_))
      ex->close_after_ = true;
    response_framing framing;
    framing.close = ex->close_after_;
    framing.http10_keep_alive = !framing.close && ex->request.version < 11;
    framing.head_request = ex->head_request_;
    write_heads_.emplace_back();
    write_heads_.back().reserve(160);
    write_response_head(ex->response_, framing, worker_.date, write_heads_.back());
    if (ex->close_after_)
      break;
  }
  if (count == 0)
    return;
  // Heads are built first: their strings must not move once buffers point at them.
  size_t head = 0;
  for (size_t i = 0; i < count; ++i) {
    auto& ex = pending_[i];
    if (ex->interim_) {
      write_buffers_.push_back(net::buffer(continue_head));
      continue;
    }
    write_buffers_.push_back(net::buffer(write_heads_[head++]));
    if (!ex->head_request_ && !status_has_no_body(ex->response_.status)
        && !ex->response_.body.empty())
      write_buffers_.push_back(net::buffer(ex->response_.body));
  }
  writing_ = true;
  writing_count_ = count;
  write_started_ns_ = steady_now_ns();
  auto self = shared_from_this();
  net::async_write(socket_, write_buffers_,
                   [self](const boost::system::error_code& ec, size_t n) { self->on_write(ec, n); });
}

void session::on_write(const boost::system::error_code& ec, size_t) {
  writing_ = false;
  if (closed_)
    return;
  if (ec)
    return close();
  bool close_after = false;
  for (size_t i = 0; i < writing_count_ && !pending_.empty(); ++i) {
    auto& ex = pending_.front();
    close_after |= ex->close_after_;
    if (!ex->interim_) {
      --requests_pending_;
      worker_.server.in_flight_.fetch_sub(1, std::memory_order_relaxed);
    }
    pending_.pop_front();
  }
  writing_count_ = 0;
  write_buffers_.clear();
  write_heads_.clear();
  if (close_after)
    return begin_linger();
  if (read_closed_ && pending_.empty())
    return close();
  if (idle())
    idle_since_ns_ = steady_now_ns();
  process_input(); // requests already buffered behind the pipelining limit
  read_some();
  write_ready();
}

void session::begin_linger() {
  lingering_ = true;
  stop_reading_ = true;
  boost::system::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_send, ec);
  if (read_closed_ || ec)
    return close();
  linger_deadline_ns_ = steady_now_ns() + to_ns(options().linger_timeout);
  input_.consume(input_.size());
  linger_read();
}

void session::linger_read() {
  if (reading_ || closed_)
    return; // the outstanding read comes back to on_read, which drops what it got
  reading_ = true;
  auto self = shared_from_this();
  socket_.async_read_some(input_.prepare(read_chunk),
                          [self](const boost::system::error_code& ec, size_t n) {
                            self->on_read(ec, n);
                          });
}

void session::drain() {
  if (closed_)
    return;
  draining_ = true;
  if (idle())
    return close();
  if (!reader_ || !reader_->started())
    stop_reading_ = true; // no new request; the last response owed says Connection: close
  if (pending_.empty() && !writing_ && stop_reading_)
    return close();
  write_ready();
}

void session::check_deadlines(int64_t now) {
  if (closed_)
    return;
  if (lingering_) {
    if (now > linger_deadline_ns_)
      close();
    return;
  }
  if (writing_ && now - write_started_ns_ > to_ns(options().write_timeout))
    return close();
  if (reader_ && reader_->started() && !stop_reading_ && request_started_ns_ != 0
      && now - request_started_ns_ > to_ns(options().request_read_timeout)) {
    auto seconds = std::to_string(options().request_read_timeout.count() / 1000.0);
    seconds.erase(seconds.find_last_not_of('0') + 1);
    if (!seconds.empty() && seconds.back() == '.')
      seconds.pop_back();
    if (reading_) {
      boost::system::error_code ec;
      socket_.cancel(ec); // the outstanding read ends; its bytes are not wanted
    }
    refuse(408, "the request was not received within http_options.request_read_timeout_s="
                  + seconds + " s");
    return;
  }
  if (idle() && now - idle_since_ns_ > to_ns(options().keep_alive_timeout))
    close();
}

void session::fail_unanswered(int status, const std::string& message) {
  if (closed_)
    return;
  stop_reading_ = true;
  // Copy: replies may write and pop.
  std::vector<std::shared_ptr<exchange>> owed;
  for (auto& ex : pending_)
    if (!ex->answered_ && !ex->interim_)
      owed.push_back(ex);
  for (auto& ex : owed) {
    auto response = worker_.server.handler().refusal(*ex, status, message);
    response.close = true;
    ex->reply(std::move(response));
  }
  if (pending_.empty() && !writing_)
    close();
}

void session::close() {
  if (closed_)
    return;
  closed_ = true;
  boost::system::error_code ec;
  socket_.close(ec);
  if (requests_pending_ != 0) // they will never be written
    worker_.server.in_flight_.fetch_sub(static_cast<int64_t>(requests_pending_),
                                        std::memory_order_relaxed);
  requests_pending_ = 0;
  pending_.clear();
  worker_.connections.fetch_sub(1, std::memory_order_relaxed);
  worker_.server.connection_closed();
}

} // namespace serve
