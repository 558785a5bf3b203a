// The messages actors exchange, their atoms and the one CAF type-ID block of ActorServe.
//
// Bodies and tensors travel as byte strings (std::string), never element by element, so a
// message can cross to another node cheaply. Every type here has an inspect() overload.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/type_id.hpp>

namespace serve {

/// One call to a deployment: from the HTTP ingress, a handle or a graph.
struct call_request {
  /// x-request-id.
  std::string id;
  std::string method;
  /// Path below the application's route prefix.
  std::string path;
  std::string query;
  /// Raw body bytes.
  std::string body;
  /// The request headers a deployment needs (lower-case names): content-type and
  /// inference-header-content-length; empty for most calls.
  std::map<std::string, std::string> headers;
  /// When the request reached this server (steady clock ns); 0 = unknown.
  int64_t received_ns = 0;
  /// Absolute deadline on this machine's steady clock, ns since its epoch; 0 = none.
  int64_t deadline_ns = 0;
  /// Times this request was routed again after its replica stopped before starting it.
  int32_t reroutes = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, call_request& x) {
  return f(caf::meta::type_name("call_request"), x.id, x.method, x.path, x.query, x.body,
           x.headers, x.received_ns, x.deadline_ns, x.reroutes);
}

/// A call to a replica in this process, passed by reference: the caller keeps a share of it,
/// so a call that comes back bounced (request_receiver_down: its replica stopped before taking
/// it) can be routed again without the caller having copied the request. The replica take()s
/// the request when it starts the call; a caller sees taken() and knows the call was started.
/// The request is touched by one side at a time: the caller only after the reply or bounce.
/// Serialized (another node), it carries the request itself.
class local_call {
public:
  local_call() = default;
  explicit local_call(call_request req)
    : state_(std::make_shared<state>(state{std::move(req), false})) {}

  bool valid() const { return state_ != nullptr; }
  bool taken() const { return state_->taken; }
  const call_request& peek() const { return state_->req; }
  call_request& untaken() { return state_->req; }

  /// The request, moved out; the call counts as started.
  call_request take() {
    state_->taken = true;
    return std::move(state_->req);
  }

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, local_call& x) {
    if (!x.state_)
      x.state_ = std::make_shared<state>();
    return f(caf::meta::type_name("local_call"), x.state_->req);
  }

private:
  struct state {
    call_request req;
    bool taken = false;
  };
  std::shared_ptr<state> state_;
};

/// A reply. Failures of a whole call travel as caf::error (see libserve/error.hpp); inside a
/// batch, one request's failure is a reply with error_code != 0 and the message as body, turned
/// into that caller's caf::error by the replica.
struct call_reply {
  std::string body;
  std::string content_type;
  /// 0 = success; else a serve::errc value.
  uint8_t error_code = 0;
  /// Extra response headers (e.g. inference-header-content-length of a v2 binary reply).
  std::map<std::string, std::string> headers;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, call_reply& x) {
  return f(caf::meta::type_name("call_reply"), x.body, x.content_type, x.error_code, x.headers);
}

/// The replicas a router may use and how many requests each may hold.
struct replica_set {
  std::vector<caf::actor> replicas;
  std::vector<std::string> replica_ids;
  /// Per-replica in-flight cap (deployment_config::effective_max_ongoing()).
  uint64_t max_ongoing = 5;
  /// Router wait-queue cap; -1 = unlimited.
  int64_t max_queued = -1;
  /// When non-empty and there is no replica: calls fail at once with 503 and this reason
  /// (the deployment failed to deploy, or is being deleted).
  std::string unavailable_reason;
  /// The deployment is being deleted: refuse new calls, finish in-flight ones, then quit.
  bool closing = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, replica_set& x) {
  return f(caf::meta::type_name("replica_set"), x.replicas, x.replica_ids, x.max_ongoing,
           x.max_queued, x.unavailable_reason, x.closing);
}

/// A router's view of its deployment, for the status API.
struct router_status {
  uint64_t queued = 0;
  uint64_t total_requests = 0;
  uint64_t rejected = 0;
  std::vector<std::string> replica_ids;
  std::vector<uint64_t> in_flight;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, router_status& x) {
  return f(caf::meta::type_name("router_status"), x.queued, x.total_requests, x.rejected,
           x.replica_ids, x.in_flight);
}

