#include "actors/executor.hpp"

#include <caf/all.hpp>
#include <rapidjson/document.h>

#include "actors/call_context.hpp"
#include "libserve/graph_deployment.hpp"
#include "libserve/metrics.hpp"
#include "libserve/model_deployment.hpp"
#include "libserve/json.hpp"

namespace serve {

namespace {

/// Ray Serve's per-replica request metrics.
struct request_metrics {
  metrics::counter requests, errors;
  metrics::histogram latency_ms;
  metrics::gauge processing;

  void init(const executor_options& opts) {
    auto& reg = metrics::registry::global();
    const metrics::label_set labels{{"deployment", opts.deployment},
                                    {"replica", opts.replica_id},
                                    {"application", opts.application}};
    requests = reg.get_counter("ray_serve_deployment_request_counter_total",
                               "The number of queries that have been processed in this replica.",
                               labels);
    errors = reg.get_counter("ray_serve_deployment_error_counter_total",
                             "The number of exceptions that have occurred in this replica.",
                             labels);
    latency_ms = reg.get_histogram("ray_serve_deployment_processing_latency_ms",
                                   "The latency for queries to be processed.",
                                   metrics::latency_ms_buckets(), labels);
    processing = reg.get_gauge("ray_serve_replica_processing_queries",
                               "The current number of queries being processed.", labels);
  }

