// `actorserve run CONFIG`: start the actor system, apply the config, serve HTTP until a signal.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include <caf/all.hpp>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "actors/controller.hpp"
#include "actors/runtime.hpp"
#include "apps/actorserve/commands.hpp"
#include "http/ingress.hpp"
#include "kernels/cpu/blas_core.hpp"
#include "libserve/deployment.hpp"
#include "libserve/json.hpp"

namespace serve::cli {

namespace {

const char* run_usage = R"(Usage: actorserve run CONFIG [options]

Serves the applications in CONFIG (JSON, see README.md "Configuration") in the foreground.
SIGINT/SIGTERM stop accepting connections, let in-flight requests finish (up to the largest
graceful_shutdown_timeout_s), then exit 0. A bad config exits 2 before anything starts,
naming the JSON path of the bad field.

Options:
  --host HOST          override http_options.host
  --port PORT          override http_options.port (0 = any free port; the bound port is printed)
  --workers N          CAF scheduler threads (default: half the cores, 1 to 4; the HTTP
                       io threads, http_options.io_threads, take the others)
  --scheduler POLICY   sharing (default) or stealing
  --access-log FORMAT  one line per request on stderr: off (default), text or json
                       (time, request id, method, path, route or model, status, latency)
  -h, --help           this help
)";

struct run_options {
  std::string config_path;
  std::optional<std::string> host;
  std::optional<int> port;
  scheduler_options sched;
  std::string access_log = "off";
};

bool parse_int(const std::string& text, int& out) {
  try {
    size_t used = 0;
    out = std::stoi(text, &used);
    return used == text.size();
  } catch (...) {
    return false;
  }
}

/// Returns an exit code on error or help, nullopt to continue.
std::optional<int> parse_run_args(const std::vector<std::string>& args, run_options& out) {
  arg_reader r{args};
  while (!r.done()) {
    auto a = r.next();
    auto need_value = [&](const char* what) -> std::optional<std::string> {
      if (r.done()) {
        std::fprintf(stderr, "actorserve run: %s needs a value\n", what);
        return std::nullopt;
      }
      return r.next();
    };
    if (a == "-h" || a == "--help") {
      std::fputs(run_usage, stdout);
      return 0;
    } else if (a == "--host") {
      auto v = need_value("--host");
      if (!v)
        return 2;
      out.host = *v;
    } else if (a == "--port" || a == "--workers") {
      auto v = need_value(a.c_str());
      int n = 0;
      if (!v || !parse_int(*v, n) || n < 0 || (a == "--port" && n > 65535)) {
        std::fprintf(stderr, "actorserve run: %s expects a non-negative integer\n", a.c_str());
        return 2;
      }
      if (a == "--port")
        out.port = n;
      else
        out.sched.worker_threads = static_cast<size_t>(n);
    } else if (a == "--access-log") {
      auto v = need_value("--access-log");
      if (!v || (*v != "off" && *v != "text" && *v != "json")) {
        std::fprintf(stderr, "actorserve run: --access-log expects off, text or json\n");
        return 2;
      }
      out.access_log = *v;
    } else if (a == "--scheduler") {
      auto v = need_value("--scheduler");
      if (!v || (*v != "sharing" && *v != "stealing")) {
        std::fprintf(stderr, "actorserve run: --scheduler expects sharing or stealing\n");
        return 2;
      }
      out.sched.policy = *v == "sharing" ? "sharing" : "stealing";
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "actorserve run: unknown option %s\n\n%s", a.c_str(), run_usage);
      return 2;
    } else if (out.config_path.empty()) {
      out.config_path = a;
    } else {
      std::fprintf(stderr, "actorserve run: unexpected argument %s\n", a.c_str());
      return 2;
    }
  }
  if (out.config_path.empty()) {
    std::fprintf(stderr, "actorserve run: missing CONFIG\n\n%s", run_usage);
    return 2;
  }
  return std::nullopt;
}

