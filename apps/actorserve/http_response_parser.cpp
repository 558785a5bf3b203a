// The response parser's state machine: head, fixed-length body, chunks, trailers, body to EOF.
// See http_response_parser.hpp for what is understood.
#include "apps/actorserve/http_response_parser.hpp"

#include "http/http_text.hpp"

#include <algorithm>
#include <cstring>

namespace serve::bench {

namespace {

constexpr size_t max_line_bytes = 64 * 1024; // a longer head or chunk line is not HTTP we accept

using http_text::iequals;
using http_text::trim_ows;

/// Whether `hay` contains the lower-case `needle`, ignoring case.
bool icontains(std::string_view hay, std::string_view needle) {
  for (size_t i = 0; i + needle.size() <= hay.size(); ++i)
    if (iequals(hay.substr(i, needle.size()), needle))
      return true;
  return false;
}

} // namespace

void http_response_parser::start(bool head_request) {
  state_ = state::head;
  pending_.clear();
  remaining_ = 0;
  status_ = 0;
  close_ = false;
  head_request_ = head_request;
}

http_response_parser::outcome http_response_parser::feed(const char* data, size_t len,
                                                         size_t& used) {
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
    case state::chunk_end:
      pos += feed_body(n);
      break;
    case state::chunk_size:
    case state::trailers: {
      size_t taken = 0;
      if (feed_line_state(p, n, taken) == outcome::bad)
        return outcome::bad;
      pos += taken;
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

http_response_parser::outcome http_response_parser::finish_at_eof() {
  if (state_ != state::to_eof)
    return outcome::bad;
  state_ = state::done;
  return outcome::complete;
}

size_t http_response_parser::feed_head(const char* data, size_t len, outcome& result) {
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

size_t http_response_parser::feed_body(size_t available) {
  uint64_t take = std::min<uint64_t>(remaining_, available);
  remaining_ -= take;
  if (remaining_ == 0 && state_ == state::fixed_body) {
    state_ = state::done;
  } else if (remaining_ == 0 && state_ == state::chunk_data) {
    state_ = state::chunk_end;
    remaining_ = 2; // the CRLF after the chunk
  } else if (remaining_ == 0) {
    state_ = state::chunk_size;
  }
  return static_cast<size_t>(take);
}

http_response_parser::outcome http_response_parser::feed_line_state(const char* data, size_t len,
                                                                    size_t& used) {
  bool have_line = false;
  used = feed_line(data, len, have_line);
  if (!have_line)
    return pending_.size() > max_line_bytes ? outcome::bad : outcome::need_more;
  if (state_ == state::chunk_size) {
    if (on_chunk_size_line() == outcome::bad)
      return outcome::bad;
  } else if (pending_ == "\r\n" || pending_ == "\n") {
    state_ = state::done; // the empty line after the trailers
  }
  pending_.clear();
  return outcome::need_more;
}

size_t http_response_parser::feed_line(const char* data, size_t len, bool& have_line) {
  auto* nl = static_cast<const char*>(std::memchr(data, '\n', len));
  size_t take = nl ? static_cast<size_t>(nl - data) + 1 : len;
  pending_.append(data, take);
  have_line = nl != nullptr;
  return take;
}

http_response_parser::outcome http_response_parser::on_chunk_size_line() {
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

http_response_parser::outcome http_response_parser::parse_head(const char* begin, const char* end) {
  std::string_view head(begin, static_cast<size_t>(end - begin));
  auto digit = [&](size_t i) { return head[i] >= '0' && head[i] <= '9'; };
  if (head.size() < 12 || head.compare(0, 7, "HTTP/1.") != 0 || !digit(9) || !digit(10) ||
      !digit(11))
    return outcome::bad;
  status_ = (head[9] - '0') * 100 + (head[10] - '0') * 10 + (head[11] - '0');
  close_ = head[7] == '0'; // HTTP/1.0 closes unless it says keep-alive
  body_framing framing;
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
    if (on_header(trim_ows(line.substr(0, colon)), trim_ows(line.substr(colon + 1)), framing) ==
        outcome::bad)
      return outcome::bad;
  }
  if (status_ >= 100 && status_ < 200) { // interim (100 Continue): the real reply follows
    state_ = state::head;
    return outcome::need_more;
  }
  start_body(framing);
  return outcome::need_more;
}

http_response_parser::outcome http_response_parser::on_header(std::string_view name,
                                                              std::string_view value,
                                                              body_framing& framing) {
  if (iequals(name, "content-length")) {
    if (value.empty() || value.size() > 18)
      return outcome::bad;
    framing.length = 0;
    for (char c : value) {
      if (c < '0' || c > '9')
        return outcome::bad;
      framing.length = framing.length * 10 + static_cast<uint64_t>(c - '0');
    }
    framing.has_length = true;
  } else if (iequals(name, "transfer-encoding")) {
    framing.chunked = icontains(value, "chunked");
  } else if (iequals(name, "connection")) {
    if (icontains(value, "close"))
      close_ = true;
    else if (icontains(value, "keep-alive"))
      close_ = false;
  }
  return outcome::need_more;
}

void http_response_parser::start_body(const body_framing& framing) {
  if (head_request_ || status_ == 204 || status_ == 304) {
    state_ = state::done;
  } else if (framing.chunked) {
    state_ = state::chunk_size;
  } else if (framing.has_length) {
    remaining_ = framing.length;
    state_ = framing.length == 0 ? state::done : state::fixed_body;
  } else {
    state_ = state::to_eof;
    close_ = true;
  }
}

} // namespace serve::bench
