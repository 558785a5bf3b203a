// The load generator's event loop: connections, sends, reads, arrivals, timeouts. See
// load_worker.hpp for the connection life cycle and load_generator.hpp for what is measured.
#include "apps/actorserve/load_worker.hpp"

#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <thread>

namespace serve::bench {

load_worker::load_worker(const load_options& opts, const socket_address& addr,
                         const worker_plan& plan, worker_progress& progress)
    : opts_(opts), addr_(addr), plan_(plan), progress_(progress), open_loop_(opts.rate_per_s > 0),
      conns_(open_loop_ ? plan.max_connections : plan.connections), rng_(plan.seed),
      buffer_(64 * 1024) {
  interval_ns_ = open_loop_ ? 1e9 / plan.rate_per_s : 0;
  next_arrival_offset_ns_ = static_cast<double>(plan.first_arrival_ns - plan.start_ns);
  for (auto& r : opts.requests)
    head_requests_.push_back(r.compare(0, 5, "HEAD ") == 0);
  housekeeping_ns_ = std::clamp<int64_t>(opts.timeout.count() / 4, 1'000'000, 10'000'000);
}

void load_worker::watch(connection& c, uint32_t events, int op) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = &c;
  epoll_ctl(epoll_fd_, op, c.fd, &ev);
}

void load_worker::open(connection& c, int64_t now) {
  c.fd = start_connect(addr_);
  if (c.fd < 0) {
    c.phase = conn_phase::closed;
    fail(c, error_kind::connect, now);
    return;
  }
  ++open_count_;
  result_.peak_connections = std::max<uint64_t>(result_.peak_connections, open_count_);
  c.phase = conn_phase::connecting;
  c.watching_writes = true;
  watch(c, EPOLLOUT, EPOLL_CTL_ADD);
}

void load_worker::close_connection(connection& c) {
  if (c.fd >= 0) {
    close(c.fd); // also leaves the epoll set
    c.fd = -1;
    --open_count_;
  }
  c.phase = conn_phase::closed;
  c.watching_writes = false;
}

void load_worker::assign(connection& c, int64_t origin, int64_t now) {
  c.has_request = true;
  c.origin_ns = origin;
  size_t i = next_request_++ % opts_.requests.size();
  c.out = &opts_.requests[i];
  c.out_offset = 0;
  c.parser.start(head_requests_[i]);
  if (c.phase == conn_phase::idle)
    start_write(c, now);
  else if (c.phase == conn_phase::closed)
    open(c, now);
}

void load_worker::start_write(connection& c, int64_t now) {
  if (!open_loop_)
    c.origin_ns = now; // closed loop: latency runs from the send
  if (in_window(now))
    ++result_.sent;
  c.phase = conn_phase::writing;
  write_some(c, now);
}

void load_worker::write_some(connection& c, int64_t now) {
  while (c.out_offset < c.out->size()) {
    ssize_t n =
        send(c.fd, c.out->data() + c.out_offset, c.out->size() - c.out_offset, MSG_NOSIGNAL);
    if (n > 0) {
      c.out_offset += static_cast<size_t>(n);
      if (in_window(now))
        result_.bytes_written += static_cast<uint64_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!c.watching_writes) {
        c.watching_writes = true;
        watch(c, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
      }
      return;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      fail(c, error_kind::write, now);
      return;
    }
  }
  if (c.phase == conn_phase::writing)
    c.phase = conn_phase::reading;
  if (c.watching_writes) {
    c.watching_writes = false;
    watch(c, EPOLLIN, EPOLL_CTL_MOD);
  }
}

void load_worker::on_event(connection& c, uint32_t events, int64_t now) {
  int fd = c.fd;
  if (fd < 0)
    return;
  if (c.phase == conn_phase::connecting) {
    on_connected(c, now);
    return;
  }
  if (c.phase == conn_phase::writing && (events & EPOLLOUT))
    write_some(c, now);
  // A failed write may have replaced the socket: the event was for the old one.
  if (c.fd == fd && c.phase != conn_phase::connecting && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
    on_readable(c, now);
}

void load_worker::on_connected(connection& c, int64_t now) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
    fail(c, error_kind::connect, now);
    return;
  }
  c.watching_writes = false;
  watch(c, EPOLLIN, EPOLL_CTL_MOD);
  c.phase = conn_phase::idle;
  if (c.has_request)
    start_write(c, now);
  else
    become_idle(c, now);
}

