// The load generator's event loops. See load_generator.hpp for what a run measures.
#include "apps/actorserve/load_generator.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <deque>
#include <memory>
#include <random>
#include <string_view>
#include <thread>

namespace serve::bench {

// ---- latency_histogram ---------------------------------------------------------------------

namespace {

// Values below 256 ns have a bucket each; above, every power of two [2^k, 2^(k+1)) is split
// into 128 equal buckets, indexed shift * 128 + (ns >> shift) with shift = k - 7.
constexpr uint64_t exact_below = 256;
constexpr uint64_t half_buckets = 128;
constexpr uint64_t max_shift = 36; // up to 2^44 ns, about 4.9 hours
constexpr size_t bucket_count = max_shift * half_buckets + exact_below;

} // namespace

latency_histogram::latency_histogram() : counts_(bucket_count, 0) {}

size_t latency_histogram::index_of(uint64_t ns) {
  if (ns < exact_below)
    return static_cast<size_t>(ns);
  uint64_t shift = 63 - __builtin_clzll(ns) - 7;
  if (shift > max_shift)
    return bucket_count - 1;
  return static_cast<size_t>(shift * half_buckets + (ns >> shift));
}

uint64_t latency_histogram::midpoint_of(size_t index) {
  if (index < exact_below)
    return index;
  uint64_t shift = index / half_buckets - 1;
  uint64_t sub = index - shift * half_buckets;
  return (sub << shift) + ((uint64_t{1} << shift) >> 1);
}

void latency_histogram::record(uint64_t ns) {
  ++counts_[index_of(ns)];
  ++count_;
  sum_ns_ += ns;
  min_ns_ = std::min(min_ns_, ns);
  max_ns_ = std::max(max_ns_, ns);
}

void latency_histogram::merge(const latency_histogram& other) {
  for (size_t i = 0; i < counts_.size(); ++i)
    counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ns_ += other.sum_ns_;
  min_ns_ = std::min(min_ns_, other.min_ns_);
  max_ns_ = std::max(max_ns_, other.max_ns_);
}

uint64_t latency_histogram::percentile(double percent) const {
  if (count_ == 0)
    return 0;
  if (percent >= 100)
    return max_ns_;
  auto rank = static_cast<uint64_t>(std::ceil(percent / 100.0 * static_cast<double>(count_)));
  rank = std::max<uint64_t>(rank, 1);
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank)
      return std::clamp(midpoint_of(i), min_ns_, max_ns_);
  }
  return max_ns_;
}

// ---- response_parser -----------------------------------------------------------------------

namespace {

constexpr size_t max_line_bytes = 64 * 1024; // a longer head or chunk line is not HTTP we accept

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != b[i])
      return false;
  return true;
}

/// Whether `hay` contains the lower-case `needle`, ignoring case.
bool icontains(std::string_view hay, std::string_view needle) {
  for (size_t i = 0; i + needle.size() <= hay.size(); ++i)
    if (iequals(hay.substr(i, needle.size()), needle))
      return true;
  return false;
}

} // namespace

void response_parser::start(bool head_request) {
  state_ = state::head;
  pending_.clear();
  remaining_ = 0;
  status_ = 0;
  close_ = false;
  head_request_ = head_request;
}

response_parser::outcome response_parser::feed(const char* data, size_t len, size_t& used) {
  size_t pos = 0;
  while (state_ != state::done && pos < len) {
    const char* p = data + pos;
    size_t n = len - pos;
    switch (state_) {
    case state::head: {
      outcome result = outcome::need_more;
      pos += feed_head(p, n, result);
      if (result == outcome::bad)
        return outcome::bad;
      break;
    }
    case state::fixed_body:
    case state::chunk_data:
    case state::chunk_end: {
      uint64_t take = std::min<uint64_t>(remaining_, n);
      remaining_ -= take;
      pos += static_cast<size_t>(take);
      if (remaining_ == 0 && state_ == state::fixed_body) {
        state_ = state::done;
      } else if (remaining_ == 0 && state_ == state::chunk_data) {
        state_ = state::chunk_end;
        remaining_ = 2; // the CRLF after the chunk
      } else if (remaining_ == 0) {
        state_ = state::chunk_size;
      }
      break;
    }
    case state::chunk_size:
    case state::trailers: {
      bool have_line = false;
      pos += feed_line(p, n, have_line);
      if (!have_line) {
        if (pending_.size() > max_line_bytes)
          return outcome::bad;
        break;
      }
      if (state_ == state::chunk_size) {
        if (on_chunk_size_line() == outcome::bad)
          return outcome::bad;
      } else if (pending_ == "\r\n" || pending_ == "\n") {
        state_ = state::done; // the empty line after the trailers
      }
      pending_.clear();
      break;
    }
    case state::to_eof:
      pos = len;
      break;
    case state::done:
      break;
    }
  }
  used = pos;
  return state_ == state::done ? outcome::complete : outcome::need_more;
}