/// Reads the config file and applies --host/--port overrides to its JSON text.
std::optional<std::string> read_config_text(const run_options& opts, std::string& error) {
  std::ifstream in(opts.config_path, std::ios::binary);
  if (!in) {
    error = "cannot read config file \"" + opts.config_path + "\"";
    return std::nullopt;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (!opts.host && !opts.port)
    return text;
  rapidjson::Document doc;
  if (parse_json(doc, text) || !doc.IsObject())
    return text; // let the validator name the problem
  auto& a = doc.GetAllocator();
  if (!doc.HasMember("http_options"))
    doc.AddMember("http_options", rapidjson::Value(rapidjson::kObjectType), a);
  auto& http = doc["http_options"];
  if (!http.IsObject())
    return text;
  auto set = [&](const char* key, rapidjson::Value v) {
    if (http.HasMember(key))
      http[key] = v;
    else
      http.AddMember(rapidjson::StringRef(key), v, a);
  };
  if (opts.host)
    set("host", rapidjson::Value(opts.host->c_str(), a));
  if (opts.port)
    set("port", rapidjson::Value(*opts.port));
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  doc.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

config_parse_options registry_parse_options() {
  config_parse_options popts;
  popts.known_classes = deployment_registry::names();
  popts.is_known_class = [](const std::string& n) { return bool(deployment_registry::find(n)); };
  return popts;
}

double max_graceful_timeout(const serve_config& cfg) {
  double longest = 0;
  for (auto& app : cfg.applications)
    for (auto& dep : app.deployments)
      longest = std::max(longest, dep.graceful_shutdown_timeout_s);
  return longest;
}

int wait_for_signal(const sigset_t& signals) {
  int sig = 0;
  sigwait(&signals, &sig);
  return sig;
}

/// After the HTTP side has stopped: how long the actors get to stop before the process exits
/// anyway (a handler still running user code must not keep it alive).
constexpr auto actor_shutdown_budget = std::chrono::seconds(3);

/// Waits until the ingress has nothing in flight or `deadline` passes; true if it emptied.
bool wait_for_in_flight(const http_ingress& ingress,
                        std::chrono::steady_clock::time_point deadline) {
  while (ingress.in_flight() > 0) {
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

int serve_until_signal(caf::actor_system& sys, controller_actor controller,
                       const serve_config& cfg, const apply_result& applied,
                       const sigset_t& signals) {
  http_ingress ingress(sys, controller, cfg.http);
  ingress.set_tables(applied);
  std::string bind_error;
  int port = ingress.start(bind_error);
  if (port < 0) {
    std::fprintf(stderr, "actorserve: %s\n", bind_error.c_str());
    return 1;
  }
  std::printf("ActorServe listening on http://%s:%d\n", cfg.http.host.c_str(), port);
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  std::printf("  OpenBLAS kernels: %s%s%s\n", kernels::cpu::blas_core().c_str(),
              coretype ? ", OPENBLAS_CORETYPE=" : "", coretype ? coretype : "");
  for (auto& r : applied.routes)
    std::printf("  route %s -> application \"%s\" (ingress %s)\n", r.route_prefix.c_str(),
                r.application.c_str(), r.ingress_deployment.c_str());
  std::fflush(stdout);
  int sig = wait_for_signal(signals);
  std::fprintf(stderr, "[actorserve] received %s: draining\n", strsignal(sig));
  // Stop accepting, close idle connections, let requests in flight finish within the grace.
  ingress.begin_drain();
  auto grace = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
    std::chrono::duration<double>(max_graceful_timeout(cfg)));
  if (!wait_for_in_flight(ingress, std::chrono::steady_clock::now() + grace)) {
    std::fprintf(stderr, "[actorserve] grace period over: failing %lld remaining requests\n",
                 static_cast<long long>(ingress.in_flight()));
    caf::anon_send(controller, abort_atom::value);
    ingress.fail_unanswered("the server is shutting down: the request did not finish within "
                            "graceful_shutdown_timeout_s");
    wait_for_in_flight(ingress, std::chrono::steady_clock::now() + std::chrono::seconds(1));
  }
  ingress.stop();
  return 0;
}

/// Ends the process with `code` if the actors have not stopped within actor_shutdown_budget.
void exit_if_shutdown_hangs(int code) {
  std::thread([code] {
    std::this_thread::sleep_for(actor_shutdown_budget);
    std::fprintf(stderr, "[actorserve] stopped (handlers still running were abandoned)\n");
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(code);
  }).detach();
}

} // namespace

int run_command(const std::vector<std::string>& args) {
  run_options opts;
  if (auto code = parse_run_args(args, opts))
    return *code;
  std::string error;
  auto text = read_config_text(opts, error);
  if (!text) {
    std::fprintf(stderr, "actorserve: %s\n", error.c_str());
    return 2;
  }
  if (opts.sched.worker_threads == 0) // the io threads are the other half (BENCHMARKS.md)
    opts.sched.worker_threads = std::clamp<size_t>(std::thread::hardware_concurrency() / 2, 1, 4);
  auto parsed = parse_config(*text, registry_parse_options());
  if (!parsed.config) {
    std::fprintf(stderr, "actorserve: invalid config %s: %s\n", opts.config_path.c_str(),
                 parsed.error->to_string().c_str());
    return 2;
  }
  for (auto& w : parsed.warnings)
    std::fprintf(stderr, "[actorserve] warning: %s\n", w.c_str());
  // Signals go to the waiting thread only: block them before any thread starts.
  auto signals = block_stop_signals();
  caf::actor_system_config cfg;
  configure_actor_system(cfg, opts.sched);
  // Worker nodes: CAF's network layer (and its OpenSSL module for TLS) is loaded only then.
  if (!parsed.config->nodes.empty())
    configure_network(cfg, parsed.config->cluster.tls);
  int exit_code = 0;
  {
    caf::actor_system sys{cfg};
    auto controller = spawn_controller(sys);
    std::optional<apply_result> applied;
    {
      caf::scoped_actor self{sys};
      self->request(controller, std::chrono::minutes(10), apply_atom::value, *text)
        .receive([&](apply_result& r) { applied = std::move(r); },
                 [&](caf::error& err) {
                   std::fprintf(stderr, "actorserve: %s\n", to_error_info(err).message.c_str());
                 });
    }
    if (!applied) {
      exit_code = 1;
    } else {
      parsed.config->http.access_log = opts.access_log;
      exit_code = serve_until_signal(sys, controller, *parsed.config, *applied, signals);
    }
    exit_if_shutdown_hangs(exit_code);
    caf::scoped_actor self{sys};
    self->request(controller, actor_shutdown_budget, drain_atom::value)
      .receive([](bool) {}, [](caf::error&) {});
    self->send_exit(controller, caf::exit_reason::user_shutdown);
  }
  std::fprintf(stderr, "[actorserve] stopped\n");
  return exit_code;
}

} // namespace serve::cli
