// The HTTP ingress: cpp-httplib in front of the actors.
//
// Each HTTP worker thread owns a bridge actor (a caf::scoped_actor, created on first use) and
// waits on it for the router's reply - HTTP threads wait, CAF scheduler threads never do.
// Serves Ray Serve's routes: application route prefixes (longest prefix wins; 404 pointing at
// /-/routes), GET /-/routes, GET /-/healthz, and the control API GET/PUT
// /api/serve/applications/. x-request-id is taken from the client or generated, and echoed.
// Errors map to statuses in http/error_mapping.hpp; their body is the plain-text message.
// Every model deployment is also an Open Inference Protocol v2 model (http/v2_routes.cpp:
// health, metadata, config, infer, repository, statistics; errors as {"error": ...}), and
// GET /metrics serves the Prometheus metrics (http/observability.cpp), which also keeps Ray
// Serve's HTTP request metrics and writes the access log.
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
#include "libserve/error.hpp"

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

  /// Replaces the routes and the v2 model table (after a config was applied).
  void set_tables(const apply_result& tables);

  std::shared_ptr<const route_table> routes() const;

private:
  void install_handlers();
  void install_v2_handlers();
  void install_observability();
  void handle_application(const httplib::Request& req, httplib::Response& res);
  void handle_status(httplib::Response& res);
  void handle_apply(const httplib::Request& req, httplib::Response& res);

  /// Sends `call` to `router` and waits; writes the reply (status 200, its headers, body and
  /// content type) into `res`, or hands an error to on_error. Applies request_timeout_s. Runs on
  /// an HTTP thread.
  void call_and_wait(const caf::actor& router, call_request call, httplib::Response& res,
                     const std::function<void(const error_info&)>& on_error);

  // v2 (http/v2_routes.cpp).
  std::shared_ptr<const std::vector<model_entry>> models() const;
  /// Fresh routes and model table from the controller (metadata, readiness); stored, and the
  /// models returned.
  std::shared_ptr<const std::vector<model_entry>> fetch_models();
  void handle_v2_infer(const httplib::Request& req, httplib::Response& res);
  void handle_v2_model(const httplib::Request& req, httplib::Response& res);
  void handle_v2_stats(const httplib::Request& req, httplib::Response& res);
  void handle_v2_repository(const httplib::Request& req, httplib::Response& res);
  caf::actor_system& sys_;
  controller_actor controller_;
  http_options opts_;
  std::unique_ptr<httplib::Server> server_;
  std::atomic<bool> draining_{false};
  /// The listening socket, captured when httplib creates it (to raise its backlog).
  std::atomic<int> listen_fd_{-1};
  mutable std::mutex routes_mtx_;
  std::shared_ptr<const route_table> routes_; // protected by routes_mtx_
  std::shared_ptr<const std::vector<model_entry>> models_; // protected by routes_mtx_
};

} // namespace serve
