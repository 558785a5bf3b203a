// The HTTP ingress: Ray Serve's routes and the Open Inference Protocol on the event-driven
// server (http/http_server.hpp).
//
// Serves application route prefixes (longest prefix wins; 404 pointing at /-/routes), GET
// /-/routes, GET /-/healthz, the control API GET/PUT /api/serve/applications/, GET /metrics
// (http/observability.cpp) and, for every model deployment, the v2 endpoints (health, metadata,
// config, infer, repository, statistics; errors as {"error": ...}; http/v2_routes.cpp). Bodies
// are accepted on every method, GET included, as the Ray Serve guide's clients send them.
//
// A request that needs the actors is sent by the io thread's bridge actor (one hop into CAF);
// the continuation runs back on that io thread and answers the exchange: no thread waits.
// x-request-id is taken from the client or generated, and echoed. Errors map to statuses in
// http/error_mapping.hpp; their body is plain text (JSON under /v2). Every response, refusals
// by the HTTP layer included, is counted in /metrics with its status and written to the
// access log.
//
// Thread-safe: the route and model tables are swapped atomically; start/stop may be called from
// any thread; handlers run on io threads.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/direct_route.hpp"
#include "actors/interfaces.hpp"
#include "http/http_server.hpp"
#include "http/route_table.hpp"
#include "libserve/config.hpp"
#include "libserve/error.hpp"

namespace serve {

class http_ingress : public request_handler {
public:
  http_ingress(caf::actor_system& sys, controller_actor controller, http_options opts);
  ~http_ingress() override;

  http_ingress(const http_ingress&) = delete;
  http_ingress& operator=(const http_ingress&) = delete;

  /// Binds host:port (port 0 = any free port) and starts serving. Returns the bound port, or -1
  /// with `error` set.
  int start(std::string& error);

  /// Shutdown, step 1: /-/healthz answers 503, the listener closes, idle connections close.
  void begin_drain();
  /// Requests read and not yet answered.
  int64_t in_flight() const;
  /// Shutdown, step 2 (grace over): what is still unanswered gets 503.
  void fail_unanswered(const std::string& message);
  /// Shutdown, step 3: closes every connection and joins the io threads.
  void stop();

  /// Replaces the routes and the v2 model table (after a config was applied).
  void set_tables(const apply_result& tables);

  std::shared_ptr<const route_table> routes() const;

  // request_handler
  void handle(const std::shared_ptr<exchange>& ex) override;
  http_response refusal(const exchange& ex, int status, const std::string& message) override;
  void finished(const exchange& ex) override;

private:
  using exchange_ptr = std::shared_ptr<exchange>;
  /// Writes an error in the format of the route: plain text, or {"error": ...} under /v2.
  using error_writer = std::function<http_response(const error_info&)>;

  void handle_application(const exchange_ptr& ex);
  void handle_status(const exchange_ptr& ex);
  void handle_apply(const exchange_ptr& ex);
  bool handle_observability(const exchange_ptr& ex);

  /// Sends `call` to `router`'s deployment through the io thread's bridge; the reply (status
  /// 200, its headers, body and content type) or the error answers `ex`. Applies
  /// request_timeout_s. When a replica has a free slot and no call waits, the call goes
  /// straight to it (direct_route.hpp), else to the router.
  void call_router(const exchange_ptr& ex, const caf::actor& router, call_request call,
                   error_writer on_error);
  /// The router's path: it queues, sheds and re-routes.
  void call_via_router(const exchange_ptr& ex, const caf::actor& router, call_request call,
                       const error_writer& on_error, caf::duration timeout);
  /// The direct path, on a slot taken on a replica; the call's deadline_ns is kept by a timer
  /// on the io thread.
  void call_direct(const exchange_ptr& ex, const caf::actor& router,
                   std::shared_ptr<direct_route> route, std::shared_ptr<replica_slot> slot,
                   call_request call, const error_writer& on_error);
  void reply_with(const exchange_ptr& ex, call_reply& reply);
  void reply_with(const exchange_ptr& ex, const caf::error& err, const error_writer& on_error);
  /// An io thread's entry for a direct route.
  struct direct_entry {
    caf::actor_id router = 0;
    std::shared_ptr<direct_route> route;
    direct_route::view view;
  };
  /// The calling io thread's entry for `router`'s direct route, or nullptr (another process's
  /// router, or not known yet).
  direct_entry* direct_route_of(const caf::actor& router) const;

  // v2 (http/v2_routes.cpp).
  bool handle_v2(const exchange_ptr& ex);
  std::shared_ptr<const std::vector<model_entry>> models() const;
  /// Fresh routes and model table from the controller (metadata, readiness), stored; then `next`
  /// runs on the io thread with them.
  void fetch_models(const exchange_ptr& ex,
                    std::function<void(std::shared_ptr<const std::vector<model_entry>>)> next);
  void handle_v2_infer(const exchange_ptr& ex, const std::string& name,
                       const std::string& version);
  void handle_v2_model(const exchange_ptr& ex, const std::string& name,
                       const std::string& version, const std::string& what);
  void handle_v2_stats(const exchange_ptr& ex, const std::string& name,
                       const std::string& version);
  void handle_v2_repository(const exchange_ptr& ex, const std::string& name,
                            const std::string& action);

  /// The request's x-request-id, or a new one; noted in ex->log.
  std::string take_request_id(exchange& ex);
  /// Adds x-request-id to a response when the handler took one.
  static void stamp_request_id(const exchange& ex, http_response& res);

  caf::actor_system& sys_;
  controller_actor controller_;
  http_options opts_;
  std::unique_ptr<http_server> server_;
  std::atomic<bool> draining_{false};
  mutable std::mutex routes_mtx_;
  std::shared_ptr<const route_table> routes_;               // protected by routes_mtx_
  std::shared_ptr<const std::vector<model_entry>> models_;  // protected by routes_mtx_
  using direct_table = std::vector<std::pair<caf::actor_id, std::shared_ptr<direct_route>>>;
  std::shared_ptr<const direct_table> direct_;               // protected by routes_mtx_
  /// Bumped (under routes_mtx_) whenever the tables change; starts at 1 (0: never read).
  std::atomic<uint64_t> tables_version_{1};
};

/// A random 32-hex-digit request id.
std::string new_request_id();

/// The Open Inference Protocol's path space: "/v2" and everything under "/v2/".
inline bool is_v2_path(const std::string& path) {
  return path == "/v2" || path.rfind("/v2/", 0) == 0;
}

} // namespace serve
