// How user code reaches other deployments: the handle backend of a running application.
//
// A handle call made inside a handler (or a continuation) is sent by the executor actor that is
// running that code on this thread; the reply settles the handle's future on the same thread.
// The executor registers itself for its thread (call_context_scope); the backend looks it up.
// Sub-calls inherit the deadline of the request being handled.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <caf/duration.hpp>

#include "actors/interfaces.hpp"
#include "libserve/deployment.hpp"

namespace serve {

/// Steady-clock now in ns, the unit of call_request::deadline_ns.
int64_t steady_now_ns();

/// Timeout of an actor request carrying `deadline_ns`. Local actors always answer (replicas
/// answer expired calls themselves; routers fail the work of replicas that die), so a call to an
/// actor on this node gets none: scheduling one per hop costs the actor clock dearly under load.
/// A call to another node (which may vanish without a word) gets the time left plus a grace
/// period, or ten minutes without a deadline.
caf::duration call_timeout(int64_t deadline_ns, bool remote);

/// Routers of one application by deployment name. Thread-safe.
class router_directory {
public:
  void set(const std::string& deployment, router_actor router);
  void erase(const std::string& deployment);
  /// The router, or an invalid handle when the deployment is unknown.
  router_actor find(const std::string& deployment) const;
  /// Every deployment and its router (a copy).
  std::map<std::string, router_actor> all() const;

private:
  mutable std::mutex mtx_;
  std::map<std::string, router_actor> routers_; // protected by mtx_
};

/// The thread-local context of the executor running user code. Not thread-safe by design:
/// each value belongs to its thread.
struct call_context {
  executor_actor::pointer self = nullptr;
  int64_t deadline_ns = 0;
};

/// A user-API request as the call that carries it (deadline from the caller's context), and back.
/// Both move the strings.
call_request to_call_request(request&& req, int64_t deadline_ns);
request to_request(call_request&& call);

/// Sets the current thread's call context for the scope's lifetime.
class call_context_scope {
public:
  explicit call_context_scope(call_context ctx);
  ~call_context_scope();
  call_context_scope(const call_context_scope&) = delete;
  call_context_scope& operator=(const call_context_scope&) = delete;

private:
  call_context saved_;
};

/// The calling thread's context (self is null outside executor code).
const call_context& current_call_context();

/// handle_backend for applications: sends through the application's routers.
class runtime_handle_backend : public handle_backend {
public:
  explicit runtime_handle_backend(std::shared_ptr<router_directory> routers)
    : routers_(std::move(routers)) {}

  future<response> call(const std::string& deployment, request req) const override;

private:
  std::shared_ptr<router_directory> routers_;
};

} // namespace serve