response_parser::outcome response_parser::finish_at_eof() {
  if (state_ != state::to_eof)
    return outcome::bad;
  state_ = state::done;
  return outcome::complete;
}

size_t response_parser::feed_head(const char* data, size_t len, outcome& result) {
  if (pending_.empty()) { // the common case: the whole head in one read, parsed in place
    auto* end = static_cast<const char*>(memmem(data, len, "\r\n\r\n", 4));
    if (end) {
      size_t head_len = static_cast<size_t>(end - data) + 4;
      result = parse_head(data, data + head_len);
      return head_len;
    }
    pending_.assign(data, len);
    if (pending_.size() > max_line_bytes)
      result = outcome::bad;
    return len;
  }
  size_t old = pending_.size();
  pending_.append(data, len);
  size_t at = pending_.find("\r\n\r\n", old >= 3 ? old - 3 : 0);
  if (at == std::string::npos) {
    if (pending_.size() > max_line_bytes)
      result = outcome::bad;
    return len;
  }
  size_t head_len = at + 4;
  result = parse_head(pending_.data(), pending_.data() + head_len);
  pending_.clear();
  return head_len - old;
}

size_t response_parser::feed_line(const char* data, size_t len, bool& have_line) {
  auto* nl = static_cast<const char*>(std::memchr(data, '\n', len));
  size_t take = nl ? static_cast<size_t>(nl - data) + 1 : len;
  pending_.append(data, take);
  have_line = nl != nullptr;
  return take;
}

response_parser::outcome response_parser::on_chunk_size_line() {
  uint64_t size = 0;
  size_t digits = 0;
  for (char c : pending_) {
    int v = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (v < 0)
      break;
    if (++digits > 15)
      return outcome::bad;
    size = size * 16 + static_cast<uint64_t>(v);
  }
  if (digits == 0)
    return outcome::bad;
  remaining_ = size;
  state_ = size == 0 ? state::trailers : state::chunk_data;
  return outcome::need_more;
}

response_parser::outcome response_parser::parse_head(const char* begin, const char* end) {
  std::string_view head(begin, static_cast<size_t>(end - begin));
  auto digit = [&](size_t i) { return head[i] >= '0' && head[i] <= '9'; };
  if (head.size() < 12 || head.compare(0, 7, "HTTP/1.") != 0 || !digit(9) || !digit(10) ||
      !digit(11))
    return outcome::bad;
  status_ = (head[9] - '0') * 100 + (head[10] - '0') * 10 + (head[11] - '0');
  close_ = head[7] == '0'; // HTTP/1.0 closes unless it says keep-alive
  bool chunked = false;
  bool has_length = false;
  uint64_t length = 0;
  size_t line_start = head.find("\r\n") + 2;
  for (;;) {
    size_t line_end = head.find("\r\n", line_start);
    if (line_end == std::string_view::npos || line_end == line_start)
      break;
    auto line = head.substr(line_start, line_end - line_start);
    line_start = line_end + 2;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos)
      continue;
    auto name = trim(line.substr(0, colon));
    auto value = trim(line.substr(colon + 1));
    if (iequals(name, "content-length")) {
      if (value.empty() || value.size() > 18)
        return outcome::bad;
      length = 0;
      for (char c : value) {
        if (c < '0' || c > '9')
          return outcome::bad;
        length = length * 10 + static_cast<uint64_t>(c - '0');
      }
      has_length = true;
    } else if (iequals(name, "transfer-encoding")) {
      chunked = icontains(value, "chunked");
    } else if (iequals(name, "connection")) {
      if (icontains(value, "close"))
        close_ = true;
      else if (icontains(value, "keep-alive"))
        close_ = false;
    }
  }
  if (status_ >= 100 && status_ < 200) { // interim (100 Continue): the real reply follows
    state_ = state::head;
    return outcome::need_more;
  }
  if (head_request_ || status_ == 204 || status_ == 304) {
    state_ = state::done;
  } else if (chunked) {
    state_ = state::chunk_size;
  } else if (has_length) {
    remaining_ = length;
    state_ = length == 0 ? state::done : state::fixed_body;
  } else {
    state_ = state::to_eof;
    close_ = true;
  }
  return outcome::need_more;
}

