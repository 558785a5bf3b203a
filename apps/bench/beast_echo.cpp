// beast_echo: the ingress's HTTP layer without the actors, the ceiling for benchmarks. The same
// event-driven server as `actorserve run` (http/http_server.hpp: Beast's parser on Asio, the
// same io threads, limits and keep-alive), with a handler that answers every request at once
// with "ok" (application/json), the bytes of ActorServe's Noop deployment. ActorServe's /noop
// against this server measures what routing through the actors costs on top of HTTP;
// scripts/bench-core runs both.
//
// Run: build/apps/beast_echo [--host 127.0.0.1] [--port 0] [--io-threads N]
//   prints "beast_echo listening on http://HOST:PORT" once bound; SIGINT/SIGTERM stop it.
//   wrk -t2 -c32 -d10s http://127.0.0.1:PORT/noop
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "http/http_server.hpp"

namespace {

const char* usage = R"(Usage: beast_echo [--host HOST] [--port PORT] [--io-threads N]

ActorServe's HTTP server with a handler that answers "ok" to every request; no actors.
  --host HOST        address to bind (default 127.0.0.1)
  --port PORT        port to bind; 0 = any free port (default 0)
  --io-threads N     event-loop threads, 0 = one per core (default 0)
)";

class echo_handler : public serve::request_handler {
public:
  void handle(const std::shared_ptr<serve::exchange>& ex) override {
    ex->reply(serve::http_response::json(200, "\"ok\""));
  }
  serve::http_response refusal(const serve::exchange&, int status,
                               const std::string& message) override {
    return serve::http_response::text(status, message);
  }
  void finished(const serve::exchange&) override {}
};

bool parse_int(const char* text, int& out) {
  char* end = nullptr;
  long v = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || v < 0 || v > 65535)
    return false;
  out = static_cast<int>(v);
  return true;
}

} // namespace

int main(int argc, char** argv) {
  serve::http_options http;
  http.port = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(usage, stdout);
      return 0;
    }
    if ((a != "--host" && a != "--port" && a != "--io-threads") || i + 1 >= argc) {
      std::fprintf(stderr, "beast_echo: bad argument %s\n\n%s", a.c_str(), usage);
      return 2;
    }
    const char* value = argv[++i];
    if (a == "--host") {
      http.host = value;
    } else if (!parse_int(value, a == "--port" ? http.port : http.io_threads)) {
      std::fprintf(stderr, "beast_echo: %s expects a number; was %s\n", a.c_str(), value);
      return 2;
    }
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  echo_handler handler;
  serve::http_server server(sys, serve::server_options::from(http), handler);
  std::string error;
  int port = server.start(error);
  if (port < 0) {
    std::fprintf(stderr, "beast_echo: %s\n", error.c_str());
    return 1;
  }
  std::printf("beast_echo listening on http://%s:%d\n", http.host.c_str(), port);
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  server.stop();
  return 0;
}
