// The HTTP ingress: cpp-httplib in front of the actors.
//
// Each HTTP worker thread owns a bridge actor (a caf::scoped_actor, created on first use) and
// waits on it for the router's reply - HTTP threads wait, CAF scheduler threads never do.
// Serves Ray Serve's routes: application route prefixes (longest prefix wins; 404 pointing at
// /-/routes), GET /-/routes, GET /-/healthz, and the control API GET/PUT
// /api/serve/applications/. x-request-id is taken from the client or generated, and echoed.
// Errors map to statuses in http/error_mapping.hpp; their body is the plain-text message.
//
// Thread-safe: routes are swapped atomically; start/stop may be called from any thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include <caf/fwd.hpp>

#include "actors/interfaces.hpp"
#include "http/route_table.hpp"
#include "libserve/config.hpp"

namespace httplib {
class Server;
struct Request;
struct Response;
} // namespace httplib

namespace serve {

class http_ingress {
public:
  http_ingress(caf::actor_system& sys, controller_actor controller, http_options opts);
  ~http_ingress();

  http_ingress(const http_ingress&) = delete;
  http_ingress& operator=(const http_ingress&) = delete;

  /// Binds host:port (port 0 = any free port). Returns the bound port, or -1 with `error` set.
  int bind(std::string& error);

  /// Serves until stop(); returns after the requests in flight have been answered.
  void serve();

  /// Stops accepting connections; serve() returns once in-flight requests are answered.
  void stop();

  /// Marks the node as draining: /-/healthz answers 503.
  void set_draining() { draining_ = true; }

  /// Replaces the route table (after a config was applied).
  void set_routes(std::vector<route_entry> routes);

  std::shared_ptr<const route_table> routes() const;

private:
  void install_handlers();
  void handle_application(const httplib::Request& req, httplib::Response& res);
  void handle_status(httplib::Response& res);
  void handle_apply(const httplib::Request& req, httplib::Response& res);
  void refresh_routes();

  caf::actor_system& sys_;
  controller_actor controller_;
  http_options opts_;
  std::unique_ptr<httplib::Server> server_;
  std::atomic<bool> draining_{false};
  /// The listening socket, captured when httplib creates it (to raise its backlog).
  std::atomic<int> listen_fd_{-1};
  mutable std::mutex routes_mtx_;
  std::shared_ptr<const route_table> routes_; // protected by routes_mtx_
};

} // namespace serve