// ---- load_result ---------------------------------------------------------------------------

const char* to_string(error_kind kind) {
  switch (kind) {
  case error_kind::connect:
    return "connect";
  case error_kind::timeout:
    return "timeout";
  case error_kind::read:
    return "read";
  case error_kind::write:
    return "write";
  }
  return "?";
}

uint64_t load_result::http_errors() const {
  uint64_t n = 0;
  for (size_t code = 400; code < status_counts.size(); ++code)
    n += status_counts[code];
  return n;
}

uint64_t load_result::socket_errors() const {
  uint64_t n = 0;
  for (auto e : errors)
    n += e;
  return n;
}

namespace {

// ---- sockets -------------------------------------------------------------------------------

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct socket_address {
  sockaddr_storage storage{};
  socklen_t length = 0;
};

std::string resolve(const std::string& host, uint16_t port, socket_address& out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  auto service = std::to_string(port);
  int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
  if (rc != 0)
    return "cannot resolve " + host + ": " + gai_strerror(rc);
  std::memcpy(&out.storage, found->ai_addr, found->ai_addrlen);
  out.length = found->ai_addrlen;
  freeaddrinfo(found);
  return {};
}

/// A non-blocking TCP socket with TCP_NODELAY whose connect has started; -1 with errno set.
int start_connect(const socket_address& addr) {
  int fd = socket(addr.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr.storage), addr.length) != 0 &&
      errno != EINPROGRESS) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

// ---- one event loop ------------------------------------------------------------------------

/// The counters a worker publishes for the progress line; written by the worker only.
struct alignas(64) worker_progress {
  std::atomic<uint64_t> completed{0};
  std::atomic<uint64_t> errors{0};
};

/// What one worker is given: its share of the load and the run's clock marks.
struct worker_plan {
  size_t connections = 0;     ///< closed loop
  size_t max_connections = 0; ///< open loop
  double rate_per_s = 0;      ///< open loop, this worker's share
  int64_t first_arrival_ns = 0;
  int64_t start_ns = 0;
  int64_t window_start_ns = 0;
  int64_t window_end_ns = 0;
  uint64_t seed = 1;
};

enum class conn_phase { closed, connecting, idle, writing, reading };

struct connection {
  int fd = -1;
  conn_phase phase = conn_phase::closed;
  bool has_request = false;
  bool in_idle_stack = false;
  bool watching_writes = false;
  int64_t origin_ns = 0;   ///< latency origin of the request in hand
  int64_t retry_at_ns = 0; ///< closed loop: when a closed connection reconnects
  const std::string* out = nullptr;
  size_t out_offset = 0;
  response_parser parser;
};

/// One event loop: owns an epoll instance, its connections and its counters.
/// Accessed only from its own thread until run() returns.
class worker {
public:
  worker(const load_options& opts, const socket_address& addr, const worker_plan& plan,
         worker_progress& progress)
      : opts_(opts), addr_(addr), plan_(plan), progress_(progress), open_loop_(opts.rate_per_s > 0),
        conns_(open_loop_ ? plan.max_connections : plan.connections), rng_(plan.seed),
        buffer_(64 * 1024) {
    interval_ns_ = open_loop_ ? 1e9 / plan.rate_per_s : 0;
    next_arrival_offset_ns_ = static_cast<double>(plan.first_arrival_ns - plan.start_ns);
    for (auto& r : opts.requests)
      head_requests_.push_back(r.compare(0, 5, "HEAD ") == 0);
    housekeeping_ns_ = std::clamp<int64_t>(opts.timeout.count() / 4, 1'000'000, 10'000'000);
  }

  void run();
  load_result& result() { return result_; }

private:
  bool in_window(int64_t t) const { return t >= plan_.window_start_ns && t < plan_.window_end_ns; }
  void open(connection& c, int64_t now);
  void close_connection(connection& c);
  void assign(connection& c, int64_t origin, int64_t now);
  void start_write(connection& c, int64_t now);
  void write_some(connection& c, int64_t now);
  void on_event(connection& c, uint32_t events, int64_t now);
  void on_connected(connection& c, int64_t now);
  void on_readable(connection& c, int64_t now);
  void complete(connection& c, int64_t now, bool must_close);
  void fail(connection& c, error_kind kind, int64_t now);
  void become_idle(connection& c, int64_t now);
  bool try_send(int64_t origin, int64_t now);
  int64_t next_arrival_ns() const;
  void schedule_arrivals(int64_t now);
  void drain_queue(int64_t now);
  void housekeeping(int64_t now);
  void wait_for_events(int64_t until_ns);
  void finish();
  void watch(connection& c, uint32_t events, int op);

