#include "actors/call_context.hpp"

#include <caf/all.hpp>

namespace serve {

namespace {

thread_local call_context current_context;

constexpr std::chrono::milliseconds deadline_grace{1000};
constexpr std::chrono::milliseconds no_deadline_timeout{10 * 60 * 1000};

} // namespace

int64_t steady_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

caf::duration call_timeout(int64_t deadline_ns, bool remote) {
  if (!remote)
    return caf::infinite;
  if (deadline_ns == 0)
    return caf::duration{no_deadline_timeout};
  auto left_ns = std::max<int64_t>(0, deadline_ns - steady_now_ns());
  return caf::duration{std::chrono::milliseconds(left_ns / 1'000'000) + deadline_grace};
}

void router_directory::set(const std::string& deployment, router_actor router) {
  std::lock_guard<std::mutex> guard(mtx_);
  routers_[deployment] = std::move(router);
}

void router_directory::erase(const std::string& deployment) {
  std::lock_guard<std::mutex> guard(mtx_);
  routers_.erase(deployment);
}

router_actor router_directory::find(const std::string& deployment) const {
  std::lock_guard<std::mutex> guard(mtx_);
  auto i = routers_.find(deployment);
  return i == routers_.end() ? router_actor{} : i->second;
}

std::map<std::string, router_actor> router_directory::all() const {
  std::lock_guard<std::mutex> guard(mtx_);
  return routers_;
}

call_request to_call_request(request&& req, int64_t deadline_ns) {
  call_request call;
  call.id = std::move(req.id);
  call.method = std::move(req.method);
  call.path = std::move(req.path);
  call.query = std::move(req.query);
  call.body = std::move(req.body);
  call.headers = std::move(req.headers);
  call.received_ns = req.received_ns;
  call.deadline_ns = deadline_ns;
  return call;
}

request to_request(call_request&& call) {
  request req;
  req.id = std::move(call.id);
  req.method = std::move(call.method);
  req.path = std::move(call.path);
  req.query = std::move(call.query);
  req.body = std::move(call.body);
  req.headers = std::move(call.headers);
  req.received_ns = call.received_ns;
  return req;
}

call_context_scope::call_context_scope(call_context ctx) : saved_(current_context) {
  current_context = ctx;
}

call_context_scope::~call_context_scope() {
  current_context = saved_;
}

const call_context& current_call_context() {
  return current_context;
}

future<response> runtime_handle_backend::call(const std::string& deployment,
                                              request req) const {
  auto ctx = current_call_context();
  if (ctx.self == nullptr)
    return future<response>::failed(
      {errc::internal, "handle call to \"" + deployment
                         + "\" made outside a request handler; call handles only from "
                           "handle()/handle_batch() or their continuations"});
  auto router = routers_->find(deployment);
  if (!router)
    return future<response>::failed(
      {errc::not_found, "no deployment \"" + deployment + "\" in this application"});
  auto creq = to_call_request(std::move(req), ctx.deadline_ns);
  promise<response> result;
  bool remote = router.node() != ctx.self->node();
  ctx.self->request(router, call_timeout(ctx.deadline_ns, remote), call_atom::value,
                    std::move(creq))
    .then(
      [result, ctx](call_reply& reply) mutable {
        call_context_scope scope(ctx);
        response r{std::move(reply.body), std::move(reply.content_type)};
        r.headers = std::move(reply.headers);
        result.set_value(std::move(r));
      },
      [result, ctx](caf::error& err) mutable {
        call_context_scope scope(ctx);
        result.set_error(to_error_info(err));
      });
  return result.get_future();
}

} // namespace serve
