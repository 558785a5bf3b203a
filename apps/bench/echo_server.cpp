// echo_server: the raw cpp-httplib ceiling for benchmarks. No actors, no routing, no JSON
// parsing: every GET or POST on any path answers "ok" (application/json), the same bytes as
// ActorServe's Noop deployment. It uses the same httplib settings as ActorServe's ingress
// (http/ingress.cpp: a ThreadPool of --threads workers, TCP_NODELAY, keep-alive up to 10000
// requests and 5 s idle), so ActorServe's /noop against this server measures what the actor
// path costs on top of HTTP. scripts/bench-core runs both and prints the ratios.
//
// Run: build/apps/echo_server [--host 127.0.0.1] [--port 0] [--threads 64]
//   prints "echo_server listening on http://HOST:PORT" once bound; SIGINT/SIGTERM stop it.
//   wrk -t2 -c32 -d10s http://127.0.0.1:PORT/noop
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include <httplib.h>
#include <sys/socket.h>
#include <pthread.h>

namespace {

struct echo_options {
  /// Address to bind.
  std::string host = "127.0.0.1";
  /// Port to bind; 0 = any free port (the bound port is printed).
  int port = 0;
  /// Worker threads; each owns one keep-alive connection at a time. Must be >= 1.
  int threads = 64;
};

const char* usage = R"(Usage: echo_server [--host HOST] [--port PORT] [--threads N]

Raw cpp-httplib server answering "ok" to GET and POST on any path; the benchmark ceiling.
  --host HOST    address to bind (default 127.0.0.1)
  --port PORT    port to bind; 0 = any free port (default 0)
  --threads N    worker threads, >= 1 (default 64)
)";

bool parse_int(const char* text, int& out) {
  char* end = nullptr;
  long v = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || v < 0 || v > 1'000'000)
    return false;
  out = static_cast<int>(v);
  return true;
}

/// Returns an exit code on error or help, -1 to continue.
int parse_args(int argc, char** argv, echo_options& out) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(usage, stdout);
      return 0;
    }
    if ((a != "--host" && a != "--port" && a != "--threads") || i + 1 >= argc) {
      std::fprintf(stderr, "echo_server: bad argument %s\n\n%s", a.c_str(), usage);
      return 2;
    }
    const char* value = argv[++i];
    if (a == "--host") {
      out.host = value;
    } else if (a == "--port") {
      if (!parse_int(value, out.port) || out.port > 65535) {
        std::fprintf(stderr, "echo_server: --port must be 0..65535; was %s\n", value);
        return 2;
      }
    } else if (!parse_int(value, out.threads) || out.threads < 1) {
      std::fprintf(stderr, "echo_server: --threads must be >= 1; was %s\n", value);
      return 2;
    }
  }
  return -1;
}

} // namespace

int main(int argc, char** argv) {
  echo_options opts;
  if (int code = parse_args(argc, argv, opts); code >= 0)
    return code;

  // Signals go to the waiting thread only: block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  httplib::Server server;
  auto threads = static_cast<size_t>(opts.threads);
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server.set_tcp_nodelay(true);
  server.set_keep_alive_max_count(10000);
  server.set_keep_alive_timeout(5);
  int listen_fd = -1; // same listen backlog as the ingress (http/ingress.cpp)
  server.set_socket_options([&listen_fd](socket_t sock) {
    httplib::default_socket_options(sock);
    listen_fd = sock;
  });
  auto reply_ok = [](const httplib::Request&, httplib::Response& res) {
    res.set_content("\"ok\"", "application/json");
  };
  server.Get(".*", reply_ok);
  server.Post(".*", reply_ok);

  int port = opts.port == 0 ? server.bind_to_any_port(opts.host)
                            : (server.bind_to_port(opts.host, opts.port) ? opts.port : -1);
  if (port < 0) {
    std::fprintf(stderr, "echo_server: cannot listen on %s:%d\n", opts.host.c_str(), opts.port);
    return 1;
  }
  if (listen_fd >= 0)
    ::listen(listen_fd, 4096);
  std::printf("echo_server listening on http://%s:%d\n", opts.host.c_str(), port);
  std::fflush(stdout);

  std::thread serving([&] { server.listen_after_bind(); });
  int sig = 0;
  sigwait(&signals, &sig);
  server.stop();
  serving.join();
  return 0;
}
