// The controller's worker nodes: links, placement, replicas started on nodes, node loss.
#include <caf/all.hpp>

#include "actors/controller_impl.hpp"
#include "libserve/model_location.hpp"
#include "libserve/node_token.hpp"

namespace serve {

namespace {

/// Time a node gets to spawn a replica (its model files written) before the head gives up.
constexpr std::chrono::minutes remote_spawn_timeout{2};
/// Time the head gets to read a model's files for a node.
constexpr std::chrono::minutes bundle_read_timeout{10};

using bundle_reader_actor = caf::typed_actor<caf::replies_to<
  spawn_atom, replica_spec, std::string, std::string, std::string>::with<replica_spec>>;

/// Reads a model's files (resolving its registry URI) into a replica spec, on its own thread:
/// file and network reads never run on a scheduler thread. Answers once, then quits.
bundle_reader_actor::behavior_type bundle_reader(bundle_reader_actor::pointer self) {
  return {
    [=](spawn_atom, replica_spec& spec, std::string& uri, std::string& labels,
        std::string& registry_uri) -> caf::result<replica_spec> {
      self->quit();
      try {
        model_spec model;
        model.uri = uri;
        model.labels = labels;
        model.registry_uri = registry_uri;
        auto bundle = read_model_bundle(model);
        spec.model_files = std::move(bundle.files);
        spec.model_file = bundle.model_file;
        spec.labels_file = bundle.labels_file;
        spec.resolved_version = bundle.version;
        spec.resolved_from = bundle.resolved;
        return spec;
      } catch (...) {
        auto info = current_exception_info();
        return make_error(info.code, info.message);
      }
    },
  };
}

bool is_up(controller_pointer self, const std::string& node) {
  if (node == "head")
    return true;
  auto i = self->state.nodes.find(node);
  return i != self->state.nodes.end() && i->second.up;
}

std::vector<std::string> placement_of(controller_pointer self, const deployment_record& dep) {
  if (!dep.cfg.placement.nodes.empty())
    return dep.cfg.placement.nodes;
  std::vector<std::string> all{"head"};
  for (auto& [name, _] : self->state.nodes)
    all.push_back(name);
  return all;
}

replica_spec make_spec(const application_record& app, const replica_options& opts) {
  replica_spec spec;
  spec.application = opts.exec.application;
  spec.deployment = opts.exec.deployment;
  spec.replica_id = opts.exec.replica_id;
  spec.class_name = opts.exec.class_name;
  spec.graph_json = opts.exec.graph_json;
  spec.model_json = opts.exec.model_json;
  spec.user_config_json = opts.exec.user_config_json;
  spec.batching = opts.batching;
  spec.device = opts.exec.device;
  spec.precision = opts.exec.precision;
  spec.replica_index = opts.exec.replica_index;
  for (auto& [name, router] : app.directory->all()) {
    spec.router_names.push_back(name);
    spec.routers.push_back(caf::actor_cast<caf::actor>(router));
  }
  return spec;
}

/// Sends the spawn to the node once the spec is complete.
void send_spawn(controller_pointer self, const std::string& app_name, const std::string& dep_name,
                const std::string& replica_id, const std::string& node_name, replica_spec spec) {
  auto n = self->state.nodes.find(node_name);
  if (n == self->state.nodes.end() || !n->second.up) {
    replica_start_failed(self, app_name, dep_name, replica_id,
                         "node " + node_name + " went down before the replica could start");
    return;
  }
  auto node = caf::actor_cast<node_actor>(n->second.node);
  self->request(node, remote_spawn_timeout, spawn_atom::value, n->second.session, std::move(spec))
    .then(
      [=](caf::actor& replica) {
        attach_replica(self, app_name, dep_name, replica_id,
                       caf::actor_cast<replica_actor>(replica));
      },
      [=](caf::error& err) {
        // The node refused (e.g. the model files could not be written): the deployment failed.
        // The connection failed: the node's loss re-places the replica; drop it here too in
        // case the link has not noticed yet.
        bool refused = err.category() == error_category_atom;
        if (refused && is_up(self, node_name)) {
          replica_start_failed(self, app_name, dep_name, replica_id,
                               "on node " + node_name + ": " + to_error_info(err).message);
          return;
        }
        auto [a, d] = find_records(self, app_name, dep_name);
        auto* r = d ? find_replica(*d, replica_id) : nullptr;
        if (!r)
          return;
        log_line("replica " + replica_id + " could not be started on node " + node_name + " ("
                 + to_error_info(err).message + "); placing it again");
        d->replicas.erase(d->replicas.begin() + (r - d->replicas.data()));
        reconcile(self, *a, *d);
      });
}

} // namespace

std::vector<std::string> usable_nodes(controller_pointer self, const deployment_record& dep) {
  std::vector<std::string> out;
  for (auto& n : placement_of(self, dep))
    if (is_up(self, n))
      out.push_back(n);
  return out;
}

std::string placement_wait_message(controller_pointer self, const deployment_record& dep,
                                   size_t waiting) {
  std::string why;
  for (auto& n : placement_of(self, dep)) {
    auto i = self->state.nodes.find(n);
    why += (why.empty() ? "" : "; ") + n
           + (i == self->state.nodes.end() || i->second.reason.empty()
                ? std::string(" is not up")
                : ": " + i->second.reason);
  }
  return "no node of its placement is up (" + why + "); " + std::to_string(waiting)
         + " replica(s) wait for one to join";
}

void start_remote_replica(controller_pointer self, application_record& app, deployment_record& dep,
                          const replica_record& rec, const replica_options& opts) {
  auto spec = make_spec(app, opts);
  auto app_name = app.cfg.name;
  auto dep_name = dep.cfg.name;
  auto id = rec.id;
  auto node = rec.node;
  log_line("starting replica " + id + " on node " + node);
  if (dep.cfg.type != deployment_config::kind::model || dep.cfg.placement.model_source != "head") {
    send_spawn(self, app_name, dep_name, id, node, std::move(spec));
    return;
  }
  auto original = dep.cfg.model;
  auto reader = self->system().spawn<caf::detached>(bundle_reader);
  self->request(reader, bundle_read_timeout, spawn_atom::value, std::move(spec), original.uri,
                original.labels, original.registry_uri)
    .then(
      [=](replica_spec& full) {
        model_bundle names; // what shipped_model_spec needs: the file names and the version
        names.model_file = full.model_file;
        names.labels_file = full.labels_file;
        names.version = full.resolved_version;
        names.resolved = full.resolved_from;
        full.model_json = model_spec_json(shipped_model_spec(names, original));
        send_spawn(self, app_name, dep_name, id, node, std::move(full));
      },
      [=](caf::error& err) {
        replica_start_failed(self, app_name, dep_name, id, to_error_info(err).message);
      });
}

std::optional<std::string> update_nodes(controller_pointer self, const serve_config& config) {
  auto& st = self->state;
  if (!config.nodes.empty() && !self->system().has_middleman())
    return "nodes: this server was started without nodes, so CAF's network layer is not loaded; "
           "restart it with a config that lists its nodes";
  if (config.cluster.tls.enabled() && !config.nodes.empty() && !self->system().has_openssl_manager())
    return "cluster.tls: this server was started without TLS; restart it with this config";
  std::string token;
  if (!config.nodes.empty() && !config.cluster.token_file.empty()) {
    try {
      token = read_token_file(config.cluster.token_file);
    } catch (...) {
      return "cluster.token_file: " + current_exception_info().message;
    }
  }
  // Links whose node left the config, or whose address or cluster settings changed, go.
  std::vector<std::string> gone;
  for (auto& entry : st.nodes) {
    const std::string& name = entry.first;
    const auto& rec = entry.second;
    auto it = std::find_if(config.nodes.begin(), config.nodes.end(),
                           [&](const node_config& n) { return n.name == name; });
    if (it == config.nodes.end() || it->host != rec.cfg.host || it->port != rec.cfg.port
        || config.cluster.token_file != st.config.cluster.token_file)
      gone.push_back(name);
  }
  for (auto& name : gone) {
    node_event ev;
    ev.name = name;
    ev.reason = "removed from the config";
    if (st.nodes[name].up)
      on_node_event(self, ev);
    auto link = st.links[name];
    self->send(link, leave_atom::value);
    self->send_exit(link, caf::exit_reason::user_shutdown); // queued behind the leave
    st.links.erase(name);
    st.nodes.erase(name);
  }
  for (auto& n : config.nodes) {
    if (st.nodes.count(n.name) > 0)
      continue;
    node_record rec;
    rec.cfg = n;
    rec.since_s = wall_clock_s();
    st.nodes.emplace(n.name, rec);
    node_link_options opts;
    opts.node = n;
    opts.cluster = config.cluster;
    opts.token = token;
    opts.head_id = st.head_id;
    opts.controller = self;
    st.links.emplace(n.name, spawn_node_link(self->system(), std::move(opts)));
  }
  st.config.cluster = config.cluster;
  return std::nullopt;
}

bool nodes_settled(controller_pointer self) {
  for (auto& [_, n] : self->state.nodes)
    if (!n.reported)
      return false;
  return true;
}

void run_deferred(controller_pointer self, bool timed_out) {
  auto& st = self->state;
  if (st.deferred.empty() || (!timed_out && !nodes_settled(self)))
    return;
  auto waiting = std::move(st.deferred);
  st.deferred.clear();
  for (auto& d : waiting)
    apply_now(self, std::move(d.config), std::move(d.warnings), d.promise);
}

/// The node's replicas are gone: routers fail their in-flight calls with 503 at once and the
/// controller places replacements on the nodes that remain.
static void drop_node_replicas(controller_pointer self, const std::string& name,
                               const caf::node_id& nid, const std::string& reason) {
  for (auto& [_, app] : self->state.apps)
    for (auto& [__, dep] : app.deployments) {
      size_t dropped = 0;
      for (auto i = dep.replicas.begin(); i != dep.replicas.end();) {
        if (i->node != name) {
          ++i;
          continue;
        }
        if (i->handle) {
          self->demonitor(i->handle.address());
          self->send_exit(i->handle, caf::exit_reason::user_shutdown); // if it is still alive
        }
        i = dep.replicas.erase(i);
        ++dropped;
      }
      if (dropped == 0)
        continue;
      log_line(app.cfg.name + "/" + dep.cfg.name + ": " + std::to_string(dropped)
               + " replica(s) on node " + name + " lost (" + reason + "); placing replacements");
      if (nid)
        self->send(dep.router, lost_atom::value, nid, "node " + name + " was lost (" + reason + ")");
      dep.recovering = true;
      reconcile(self, app, dep);
    }
}

void on_node_event(controller_pointer self, node_event& ev) {
  auto& st = self->state;
  auto i = st.nodes.find(ev.name);
  if (i == st.nodes.end())
    return;
  auto& n = i->second;
  n.reported = true;
  n.since_s = wall_clock_s();
  if (ev.up) {
    n.up = true;
    n.node = ev.node;
    n.session = ev.session;
    n.reason.clear();
    if (!st.draining)
      for (auto& [_, app] : st.apps)
        for (auto& [__, dep] : app.deployments)
          reconcile(self, app, dep);
  } else {
    bool was_up = n.up;
    auto nid = n.node ? n.node.node() : caf::node_id{};
    n.up = false;
    n.node = nullptr;
    n.session = 0;
    n.reason = ev.reason;
    if (was_up && !st.draining)
      drop_node_replicas(self, ev.name, nid, ev.reason);
  }
  run_deferred(self, false);
  check_pending(self);
}

void leave_nodes(controller_pointer self) {
  for (auto& [_, link] : self->state.links) {
    self->send(link, leave_atom::value);
    self->send_exit(link, caf::exit_reason::user_shutdown);
  }
}

} // namespace serve
