#include "actors/controller.hpp"

#include <cstdio>

#include <caf/all.hpp>

#include "actors/controller_impl.hpp"
#include "actors/registry_watcher.hpp"
#include "actors/router.hpp"
#include "libserve/deployment.hpp"
#include "libserve/node_token.hpp"

namespace serve {

void log_line(const std::string& line) {
  std::fprintf(stderr, "[actorserve] %s\n", line.c_str());
}

constexpr std::chrono::minutes replica_init_timeout{10};
/// How long the first apply waits for the configured nodes to report.
constexpr std::chrono::seconds nodes_settle_timeout{5};

static batch_settings to_batch_settings(const deployment_config& cfg) {
  batch_settings s;
  if (cfg.batching) {
    s.enabled = true;
    s.max_batch_size = cfg.batching->max_batch_size;
    s.batch_wait_timeout_us = cfg.batching->batch_wait_timeout.count();
    s.max_concurrent_batches = cfg.batching->max_concurrent_batches;
  }
  return s;
}

/// Tells the router which replicas serve (running ones, old generation included until the new
/// one is ready) and the deployment's limits.
static void publish_replicas(controller_pointer self, deployment_record& dep, bool closing = false) {
  replica_set set;
  if (!closing)
    for (auto& r : dep.replicas)
      if (r.phase == replica_phase::running) {
        set.replicas.push_back(r.call_target);
        set.replica_ids.push_back(r.id);
      }
  set.max_ongoing = dep.cfg.effective_max_ongoing();
  set.max_queued = dep.cfg.max_queued_requests;
  set.closing = closing;
  if (!closing && dep.unloaded)
    set.unavailable_reason = "model \"" + dep.cfg.name + "\" is unloaded (POST /v2/repository/models/"
                             + dep.cfg.name + "/load loads it)";
  else if (closing)
    set.unavailable_reason = "deployment \"" + dep.cfg.name + "\" is being deleted";
  else if (!dep.failure.empty())
    set.unavailable_reason = "deployment \"" + dep.cfg.name + "\" failed to deploy: " + dep.failure;
  else if (!dep.placement_message.empty())
    set.unavailable_reason = "deployment \"" + dep.cfg.name + "\" has no replica: "
                             + dep.placement_message;
  self->send(dep.router, update_atom::value, std::move(set));
}


/// A registry roll's new version failed to load: the previous generation keeps serving, the
/// status says why, and the version is tried again after a doubling backoff.
static void abandon_registry_roll(controller_pointer self, application_record& app,
                           deployment_record& dep, const std::string& reason) {
  auto version = dep.rolling_to;
  dep.rolling_to.clear();
  dep.generation = dep.generation_before_roll;
  double delay_s = dep.backoff.failed(version, wall_clock_s(), dep.cfg.model.poll_interval_s);
  dep.registry_message = "version " + version + " of " + dep.cfg.model.uri + " failed to load ("
                         + reason + "); still serving version " + dep.serving_version()
                         + "; next try in " + std::to_string(static_cast<int>(delay_s))
                         + " s";
  log_line(app.cfg.name + "/" + dep.cfg.name + ": " + dep.registry_message);
  reconcile(self, app, dep);
}

/// A watcher's report: roll the deployment when its URI now names another version.
static void on_registry_version(controller_pointer self, const registry_version& report) {
  auto a = self->state.apps.find(report.application);
  if (a == self->state.apps.end())
    return;
  auto d = a->second.deployments.find(report.deployment);
  if (d == a->second.deployments.end() || self->state.draining)
    return;
  auto& dep = d->second;
  const auto serving = dep.serving_version();
  if (!report.error.empty()) {
    dep.registry_message = "registry not readable (" + report.error + "); still serving version "
                           + serving;
    return;
  }
  if (!dep.failure.empty() || dep.unloaded || report.version == dep.rolling_to
      || serving.empty()) // not serving yet: the replicas starting resolve the URI themselves
    return;
  if (report.version == serving) {
    if (dep.backoff.failed_version().empty() || dep.backoff.failed_version() == serving)
      dep.registry_message.clear();
    return;
  }
  if (!dep.backoff.may_try(report.version, wall_clock_s()))
    return;
  log_line(a->second.cfg.name + "/" + dep.cfg.name + ": " + dep.cfg.model.uri + " is now version "
           + report.version + " (serving " + serving + "); rolling");
  dep.rolling_to = report.version;
  dep.generation_before_roll = dep.generation;
  ++dep.generation;
  reconcile(self, a->second, dep);
}

/// Starts, restarts or stops the registry watcher of a model deployment as its config says.
static void update_watcher(controller_pointer self, application_record& app, deployment_record& dep) {
  if (dep.watcher) {
    self->send_exit(dep.watcher, caf::exit_reason::user_shutdown);
    dep.watcher = nullptr;
  }
  if (dep.cfg.type != deployment_config::kind::model || !needs_registry_watch(dep.cfg.model.uri)
      || dep.cfg.model.registry_uri.empty())
    return;
  registry_watch_options opts;
  opts.application = app.cfg.name;
  opts.deployment = dep.cfg.name;
  opts.uri = dep.cfg.model.uri;
  opts.registry_uri = dep.cfg.model.registry_uri;
  opts.interval = std::chrono::milliseconds(
    static_cast<int64_t>(std::max(0.05, dep.cfg.model.poll_interval_s) * 1000));
  dep.watcher = spawn_registry_watcher(self->system(), self, std::move(opts));
}

std::pair<application_record*, deployment_record*>
find_records(controller_pointer self, const std::string& app_name, const std::string& dep_name) {
  auto a = self->state.apps.find(app_name);
  if (a == self->state.apps.end())
    return {nullptr, nullptr};
  auto d = a->second.deployments.find(dep_name);
  if (d == a->second.deployments.end())
    return {&a->second, nullptr};
  return {&a->second, &d->second};
}

replica_record* find_replica(deployment_record& dep, const std::string& id) {
  for (auto& r : dep.replicas)
    if (r.id == id)
      return &r;
  return nullptr;
}

void attach_replica(controller_pointer self, const std::string& app_name,
                    const std::string& dep_name, const std::string& replica_id,
                    replica_actor handle) {
  auto [a, d] = find_records(self, app_name, dep_name);
  auto* rec = d ? find_replica(*d, replica_id) : nullptr;
  if (!rec || rec->phase == replica_phase::stopping) {
    self->send_exit(handle, caf::exit_reason::user_shutdown); // given up while it was spawned
    return;
  }
  rec->handle = handle;
  self->monitor(handle);
  self->request(handle, replica_init_timeout, init_atom::value)
    .then(
      [=](replica_ready& ready) {
        auto [a, d] = find_records(self, app_name, dep_name);
        auto* r = d ? find_replica(*d, replica_id) : nullptr;
        if (!r)
          return;
        if (r->phase == replica_phase::starting) {
          r->phase = replica_phase::running;
          r->call_target = ready.call_target;
          r->description = ready.description;
          if (!ready.description.empty())
            log_line("replica " + r->id + (r->node == "head" ? "" : " on node " + r->node)
                     + " loaded: " + ready.description);
        }
        reconcile(self, *a, *d);
        check_pending(self);
      },
      [=](caf::error& err) {
        replica_start_failed(self, app_name, dep_name, replica_id, to_error_info(err).message);
      });
}

void replica_start_failed(controller_pointer self, const std::string& app_name,
                          const std::string& dep_name, const std::string& replica_id,
                          const std::string& message) {
  auto [a, d] = find_records(self, app_name, dep_name);
  auto* r = d ? find_replica(*d, replica_id) : nullptr;
  if (!r)
    return; // its node was lost meanwhile: already re-placed
  bool stale = r->generation != d->generation; // a generation given up meanwhile (failed roll)
  r->phase = replica_phase::stopping;
  if (r->handle)
    self->send_exit(r->handle, caf::exit_reason::user_shutdown);
  else
    d->replicas.erase(d->replicas.begin() + (r - d->replicas.data())); // never spawned
  if (stale)
    return;
  log_line("replica of " + app_name + "/" + dep_name + " failed to start: " + message);
  if (!d->rolling_to.empty()) {
    abandon_registry_roll(self, *a, *d, message);
    return;
  }
  d->failure = message;
  publish_replicas(self, *d);
  check_pending(self);
}

/// Starts one replica on `node`.
static void start_replica(controller_pointer self, application_record& app,
                          deployment_record& dep, const std::string& node) {
  replica_options opts;
  opts.exec.application = app.cfg.name;
  opts.exec.deployment = dep.cfg.name;
  opts.exec.replica_id = app.cfg.name + "#" + dep.cfg.name + "#" + std::to_string(dep.next_replica_no++);
  if (dep.cfg.type == deployment_config::kind::graph)
    opts.exec.graph_json = dep.cfg.graph_json;
  else if (dep.cfg.type == deployment_config::kind::model)
    opts.exec.model_json = model_spec_json(dep.cfg.model);
  else
    opts.exec.class_name = dep.cfg.class_name;
  opts.exec.user_config_json = dep.cfg.user_config_json;
  opts.exec.backend = app.backend;
  opts.exec.device = dep.cfg.device; // issue 7: GPU replicas
  opts.exec.precision = dep.cfg.precision;
  opts.exec.replica_index = dep.next_replica_no - 1;
  opts.batching = to_batch_settings(dep.cfg);
  replica_record rec;
  rec.id = opts.exec.replica_id;
  rec.start_time_s = wall_clock_s();
  rec.generation = dep.generation;
  rec.node = node;
  dep.replicas.push_back(rec);
  if (rec.node != "head") {
    start_remote_replica(self, app, dep, rec, opts);
    return;
  }
  attach_replica(self, app.cfg.name, dep.cfg.name, rec.id, spawn_replica(self->system(), opts));
}

/// Takes a replica out of service. A running one is retired by its router (which stops it once
/// its calls are done, after the next publish); one still starting was never published, so it is
/// stopped here.
static void stop_replica(controller_pointer self, replica_record& rec) {
  if (rec.phase == replica_phase::starting && rec.handle)
    self->send_exit(rec.handle, caf::exit_reason::user_shutdown);
  rec.phase = replica_phase::stopping;
}

/// Makes the replicas match the target: starts missing ones, stops extra ones, and retires the
/// old generation once the new one is whole. Then publishes the serving set.
void reconcile(controller_pointer self, application_record& app, deployment_record& dep) {
  if (!dep.failure.empty() || self->state.draining)
    return;
  // What to start and stop: libserve/replica_plan.hpp.
  std::vector<replica_view> views;
  for (auto& r : dep.replicas)
    views.push_back(replica_view{r.id, r.generation, r.phase, r.node});
  auto plan = plan_replicas(views, dep.generation, dep.target_replicas(), usable_nodes(self, dep));
  for (auto& node : plan.start_on)
    start_replica(self, app, dep, node);
  dep.placement_message = plan.unplaced > 0 ? placement_wait_message(self, dep, plan.unplaced) : "";
  for (auto& id : plan.stop)
    if (auto* r = find_replica(dep, id))
      stop_replica(self, *r); // extra ones, and old code once the new generation serves
  if (plan.whole && !dep.rolling_to.empty() && dep.serving_version() == dep.rolling_to) {
    log_line(app.cfg.name + "/" + dep.cfg.name + ": now serving version " + dep.rolling_to);
    dep.rolling_to.clear();
    dep.backoff.reset();
    dep.registry_message.clear();
  }
  if (plan.whole && !dep.has_old_generation())
    dep.recovering = false;
  publish_replicas(self, dep);
}

static void create_deployment(controller_pointer self, application_record& app,
                       const deployment_config& cfg) {
  deployment_record dep;
  dep.application = app.cfg.name;
  dep.cfg = cfg;
  dep.warning = cfg.batching_warning();
  if (!dep.warning.empty())
    log_line("warning: " + app.cfg.name + "/" + cfg.name + ": " + dep.warning);
  router_options ropts{app.cfg.name + "/" + cfg.name, 0, ""};
  if (cfg.type == deployment_config::kind::model)
    ropts.model_name = cfg.name;
  dep.router = spawn_router(self->system(), std::move(ropts));
  app.directory->set(cfg.name, dep.router);
  app.deployments.emplace(cfg.name, std::move(dep)); // started by apply_application
}

static bool same_batching(const deployment_config& a, const deployment_config& b) {
  auto x = to_batch_settings(a);
  auto y = to_batch_settings(b);
  return x.enabled == y.enabled && x.max_batch_size == y.max_batch_size
         && x.batch_wait_timeout_us == y.batch_wait_timeout_us
         && x.max_concurrent_batches == y.max_concurrent_batches;
}

static void update_deployment(controller_pointer self, application_record& app, deployment_record& dep,
                       const deployment_config& cfg) {
  // Turning batching on or off changes how routers reach replicas: replace them too.
  // A new placement moves replicas by replacing them (rolling, as for new code).
  bool replace = !dep.cfg.same_code(cfg) || dep.cfg.batching.has_value() != cfg.batching.has_value()
                 || !dep.failure.empty() || dep.cfg.placement.nodes != cfg.placement.nodes
                 || dep.cfg.placement.model_source != cfg.placement.model_source;
  bool reconfigure = dep.cfg.user_config_json != cfg.user_config_json || !same_batching(dep.cfg, cfg);
  bool rewatch = dep.cfg.model.uri != cfg.model.uri
                 || dep.cfg.model.registry_uri != cfg.model.registry_uri
                 || dep.cfg.model.poll_interval_s != cfg.model.poll_interval_s;
  dep.cfg = cfg;
  dep.warning = cfg.batching_warning();
  if (rewatch)
    update_watcher(self, app, dep);
  if (replace) {
    dep.rolling_to.clear();
    ++dep.generation; // rolling replacement
    dep.failure.clear();
  } else if (reconfigure) {
    for (auto& r : dep.replicas)
      if (r.phase != replica_phase::stopping)
        self->send(r.handle, reconfig_atom::value, cfg.user_config_json, to_batch_settings(cfg));
  }
  reconcile(self, app, dep);
}

static void delete_deployment(controller_pointer self, application_record& app, const std::string& name) {
  auto i = app.deployments.find(name);
  if (i == app.deployments.end())
    return;
  app.directory->erase(name);
  if (i->second.watcher)
    self->send_exit(i->second.watcher, caf::exit_reason::user_shutdown);
  for (auto& r : i->second.replicas)
    stop_replica(self, r);
  publish_replicas(self, i->second, true); // the router finishes in-flight calls, then quits
  app.deployments.erase(i);
}

static void apply_application(controller_pointer self, const application_config& cfg) {
  auto& app = self->state.apps[cfg.name];
  if (!app.backend)
    app.backend = std::make_shared<runtime_handle_backend>(app.directory);
  app.cfg = cfg;
  app.last_deployed_time_s = wall_clock_s();
  std::vector<std::string> gone;
  for (auto& [name, _] : app.deployments)
    if (!cfg.find(name))
      gone.push_back(name);
  for (auto& name : gone)
    delete_deployment(self, app, name);
  // Every router exists before any replica starts: a replica on a node gets the routers of
  // the deployments it may call with its spec.
  std::vector<std::string> created;
  for (auto& dep_cfg : cfg.deployments)
    if (app.deployments.count(dep_cfg.name) == 0) {
      create_deployment(self, app, dep_cfg);
      created.push_back(dep_cfg.name);
    }
  for (auto& dep_cfg : cfg.deployments) {
    auto& dep = app.deployments.at(dep_cfg.name);
    if (std::find(created.begin(), created.end(), dep_cfg.name) == created.end()) {
      update_deployment(self, app, dep, dep_cfg);
      continue;
    }
    reconcile(self, app, dep);
    update_watcher(self, app, dep);
  }
}

/// The v2 model name of every model deployment: its name, or "<application>.<deployment>"
/// where two applications have model deployments of that name.
static std::vector<std::pair<std::string, const deployment_record*>> v2_models(controller_pointer self) {
  std::map<std::string, int> uses;
  for (auto& [_, app] : self->state.apps)
    for (auto& [name, dep] : app.deployments)
      if (dep.cfg.type == deployment_config::kind::model)
        ++uses[name];
  std::vector<std::pair<std::string, const deployment_record*>> out;
  for (auto& [app_name, app] : self->state.apps)
    for (auto& [name, dep] : app.deployments)
      if (dep.cfg.type == deployment_config::kind::model)
        out.emplace_back(uses[name] > 1 ? app_name + "." + name : name, &dep);
  return out;
}

static apply_result current_routes(controller_pointer self) {
  apply_result result;
  for (auto& [name, app] : self->state.apps) {
    auto ingress = app.deployments.find(app.cfg.ingress);
    if (ingress == app.deployments.end())
      continue;
    result.routes.push_back(route_entry{app.cfg.route_prefix, name, app.cfg.ingress,
                                        caf::actor_cast<caf::actor>(ingress->second.router)});
  }
  for (auto& [model_name, dep] : v2_models(self)) {
    model_entry m;
    m.name = model_name;
    m.application = dep->application;
    m.deployment = dep->cfg.name;
    m.router = caf::actor_cast<caf::actor>(dep->router);
    m.running_replicas = dep->running_current();
    m.unloaded = dep->unloaded;
    m.reason = dep->unloaded ? "unloaded" : dep->failure;
    for (auto& r : dep->replicas)
      if (r.phase == replica_phase::running && m.description.empty())
        m.description = r.description;
    m.config_json = deployment_config_json(dep->cfg);
    result.models.push_back(std::move(m));
  }
  return result;
}

/// The record of v2 model `name`, or nullptr.
static deployment_record* find_model(controller_pointer self, const std::string& name) {
  for (auto& [model_name, dep] : v2_models(self))
    if (model_name == name)
      return const_cast<deployment_record*>(dep);
  return nullptr;
}

static caf::result<apply_result> load_model(controller_pointer self, const std::string& name,
                                     bool load) {
  if (self->state.draining)
    return make_error(errc::unavailable, "the server is shutting down");
  auto* dep = find_model(self, name);
  if (dep == nullptr)
    return make_error(errc::not_found, "failed to " + std::string(load ? "load" : "unload")
                                         + " '" + name + "', no such model in the repository");
  auto& app = self->state.apps.at(dep->application);
  if (!load) {
    if (!dep->unloaded)
      log_line("unloading model " + name);
    dep->unloaded = true;
    reconcile(self, app, *dep);
    return current_routes(self);
  }
  if (dep->unloaded)
    log_line("loading model " + name);
  dep->unloaded = false;
  dep->failure.clear(); // a load retries a deployment that failed to start
  reconcile(self, app, *dep);
  auto rp = self->make_response_promise<apply_result>();
  self->state.waiting.push_back(pending_apply{rp, apply_result{}});
  check_pending(self);
  return rp;
}

/// Answers the applies that wait for replicas once no deployment is still starting.
void check_pending(controller_pointer self) {
  auto& st = self->state;
  if (st.waiting.empty())
    return;
  std::string failure;
  for (auto& [app_name, app] : st.apps)
    for (auto& [dep_name, dep] : app.deployments) {
      if (!dep.failure.empty() && failure.empty())
        failure = "deployment \"" + app_name + "/" + dep_name + "\" failed to start: " + dep.failure;
      if (dep.failure.empty() && dep.status() == "UPDATING")
        return; // still starting
    }
  auto waiting = std::move(st.waiting);
  st.waiting.clear();
  for (auto& w : waiting) {
    if (!failure.empty()) {
      w.promise.deliver(make_error(errc::internal, failure));
      continue;
    }
    auto routes = current_routes(self);
    routes.warnings = w.result.warnings;
    w.promise.deliver(std::move(routes));
  }
}

void apply_now(controller_pointer self, serve_config config, std::vector<std::string> warnings,
               caf::typed_response_promise<apply_result> rp) {
  auto& st = self->state;
  if (st.draining) {
    rp.deliver(make_error(errc::unavailable, "the server is shutting down"));
    return;
  }
  st.config = std::move(config);
  std::vector<std::string> gone;
  for (auto& [name, _] : st.apps) {
    bool listed = false;
    for (auto& a : st.config.applications)
      listed |= a.name == name;
    if (!listed)
      gone.push_back(name);
  }
  for (auto& name : gone) {
    auto& app = st.apps[name];
    std::vector<std::string> deps;
    for (auto& [d, _] : app.deployments)
      deps.push_back(d);
    for (auto& d : deps)
      delete_deployment(self, app, d);
    st.apps.erase(name);
  }
  for (auto& app_cfg : st.config.applications)
    apply_application(self, app_cfg);
  apply_result pending;
  pending.warnings = std::move(warnings);
  st.waiting.push_back(pending_apply{rp, std::move(pending)});
  check_pending(self);
}

/// Validates a config and applies it - after the configured nodes reported once (at most
/// nodes_settle_timeout), so that the first placement sees the nodes that are there.
static caf::result<apply_result> apply_config(controller_pointer self, const std::string& text) {
  config_parse_options popts;
  popts.known_classes = deployment_registry::names();
  popts.is_known_class = [](const std::string& n) { return bool(deployment_registry::find(n)); };
  auto parsed = parse_config(text, popts);
  if (!parsed.config)
    return make_error(errc::invalid_argument, "invalid config: " + parsed.error->to_string());
  auto& st = self->state;
  if (st.draining)
    return make_error(errc::unavailable, "the server is shutting down");
  if (auto err = update_nodes(self, *parsed.config))
    return make_error(errc::invalid_argument, "invalid config: " + *err);
  auto rp = self->make_response_promise<apply_result>();
  if (nodes_settled(self) && st.deferred.empty()) {
    apply_now(self, std::move(*parsed.config), std::move(parsed.warnings), rp);
    return rp;
  }
  st.deferred.push_back(deferred_apply{std::move(*parsed.config), std::move(parsed.warnings), rp});
  if (!st.settle_timer_armed) {
    st.settle_timer_armed = true;
    self->delayed_send(self, nodes_settle_timeout, settle_atom::value);
  }
  return rp;
}

static void on_replica_down(controller_pointer self, const caf::down_msg& dm) {
  for (auto& [app_name, app] : self->state.apps)
    for (auto& [dep_name, dep] : app.deployments) {
      auto i = std::find_if(dep.replicas.begin(), dep.replicas.end(),
                            [&](const replica_record& r) { return r.handle.address() == dm.source; });
      if (i == dep.replicas.end())
        continue;
      bool expected = i->phase == replica_phase::stopping;
      auto id = i->id;
      auto node = i->node;
      if (node != "head" && dm.reason == caf::exit_reason::remote_link_unreachable
          && !self->state.draining) {
        // Its node's connection broke: the node is gone, whatever its link has seen so far.
        node_event lost;
        lost.name = node;
        lost.reason = "connection lost";
        on_node_event(self, lost);
        return;
      }
      dep.replicas.erase(i);
      if (!expected && !self->state.draining) {
        log_line("replica " + id + " stopped unexpectedly ("
                 + to_error_info(dm.reason).message + "); starting a replacement");
        dep.recovering = true;
      }
      reconcile(self, app, dep);
      check_pending(self);
      return;
    }
}

static void collect_status(controller_pointer self, caf::typed_response_promise<std::string> rp) {
  struct gather {
    std::map<std::string, router_status> routers;
    size_t pending = 0;
  };
  auto g = std::make_shared<gather>();
  std::vector<std::pair<std::string, router_actor>> targets;
  for (auto& [app_name, app] : self->state.apps)
    for (auto& [dep_name, dep] : app.deployments)
      targets.emplace_back(app_name + "/" + dep_name, dep.router);
  g->pending = targets.size();
  auto finish = [=]() mutable {
    if (--g->pending == 0)
      rp.deliver(build_status_json(self->state.config.http, self->state.apps, g->routers,
                                   self->state.nodes));
  };
  if (targets.empty()) {
    rp.deliver(build_status_json(self->state.config.http, self->state.apps, g->routers,
                                 self->state.nodes));
    return;
  }
  for (auto& [key, router] : targets)
    self->request(router, std::chrono::seconds(5), status_atom::value)
      .then([=, key = key](router_status& rs) mutable {
              g->routers[key] = std::move(rs);
              finish();
            },
            [=](caf::error&) mutable { finish(); });
}

static controller_actor::behavior_type controller_impl(controller_pointer self) {
  self->state.head_id = make_challenge().substr(0, 16);
  self->set_down_handler([=](caf::down_msg& dm) { on_replica_down(self, dm); });
  return {
    [=](apply_atom, std::string& text) -> caf::result<apply_result> {
      return apply_config(self, text);
    },
    [=](routes_atom) -> apply_result { return current_routes(self); },
    [=](load_atom, std::string& model) -> caf::result<apply_result> {
      return load_model(self, model, true);
    },
    [=](unload_atom, std::string& model) -> caf::result<apply_result> {
      return load_model(self, model, false);
    },
    [=](registry_atom, registry_version& report) { on_registry_version(self, report); },
    [=](node_atom, node_event& ev) { on_node_event(self, ev); },
    [=](settle_atom) {
      self->state.settle_timer_armed = false;
      run_deferred(self, true);
    },
    [=](status_atom) -> caf::result<std::string> {
      auto rp = self->make_response_promise<std::string>();
      collect_status(self, rp);
      return rp;
    },
    [=](abort_atom) {
      for (auto& [_, app] : self->state.apps)
        for (auto& [__, dep] : app.deployments) {
          self->send(dep.router, abort_atom::value);
          for (auto& r : dep.replicas)
            self->send(r.handle, abort_atom::value);
        }
    },
    [=](drain_atom) -> bool {
      auto& st = self->state;
      st.draining = true;
      leave_nodes(self);
      for (auto& [_, app] : st.apps)
        for (auto& [__, dep] : app.deployments) {
          if (dep.watcher)
            self->send_exit(dep.watcher, caf::exit_reason::user_shutdown);
          for (auto& r : dep.replicas) {
            r.phase = replica_phase::stopping;
            self->send_exit(r.handle, caf::exit_reason::user_shutdown);
          }
          self->send_exit(dep.router, caf::exit_reason::user_shutdown);
        }
      return true;
    },
  };
}

controller_actor spawn_controller(caf::actor_system& sys) {
  return sys.spawn(controller_impl);
}

} // namespace serve
