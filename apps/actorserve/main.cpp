// actorserve: serve ML deployments over HTTP with Ray Serve's semantics, from one binary.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "apps/actorserve/commands.hpp"
#include "kernels/cpu/blas_core.hpp"

namespace {

const char* usage = R"(actorserve - model serving on C++ actors (Ray Serve semantics, one binary)

Usage:
  actorserve run CONFIG [options]     serve the applications in CONFIG (foreground)
  actorserve status [--address URL]   show applications, deployments and replicas
  actorserve deploy CONFIG [--address URL]
                                      apply CONFIG to a running server (user_config changes
                                      reach reconfigure() without restarting replicas)
  actorserve check CONFIG             validate CONFIG and print warnings; starts nothing
  actorserve bench URL [options]      load generator for any HTTP / v2 server (closed or open
                                      loop; percentiles, CSV, plot)
  actorserve registry SUBCOMMAND --registry URI
                                      list models, versions and aliases of a registry; register
                                      a model folder or set an alias in an MLflow file store
  actorserve node --listen HOST:PORT [--name NAME] [--token-file FILE]
                                      a worker node: heads list it in "nodes" and place
                                      replicas on it ("placement")
  actorserve COMMAND --help           help for one command
  actorserve --version

Config reference: README.md ("Configuration"). Example configs: apps/examples/configs/.
)";

} // namespace

sigset_t serve::cli::block_stop_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(usage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") {
    std::puts("actorserve 0.1.0 (CAF 0.17.6)");
    return 0;
  }
  auto command = args[0];
  // Serving computes with OpenBLAS: if it fell back to generic kernels on a CPU it does not
  // know, start again with the kernels this CPU runs (kernels/cpu/blas_core.hpp).
  if (command == "run" || command == "node")
    kernels::cpu::run_again_with_better_blas_core(argv);
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (command == "run")
    return serve::cli::run_command(rest);
  if (command == "status")
    return serve::cli::status_command(rest);
  if (command == "deploy")
    return serve::cli::deploy_command(rest);
  if (command == "check")
    return serve::cli::check_command(rest);
  if (command == "bench")
    return serve::cli::bench_command(rest);
  if (command == "registry")
    return serve::cli::registry_command(rest);
  if (command == "node")
    return serve::cli::node_command(rest);
  std::fprintf(stderr, "actorserve: unknown command \"%s\"\n\n%s", command.c_str(), usage);
  return 2;
}
