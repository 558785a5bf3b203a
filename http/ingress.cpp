#include "http/ingress.hpp"

#include <random>

#include <sys/socket.h>

#include <caf/all.hpp>
#include <httplib.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "actors/call_context.hpp"
#include "http/error_mapping.hpp"
#include "http/ingress_detail.hpp"
#include "http/request_log.hpp"
#include "libserve/v2_protocol.hpp"

namespace serve {

namespace {

/// Pending-connection queue of the listening socket. cpp-httplib 0.11 listens with a backlog of
/// 5: a burst of new connections while the accept thread waits for a core overflows it, and the
/// dropped SYNs cost their clients a 1 s retransmit. The kernel caps this at somaxconn.
constexpr int listen_backlog = 4096;

void write_error(httplib::Response& res, const error_info& err) {
  res.status = http_status(err.code);
  res.set_content(err.message, "text/plain; charset=utf-8");
}

/// An error cpp-httplib raises before any route runs (413) or a handler's escaped exception
/// (500): plain text, except under /v2, where Triton's clients expect {"error": "..."}.
void write_early_error(const httplib::Request& req, httplib::Response& res,
                       const std::string& message) {
  if (req.path == "/v2" || req.path.rfind("/v2/", 0) == 0)
    res.set_content(v2::error_body(message), "application/json");
  else
    res.set_content(message, "text/plain");
}

std::string query_of(const httplib::Request& req) {
  auto q = req.target.find('?');
  return q == std::string::npos ? std::string{} : req.target.substr(q + 1);
}

std::string json_string_array(const std::vector<std::string>& items) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("warnings");
  w.StartArray();
  for (auto& s : items)
    w.String(s.c_str());
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

} // namespace

/// The calling HTTP thread's bridge actor. Created on first use; destroyed when the thread
/// ends, which happens inside serve(), before the actor system goes away.
caf::scoped_actor& bridge_for_this_thread(caf::actor_system& sys) {
  thread_local std::unique_ptr<caf::scoped_actor> bridge;
  thread_local caf::actor_system* owner = nullptr;
  if (!bridge || owner != &sys) {
    bridge = std::make_unique<caf::scoped_actor>(sys);
    owner = &sys;
  }
  return *bridge;
}

std::string take_request_id(const httplib::Request& req, httplib::Response& res) {
  auto request_id = req.get_header_value("x-request-id");
  if (request_id.empty())
    request_id = new_request_id();
  res.set_header("x-request-id", request_id);
  current_request_log().request_id = request_id;
  return request_id;
}

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
    server_(std::make_unique<httplib::Server>()),
    routes_(std::make_shared<route_table>()),
    models_(std::make_shared<std::vector<model_entry>>()) {
  auto threads = static_cast<size_t>(std::max(1, opts_.num_threads));
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server_->set_tcp_nodelay(true);
  server_->set_keep_alive_max_count(static_cast<size_t>(std::max(1, opts_.keep_alive_max_count)));
  server_->set_keep_alive_timeout(
    static_cast<time_t>(std::max(1.0, std::ceil(opts_.keep_alive_timeout_s))));
  server_->set_payload_max_length(opts_.max_body_bytes);
  server_->set_socket_options([this](socket_t sock) {
    httplib::default_socket_options(sock);
    listen_fd_ = sock;
  });
  install_handlers();
}

http_ingress::~http_ingress() = default;

int http_ingress::bind(std::string& error) {
  int port = opts_.port;
  if (port == 0) {
    port = server_->bind_to_any_port(opts_.host);
  } else if (!server_->bind_to_port(opts_.host, port)) {
    port = -1;
  }
  if (port < 0) {
    error = "cannot listen on " + opts_.host + ":" + std::to_string(opts_.port)
            + " (address in use or not available)";
    return port;
  }
  opts_.port = port;
  if (listen_fd_ >= 0)
    ::listen(listen_fd_, listen_backlog); // re-listening on a bound socket resizes its queue
  return port;
}

void http_ingress::serve() {
  server_->listen_after_bind();
}

void http_ingress::stop() {
  server_->stop();
}

void http_ingress::set_tables(const apply_result& tables) {
  auto table = std::make_shared<const route_table>(tables.routes);
  auto models = std::make_shared<const std::vector<model_entry>>(tables.models);
  std::lock_guard<std::mutex> guard(routes_mtx_);
  routes_ = std::move(table);
  models_ = std::move(models);
}

std::shared_ptr<const std::vector<model_entry>> http_ingress::models() const {
  std::lock_guard<std::mutex> guard(routes_mtx_);
  return models_;
}

std::shared_ptr<const route_table> http_ingress::routes() const {
  std::lock_guard<std::mutex> guard(routes_mtx_);
  return routes_;
}

void http_ingress::install_handlers() {
  auto& s = *server_;
  s.Get("/-/routes", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(routes()->routes_json(), "application/json");
  });
  s.Get("/-/healthz", [this](const httplib::Request&, httplib::Response& res) {
    if (draining_) {
      res.status = 503;
      res.set_content("This node is being drained.", "text/plain");
    } else {
      res.set_content("success", "text/plain");
    }
  });
  s.Get("/api/serve/applications/?",
        [this](const httplib::Request&, httplib::Response& res) { handle_status(res); });
  s.Put("/api/serve/applications/?",
        [this](const httplib::Request& req, httplib::Response& res) { handle_apply(req, res); });
  install_observability();
  install_v2_handlers();
  auto app = [this](const httplib::Request& req, httplib::Response& res) {
    handle_application(req, res);
  };
  const char* any = "/.*";
  s.Get(any, app);
  s.Post(any, app);
  s.Put(any, app);
  s.Delete(any, app);
  s.Patch(any, app);
  s.Options(any, app);
  s.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (res.status == 413 && res.body.empty())
      write_early_error(req, res,
                        "request body of " + req.get_header_value("Content-Length")
                          + " bytes is over the limit http_options.max_body_bytes="
                          + std::to_string(opts_.max_body_bytes));
  });
  s.set_exception_handler([](const httplib::Request& req, httplib::Response& res,
                             std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    res.status = 500;
    write_early_error(req, res, "internal error: " + what);
  });
}

