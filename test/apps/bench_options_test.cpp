// `actorserve bench` flag and URL parsing: values, sweeps and flags that exclude each other.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "apps/actorserve/bench_options.hpp"

using namespace serve::cli;

namespace {

bench_options parse(std::vector<std::string> args) {
  bench_options o;
  CHECK_FALSE(parse_bench_args(args, o));
  return o;
}

std::string usage_message(std::vector<std::string> args) {
  bench_options o;
  try {
    parse_bench_args(args, o);
  } catch (const usage_error& e) {
    return e.message;
  }
  return "";
}

} // namespace

TEST_CASE("durations accept plain seconds and ms, s and m suffixes") {
  CHECK(parse_seconds("2") == 2.0);
  CHECK(parse_seconds("0.5") == 0.5);
  CHECK(parse_seconds("500ms") == doctest::Approx(0.5));
  CHECK(parse_seconds("10s") == 10.0);
  CHECK(parse_seconds("1m") == 60.0);
  CHECK_FALSE(parse_seconds("ms"));
  CHECK_FALSE(parse_seconds("1h"));
  CHECK_FALSE(parse_seconds(""));
}

TEST_CASE("a URL is split into host, port, path and Host header") {
  auto u = parse_url("http://127.0.0.1:8000/v2/x");
  CHECK(u.host == "127.0.0.1");
  CHECK(u.port == 8000);
  CHECK(u.path == "/v2/x");
  CHECK(u.host_header == "127.0.0.1:8000");
  auto v6 = parse_url("http://[::1]:9000");
  CHECK(v6.host == "::1");
  CHECK(v6.port == 9000);
  CHECK(v6.path == "/");
  CHECK(parse_url("http://example.org/").port == 80);
}

TEST_CASE("URLs the client cannot use are rejected") {
  CHECK_THROWS_AS(parse_url("https://example.org/"), usage_error);
  CHECK_THROWS_AS(parse_url("ftp://example.org/"), usage_error);
  CHECK_THROWS_AS(parse_url("http://:80/"), usage_error);
  CHECK_THROWS_AS(parse_url("http://h:70000/"), usage_error);
  CHECK_THROWS_AS(parse_url("http://[::1:80/"), usage_error);
}

TEST_CASE("without load flags a run is one closed-loop step on one connection") {
  auto o = parse({"http://h/"});
  CHECK(o.connection_steps == std::vector<size_t>{1});
  CHECK(o.rate_steps.empty());
}

TEST_CASE("-c and --rate become one-step sweeps and lists become several steps") {
  CHECK(parse({"-c", "8", "http://h/"}).connection_steps == std::vector<size_t>{8});
  CHECK(parse({"http://h/", "--rate", "250"}).rate_steps == std::vector<double>{250});
  CHECK(parse({"http://h/", "--connections-list", "1,8,32"}).connection_steps ==
        std::vector<size_t>{1, 8, 32});
  auto open = parse({"http://h/", "--rates", "100,200", "--poisson"});
  CHECK(open.rate_steps == std::vector<double>{100, 200});
  CHECK(open.connection_steps.empty());
}

TEST_CASE("flags that exclude each other are rejected naming both") {
  CHECK(usage_message({"http://h/", "-c", "2", "--rate", "5"}).find("-c/--connections") !=
        std::string::npos);
  CHECK(usage_message({"http://h/", "--rate", "5", "--rates", "5,6"}) ==
        "--rate and --rates exclude each other");
  CHECK(usage_message({"http://h/", "--poisson"}) == "--poisson needs --rate or --rates");
  CHECK(usage_message({"http://h/", "--binary"}) ==
        "--binary, --shape and --v2-version need --v2-model");
}

TEST_CASE("bad values name the flag as the user wrote it") {
  CHECK(usage_message({"http://h/", "-d", "0"}).rfind("-d/--duration expects seconds > 0", 0) == 0);
  CHECK(usage_message({"http://h/", "--connections", "x"})
            .rfind("-c/--connections expects an integer >= 1", 0) == 0);
  CHECK(usage_message({"http://h/", "--shape", "a=1,x", "--v2-model", "m"})
            .rfind("--shape expects NAME=D1,D2,...", 0) == 0);
  CHECK(usage_message({"--bogus"}) == "unknown option --bogus");
  CHECK(usage_message({}).rfind("missing URL", 0) == 0);
}

TEST_CASE("--help stops parsing before the flags after it are checked") {
  bench_options o;
  CHECK(parse_bench_args({"--help", "--bogus"}, o));
}