void load_worker::on_readable(connection& c, int64_t now) {
  for (;;) {
    ssize_t n = recv(c.fd, buffer_.data(), buffer_.size(), 0);
    now = now_ns(); // a reply completes when its last bytes have been read
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    if (n < 0 || (n == 0 && !c.has_request)) {
      // An idle keep-alive connection the server closed is not an error: it reconnects.
      if (c.has_request)
        fail(c, error_kind::read, now);
      else
        close_connection(c);
      return;
    }
    if (n == 0) {
      if (c.parser.finish_at_eof() == http_response_parser::outcome::complete)
        complete(c, now, true);
      else
        fail(c, error_kind::read, now);
      return;
    }
    if (in_window(now))
      result_.bytes_read += static_cast<uint64_t>(n);
    if (!c.has_request) { // bytes nobody asked for: drop the connection
      close_connection(c);
      return;
    }
    size_t used = 0;
    auto got = c.parser.feed(buffer_.data(), static_cast<size_t>(n), used);
    if (got == http_response_parser::outcome::bad) {
      fail(c, error_kind::read, now);
      return;
    }
    if (got == http_response_parser::outcome::complete) {
      complete(c, now, used < static_cast<size_t>(n));
      return;
    }
    if (static_cast<size_t>(n) < buffer_.size())
      return; // level-triggered: more data wakes us again
  }
}

void load_worker::complete(connection& c, int64_t now, bool must_close) {
  if (in_window(now)) {
    ++result_.completed;
    int status = c.parser.status();
    ++result_.status_counts[status >= 100 && status < 600 ? status : 0];
    result_.latency.record(static_cast<uint64_t>(std::max<int64_t>(0, now - c.origin_ns)));
  } else if (now >= plan_.window_end_ns && in_window(c.origin_ns)) {
    ++result_.unfinished; // it was still pending when the window closed
  }
  ++total_completed_;
  if (c.parser.status() >= 400)
    ++total_errors_;
  c.has_request = false;
  if (must_close || c.parser.close_after())
    close_connection(c);
  else
    c.phase = conn_phase::idle;
  if (!open_loop_) {
    // Its next request goes out after this batch of events, like wrk's, which writes on the
    // next loop turn; a closed connection reconnects at once.
    if (now < plan_.window_end_ns && c.phase == conn_phase::idle)
      ready_to_send_.push_back(&c);
    else if (now < plan_.window_end_ns)
      assign(c, now, now);
  } else if (c.phase == conn_phase::idle) {
    become_idle(c, now);
  }
}

void load_worker::fail(connection& c, error_kind kind, int64_t now) {
  if (in_window(now))
    ++result_.errors[static_cast<size_t>(kind)];
  ++total_errors_;
  close_connection(c);
  bool had_request = c.has_request;
  c.has_request = false;
  if (!open_loop_) {
    // Refused connects back off a little (housekeeping retries); anything else reconnects now.
    c.retry_at_ns = now + 10'000'000;
    if (kind != error_kind::connect && now < plan_.window_end_ns)
      assign(c, now, now);
  } else if (kind == error_kind::connect) {
    reconnect_not_before_ns_ = now + 10'000'000;
    if (had_request)
      queue_.push_front(c.origin_ns); // still waiting; its latency keeps counting
  }
}

void load_worker::become_idle(connection& c, int64_t now) {
  if (!queue_.empty()) {
    int64_t origin = queue_.front();
    queue_.pop_front();
    assign(c, origin, now);
    return;
  }
  if (!c.in_idle_stack) {
    c.in_idle_stack = true;
    idle_.push_back(&c);
  }
}

bool load_worker::try_send(int64_t origin, int64_t now) {
  while (!idle_.empty()) {
    connection* c = idle_.back();
    idle_.pop_back();
    c->in_idle_stack = false;
    if (c->phase == conn_phase::idle && !c->has_request) {
      assign(*c, origin, now);
      return true;
    }
  }
  if (open_count_ < conns_.size() && now >= reconnect_not_before_ns_) {
    for (auto& c : conns_) {
      if (c.phase == conn_phase::closed) {
        assign(c, origin, now); // a refused connect puts it back at the queue's front
        return true;
      }
    }
  }
  return false;
}