void http_ingress::handle_application(const httplib::Request& req, httplib::Response& res) {
  auto& log = current_request_log();
  auto request_id = take_request_id(req, res);
  auto table = routes();
  const route_entry* route = table->match(req.path);
  if (route == nullptr) {
    res.status = 404;
    res.set_content("Path '" + req.path + "' not found. Ping http://" + opts_.host + ":"
                      + std::to_string(opts_.port) + "/-/routes for available routes.",
                    "text/plain");
    return;
  }
  if (req.body.empty() && req.get_header_value_count("Content-Length") > 0
      && req.get_header_value("Content-Length") != "0") {
    // cpp-httplib 0.11 reads but drops the body of GET/HEAD/OPTIONS requests.
    write_error(res, {errc::invalid_argument,
                      req.method + " requests with a body are not supported by this server's "
                                   "HTTP stack (the body is dropped); send the body with POST"});
    return;
  }
  log.route = route->route_prefix;
  log.application = route->application;
  call_request call;
  call.id = request_id;
  call.method = req.method;
  call.path = route_table::remaining_path(*route, req.path);
  call.query = query_of(req);
  call.body = req.body;
  call_and_wait(route->router, std::move(call), res,
                [&](const error_info& info) { write_error(res, info); });
}

void http_ingress::call_and_wait(const caf::actor& router, call_request call,
                                 httplib::Response& res,
                                 const std::function<void(const error_info&)>& on_error) {
  call.received_ns = current_request_log().start_ns;
  // The router is local and always answers: only a configured request_timeout_s needs a timer.
  caf::duration timeout = caf::infinite;
  if (opts_.request_timeout_s) {
    auto budget = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(*opts_.request_timeout_s));
    call.deadline_ns = steady_now_ns() + budget.count();
    timeout = caf::duration{std::chrono::duration_cast<std::chrono::microseconds>(budget)};
  }
  auto request_id = call.id;
  auto& bridge = bridge_for_this_thread(sys_);
  bridge->request(router, timeout, call_atom::value, std::move(call))
    .receive(
      [&](call_reply& reply) {
        res.status = 200;
        for (auto& [k, v] : reply.headers)
          res.set_header(k.c_str(), v);
        res.set_content(std::move(reply.body),
                        reply.content_type.empty() ? "application/json" : reply.content_type);
      },
             [&](caf::error& err) {
               auto info = to_error_info(err);
               if (info.code == errc::request_timeout)
                 info.message = "Request " + request_id + " timed out after "
                                + std::to_string(opts_.request_timeout_s.value_or(0)) + "s.";
               on_error(info);
             });
}

void http_ingress::handle_status(httplib::Response& res) {
  auto& bridge = bridge_for_this_thread(sys_);
  bridge->request(controller_, std::chrono::seconds(10), status_atom::value)
    .receive([&](std::string& json) { res.set_content(std::move(json), "application/json"); },
             [&](caf::error& err) { write_error(res, to_error_info(err)); });
}

void http_ingress::handle_apply(const httplib::Request& req, httplib::Response& res) {
  auto& bridge = bridge_for_this_thread(sys_);
  bridge->request(controller_, std::chrono::minutes(10), apply_atom::value, req.body)
    .receive(
      [&](apply_result& result) {
        set_tables(result);
        res.set_content(json_string_array(result.warnings), "application/json");
      },
      [&](caf::error& err) {
        write_error(res, to_error_info(err));
        fetch_models(); // a failed apply may still have removed or added applications
      });
}

} // namespace serve
