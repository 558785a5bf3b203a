#include "http/request_reader.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

using namespace serve;

namespace {

struct outcome {
  http_request request;
  read_failure failure;
  bool failed() const { return failure.status != 0; }
};

/// Drives readers the way a connection does: bytes arrive `chunk` at a time into a buffer; each
/// reader takes what it uses; a finished request leaves the rest to the next reader. Stops at
/// the first failure. With `eof`, the input ends with the peer's half-close.
std::vector<outcome> read_all(const std::string& input, size_t chunk = 1 << 20,
                              request_limits limits = {}, bool eof = false) {
  std::vector<outcome> out;
  std::string buffer;
  size_t next = 0;
  auto reader = std::make_unique<request_reader>(limits);
  auto settle = [&] {
    while (true) {
      size_t used = reader->feed(buffer);
      buffer.erase(0, used);
      auto p = reader->current();
      if (p == request_reader::phase::done) {
        out.push_back({std::move(reader->request()), {}});
        reader = std::make_unique<request_reader>(limits);
        continue;
      }
      if (p == request_reader::phase::failed) {
        out.push_back({{}, reader->failure()});
        return false;
      }
      if (used == 0)
        return true;
    }
  };
  while (next < input.size()) {
    buffer += input.substr(next, chunk);
    next += chunk;
    if (!settle())
      return out;
  }
  if (eof) {
    reader->end_of_input();
    if (reader->current() == request_reader::phase::failed)
      out.push_back({{}, reader->failure()});
  }
  return out;
}

outcome read_one(const std::string& input, request_limits limits = {}) {
  auto all = read_all(input, 1 << 20, limits);
  REQUIRE(all.size() == 1);
  return all[0];
}

int status_of(const std::string& input, request_limits limits = {}) {
  auto all = read_all(input, 1 << 20, limits);
  REQUIRE(!all.empty());
  return all.back().failure.status;
}

} // namespace

TEST_CASE("a GET is read with its headers, path and query") {
  auto r = read_one("GET /a%20b/c?x=1&y=%20 HTTP/1.1\r\nHost: h\r\nX-Request-ID: r1\r\n\r\n");
  REQUIRE_FALSE(r.failed());
  CHECK(r.request.method == "GET");
  CHECK(r.request.path == "/a b/c");
  CHECK(r.request.query == "x=1&y=%20");
  CHECK(r.request.version == 11);
  CHECK(r.request.keep_alive);
  REQUIRE(r.request.header("x-request-id"));
  CHECK(*r.request.header("x-request-id") == "r1");
  CHECK(r.request.body.empty());
}

TEST_CASE("a GET with a body keeps its body, as the Ray Serve guide's clients send it") {
  auto r = read_one("GET /hello HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nHey!");
  REQUIRE_FALSE(r.failed());
  CHECK(r.request.method == "GET");
  CHECK(r.request.body == "Hey!");
}

TEST_CASE("requests arriving one byte at a time are read whole") {
  std::string two = "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
                    "GET /q HTTP/1.1\r\nHost: h\r\n\r\n";
  auto all = read_all(two, 1);
  REQUIRE(all.size() == 2);
  CHECK(all[0].request.body == "hello");
  CHECK(all[1].request.path == "/q");
}

TEST_CASE("pipelined requests in one read are separated in order") {
  std::string burst;
  for (int i = 0; i < 16; ++i)
    burst += "POST /n" + std::to_string(i) + " HTTP/1.1\r\nHost: h\r\nContent-Length: "
             + std::to_string(std::to_string(i).size()) + "\r\n\r\n" + std::to_string(i);
  auto all = read_all(burst);
  REQUIRE(all.size() == 16);
  for (int i = 0; i < 16; ++i) {
    CHECK(all[i].request.path == "/n" + std::to_string(i));
    CHECK(all[i].request.body == std::to_string(i));
  }
}

TEST_CASE("a chunked body is de-chunked and trailers are dropped") {
  auto r = read_one("POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n");
  REQUIRE_FALSE(r.failed());
  CHECK(r.request.body == "hello, world");
  CHECK(r.request.header("x-trailer") == nullptr);
}

TEST_CASE("a chunked body over the limit fails with 413 before the rest arrives") {
  request_limits limits;
  limits.max_body_bytes = 1000;
  request_reader reader(limits);
  std::string head = "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  CHECK(reader.feed(head) == head.size());
  std::string chunk = "258\r\n" + std::string(600, 'x') + "\r\n";
  size_t used = reader.feed(chunk); // the chunk's closing CRLF is read with the next size line
  CHECK(used == chunk.size() - 2);
  CHECK(reader.current() == request_reader::phase::body);
  reader.feed(chunk.substr(used) + chunk); // 1200 > 1000: refused at the chunk-size line
  CHECK(reader.current() == request_reader::phase::failed);
  CHECK(reader.failure().status == 413);
  CHECK(reader.failure().message.find("max_body_bytes=1000") != std::string::npos);
  CHECK(reader.request().body.size() == 600);
}

TEST_CASE("a chunk-size line that never ends is bounded") {
  request_limits limits;
  limits.max_header_bytes = 1024;
  std::string input = "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;"
                      + std::string(5000, 'a');
  CHECK(status_of(input, limits) == 400);
}

TEST_CASE("a Content-Length over the limit fails with 413 from the header alone") {
  request_limits limits;
  limits.max_body_bytes = 10;
  auto r = read_one("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", limits);
  CHECK(r.failure.status == 413);
  CHECK(r.failure.message == "request body of 11 bytes is over the limit "
                             "http_options.max_body_bytes=10");
}