  const load_options& opts_;
  const socket_address& addr_;
  const worker_plan plan_;
  worker_progress& progress_;
  const bool open_loop_;
  std::vector<connection> conns_;          // never resized: epoll data points into it
  std::vector<connection*> idle_;          // open loop, LIFO: the warmest connection goes first
  std::vector<connection*> ready_to_send_; // closed loop: replied during this batch of events
  std::deque<int64_t> queue_; // open loop: origins of arrivals waiting for a connection
  std::vector<bool> head_requests_;
  std::mt19937_64 rng_;
  std::exponential_distribution<double> gap_{1.0};
  std::vector<char> buffer_;
  double interval_ns_ = 0;
  double next_arrival_offset_ns_ = 0; ///< from plan_.start_ns, in double to keep fractions
  int64_t reconnect_not_before_ns_ = 0;
  int64_t housekeeping_ns_ = 10'000'000;
  size_t next_request_ = 0;
  size_t open_count_ = 0;
  int epoll_fd_ = -1;
  uint64_t total_completed_ = 0;
  uint64_t total_errors_ = 0;
  load_result result_;
};

void worker::watch(connection& c, uint32_t events, int op) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = &c;
  epoll_ctl(epoll_fd_, op, c.fd, &ev);
}

void worker::open(connection& c, int64_t now) {
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

void worker::close_connection(connection& c) {
  if (c.fd >= 0) {
    close(c.fd); // also leaves the epoll set
    c.fd = -1;
    --open_count_;
  }
  c.phase = conn_phase::closed;
  c.watching_writes = false;
}

void worker::assign(connection& c, int64_t origin, int64_t now) {
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

void worker::start_write(connection& c, int64_t now) {
  if (!open_loop_)
    c.origin_ns = now; // closed loop: latency runs from the send
  if (in_window(now))
    ++result_.sent;
  c.phase = conn_phase::writing;
  write_some(c, now);
}

void worker::write_some(connection& c, int64_t now) {
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

void worker::on_event(connection& c, uint32_t events, int64_t now) {
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

void worker::on_connected(connection& c, int64_t now) {
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

void worker::on_readable(connection& c, int64_t now) {
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
      if (c.parser.finish_at_eof() == response_parser::outcome::complete)
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
    if (got == response_parser::outcome::bad) {
      fail(c, error_kind::read, now);
      return;
    }
    if (got == response_parser::outcome::complete) {
      complete(c, now, used < static_cast<size_t>(n));
      return;
    }
    if (static_cast<size_t>(n) < buffer_.size())
      return; // level-triggered: more data wakes us again
  }
}

void worker::complete(connection& c, int64_t now, bool must_close) {
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

void worker::fail(connection& c, error_kind kind, int64_t now) {
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

void worker::become_idle(connection& c, int64_t now) {
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

bool worker::try_send(int64_t origin, int64_t now) {
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

int64_t worker::next_arrival_ns() const {
  return plan_.start_ns + static_cast<int64_t>(next_arrival_offset_ns_);
}

void worker::schedule_arrivals(int64_t now) {
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

void worker::drain_queue(int64_t now) {
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

void worker::housekeeping(int64_t now) {
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

void worker::wait_for_events(int64_t until_ns) {
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

void worker::finish() {
  for (auto& c : conns_) {
    if (c.has_request && c.phase != conn_phase::closed && in_window(c.origin_ns))
      ++result_.unfinished;
    close_connection(c);
  }
  for (auto origin : queue_)
    result_.unfinished += in_window(origin);
  close(epoll_fd_);
}

void worker::run() {
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

void merge_into(load_result& total, const load_result& part) {
  total.completed += part.completed;
  total.sent += part.sent;
  for (size_t i = 0; i < total.status_counts.size(); ++i)
    total.status_counts[i] += part.status_counts[i];
  for (size_t i = 0; i < total.errors.size(); ++i)
    total.errors[i] += part.errors[i];
  total.bytes_read += part.bytes_read;
  total.bytes_written += part.bytes_written;
  total.queued += part.queued;
  total.unfinished += part.unfinished;
  total.peak_connections += part.peak_connections;
  total.latency.merge(part.latency);
  total.measured_s = part.measured_s;
}

/// Splits `total` into `parts` shares that differ by at most one.
size_t share(size_t total, size_t parts, size_t index) {
  return total / parts + (index < total % parts ? 1 : 0);
}

} // namespace

std::string validate_load_options(const load_options& o) {
  if (o.requests.empty())
    return "requests must not be empty";
  if (o.threads < 1)
    return "threads must be >= 1; was 0";
  if (o.rate_per_s < 0 || !std::isfinite(o.rate_per_s))
    return "rate_per_s must be >= 0; was " + std::to_string(o.rate_per_s);
  if (o.rate_per_s == 0 && o.connections < 1)
    return "connections must be >= 1; was 0";
  if (o.rate_per_s > 0 && o.max_connections < o.threads)
    return "max_connections must be >= threads (" + std::to_string(o.threads) + "); was " +
           std::to_string(o.max_connections);
  if (o.duration.count() <= 0)
    return "duration must be > 0";
  if (o.warmup.count() < 0)
    return "warmup must be >= 0";
  if (o.timeout.count() <= 0)
    return "timeout must be > 0";
  return {};
}

std::string probe_connect(const std::string& host, uint16_t port,
                          std::chrono::milliseconds timeout) {
  socket_address addr;
  if (auto error = resolve(host, port, addr); !error.empty())
    return error;
  int fd = start_connect(addr);
  if (fd < 0)
    return std::strerror(errno);
  pollfd p{fd, POLLOUT, 0};
  int ready = poll(&p, 1, static_cast<int>(timeout.count()));
  int err = 0;
  socklen_t len = sizeof(err);
  if (ready == 0)
    err = ETIMEDOUT;
  else if (ready < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
    err = errno;
  close(fd);
  return err == 0 ? std::string() : std::strerror(err);
}

bool run_load(const load_options& opts,
              const std::function<void(const load_progress&)>& on_progress, load_result& result,
              std::string& error) {
  error = validate_load_options(opts);
  if (!error.empty())
    return false;
  socket_address addr;
  error = resolve(opts.host, opts.port, addr);
  if (!error.empty())
    return false;

  bool open_loop = opts.rate_per_s > 0;
  size_t threads = std::min(opts.threads, open_loop ? opts.max_connections : opts.connections);
  worker_plan base;
  base.start_ns = now_ns() + 20'000'000; // every thread starts together
  base.window_start_ns = base.start_ns + opts.warmup.count();
  base.window_end_ns = base.window_start_ns + opts.duration.count();
  std::vector<worker_progress> progress(threads);
  std::vector<std::unique_ptr<worker>> workers;
  for (size_t i = 0; i < threads; ++i) {
    worker_plan plan = base;
    plan.connections = share(opts.connections, threads, i);
    plan.max_connections = share(opts.max_connections, threads, i);
    plan.rate_per_s = opts.rate_per_s / static_cast<double>(threads);
    // Even spacing over all threads: thread i's arrivals sit i/rate after thread 0's.
    plan.first_arrival_ns =
        base.start_ns + (open_loop ? static_cast<int64_t>(1e9 * i / opts.rate_per_s) : 0);
    plan.seed = opts.seed * 7919 + i;
    workers.push_back(std::make_unique<worker>(opts, addr, plan, progress[i]));
  }
  std::vector<std::thread> running;
  for (auto& w : workers)
    running.emplace_back([&w] { w->run(); });

  for (int64_t tick = base.start_ns + 1'000'000'000; tick < base.window_end_ns;
       tick += 1'000'000'000) {
    std::this_thread::sleep_for(std::chrono::nanoseconds(tick - now_ns()));
    if (!on_progress)
      continue;
    load_progress p;
    p.elapsed_s = static_cast<double>(tick - base.start_ns) / 1e9;
    p.warming_up = tick < base.window_start_ns;
    for (auto& wp : progress) {
      p.completed += wp.completed.load(std::memory_order_relaxed);
      p.errors += wp.errors.load(std::memory_order_relaxed);
    }
    on_progress(p);
  }
  for (auto& t : running)
    t.join();
  result = load_result{};
  for (auto& w : workers)
    merge_into(result, w->result());
  return true;
}

} // namespace serve::bench
