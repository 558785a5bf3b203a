// Route matching (Ray Serve's route_prefix rules) and the HTTP status of each error code.
#include <doctest/doctest.h>

#include "http/error_mapping.hpp"
#include "http/route_table.hpp"

namespace {

serve::route_entry route(const std::string& prefix, const std::string& app) {
  serve::route_entry r;
  r.route_prefix = prefix;
  r.application = app;
  return r;
}

} // namespace

TEST_CASE("the longest matching prefix wins") {
  serve::route_table table({route("/a", "outer"), route("/a/b", "inner"), route("/", "root")});
  REQUIRE(table.match("/a/b/c") != nullptr);
  CHECK(table.match("/a/b/c")->application == "inner");
  CHECK(table.match("/a/b")->application == "inner");
  CHECK(table.match("/a/x")->application == "outer");
  CHECK(table.match("/a")->application == "outer");
  CHECK(table.match("/zzz")->application == "root");
}

TEST_CASE("a prefix matches only at a path segment boundary") {
  serve::route_table table({route("/a", "outer")});
  CHECK(table.match("/ab") == nullptr);
  CHECK(table.match("/") == nullptr);
  CHECK(table.match("/a/") != nullptr);
}

TEST_CASE("the path below the prefix starts with a slash") {
  auto r = route("/a", "outer");
  CHECK(serve::route_table::remaining_path(r, "/a") == "/");
  CHECK(serve::route_table::remaining_path(r, "/a/b/c") == "/b/c");
  auto root = route("/", "root");
  CHECK(serve::route_table::remaining_path(root, "/x") == "/x");
}

TEST_CASE("routes are listed as prefix to application, like GET /-/routes") {
  serve::route_table table({route("/a", "outer"), route("/a/b", "inner")});
  CHECK(table.routes_json() == R"({"/a/b":"inner","/a":"outer"})");
  CHECK(serve::route_table{}.routes_json() == "{}");
}

TEST_CASE("every error code has its HTTP status and retry-later stays apart from bad requests") {
  CHECK(serve::http_status(serve::errc::invalid_argument) == 400);
  CHECK(serve::http_status(serve::errc::not_found) == 404);
  CHECK(serve::http_status(serve::errc::request_timeout) == 408);
  CHECK(serve::http_status(serve::errc::payload_too_large) == 413);
  CHECK(serve::http_status(serve::errc::internal) == 500);
  CHECK(serve::http_status(serve::errc::unavailable) == 503);
}
