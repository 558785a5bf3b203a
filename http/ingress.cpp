#include "http/ingress.hpp"

#include <random>

#include <caf/all.hpp>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "actors/call_context.hpp"
#include "http/error_mapping.hpp"
#include "http/io_bridge.hpp"
#include "http/response_writer.hpp"
#include "libserve/json.hpp"
#include "libserve/v2_protocol.hpp"

namespace serve {

namespace {

/// Longest x-request-id taken from a client; a longer or malformed one is replaced.
constexpr size_t max_request_id_bytes = 256;

std::string json_warnings(const std::vector<std::string>& items) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("warnings");
  w.StartArray();
  for (auto& s : items) {
    auto text = printable_utf8(s);
    w.String(text.c_str(), static_cast<rapidjson::SizeType>(text.size()));
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

http_response text_error(const error_info& err) {
  return http_response::text(http_status(err.code), printable_utf8(err.message));
}

} // namespace

std::string new_request_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string id(32, '0');
  for (size_t i = 0; i < id.size(); i += 16) {
    auto bits = rng();
    for (size_t k = 0; k < 16; ++k, bits >>= 4)
      id[i + k] = hex[bits & 0xf];
  }
  return id;
}

http_ingress::http_ingress(caf::actor_system& sys, controller_actor controller, http_options opts)
  : sys_(sys),
    controller_(std::move(controller)),
    opts_(std::move(opts)),
    routes_(std::make_shared<route_table>()),
    models_(std::make_shared<std::vector<model_entry>>()),
    direct_(std::make_shared<direct_table>()) {}

http_ingress::~http_ingress() {
  stop();
}

int http_ingress::start(std::string& error) {
  server_ = std::make_unique<http_server>(sys_, server_options::from(opts_), *this);
  int port = server_->start(error);
  if (port >= 0)
    opts_.port = port;
  return port;
}

void http_ingress::begin_drain() {
  draining_ = true;
  if (server_)
    server_->begin_drain();
}

int64_t http_ingress::in_flight() const {
  return server_ ? server_->in_flight() : 0;
}

void http_ingress::fail_unanswered(const std::string& message) {
  if (server_)
    server_->fail_unanswered(503, message);
}

void http_ingress::stop() {
  if (server_)
    server_->stop();
}

void http_ingress::set_tables(const apply_result& tables) {
  auto table = std::make_shared<const route_table>(tables.routes);
  auto models = std::make_shared<const std::vector<model_entry>>(tables.models);
  auto direct = std::make_shared<direct_table>();
  auto add_direct = [&](const caf::actor& router) {
    if (router && router.node() == sys_.node())
      if (auto route = direct_routes::global().find(router.id()))
        direct->emplace_back(router.id(), std::move(route));
  };
  for (auto& r : tables.routes)
    add_direct(r.router);
  for (auto& m : tables.models)
    add_direct(m.router);
  std::lock_guard<std::mutex> guard(routes_mtx_);
  routes_ = std::move(table);
  models_ = std::move(models);
  direct_ = std::move(direct);
  tables_version_.fetch_add(1);
}

http_ingress::direct_entry* http_ingress::direct_route_of(const caf::actor& router) const {
  // The table changes only when a config is applied: each io thread keeps its own copy, with
  // its view of each route, and takes the lock only after a change (two io threads taking it
  // per request contended).
  thread_local const http_ingress* owner = nullptr;
  thread_local uint64_t seen = 0;
  thread_local std::vector<direct_entry> table;
  if (owner != this || seen != tables_version_.load()) {
    std::lock_guard<std::mutex> guard(routes_mtx_);
    owner = this;
    seen = tables_version_.load();
    table.clear();
    for (auto& [id, route] : *direct_)
      table.push_back(direct_entry{id, route, {}});
  }
  for (auto& entry : table)
    if (entry.router == router.id())
      return &entry;
  return nullptr;
}

std::shared_ptr<const std::vector<model_entry>> http_ingress::models() const {
  std::lock_guard<std::mutex> guard(routes_mtx_);
  return models_;
}

std::shared_ptr<const route_table> http_ingress::routes() const {
  std::lock_guard<std::mutex> guard(routes_mtx_);
  return routes_;
}

std::string http_ingress::take_request_id(exchange& ex) {
  const std::string* given = ex.request.header("x-request-id");
  if (given && !given->empty() && given->size() <= max_request_id_bytes
      && is_header_value(*given) && is_valid_utf8(*given))
    ex.log.request_id = *given;
  else
    ex.log.request_id = new_request_id();
  return ex.log.request_id;
}

void http_ingress::stamp_request_id(const exchange& ex, http_response& res) {
  if (!ex.log.request_id.empty())
    res.headers.push_back({"x-request-id", ex.log.request_id});
}

void http_ingress::handle(const exchange_ptr& ex) {
  auto& req = ex->request;
  const std::string& path = req.path;
  if (path == "/-/routes" && req.is_get_or_head()) {
    ex->log.route = path;
    return ex->reply(http_response::json(200, routes()->routes_json()));
  }
  if (path == "/-/healthz" && req.is_get_or_head()) {
    ex->log.route = path;
    return ex->reply(draining_ ? http_response::text(503, "This node is being drained.")
                               : http_response::text(200, "success"));
  }
  if (path == "/api/serve/applications/" || path == "/api/serve/applications") {
    ex->log.route = "/api/serve/applications/";
    if (req.is_get_or_head())
      return handle_status(ex);
    if (req.method == "PUT")
      return handle_apply(ex);
    auto res = http_response::text(405, "use GET (status) or PUT (apply a config) on "
                                        "/api/serve/applications/");
    res.headers.push_back({"Allow", "GET, HEAD, PUT"});
    return ex->reply(std::move(res));
  }
  if (handle_observability(ex) || handle_v2(ex))
    return;
  handle_application(ex);
}

http_response http_ingress::refusal(const exchange& ex, int status, const std::string& message) {
  http_response res = is_v2_path(ex.request.path)
                        ? http_response::json(status, v2::error_body(printable_utf8(message)))
                        : http_response::text(status, printable_utf8(message));
  res.close = true;
  return res;
}

void http_ingress::handle_application(const exchange_ptr& ex) {
  auto& req = ex->request;
  auto request_id = take_request_id(*ex);
  auto table = routes();
  const route_entry* route = table->match(req.path);
  if (route == nullptr) {
    auto res = http_response::text(
      404, "Path '" + printable_utf8(req.path) + "' not found. Ping http://" + opts_.host + ":"
             + std::to_string(opts_.port) + "/-/routes for available routes.");
    stamp_request_id(*ex, res);
    return ex->reply(std::move(res));
  }
  ex->log.route = route->route_prefix;
  ex->log.application = route->application;
  call_request call;
  call.id = request_id;
  call.method = req.method;
  call.path = route_table::remaining_path(*route, req.path);
  call.query = req.query;
  call.body = std::move(req.body);
  if (const std::string* type = req.header("content-type"))
    call.headers["content-type"] = *type;
  call_router(ex, route->router, std::move(call), text_error);
}

void http_ingress::call_router(const exchange_ptr& ex, const caf::actor& router,
                               call_request call, error_writer on_error) {
  call.received_ns = ex->log.start_ns;
  // The router is local and always answers: only a configured request_timeout_s needs a timer.
  caf::duration timeout = caf::infinite;
  if (opts_.request_timeout_s) {
    auto budget = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(*opts_.request_timeout_s));
    call.deadline_ns = steady_now_ns() + budget.count();
    timeout = caf::duration{std::chrono::duration_cast<std::chrono::microseconds>(budget)};
  }
  if (auto* direct = direct_route_of(router))
    if (auto slot = direct->route->acquire(&direct->view)) {
      call_direct(ex, router, direct->route, std::move(slot), std::move(call), on_error);
      return;
    }
  call_via_router(ex, router, std::move(call), on_error, timeout);
}