/// Batching settings a replica applies to its next batch.
struct batch_settings {
  bool enabled = false;
  uint64_t max_batch_size = 10;
  int64_t batch_wait_timeout_us = 10'000;
  uint64_t max_concurrent_batches = 1;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, batch_settings& x) {
  return f(caf::meta::type_name("batch_settings"), x.enabled, x.max_batch_size,
           x.batch_wait_timeout_us, x.max_concurrent_batches);
}

/// A replica's answer to init: where routers send its calls, and what it loaded.
struct replica_ready {
  caf::actor call_target;
  /// deployment::describe() of the instance: a JSON object, or "".
  std::string description;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, replica_ready& x) {
  return f(caf::meta::type_name("replica_ready"), x.call_target, x.description);
}

/// A route of the HTTP ingress: prefix -> the ingress deployment's router.
struct route_entry {
  std::string route_prefix;
  std::string application;
  std::string ingress_deployment;
  caf::actor router;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, route_entry& x) {
  return f(caf::meta::type_name("route_entry"), x.route_prefix, x.application,
           x.ingress_deployment, x.router);
}

/// A model deployment as an Open Inference Protocol (v2) model.
struct model_entry {
  /// The v2 model name: the deployment name, or "<application>.<deployment>" when two
  /// applications have model deployments of that name.
  std::string name;
  std::string application;
  std::string deployment;
  caf::actor router;
  /// Serving replicas now.
  uint64_t running_replicas = 0;
  /// Unloaded through the repository API.
  bool unloaded = false;
  /// Why it does not serve (failed to deploy, unloaded), or "".
  std::string reason;
  /// deployment::describe() of a running replica ({"uri","inputs","outputs",...}) or "".
  std::string description;
  /// The deployment's configuration as JSON (for .../config).
  std::string config_json;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, model_entry& x) {
  return f(caf::meta::type_name("model_entry"), x.name, x.application, x.deployment, x.router,
           x.running_replicas, x.unloaded, x.reason, x.description, x.config_json);
}

/// A registry watcher's report: the version a deployment's model URI resolves to now, or why
/// it could not be resolved.
struct registry_version {
  std::string application;
  std::string deployment;
  std::string version;
  /// Non-empty when the registry could not be read or the URI not resolved.
  std::string error;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, registry_version& x) {
  return f(caf::meta::type_name("registry_version"), x.application, x.deployment, x.version,
           x.error);
}

/// The controller's answer to a config: the routes and v2 models to serve and load-time
/// warnings.
struct apply_result {
  std::vector<route_entry> routes;
  std::vector<std::string> warnings;
  std::vector<model_entry> models;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, apply_result& x) {
  return f(caf::meta::type_name("apply_result"), x.routes, x.warnings, x.models);
}

/// A replica to start on a worker node (actors/node.hpp): what the head's controller would
/// give spawn_replica, in a form that crosses the network.
struct replica_spec {
  std::string application;
  std::string deployment;
  std::string replica_id;
  /// Exactly one of class_name, graph_json, model_json is set (see executor_options).
  std::string class_name;
  std::string graph_json;
  std::string model_json;
  std::string user_config_json = "null";
  batch_settings batching;
  /// The application's routers (on the head) by deployment name, for handle calls.
  std::vector<std::string> router_names;
  std::vector<caf::actor> routers;
  /// The model's files when the head ships them ("model_source": "head"): relative path ->
  /// bytes, the model file and labels file among them, and the version the head resolved.
  std::map<std::string, std::string> model_files;
  std::string model_file;
  std::string labels_file;
  std::string resolved_version;
  std::string resolved_from;
  /// The deployment's "device" and "precision", and the replica's number (executor_options).
  std::string device = "cpu";
  std::string precision = "tf32";
  uint64_t replica_index = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, replica_spec& x) {
  return f(caf::meta::type_name("replica_spec"), x.application, x.deployment, x.replica_id,
           x.class_name, x.graph_json, x.model_json, x.user_config_json, x.batching,
           x.router_names, x.routers, x.model_files, x.model_file, x.labels_file,
           x.resolved_version, x.resolved_from, x.device, x.precision, x.replica_index);
}

/// A head asking a node to host its replicas: the proof that it holds the node's token
/// (HMAC-SHA256 of the node's challenge, hex), and the head's link actor, which the node
/// monitors so that the head's replicas stop when the head goes away.
struct join_request {
  /// Random per head process: a head that joins again (after a partition, or restarted) ends
  /// its earlier session on the node.
  std::string head_id;
  std::string challenge;
  std::string proof;
  caf::actor head_link;
  /// The node stops this head's replicas when it hears no ping for this long (ms).
  int64_t heartbeat_timeout_ms = 5000;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, join_request& x) {
  return f(caf::meta::type_name("join_request"), x.head_id, x.challenge, x.proof, x.head_link,
           x.heartbeat_timeout_ms);
}

