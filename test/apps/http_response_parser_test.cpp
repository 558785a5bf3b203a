// The bench client's HTTP/1.1 response parser: framing by length, chunks and close, reads
// split anywhere, interim responses and malformed replies.
#include <doctest/doctest.h>

#include <string>

#include "apps/actorserve/http_response_parser.hpp"

using serve::bench::http_response_parser;
using outcome = http_response_parser::outcome;

namespace {

/// Feeds `text` in reads of at most `piece` bytes until the parser stops asking for more.
/// `used` receives the bytes the parser consumed in all.
outcome feed_in_pieces(http_response_parser& p, const std::string& text, size_t piece,
                       size_t& used) {
  used = 0;
  outcome got = outcome::need_more;
  while (used < text.size() && got == outcome::need_more) {
    size_t n = std::min(piece, text.size() - used);
    size_t taken = 0;
    got = p.feed(text.data() + used, n, taken);
    if (got == outcome::bad)
      return got;
    used += taken;
  }
  return got;
}

outcome feed_all(http_response_parser& p, const std::string& text) {
  size_t used = 0;
  return feed_in_pieces(p, text, text.size(), used);
}

const std::string chunked_reply = "HTTP/1.1 200 OK\r\n"
                                  "Transfer-Encoding: chunked\r\n"
                                  "\r\n"
                                  "5;name=value\r\nhello\r\n"
                                  "1A\r\nabcdefghijklmnopqrstuvwxyz\r\n"
                                  "0\r\n"
                                  "X-Trailer: yes\r\n"
                                  "\r\n";

} // namespace

TEST_CASE("a Content-Length response is complete at its last byte and leaves what follows") {
  http_response_parser p;
  p.start(false);
  std::string first = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
  std::string text = first + "HTTP/1.1 404 Not Found\r\n";
  size_t used = 0;
  CHECK(p.feed(text.data(), text.size(), used) == outcome::complete);
  CHECK(used == first.size());
  CHECK(p.status() == 200);
  CHECK_FALSE(p.close_after());
}

TEST_CASE("a chunked response split across reads is parsed once complete") {
  for (size_t piece : {size_t{1}, size_t{2}, size_t{3}, size_t{7}, chunked_reply.size()}) {
    CAPTURE(piece);
    http_response_parser p;
    p.start(false);
    size_t used = 0;
    // Everything but the last byte: still waiting.
    std::string all_but_last = chunked_reply.substr(0, chunked_reply.size() - 1);
    CHECK(feed_in_pieces(p, all_but_last, piece, used) == outcome::need_more);
    CHECK(used == all_but_last.size());
    size_t taken = 0;
    CHECK(p.feed(chunked_reply.data() + used, 1, taken) == outcome::complete);
    CHECK(taken == 1);
    CHECK(p.status() == 200);
  }
}

TEST_CASE("a head split inside its blank line is found") {
  http_response_parser p;
  p.start(false);
  std::string text = "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
  size_t split = text.find("\r\n\r\n") + 2; // between the two CRLFs
  size_t used = 0;
  CHECK(p.feed(text.data(), split, used) == outcome::need_more);
  CHECK(used == split);
  CHECK(p.feed(text.data() + split, text.size() - split, used) == outcome::complete);
  CHECK(used == text.size() - split);
  CHECK(p.status() == 201);
}

TEST_CASE("a Connection: close response without length ends at the close") {
  http_response_parser p;
  p.start(false);
  CHECK(feed_all(p, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nsome body") == outcome::need_more);
  CHECK(feed_all(p, " and more of it") == outcome::need_more);
  CHECK(p.finish_at_eof() == outcome::complete);
  CHECK(p.close_after());
  CHECK(p.status() == 200);
}

TEST_CASE("a response cut off before its Content-Length is read fails at the close") {
  http_response_parser p;
  p.start(false);
  CHECK(feed_all(p, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort") == outcome::need_more);
  CHECK(p.finish_at_eof() == outcome::bad);
}

TEST_CASE("an interim 100 Continue is skipped and the final status is reported") {
  http_response_parser p;
  p.start(false);
  CHECK(feed_all(p, "HTTP/1.1 100 Continue\r\n\r\n"
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n") ==
        outcome::complete);
  CHECK(p.status() == 503);
}

TEST_CASE("replies to HEAD and 204 and 304 replies have no body whatever their headers say") {
  http_response_parser p;
  p.start(true);
  CHECK(feed_all(p, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n") == outcome::complete);
  p.start(false);
  CHECK(feed_all(p, "HTTP/1.1 204 No Content\r\n\r\n") == outcome::complete);
  p.start(false);
  CHECK(feed_all(p, "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n") == outcome::complete);
}

TEST_CASE("HTTP/1.0 closes the connection unless it says keep-alive") {
  http_response_parser p;
  p.start(false);
  CHECK(feed_all(p, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n") == outcome::complete);
  CHECK(p.close_after());
  p.start(false);
  CHECK(feed_all(p, "HTTP/1.0 200 OK\r\nconnection: Keep-Alive\r\ncontent-length: 0\r\n\r\n") ==
        outcome::complete);
  CHECK_FALSE(p.close_after());
}

TEST_CASE("header names and values are matched without regard to case") {
  http_response_parser p;
  p.start(false);
  CHECK(feed_all(p, "HTTP/1.1 200 OK\r\nTRANSFER-ENCODING:  Chunked \r\nCONNECTION: Close\r\n\r\n"
                    "0\r\n\r\n") == outcome::complete);
  CHECK(p.close_after());
}

TEST_CASE("replies that are not HTTP are rejected") {
  http_response_parser p;
  p.start(false);
  CHECK(feed_all(p, "SSH-2.0-OpenSSH_9.6\r\n\r\n") == outcome::bad);
  p.start(false);
  CHECK(feed_all(p, "HTTP/1.1 2x0 OK\r\n\r\n") == outcome::bad);
  p.start(false);
  CHECK(feed_all(p, "HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n") == outcome::bad);
  p.start(false);
  CHECK(feed_all(p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n") == outcome::bad);
}

TEST_CASE("a head longer than 64 KiB without its end is rejected") {
  http_response_parser p;
  p.start(false);
  std::string head = "HTTP/1.1 200 OK\r\nX-Long: " + std::string(70 * 1024, 'a');
  size_t used = 0;
  CHECK(feed_in_pieces(p, head, 4096, used) == outcome::bad);
}

TEST_CASE("a parser restarted after a response parses the next one on the same connection") {
  http_response_parser p;
  p.start(false);
  CHECK(feed_all(p, chunked_reply) == outcome::complete);
  p.start(false);
  CHECK(feed_all(p, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 3\r\n\r\nerr") ==
        outcome::complete);
  CHECK(p.status() == 500);
}
