// `actorserve node --listen HOST:PORT`: a worker node that hosts replicas for heads.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <unistd.h>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>

#include "actors/node.hpp"
#include "actors/runtime.hpp"
#include "apps/actorserve/commands.hpp"
#include "kernels/cuda/device_query.hpp"
#include "libserve/config.hpp"
#include "libserve/future.hpp"
#include "libserve/node_token.hpp"

namespace serve::cli {

namespace {

const char* node_usage = R"(Usage: actorserve node [options]

Runs a worker node in the foreground: heads list it in their config ("nodes": [{"name",
"address"}]) and place replicas on it ("placement": {"nodes": [...]}). The transport is CAF's
own network layer (BASP over TCP; TLS with --tls-cert/--tls-key). A head must prove the token
in --token-file; a node without one accepts any head (a warning is printed). When the head
goes away (its process ends, its connection breaks, or no heartbeat comes for its configured
timeout) the node stops that head's replicas. SIGINT/SIGTERM stop every replica and exit 0.

Options:
  --listen HOST:PORT   where to listen (default 127.0.0.1:7100; loopback unless you say so)
  --name NAME          the node's name in logs (default: the --listen address)
  --token-file FILE    the shared token heads must prove (their cluster.token_file)
  --work-dir DIR       where model files shipped by heads are written
                       (default ~/.cache/actorserve/node-PORT)
  --tls-cert FILE      PEM certificate: TLS between nodes (with --tls-key)
  --tls-key FILE       PEM private key
  --tls-ca FILE        PEM CA file to verify heads' certificates
  --workers N          CAF scheduler threads (default: min(cores, 4))
  -h, --help           this help
)";

struct node_cli_options {
  std::string host = "127.0.0.1";
  int port = 7100;
  std::string name;
  std::string token_file;
  std::string work_dir;
  tls_options tls;
  scheduler_options sched;
};

bool parse_listen(const std::string& text, node_cli_options& out) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return false;
  try {
    size_t used = 0;
    int port = std::stoi(text.substr(colon + 1), &used);
    if (used != text.size() - colon - 1 || port < 1 || port > 65535)
      return false;
    out.host = text.substr(0, colon);
    out.port = port;
    return true;
  } catch (...) {
    return false;
  }
}

std::optional<int> parse_node_args(const std::vector<std::string>& args, node_cli_options& out) {
  arg_reader r{args};
  while (!r.done()) {
    auto a = r.next();
    if (a == "-h" || a == "--help") {
      std::fputs(node_usage, stdout);
      return 0;
    }
    if (r.done()) {
      std::fprintf(stderr, "actorserve node: %s\n\n%s",
                   (a.rfind("--", 0) == 0 ? a + " needs a value" : "unexpected argument " + a).c_str(),
                   node_usage);
      return 2;
    }
    auto v = r.next();
    if (a == "--listen") {
      if (!parse_listen(v, out)) {
        std::fprintf(stderr, "actorserve node: --listen expects HOST:PORT with a port in "
                             "1..65535; was \"%s\"\n", v.c_str());
        return 2;
      }
    } else if (a == "--name") {
      out.name = v;
    } else if (a == "--token-file") {
      out.token_file = v;
    } else if (a == "--work-dir") {
      out.work_dir = v;
    } else if (a == "--tls-cert") {
      out.tls.certificate = v;
    } else if (a == "--tls-key") {
      out.tls.key = v;
    } else if (a == "--tls-ca") {
      out.tls.ca_file = v;
    } else if (a == "--workers") {
      try {
        out.sched.worker_threads = static_cast<size_t>(std::stoul(v));
      } catch (...) {
        std::fprintf(stderr, "actorserve node: --workers expects a number\n");
        return 2;
      }
    } else {
      std::fprintf(stderr, "actorserve node: unknown option %s\n\n%s", a.c_str(), node_usage);
      return 2;
    }
  }
  if (out.tls.certificate.empty() != out.tls.key.empty()) {
    std::fprintf(stderr, "actorserve node: --tls-cert and --tls-key go together\n");
    return 2;
  }
  return std::nullopt;
}

std::string default_work_dir(int port) {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  std::filesystem::path base = xdg && *xdg ? xdg : home && *home ? std::string(home) + "/.cache" : "/tmp";
  return (base / "actorserve" / ("node-" + std::to_string(port))).string();
}

} // namespace

int node_command(const std::vector<std::string>& args) {
  node_cli_options opts;
  if (auto code = parse_node_args(args, opts))
    return *code;
  node_options node;
  node.name = opts.name.empty() ? opts.host + ":" + std::to_string(opts.port) : opts.name;
  node.work_dir = opts.work_dir.empty() ? default_work_dir(opts.port) : opts.work_dir;
  if (!opts.token_file.empty()) {
    try {
      node.token = read_token_file(opts.token_file);
    } catch (...) {
      std::fprintf(stderr, "actorserve node: %s\n", current_exception_info().message.c_str());
      return 2;
    }
  } else {
    std::fprintf(stderr, "[actorserve node %s] warning: no --token-file: any head that reaches "
                         "this port may run replicas here\n", node.name.c_str());
  }
  auto devices = kernels::cuda::query_devices();
  if (devices.device_count > 0)
    node.devices = std::to_string(devices.device_count) + " CUDA device(s): "
                   + devices.first_device_name;
  auto signals = block_stop_signals();
  caf::actor_system_config cfg;
  configure_actor_system(cfg, opts.sched);
  configure_network(cfg, opts.tls);
  int exit_code = 0;
  {
    caf::actor_system sys{cfg};
    auto actor = spawn_node(sys, node);
    auto port = opts.tls.enabled()
                  ? caf::openssl::publish(actor, static_cast<uint16_t>(opts.port),
                                          opts.host.c_str(), true)
                  : sys.middleman().publish(actor, static_cast<uint16_t>(opts.port),
                                            opts.host.c_str(), true);
    if (!port) {
      std::fprintf(stderr, "actorserve node: cannot listen on %s:%d: %s\n", opts.host.c_str(),
                   opts.port, sys.render(port.error()).c_str());
      caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
      exit_code = 1;
    } else {
      std::printf("ActorServe node %s listening on %s:%d%s\n", node.name.c_str(),
                  opts.host.c_str(), static_cast<int>(*port), opts.tls.enabled() ? " (TLS)" : "");
      std::fflush(stdout);
      int sig = 0;
      sigwait(&signals, &sig);
      std::fprintf(stderr, "[actorserve node %s] received %s: stopping\n", node.name.c_str(),
                   strsignal(sig));
      caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    }
  }
  std::fprintf(stderr, "[actorserve node %s] stopped\n", node.name.c_str());
  return exit_code;
}

} // namespace serve::cli