/// A node's answer to a join.
struct join_reply {
  std::string node_name;
  /// Names the session in later spawn and ping messages.
  uint64_t session = 0;
  /// Whether the node has a CUDA device ("" = none, else its name), for the status.
  std::string devices;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, join_reply& x) {
  return f(caf::meta::type_name("join_reply"), x.node_name, x.session, x.devices);
}

/// A node link's report to the controller: the node joined (up) or was lost.
struct node_event {
  std::string name;
  bool up = false;
  /// The node actor when up.
  caf::actor node;
  uint64_t session = 0;
  /// Why the node is down ("connection refused", "no heartbeat answer for 5 s", "bad token").
  std::string reason;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_event& x) {
  return f(caf::meta::type_name("node_event"), x.name, x.up, x.node, x.session, x.reason);
}

} // namespace serve

CAF_BEGIN_TYPE_ID_BLOCK(serve, caf::first_custom_type_id)
  CAF_ADD_TYPE_ID(serve, (serve::call_request))
  CAF_ADD_TYPE_ID(serve, (serve::call_reply))
  CAF_ADD_TYPE_ID(serve, (std::vector<serve::call_request>))
  CAF_ADD_TYPE_ID(serve, (std::vector<serve::call_reply>))
  CAF_ADD_TYPE_ID(serve, (serve::replica_set))
  CAF_ADD_TYPE_ID(serve, (serve::router_status))
  CAF_ADD_TYPE_ID(serve, (serve::batch_settings))
  CAF_ADD_TYPE_ID(serve, (serve::route_entry))
  CAF_ADD_TYPE_ID(serve, (serve::replica_ready))
  CAF_ADD_TYPE_ID(serve, (serve::apply_result))
  CAF_ADD_TYPE_ID(serve, (serve::model_entry))
  CAF_ADD_TYPE_ID(serve, (serve::registry_version))
  CAF_ADD_TYPE_ID(serve, (serve::replica_spec))
  CAF_ADD_TYPE_ID(serve, (serve::join_request))
  CAF_ADD_TYPE_ID(serve, (serve::join_reply))
  CAF_ADD_TYPE_ID(serve, (serve::node_event))
  CAF_ADD_TYPE_ID(serve, (serve::local_call))
CAF_END_TYPE_ID_BLOCK(serve)

namespace serve {

using call_atom = caf::atom_constant<caf::atom("call")>;
using exec_atom = caf::atom_constant<caf::atom("exec")>;
using init_atom = caf::atom_constant<caf::atom("init")>;
using flush_atom = caf::atom_constant<caf::atom("flush")>;
using reconfig_atom = caf::atom_constant<caf::atom("reconfig")>;
using update_atom = caf::atom_constant<caf::atom("update")>;
using status_atom = caf::atom_constant<caf::atom("status")>;
using apply_atom = caf::atom_constant<caf::atom("apply")>;
using drain_atom = caf::atom_constant<caf::atom("drain")>;
using abort_atom = caf::atom_constant<caf::atom("abort")>;
using routes_atom = caf::atom_constant<caf::atom("routes")>;
using reap_atom = caf::atom_constant<caf::atom("reap")>;
using models_atom = caf::atom_constant<caf::atom("models")>;
using load_atom = caf::atom_constant<caf::atom("load")>;
using unload_atom = caf::atom_constant<caf::atom("unload")>;
using registry_atom = caf::atom_constant<caf::atom("registry")>;
using hello_atom = caf::atom_constant<caf::atom("hello")>;
using join_atom = caf::atom_constant<caf::atom("join")>;
using spawn_atom = caf::atom_constant<caf::atom("spawn")>;
using ping_atom = caf::atom_constant<caf::atom("ping")>;
using leave_atom = caf::atom_constant<caf::atom("leave")>;
using node_atom = caf::atom_constant<caf::atom("node")>;
using connect_atom = caf::atom_constant<caf::atom("connect")>;
using lost_atom = caf::atom_constant<caf::atom("lost")>;
using watchdog_atom = caf::atom_constant<caf::atom("watchdog")>;
using settle_atom = caf::atom_constant<caf::atom("settle")>;

} // namespace serve