void http_ingress::call_via_router(const exchange_ptr& ex, const caf::actor& router,
                                   call_request call, const error_writer& on_error,
                                   caf::duration timeout) {
  ex->bridge()
    .request(router, timeout, call_atom::value, std::move(call))
    .then([this, ex](call_reply& reply) { reply_with(ex, reply); },
          [this, ex, on_error](caf::error& err) { reply_with(ex, err, on_error); });
}

void http_ingress::call_direct(const exchange_ptr& ex, const caf::actor& router,
                               std::shared_ptr<direct_route> route,
                               std::shared_ptr<replica_slot> slot, call_request call,
                               const error_writer& on_error) {
  auto& bridge = ex->bridge();
  // What the continuations share: the slot is given back once, when the replica answers, fails
  // or is lost; the client is answered once, by that or by the deadline, whichever comes first
  // (a call past its deadline still counts against its replica until the replica is done).
  struct direct_call {
    std::shared_ptr<direct_route> route;
    std::shared_ptr<replica_slot> slot;
    caf::actor_addr target;
    uint64_t key = 0;
    bool answered = false;
  };
  auto state = std::make_shared<direct_call>();
  state->route = std::move(route);
  state->slot = std::move(slot);
  state->target = state->slot->handle.address();
  local_call shared{std::move(call)};
  // A replica that dies holding the call answers nothing: the bridge watches it.
  state->key = bridge.watch(state->target, [this, ex, state, on_error] {
    state->route->release(*state->slot);
    if (std::exchange(state->answered, true))
      return;
    reply_with(ex,
               make_error(errc::internal, "the replica " + state->slot->id
                                            + " stopped while handling the request"),
               on_error);
  });
  if (int64_t deadline_ns = shared.peek().deadline_ns; deadline_ns != 0)
    bridge.after(std::chrono::nanoseconds(deadline_ns - steady_now_ns()), [this, ex, state, on_error] {
      if (!std::exchange(state->answered, true))
        reply_with(ex, make_error(errc::request_timeout, "timed out"), on_error);
    });
  bridge.request(state->slot->handle, caf::infinite, call_atom::value, shared)
    .then(
      [this, ex, state, &bridge](call_reply& reply) {
        if (!bridge.unwatch(state->target, state->key))
          return;
        state->route->release(*state->slot);
        if (!std::exchange(state->answered, true))
          reply_with(ex, reply);
      },
      [this, ex, router, state, shared, on_error, &bridge](caf::error& err) mutable {
        if (!bridge.unwatch(state->target, state->key))
          return;
        state->route->release(*state->slot);
        if (std::exchange(state->answered, true))
          return;
        if (err == caf::sec::request_receiver_down && !shared.taken()) {
          // The replica stopped before starting it: the router sends it elsewhere.
          auto req = shared.take();
          ++req.reroutes;
          auto left = req.deadline_ns == 0
                        ? caf::infinite
                        : caf::duration{std::chrono::microseconds(
                            std::max<int64_t>(1, (req.deadline_ns - steady_now_ns()) / 1000))};
          call_via_router(ex, router, std::move(req), on_error, left);
          return;
        }
        reply_with(ex, err, on_error);
      });
}

