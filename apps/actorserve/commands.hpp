// The actorserve subcommands. Each returns the process exit code.
#pragma once

#include <csignal>
#include <string>
#include <vector>

namespace serve::cli {

/// `actorserve run CONFIG`: serve until SIGINT/SIGTERM, then drain and exit 0.
int run_command(const std::vector<std::string>& args);
/// `actorserve status`: print the applications of a running server.
int status_command(const std::vector<std::string>& args);
/// `actorserve deploy CONFIG`: apply a config to a running server.
int deploy_command(const std::vector<std::string>& args);
/// `actorserve check CONFIG`: validate a config without starting anything.
int check_command(const std::vector<std::string>& args);
/// `actorserve bench URL`: HTTP load generator (closed or open loop) for any server.
int bench_command(const std::vector<std::string>& args);
/// `actorserve registry SUBCOMMAND`: list or write an MLflow registry (models, versions, aliases,
/// register, alias).
int registry_command(const std::vector<std::string>& args);

/// `actorserve node --listen HOST:PORT`: a worker node hosting replicas for heads.
int node_command(const std::vector<std::string>& args);

/// Blocks SIGINT and SIGTERM in this thread (call it before any thread starts, so all inherit
/// it) and returns the set, for sigwait() by the thread that stops the process.
sigset_t block_stop_signals();

/// Small argument scanner shared by the commands.
struct arg_reader {
  std::vector<std::string> args;
  size_t pos = 0;
  bool done() const { return pos >= args.size(); }
  const std::string& peek() const { return args[pos]; }
  std::string next() { return args[pos++]; }
};

} // namespace serve::cli