int64_t load_worker::next_arrival_ns() const {
  return plan_.start_ns + static_cast<int64_t>(next_arrival_offset_ns_);
}

void load_worker::schedule_arrivals(int64_t now) {
  for (int64_t at = next_arrival_ns(); at <= now && at < plan_.window_end_ns;
       at = next_arrival_ns()) {
    if (!try_send(at, now)) {
      queue_.push_back(at);
      if (in_window(at))
        ++result_.queued;
    }
    next_arrival_offset_ns_ += opts_.poisson ? gap_(rng_) * interval_ns_ : interval_ns_;
  }
}

void load_worker::drain_queue(int64_t now) {
  // Connections that failed or were closed by the server are replaced while arrivals wait.
  while (!queue_.empty() && open_count_ < conns_.size() && now >= reconnect_not_before_ns_) {
    int64_t origin = queue_.front();
    queue_.pop_front();
    if (!try_send(origin, now)) {
      queue_.push_front(origin);
      break;
    }
  }
}

void load_worker::housekeeping(int64_t now) {
  int64_t timeout = opts_.timeout.count();
  for (auto& c : conns_) {
    if (c.has_request && c.phase != conn_phase::closed && now - c.origin_ns >= timeout)
      fail(c, error_kind::timeout, now);
    if (!open_loop_ && c.phase == conn_phase::closed && !c.has_request && now >= c.retry_at_ns &&
        now < plan_.window_end_ns)
      assign(c, now, now);
  }
  while (!queue_.empty() && now - queue_.front() >= timeout) {
    queue_.pop_front();
    if (in_window(now))
      ++result_.errors[static_cast<size_t>(error_kind::timeout)];
    ++total_errors_;
  }
}

void load_worker::wait_for_events(int64_t until_ns) {
  epoll_event events[256];
  int64_t wait = std::max<int64_t>(0, until_ns - now_ns());
  timespec ts{static_cast<time_t>(wait / 1'000'000'000), static_cast<long>(wait % 1'000'000'000)};
  int n = epoll_pwait2(epoll_fd_, events, 256, &ts, nullptr);
  if (n < 0 && errno == ENOSYS) // kernels before 5.11: millisecond waits
    n = epoll_wait(epoll_fd_, events, 256, static_cast<int>((wait + 999'999) / 1'000'000));
  if (n <= 0)
    return;
  for (int i = 0; i < n; ++i) // a fresh clock per reply: a batch takes microseconds
    on_event(*static_cast<connection*>(events[i].data.ptr), events[i].events, now_ns());
  for (connection* c : ready_to_send_) // closed loop: latency runs from each send
    if (c->phase == conn_phase::idle && !c->has_request) {
      int64_t now = now_ns();
      assign(*c, now, now);
    }
  ready_to_send_.clear();
}

void load_worker::finish() {
  for (auto& c : conns_) {
    if (c.has_request && c.phase != conn_phase::closed && in_window(c.origin_ns))
      ++result_.unfinished;
    close_connection(c);
  }
  for (auto origin : queue_)
    result_.unfinished += in_window(origin);
  close(epoll_fd_);
}

void load_worker::run() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  prctl(PR_SET_TIMERSLACK, 1000UL); // wake within ~1 us of an open-loop arrival
  std::this_thread::sleep_for(std::chrono::nanoseconds(plan_.start_ns - now_ns()));
  int64_t now = now_ns();
  if (open_loop_)
    open(conns_.front(), now); // one warm connection; more open as arrivals need them
  else
    for (auto& c : conns_)
      assign(c, now, now);
  int64_t next_housekeeping = now + housekeeping_ns_;
  while ((now = now_ns()) < plan_.window_end_ns) {
    if (open_loop_) {
      schedule_arrivals(now);
      drain_queue(now);
    }
    if (now >= next_housekeeping) {
      housekeeping(now);
      next_housekeeping = now + housekeeping_ns_;
    }
    progress_.completed.store(total_completed_, std::memory_order_relaxed);
    progress_.errors.store(total_errors_, std::memory_order_relaxed);
    int64_t wake = std::min(plan_.window_end_ns, next_housekeeping);
    if (open_loop_)
      wake = std::min(wake, next_arrival_ns());
    wait_for_events(wake);
  }
  finish();
  result_.measured_s = static_cast<double>(plan_.window_end_ns - plan_.window_start_ns) / 1e9;
}

} // namespace serve::bench
