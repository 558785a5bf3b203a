// The flags of `actorserve bench` and the target URL, parsed and checked: what the command
// line asks for, before anything is sent. The usage text that documents them is in
// bench_command.cpp. The parsers are plain functions of their arguments and thread-safe
// (--body reads its file); usage_failure writes to stderr.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace serve::cli {

constexpr int bench_exit_ok = 0;
/// The target cannot be reached at start, or its v2 metadata cannot be read.
constexpr int bench_exit_unreachable = 1;
/// A bad argument.
constexpr int bench_exit_usage = 2;

/// Everything the flags say. Sweeps hold one entry per step: after parse_bench_args exactly one
/// of connection_steps (closed loop) and rate_steps (open loop) is non-empty.
struct bench_options {
  std::string url;
  std::string method; // empty: GET, or POST with a body
  std::optional<std::string> body;
  std::string content_type = "application/json";
  std::vector<std::string> headers;
  std::string v2_model;
  std::string v2_version;
  std::map<std::string, std::vector<int64_t>> shapes;
  bool binary = false;
  std::optional<size_t> connections; // -c; becomes the one step of connection_steps
  std::optional<double> rate;        // --rate; becomes the one step of rate_steps
  std::vector<size_t> connection_steps;
  std::vector<double> rate_steps;
  bool poisson = false;
  size_t max_connections = 256;
  size_t threads = 1;
  double warmup_s = 2;
  double duration_s = 10;
  double timeout_s = 10;
  uint64_t seed = 1;
  bool json = false;
  bool quiet = false;
  std::string csv_path;
  std::string plot_path;
};

/// http://HOST[:PORT]/PATH taken apart.
struct parsed_url {
  std::string host; // without brackets
  uint16_t port = 80;
  std::string path; // starts with '/'
  std::string host_header;
};

/// A flag's value could not be used: the message names the flag and what it expects.
struct usage_error {
  std::string message;
};

/// Prints "actorserve bench: MESSAGE" and a pointer to --help on stderr; returns
/// bench_exit_usage.
int usage_failure(const std::string& message);

/// Fills `o` from the arguments after `bench`. True when -h/--help was asked for (parsing stops
/// there); throws usage_error on a bad flag or a bad combination of flags.
bool parse_bench_args(const std::vector<std::string>& args, bench_options& o);

/// Takes an http:// URL apart; throws usage_error naming what is wrong.
parsed_url parse_url(const std::string& url);

/// "2", "0.5", "500ms", "10s", "1m" -> seconds; nullopt when it is none of those.
std::optional<double> parse_seconds(std::string text);

} // namespace serve::cli
