#include "http/request_reader.hpp"

#include "http/http_text.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

// Beast 1.74's parser trips GCC 12's -Wmaybe-uninitialized on a boost::optional it fills
// before reading (seen in the sanitizer build; a false positive).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

namespace serve {

namespace http = boost::beast::http;
using boost::beast::error_code;
using boost::beast::string_view;

namespace {

using http_text::iequals;
using http_text::trim_ows;

/// The comma-separated, trimmed, non-empty items of a list-valued field.
std::vector<std::string_view> list_items(std::string_view value) {
  std::vector<std::string_view> items;
  while (!value.empty()) {
    auto comma = value.find(',');
    auto item = trim_ows(value.substr(0, comma));
    if (!item.empty())
      items.push_back(item);
    if (comma == std::string_view::npos)
      break;
    value.remove_prefix(comma + 1);
  }
  return items;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/// Splits a request target into path and query. Absolute-form ("http://host/p?q", RFC 9112
/// §3.2.2) keeps the path; asterisk-form ("*") is the path "*". Returns false for anything else
/// that does not start with '/'.
bool split_target(std::string_view target, std::string& path, std::string& query) {
  if (target == "*") {
    path = "*";
    return true;
  }
  for (std::string_view scheme : {"http://", "https://"})
    if (target.size() > scheme.size() && iequals(target.substr(0, scheme.size()), scheme)) {
      target.remove_prefix(scheme.size());
      auto slash = target.find_first_of("/?");
      target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
      if (target.front() == '?') {
        query.assign(target.substr(1));
        path = "/";
        return true;
      }
      break;
    }
  if (target.empty() || target.front() != '/')
    return false;
  auto q = target.find('?');
  path = percent_decode(target.substr(0, q));
  if (q != std::string_view::npos)
    query.assign(target.substr(q + 1));
  return true;
}

} // namespace

std::string percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      int hi = hex_value(text[i + 1]);
      int lo = hex_value(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += text[i];
  }
  return out;
}

/// Beast's parser, reporting into the reader. Our own refusals set the reader's failure and an
/// error code that stops the parse; the reader then answers with the failure, not the code.
class request_reader::parser : public http::basic_parser<true> {
public:
  explicit parser(request_reader& reader) : reader_(reader) {}

private:
  void on_request_impl(http::verb, string_view method, string_view target, int version,
                       error_code& ec) override {
    auto& req = reader_.request_;
    if (target.size() > reader_.limits_.max_url_bytes)
      return stop(ec, 414, "request target of " + std::to_string(target.size())
                             + " bytes is over the limit http_options.max_url_bytes="
                             + std::to_string(reader_.limits_.max_url_bytes));
    req.method.assign(method.data(), method.size());
    req.target.assign(target.data(), target.size());
    req.version = version;
    if (!split_target(req.target, req.path, req.query))
      return stop(ec, 400, "request target must be a path starting with '/'");
  }

  void on_response_impl(int, string_view, int, error_code& ec) override {
    ec = http::error::bad_version; // a request parser never reads a status line
  }

  void on_field_impl(http::field, string_view name, string_view value,
                     error_code& ec) override {
    auto& r = reader_;
    if (++r.field_count_ > r.limits_.max_header_count)
      return stop(ec, 431, "more than " + std::to_string(r.limits_.max_header_count)
                             + " header fields (http_options.max_header_count)");
    if (r.in_trailer_)
      return; // trailers are read and dropped
    std::string lower_name = http_text::ascii_lower(name);
    if (lower_name == "host" && ++r.host_count_ > 1)
      return stop(ec, 400, "more than one Host header");
    if (lower_name == "transfer-encoding") {
      if (!r.transfer_encoding_.empty())
        r.transfer_encoding_ += ", ";
      r.transfer_encoding_.append(value.data(), value.size());
    }
    if (lower_name == "content-length") // Beast checked it first: digits, repeats equal
      r.content_length_.assign(value.substr(0, value.find(',')));
    if (lower_name == "expect")
      r.expect_.assign(value.data(), value.size());
    r.request_.headers.push_back({std::move(lower_name), std::string(value.data(), value.size())});
  }

  void on_header_impl(error_code& ec) override {
    reader_.check_header();
    if (reader_.failure_.status != 0)
      ec = http::error::bad_value;
  }

  void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}

