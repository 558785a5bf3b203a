// `actorserve bench URL`: a load generator for any HTTP/1.1 server (ActorServe, Triton,
// KServe, ...). Parses the flags (bench_options), builds the requests (bench_requests: a plain
// route, or random tensors for an Open Inference Protocol v2 model), runs each step through
// serve::bench::run_load (load_generator) and reports text, JSON, CSV (bench_report) and a plot
// (bench_plot). Runs on the calling thread; run_load brings its own event-loop threads.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "apps/actorserve/bench_options.hpp"
#include "apps/actorserve/bench_plot.hpp"
#include "apps/actorserve/bench_report.hpp"
#include "apps/actorserve/bench_requests.hpp"
#include "apps/actorserve/commands.hpp"
#include "apps/actorserve/load_generator.hpp"
#include "apps/actorserve/tcp_connect.hpp"

namespace serve::cli {

namespace {

const char* bench_usage = R"(Usage: actorserve bench URL [options]

Load generator for any HTTP/1.1 server (ActorServe, Triton, KServe, ...). Keep-alive
connections on non-blocking sockets, one epoll event loop per thread.

  closed loop (default)  -c N connections, each sends its next request when the previous
                         reply arrives; latency runs from the send.
  open loop (--rate R)   R requests/s (evenly spaced, or --poisson), whatever the replies do,
                         on as many connections as needed up to --max-connections; an arrival
                         with no free connection waits. Latency runs from the SCHEDULED send
                         time, so a server that falls behind shows as latency (no coordinated
                         omission). A client that could not send the offered rate says so.

Target:
  URL                      http://HOST[:PORT]/PATH (no https). With --v2-model: the server's
                           base URL, e.g. http://127.0.0.1:8000
  -m, --method METHOD      HTTP method (default GET, or POST when there is a body)
  --body FILE              request body read from FILE
  --body-text TEXT         request body TEXT
  --content-type TYPE      Content-Type of the body (default application/json)
  -H, --header 'K: V'      extra request header (repeatable)

Open Inference Protocol (v2) models:
  --v2-model NAME          read GET URL/v2/models/NAME (inputs: name, datatype, shape) and POST
                           random inputs of those shapes and datatypes (FP16/32/64, BF16,
                           INT8-64, UINT8-64, BOOL, BYTES) to URL/v2/models/NAME/infer as JSON
                           tensors; 16 different payloads are sent in turn. With --body FILE,
                           FILE is posted as it is instead.
  --v2-version V           address version V (URL/v2/models/NAME/versions/V/...)
  --shape NAME=D1,D2,..    the shape of input NAME (default: the metadata's, -1 read as 1)
  --binary                 Triton's binary tensor extension: a JSON header with
                           binary_data_size per input, raw little-endian tensors after it
                           (BYTES: 4-byte length + bytes per element), outputs asked for in
                           binary; Inference-Header-Content-Length, application/octet-stream

Load:
  -c, --connections N      closed loop: N connections (default 1)
  --connections-list LIST  closed-loop sweep, one step per count, e.g. 1,8,32
  --rate R                 open loop: R requests/s
  --rates LIST             open-loop sweep, one step per rate, e.g. 100,200,400
  --poisson                open loop: Poisson arrivals (exponential gaps) instead of even ones
  --max-connections N      open loop: most connections open at once (default 256). A server
                           that serves each keep-alive connection on its own thread (cpp-httplib,
                           a thread pool) leaves the connections beyond its thread count
                           unanswered while the others stay open: stay below it there
  -t, --threads N          event-loop threads (default 1); one handles tens of thousands of
                           requests/s, give it more only when the client is the bottleneck
  --warmup SECONDS         load before each step's measurement, not counted (default 2)
  -d, --duration SECONDS   measured time per step (default 10)
  --timeout SECONDS        a request without a full reply after this fails (default 10)
  --seed N                 seed for Poisson gaps and v2 input data (default 1)
  SECONDS accept a number (2, 0.5) or a suffix: 500ms, 10s, 1m.

Output (text on stdout; a progress line on stderr once a second):
  --json                   print the summary as JSON instead of text
  --csv FILE               one row per step: mode, connections, rate, requests, req/s,
                           p50/p90/p99/p99.9/mean/max in us, errors by kind, status classes
  --plot FILE.png          after the run, draw p50 and p99 latency against achieved req/s per
                           step with scripts/plot_bench.py (matplotlib; the project venv from
                           scripts/venv.sh has it; the script is found through ACTORSERVE_ROOT
                           or next to the binary's source tree)
  -q, --quiet              no progress line
  -h, --help               this help

Counted per step: replies completed in the measured window (any status), requests/s, offered
and sent rate (open loop), latency percentiles, replies per HTTP status, errors by kind
(HTTP >= 400; connect, timeout, read, write), bytes read and written.

Exit status: 0 when the run completed (HTTP errors are reported, not fatal), 1 when the target
cannot be reached at start (or its v2 metadata cannot be read), 2 on bad arguments.

Examples:
  actorserve bench http://127.0.0.1:8000/noop -c 32 -d 10
  actorserve bench http://127.0.0.1:8000/greet --body-text '{"name": "Ada"}' --rate 500 --poisson
  actorserve bench http://127.0.0.1:8000/noop --connections-list 1,8,32 --csv noop.csv \
      --plot noop.png
  # v2 (the iris example, apps/examples/configs/iris.json: model BoostingModel)
  actorserve bench http://127.0.0.1:8000 --v2-model BoostingModel --rates 500,1000,2000 --json
  actorserve bench http://127.0.0.1:8000 --v2-model BoostingModel --binary \
      --shape float_input=8,4 -c 8
  actorserve bench http://127.0.0.1:8000 --v2-model BoostingModel --body request.json --rate 200
)";

std::chrono::nanoseconds to_ns(double seconds) {
  return std::chrono::nanoseconds(static_cast<int64_t>(std::llround(seconds * 1e9)));
}

/// Writes the progress line: in place on a terminal, one line per second otherwise.
class progress_printer {
public:
  explicit progress_printer(bool enabled) : enabled_(enabled), tty_(isatty(STDERR_FILENO)) {}

  void update(const bench::load_progress& p) {
    if (!enabled_)
      return;
    double rps = (p.completed - last_completed_) / std::max(1e-9, p.elapsed_s - last_elapsed_);
    last_completed_ = p.completed;
    last_elapsed_ = p.elapsed_s;
    std::fprintf(stderr, "%s[bench] %4.0f s %-9s completed %-10llu %9.0f req/s  errors %llu%s",
                 tty_ ? "\r" : "", p.elapsed_s, p.warming_up ? "warm-up" : "measuring",
                 static_cast<unsigned long long>(p.completed), rps,
                 static_cast<unsigned long long>(p.errors), tty_ ? "   " : "\n");
    std::fflush(stderr);
    printed_ = true;
  }

  void done() {
    if (enabled_ && tty_ && printed_)
      std::fprintf(stderr, "\r%78s\r", "");
    last_completed_ = 0;
    last_elapsed_ = 0;
    printed_ = false;
  }

private:
  bool enabled_;
  bool tty_;
  bool printed_ = false;
  uint64_t last_completed_ = 0;
  double last_elapsed_ = 0;
};

/// The load of step `index`: its connection count (closed loop) or rate (open loop).
bench::load_options step_load_options(const bench_options& o, const parsed_url& url,
                                      const std::vector<std::string>& requests, size_t index) {
  bool open_loop = !o.rate_steps.empty();
  bench::load_options lo;
  lo.host = url.host;
  lo.port = url.port;
  lo.requests = requests;
  lo.connections = open_loop ? 1 : o.connection_steps[index];
  lo.rate_per_s = open_loop ? o.rate_steps[index] : 0;
  lo.poisson = o.poisson;
  lo.max_connections = o.max_connections;
  lo.threads = o.threads;
  lo.warmup = to_ns(o.warmup_s);
  lo.duration = to_ns(o.duration_s);
  lo.timeout = to_ns(o.timeout_s);
  lo.seed = o.seed + index;
  return lo;
}

/// Runs one step into `s`; false, after saying why on stderr, when it could not start.
bool run_step(const bench_options& o, const bench::load_options& lo, progress_printer& progress,
              step_report& s) {
  bool open_loop = lo.rate_per_s > 0;
  std::string error;
  if (!bench::run_load(
          lo, [&](const bench::load_progress& p) { progress.update(p); }, s.result, error)) {
    progress.done();
    std::fprintf(stderr, "actorserve bench: %s\n", error.c_str());
    return false;
  }
  progress.done();
  s.open_loop = open_loop;
  s.rate = lo.rate_per_s;
  s.poisson = o.poisson;
  s.max_connections = o.max_connections;
  s.threads = std::min(o.threads, open_loop ? o.max_connections : lo.connections);
  s.connections = open_loop ? s.result.peak_connections : lo.connections;
  s.warmup_s = o.warmup_s;
  return true;
}

/// The summary (table or JSON), then --csv and --plot. A plot without --csv goes through a
/// temporary CSV that is removed once the plot is drawn.
void report_run(const bench_options& o, const std::vector<step_report>& steps) {
  if (!o.json && steps.size() > 1)
    print_sweep_table(steps);
  if (o.json)
    print_json(o.url, steps);
  std::string csv = o.csv_path;
  bool temporary_csv = csv.empty() && !o.plot_path.empty();
  if (temporary_csv) {
    char name[] = "/tmp/actorserve-bench-XXXXXX.csv";
    int fd = mkstemps(name, 4);
    if (fd >= 0)
      close(fd);
    csv = name;
  }
  if (!csv.empty() && !write_csv(csv, steps))
    return; // the run itself completed; the message says what was not written
  bool plotted = !o.plot_path.empty() && plot(csv, o.plot_path);
  if (temporary_csv && plotted) // a failed plot leaves the CSV for a later try
    std::remove(csv.c_str());
}

int run_steps(const bench_options& o, const parsed_url& url,
              const std::vector<std::string>& requests, const std::string& described) {
  bool open_loop = !o.rate_steps.empty();
  size_t count = open_loop ? o.rate_steps.size() : o.connection_steps.size();
  if (!o.json)
    std::printf("actorserve bench: %s\n\n", described.c_str());
  std::fflush(stdout);
  progress_printer progress(!o.quiet);
  std::vector<step_report> steps;
  for (size_t i = 0; i < count; ++i) {
    step_report s;
    if (!run_step(o, step_load_options(o, url, requests, i), progress, s))
      return bench_exit_unreachable;
    if (!o.json) {
      print_step(s, i, count);
      std::printf("\n");
      std::fflush(stdout);
    }
    steps.push_back(std::move(s));
  }
  report_run(o, steps);
  return bench_exit_ok;
}

} // namespace

int bench_command(const std::vector<std::string>& args) {
  bench_options o;
  parsed_url url;
  try {
    if (parse_bench_args(args, o)) {
      std::fputs(bench_usage, stdout);
      return bench_exit_ok;
    }
    url = parse_url(o.url);
  } catch (const usage_error& e) {
    return usage_failure(e.message);
  }
  if (auto error = bench::probe_connect(url.host, url.port, std::chrono::seconds(5));
      !error.empty()) {
    std::fprintf(stderr, "actorserve bench: cannot connect to %s:%u (%s)\n", url.host.c_str(),
                 url.port, error.c_str());
    return bench_exit_unreachable;
  }
  std::vector<std::string> requests;
  std::string described;
  if (auto code = build_requests(url, o, requests, described))
    return *code;
  return run_steps(o, url, requests, described);
}

} // namespace serve::cli
