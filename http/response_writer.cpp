#include "http/response_writer.hpp"

#include "http/http_text.hpp"

#include <cstdio>
#include <ctime>

namespace serve {

namespace {

bool is_token_char(unsigned char c) {
  if (c >= '0' && c <= '9')
    return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
    return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '.': case '^': case '_': case '`': case '|': case '~': return true;
    default: return false;
  }
}

/// Headers the writer sets itself; a handler's copy of them is dropped.
bool is_framing_header(std::string_view name) {
  for (std::string_view own : {"content-length", "transfer-encoding", "connection", "date",
                               "content-type", "keep-alive", "upgrade"})
    if (http_text::iequals(name, own))
      return true;
  return false;
}

} // namespace

const char* reason_phrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "";
  }
}

bool status_has_no_body(int status) {
  return (status >= 100 && status < 200) || status == 204 || status == 304;
}

bool is_header_name(std::string_view name) {
  if (name.empty())
    return false;
  for (unsigned char c : name)
    if (!is_token_char(c))
      return false;
  return true;
}

bool is_header_value(std::string_view value) {
  for (unsigned char c : value)
    if ((c < 0x20 && c != '\t') || c == 0x7F)
      return false;
  return true;
}

void write_response_head(const http_response& res, const response_framing& framing,
                         std::string_view date, std::string& out) {
  int status = res.status >= 100 && res.status <= 999 ? res.status : 500;
  char line[48];
  int n = std::snprintf(line, sizeof line, "HTTP/1.1 %d ", status);
  out.append(line, static_cast<size_t>(n));
  out += reason_phrase(status);
  out += "\r\n";
  if (!res.content_type.empty() && is_header_value(res.content_type)) {
    out += "Content-Type: ";
    out += res.content_type;
    out += "\r\n";
  }
  if (!status_has_no_body(status)) {
    out += "Content-Length: ";
    out += std::to_string(res.body.size());
    out += "\r\n";
  }
  for (auto& h : res.headers) {
    if (!is_header_name(h.name) || !is_header_value(h.value) || is_framing_header(h.name))
      continue;
    out += h.name;
    out += ": ";
    out += h.value;
    out += "\r\n";
  }
  if (!date.empty()) {
    out += "Date: ";
    out += date;
    out += "\r\n";
  }
  if (framing.close)
    out += "Connection: close\r\n";
  else if (framing.http10_keep_alive)
    out += "Connection: keep-alive\r\n";
  out += "\r\n";
}

std::string http_date(long long unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  size_t n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return std::string(buf, n);
}

} // namespace serve