  std::size_t on_body_impl(string_view body, error_code&) override {
    return body.size(); // Content-Length bodies are copied by the reader itself
  }

  void on_chunk_header_impl(std::uint64_t size, string_view, error_code&) override {
    if (size == 0)
      reader_.in_trailer_ = true;
  }

  std::size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code&) override {
    reader_.request_.body.append(body.data(), body.size());
    return body.size();
  }

  void on_finish_impl(error_code&) override {}

  void stop(error_code& ec, int status, std::string message) {
    reader_.fail(status, std::move(message));
    ec = http::error::bad_value;
  }

  request_reader& reader_;
};

request_reader::request_reader(const request_limits& limits)
  : limits_(limits), parser_(std::make_unique<parser>(*this)) {
  parser_->eager(false);
  parser_->header_limit(static_cast<std::uint32_t>(
    std::min<size_t>(limits_.max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
  parser_->body_limit(limits_.max_body_bytes);
}

request_reader::~request_reader() = default;

void request_reader::fail(int status, std::string message) {
  if (failure_.status != 0)
    return; // the first reason stands
  failure_ = {status, std::move(message)};
  phase_ = phase::failed;
}

bool request_reader::wants_continue() const {
  return expect_continue_ && phase_ == phase::body && !body_started_;
}

size_t request_reader::feed(std::string_view bytes) {
  switch (phase_) {
    case phase::header: return feed_header(bytes);
    case phase::body: return feed_body(bytes);
    case phase::done:
    case phase::failed: return 0;
  }
  return 0;
}

size_t request_reader::feed_header(std::string_view bytes) {
  size_t skipped = 0;
  if (!started_) {
    // RFC 9112 §2.2: ignore empty lines before the request line.
    while (bytes.size() - skipped >= 2 && bytes[skipped] == '\r' && bytes[skipped + 1] == '\n')
      skipped += 2;
    if (bytes.size() - skipped == 1 && bytes[skipped] == '\r')
      return skipped; // maybe the start of another empty line
    bytes.remove_prefix(skipped);
    if (bytes.empty())
      return skipped;
    started_ = true;
  }
  error_code ec;
  size_t used = parser_->put(boost::asio::const_buffer(bytes.data(), bytes.size()), ec);
  if (failure_.status != 0)
    return skipped + used;
  if (ec == http::error::need_more) {
    if (bytes.size() >= limits_.max_header_bytes)
      header_limit_reached(bytes);
    return skipped + used;
  }
  if (ec) {
    if (ec == http::error::header_limit)
      header_limit_reached(bytes);
    else if (ec == http::error::body_limit)
      fail(413, "request body of " + content_length_
                  + " bytes is over the limit http_options.max_body_bytes="
                  + std::to_string(limits_.max_body_bytes));
    else if (ec == http::error::bad_version) {
      auto line = bytes.substr(0, bytes.find('\n'));
      auto http = line.rfind(" HTTP/");
      if (http != std::string_view::npos && http + 6 < line.size() && line[http + 6] >= '2'
          && line[http + 6] <= '9')
        fail(505, "HTTP version not supported: this server speaks HTTP/1.0 and HTTP/1.1");
      else
        fail(400, "malformed request line: expected METHOD SP TARGET SP HTTP/1.x CRLF");
    } else if (ec == http::error::bad_content_length)
      fail(400, "bad Content-Length: one decimal number expected, and not together with "
                "Transfer-Encoding");
    else if (ec == http::error::bad_transfer_encoding)
      fail(400, "bad Transfer-Encoding: given twice, or together with Content-Length");
    else if (ec == http::error::bad_field)
      fail(400, "malformed header field: a name must be a token followed by ':'");
    else if (ec == http::error::bad_value)
      fail(400, "malformed header field value (control bytes are not allowed)");
    else if (ec == http::error::bad_method)
      fail(400, "malformed request method");
    else if (ec == http::error::bad_target)
      fail(400, "malformed request target");
    else
      fail(400, "malformed request: " + ec.message());
    return skipped + used;
  }
  // The header is complete (eager is off, so put stopped there); check_header chose the phase.
  return skipped + used;
}

void request_reader::header_limit_reached(std::string_view bytes) {
  auto window = bytes.substr(0, std::min(bytes.size(), limits_.max_header_bytes));
  if (window.find("\r\n") == std::string_view::npos)
    fail(414, "request line longer than " + std::to_string(limits_.max_header_bytes)
                + " bytes (http_options.max_url_bytes=" + std::to_string(limits_.max_url_bytes)
                + ")");
  else
    fail(431, "request header over the limit http_options.max_header_bytes="
                + std::to_string(limits_.max_header_bytes));
}

void request_reader::check_header() {
  request_.keep_alive = parser_->keep_alive();
  if (request_.version >= 11 && host_count_ == 0)
    return fail(400, "HTTP/1.1 requests need a Host header (RFC 9112 §3.2)");
  if (!transfer_encoding_.empty()) {
    if (request_.version < 11)
      return fail(400, "Transfer-Encoding is not allowed in an HTTP/1.0 request");
    auto codings = list_items(transfer_encoding_);
    if (codings.empty() || !iequals(codings.back(), "chunked"))
      return fail(400, "Transfer-Encoding must end with chunked in a request");
    if (codings.size() > 1)
      return fail(501, "transfer coding '" + std::string(codings.front())
                         + "' is not supported; send the body with chunked only");
  }
  if (!expect_.empty()) {
    if (!iequals(trim_ows(expect_), "100-continue"))
      return fail(417, "Expect: only 100-continue is supported");
    expect_continue_ = request_.version >= 11;
  }
  if (parser_->chunked()) {
    chunked_ = true;
    phase_ = phase::body; // feed_body turns eager parsing on (not here: put is still running)
    return;
  }
  auto length = parser_->content_length();
  if (!length || *length == 0) {
    phase_ = phase::done;
    return;
  }
  if (*length > limits_.max_body_bytes)
    return fail(413, "request body of " + std::to_string(*length)
                       + " bytes is over the limit http_options.max_body_bytes="
                       + std::to_string(limits_.max_body_bytes));
  request_.body.resize(static_cast<size_t>(*length));
  body_remaining_ = *length;
  phase_ = phase::body;
}

size_t request_reader::feed_body(std::string_view bytes) {
  body_started_ |= !bytes.empty();
  if (!chunked_) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(body_remaining_, bytes.size()));
    if (n > 0)
      std::memcpy(request_.body.data() + body_received_, bytes.data(), n);
    body_received(n);
    return n;
  }
  parser_->eager(true);
  error_code ec;
  size_t used = parser_->put(boost::asio::const_buffer(bytes.data(), bytes.size()), ec);
  if (failure_.status != 0)
    return used;
  if (ec == http::error::need_more) {
    // A chunk-size line or the trailer section is still incomplete: bound what it may hold.
    if (bytes.size() - used >= limits_.max_header_bytes)
      fail(400, "chunk line or trailer section longer than http_options.max_header_bytes="
                  + std::to_string(limits_.max_header_bytes));
    return used;
  }
  if (ec == http::error::body_limit)
    fail(413, "chunked request body is over the limit http_options.max_body_bytes="
                + std::to_string(limits_.max_body_bytes));
  else if (ec == http::error::header_limit || ec == http::error::bad_field
           || ec == http::error::bad_value)
    fail(400, "malformed trailer field after the last chunk");
  else if (ec)
    fail(400, "malformed chunked body: " + ec.message());
  else if (parser_->is_done())
    phase_ = phase::done;
  return used;
}

char* request_reader::body_window(size_t& size) {
  if (phase_ != phase::body || chunked_ || body_remaining_ == 0) {
    size = 0;
    return nullptr;
  }
  size = static_cast<size_t>(body_remaining_);
  return request_.body.data() + body_received_;
}

void request_reader::body_received(size_t n) {
  body_started_ |= n > 0;
  body_received_ += n;
  body_remaining_ -= std::min<uint64_t>(n, body_remaining_);
  if (body_remaining_ == 0 && phase_ == phase::body && !chunked_)
    phase_ = phase::done;
}

void request_reader::end_of_input() {
  if (phase_ == phase::header && started_)
    fail(400, "the connection was closed in the middle of a request header");
  else if (phase_ == phase::body)
    fail(400, chunked_ ? "the connection was closed in the middle of a chunked body"
                       : "the connection was closed after " + std::to_string(body_received_)
                           + " of " + std::to_string(body_received_ + body_remaining_)
                           + " body bytes");
}

} // namespace serve
