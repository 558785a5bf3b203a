#include "http/response_writer.hpp"

#include <doctest/doctest.h>

using namespace serve;

namespace {

std::string head_of(const http_response& res, response_framing framing = {},
                    std::string_view date = "") {
  std::string out;
  write_response_head(res, framing, date, out);
  return out;
}

} // namespace

TEST_CASE("a response head has the status line, type, length and blank line") {
  auto res = http_response::json(200, "{}");
  res.headers.push_back({"x-request-id", "abc"});
  CHECK(head_of(res, {}, "Mon, 07 Dec 2026 17:10:12 GMT")
        == "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
           "x-request-id: abc\r\nDate: Mon, 07 Dec 2026 17:10:12 GMT\r\n\r\n");
}

TEST_CASE("headers that would split the response are dropped") {
  http_response res = http_response::text(200, "x");
  res.headers.push_back({"x-ok", "fine\tvalue"});
  res.headers.push_back({"x-evil", "a\r\nSet-Cookie: stolen"});
  res.headers.push_back({"bad name", "v"});
  res.headers.push_back({"x-nul", std::string("a\0b", 3)});
  res.headers.push_back({"", "v"});
  res.content_type = "text/plain\r\nX-Injected: 1";
  std::string head = head_of(res);
  CHECK(head.find("x-ok: fine\tvalue\r\n") != std::string::npos);
  CHECK(head.find("stolen") == std::string::npos);
  CHECK(head.find("bad name") == std::string::npos);
  CHECK(head.find("x-nul") == std::string::npos);
  CHECK(head.find("X-Injected") == std::string::npos);
}

TEST_CASE("a handler cannot set the framing headers the writer owns") {
  http_response res = http_response::text(200, "abc");
  res.headers.push_back({"Content-Length", "999"});
  res.headers.push_back({"transfer-encoding", "chunked"});
  res.headers.push_back({"Connection", "upgrade"});
  std::string head = head_of(res);
  CHECK(head.find("Content-Length: 3\r\n") != std::string::npos);
  CHECK(head.find("999") == std::string::npos);
  CHECK(head.find("chunked") == std::string::npos);
  CHECK(head.find("upgrade") == std::string::npos);
}

TEST_CASE("Connection is written for closing and for HTTP/1.0 keep-alive") {
  http_response res = http_response::text(503, "draining");
  response_framing close;
  close.close = true;
  CHECK(head_of(res, close).find("HTTP/1.1 503 Service Unavailable\r\n") == 0);
  CHECK(head_of(res, close).find("Connection: close\r\n") != std::string::npos);
  response_framing keep;
  keep.http10_keep_alive = true;
  CHECK(head_of(res, keep).find("Connection: keep-alive\r\n") != std::string::npos);
  CHECK(head_of(res).find("Connection") == std::string::npos);
}

TEST_CASE("statuses without a body carry no Content-Length; odd statuses become 500") {
  http_response none;
  none.status = 204;
  CHECK(head_of(none).find("Content-Length") == std::string::npos);
  http_response odd;
  odd.status = 42;
  CHECK(head_of(odd).find("HTTP/1.1 500 ") == 0);
  http_response unnamed;
  unnamed.status = 299;
  CHECK(head_of(unnamed).find("HTTP/1.1 299 \r\n") == 0);
}

TEST_CASE("HTTP dates are RFC 9110 IMF-fixdate") {
  CHECK(http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT");
  CHECK(http_date(1796663412) == "Mon, 07 Dec 2026 17:10:12 GMT");
}