TEST_CASE("bad Content-Length values and conflicting framing are 400 at once") {
  for (const char* value : {"abc", "-1", "1, 2", "", "99999999999999999999999"})
    CHECK(status_of(std::string("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: ") + value
                    + "\r\n\r\n")
          == 400);
  CHECK(status_of("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n")
        == 400);
  CHECK(status_of("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n")
        == 400);
  CHECK(status_of("POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                  "Content-Length: 3\r\n\r\n")
        == 400);
  CHECK(status_of("POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n") == 400);
  CHECK(status_of("POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
        == 501);
  CHECK(status_of("POST /p HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n") == 400);
}

TEST_CASE("equal repeated Content-Length values are one length") {
  auto r = read_one("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok");
  REQUIRE_FALSE(r.failed());
  CHECK(r.request.body == "ok");
}

TEST_CASE("header syntax is strict") {
  CHECK(status_of("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01" "b\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7f\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: h\r\nNoColonHere\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: h\r\n: empty\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n") == 400);
  CHECK(status_of("GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n") == 400);
  CHECK(status_of("G(T / HTTP/1.1\r\nHost: h\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.1 extra\r\nHost: h\r\n\r\n") == 400);
  CHECK(status_of("GET relative HTTP/1.1\r\nHost: h\r\n\r\n") == 400);
}

TEST_CASE("Host is required on HTTP/1.1 and allowed once") {
  CHECK(status_of("GET / HTTP/1.1\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n") == 400);
  auto r = read_one("GET / HTTP/1.0\r\n\r\n");
  REQUIRE_FALSE(r.failed());
  CHECK(r.request.version == 10);
  CHECK_FALSE(r.request.keep_alive);
  CHECK(read_one("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").request.keep_alive);
  CHECK_FALSE(read_one("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").request.keep_alive);
}

TEST_CASE("each limit has its own status") {
  request_limits limits;
  limits.max_header_count = 3;
  limits.max_url_bytes = 64;
  limits.max_header_bytes = 1024;
  CHECK(status_of("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits) == 431);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n", limits) == 0);
  CHECK(status_of("GET /" + std::string(100, 'u') + " HTTP/1.1\r\nHost: h\r\n\r\n", limits) == 414);
  CHECK(status_of("GET /" + std::string(5000, 'u') + " HTTP/1.1\r\nHost: h\r\n\r\n", limits)
        == 414);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: h\r\nBig: " + std::string(2000, 'v') + "\r\n\r\n",
                  limits)
        == 431);
  // A header that never ends is refused once it passes the limit, not buffered on.
  CHECK(status_of("GET / HTTP/1.1\r\nHost: h\r\nBig: " + std::string(2000, 'v'), limits) == 431);
}

TEST_CASE("HTTP/2 and later get 505; other versions 400") {
  CHECK(status_of("GET / HTTP/2.0\r\nHost: h\r\n\r\n") == 505);
  CHECK(status_of("GET / HTTP/1.2\r\nHost: h\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/0.9\r\nHost: h\r\n\r\n") == 400);
}

TEST_CASE("Expect: 100-continue is noticed; other expectations are 417") {
  request_reader reader({});
  std::string head = "POST /p HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
  CHECK(reader.feed(head) == head.size());
  CHECK(reader.wants_continue());
  CHECK(reader.feed("ab") == 2);
  CHECK_FALSE(reader.wants_continue());
  CHECK(reader.feed("cdef") == 1);
  CHECK(reader.current() == request_reader::phase::done);
  CHECK(reader.request().body == "abc");
  CHECK(status_of("POST /p HTTP/1.1\r\nHost: h\r\nExpect: magic\r\n\r\n") == 417);
}

TEST_CASE("a Content-Length body can be written straight into the request") {
  request_reader reader({});
  std::string head = "PUT /p HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\nab";
  CHECK(reader.feed(head) == head.size() - 2);
  CHECK(reader.feed("ab") == 2);
  size_t room = 0;
  char* window = reader.body_window(room);
  REQUIRE(window != nullptr);
  CHECK(room == 4);
  std::memcpy(window, "cdef", 4);
  reader.body_received(4);
  CHECK(reader.current() == request_reader::phase::done);
  CHECK(reader.request().body == "abcdef");
  CHECK(reader.body_window(room) == nullptr);
}

TEST_CASE("a request cut short by the peer is 400; an idle connection is not") {
  auto header = read_all("GET / HTTP/1.1\r\nHo", 1 << 20, {}, true);
  REQUIRE(header.size() == 1);
  CHECK(header[0].failure.status == 400);
  auto body = read_all("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\nabc", 1 << 20, {},
                       true);
  REQUIRE(body.size() == 1);
  CHECK(body[0].failure.message == "the connection was closed after 3 of 9 body bytes");
  CHECK(read_all("", 1 << 20, {}, true).empty());
}

TEST_CASE("empty lines before a request are ignored") {
  auto r = read_one("\r\n\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n");
  REQUIRE_FALSE(r.failed());
  CHECK(r.request.path == "/x");
}

TEST_CASE("absolute-form and asterisk-form targets") {
  auto a = read_one("GET http://example.com:8000/p/q?z=1 HTTP/1.1\r\nHost: example.com\r\n\r\n");
  CHECK(a.request.path == "/p/q");
  CHECK(a.request.query == "z=1");
  CHECK(read_one("GET http://example.com HTTP/1.1\r\nHost: h\r\n\r\n").request.path == "/");
  CHECK(read_one("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n").request.path == "*");
}

TEST_CASE("percent_decode leaves malformed escapes alone") {
  CHECK(percent_decode("/a%2Fb") == "/a/b");
  CHECK(percent_decode("%") == "%");
  CHECK(percent_decode("%4") == "%4");
  CHECK(percent_decode("%zz%41") == "%zzA");
  CHECK(percent_decode("%00").size() == 1);
}