void http_ingress::reply_with(const exchange_ptr& ex, call_reply& reply) {
  http_response res;
  res.status = 200;
  res.content_type = reply.content_type.empty() ? "application/json"
                                                : std::move(reply.content_type);
  res.body = std::move(reply.body);
  for (auto& [name, value] : reply.headers)
    res.headers.push_back({name, value});
  stamp_request_id(*ex, res);
  ex->reply(std::move(res));
}

void http_ingress::reply_with(const exchange_ptr& ex, const caf::error& err,
                              const error_writer& on_error) {
  auto info = to_error_info(err);
  if (info.code == errc::request_timeout)
    info.message = "Request " + ex->log.request_id + " timed out after "
                   + std::to_string(opts_.request_timeout_s.value_or(0)) + "s.";
  auto res = on_error(info);
  stamp_request_id(*ex, res);
  ex->reply(std::move(res));
}

void http_ingress::handle_status(const exchange_ptr& ex) {
  ex->bridge()
    .request(controller_, std::chrono::seconds(10), status_atom::value)
    .then([ex](std::string& json) { ex->reply(http_response::json(200, std::move(json))); },
          [ex](caf::error& err) { ex->reply(text_error(to_error_info(err))); });
}

void http_ingress::handle_apply(const exchange_ptr& ex) {
  ex->bridge()
    .request(controller_, std::chrono::minutes(10), apply_atom::value,
             std::move(ex->request.body))
    .then(
      [this, ex](apply_result& result) {
        set_tables(result);
        ex->reply(http_response::json(200, json_warnings(result.warnings)));
      },
      [this, ex](caf::error& err) {
        // A failed apply may still have removed or added applications: refresh the tables
        // before answering, so the client's next request sees them.
        auto info = to_error_info(err);
        fetch_models(ex, [ex, info](auto) { ex->reply(text_error(info)); });
      });
}

} // namespace serve