  /// `n` requests that started at `start_ns` have finished, `failed` of them with an error.
  void finish(int64_t start_ns, size_t n, size_t failed) {
    const double ms = (steady_now_ns() - start_ns) / 1e6;
    processing.add(-static_cast<double>(n));
    requests.inc(static_cast<double>(n));
    if (failed > 0)
      errors.inc(static_cast<double>(failed));
    for (size_t i = 0; i < n; ++i)
      latency_ms.observe(ms);
  }
};

struct executor_state {
  executor_options opts;
  request_metrics stats;
  /// Set when user code threw replica_failure: the executor quits after replying.
  std::string fatal_reason;
  static inline const char* name = "executor";
};

using executor_pointer = executor_actor::stateful_pointer<executor_state>;

call_reply to_reply(response&& r) {
  if (r.error)
    return call_reply{std::move(r.error->message), "", static_cast<uint8_t>(r.error->code), {}};
  return call_reply{std::move(r.body), std::move(r.content_type), 0, std::move(r.headers)};
}

/// Runs user code, turning every exception into a failed future. replica_failure also marks
/// the executor for shutdown once the current call has been answered.
template <class T, class F>
future<T> run_user_code(executor_pointer self, F&& f) {
  try {
    return f();
  } catch (const replica_failure& e) {
    self->state.fatal_reason = e.what();
    return future<T>::failed({errc::internal, std::string("replica failed: ") + e.what()});
  } catch (...) {
    return future<T>::failed(current_exception_info());
  }
}

void quit_if_fatal(executor_pointer self) {
  if (!self->state.fatal_reason.empty())
    self->quit(make_error(errc::internal, "replica failed: " + self->state.fatal_reason));
}

rapidjson::Document parse_json_or_null(const std::string& text) {
  rapidjson::Document doc;
  if (text.empty() || parse_json(doc, text))
    doc.SetNull();
  return doc;
}

deployment_factory factory_for(const executor_options& opts) {
  if (!opts.model_json.empty())
    return make_model_deployment;
  if (!opts.graph_json.empty())
    return make_graph_deployment;
  return deployment_registry::find(opts.class_name);
}

caf::result<std::string> construct_deployment(executor_pointer self) {
  auto& opts = self->state.opts;
  deployment_factory factory = factory_for(opts);
  if (!factory)
    return make_error(errc::not_found, "no deployment class \"" + opts.class_name + "\"");
  auto user_config = parse_json_or_null(opts.user_config_json);
  auto graph = parse_json_or_null(opts.graph_json);
  auto model = parse_json_or_null(opts.model_json);
  deployment_context ctx{opts.application, opts.deployment, opts.replica_id, &user_config,
                         opts.graph_json.empty() ? nullptr : &graph, opts.backend,
                         opts.model_json.empty() ? nullptr : &model, opts.device,
                         opts.precision, opts.replica_index};
  call_context_scope scope({self, 0});
  try {
    std::shared_ptr<deployment> instance = factory(ctx);
    instance->reconfigure(user_config);
    auto description = instance->describe();
    opts.slot->instance = std::move(instance);
    return description;
  } catch (...) {
    auto info = current_exception_info();
    return make_error(errc::internal, "constructing deployment \"" + opts.deployment
                                        + "\" failed: " + info.message);
  }
}

int64_t batch_deadline(const std::vector<call_request>& batch) {
  int64_t latest = 0;
  for (auto& req : batch) {
    if (req.deadline_ns == 0)
      return 0;
    latest = std::max(latest, req.deadline_ns);
  }
  return latest;
}

caf::result<call_reply> handle_call(executor_pointer self, call_request&& req) {
  auto rp = self->make_response_promise<call_reply>();
  call_context_scope scope({self, req.deadline_ns});
  const int64_t start = steady_now_ns();
  self->state.stats.processing.inc();
  auto fut = run_user_code<response>(
    self, [&] { return self->state.opts.slot->instance->handle(to_request(std::move(req))); });
  fut.subscribe([rp, self, start](response* r, const error_info* e) mutable {
    self->state.stats.finish(start, 1, r && !r->error ? 0 : 1);
    if (r && r->error)
      rp.deliver(make_error(r->error->code, r->error->message));
    else if (r)
      rp.deliver(to_reply(std::move(*r)));
    else
      rp.deliver(make_error(e->code, e->message));
  });
  quit_if_fatal(self);
  return rp;
}

executor_actor::behavior_type executor_impl(executor_pointer self, executor_options opts) {
  self->state.opts = std::move(opts);
  self->state.stats.init(self->state.opts);
  return {
    [=](init_atom) -> caf::result<std::string> { return construct_deployment(self); },
    [=](call_atom, call_request& req) -> caf::result<call_reply> {
      return handle_call(self, std::move(req));
    },
    [=](call_atom, local_call& call) -> caf::result<call_reply> {
      return handle_call(self, call.take());
    },
    [=](exec_atom, std::vector<call_request>& batch) -> caf::result<std::vector<call_reply>> {
      auto rp = self->make_response_promise<std::vector<call_reply>>();
      size_t n = batch.size();
      call_context_scope scope({self, batch_deadline(batch)});
      const int64_t start = steady_now_ns();
      self->state.stats.processing.add(static_cast<double>(n));
      std::vector<request> requests;
      requests.reserve(n);
      for (auto& req : batch)
        requests.emplace_back(to_request(std::move(req)));
      auto fut = run_user_code<std::vector<response>>(self, [&] {
        return self->state.opts.slot->instance->handle_batch(std::move(requests));
      });
      fut.subscribe([rp, n, self, start](std::vector<response>* rs, const error_info* e) mutable {
        size_t failed = n;
        if (rs && rs->size() == n) {
          failed = 0;
          for (auto& r : *rs)
            failed += r.error ? 1 : 0;
        }
        self->state.stats.finish(start, n, failed);
        if (e) {
          rp.deliver(make_error(e->code, e->message));
          return;
        }
        if (rs->size() != n) {
          rp.deliver(make_error(errc::internal,
                                "batch handler returned " + std::to_string(rs->size())
                                  + " results for " + std::to_string(n)
                                  + " requests; it must return exactly one result per request"));
          return;
        }
        std::vector<call_reply> replies;
        replies.reserve(n);
        for (auto& r : *rs)
          replies.emplace_back(to_reply(std::move(r)));
        rp.deliver(std::move(replies));
      });
      quit_if_fatal(self);
      return rp;
    },
    [=](reconfig_atom, std::string& user_config_json) -> caf::result<bool> {
      auto doc = parse_json_or_null(user_config_json);
      call_context_scope scope({self, 0});
      try {
        self->state.opts.slot->instance->reconfigure(doc);
        self->state.opts.user_config_json = std::move(user_config_json);
        return true;
      } catch (...) {
        auto info = current_exception_info();
        return make_error(errc::internal, "reconfigure failed: " + info.message);
      }
    },
  };
}

} // namespace

executor_actor spawn_executor(caf::local_actor* parent, executor_options opts) {
  return parent->spawn<caf::detached + caf::monitored>(executor_impl, std::move(opts));
}

} // namespace serve
