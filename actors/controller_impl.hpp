// The controller's state and the functions its two translation units share: controller.cpp
// (applications, deployments, replicas on this process) and controller_nodes.cpp (worker nodes:
// their links, placement, replicas started on nodes, and what happens when a node is lost).
// Accessed only from the controller actor.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "actors/controller_state.hpp"
#include "actors/node_link.hpp"
#include "actors/replica.hpp"

namespace serve {

struct pending_apply {
  caf::typed_response_promise<apply_result> promise;
  apply_result result;
};

/// An apply that waits for the configured nodes to report once (joined or failed), so that the
/// first placement knows which nodes are there.
struct deferred_apply {
  serve_config config;
  std::vector<std::string> warnings;
  caf::typed_response_promise<apply_result> promise;
};

struct controller_state {
  serve_config config;
  std::map<std::string, application_record> apps;
  std::vector<pending_apply> waiting;
  bool draining = false;
  /// Worker nodes by name, and the link actor of each.
  std::map<std::string, node_record> nodes;
  std::map<std::string, node_link_actor> links;
  /// Random per process (join_request::head_id).
  std::string head_id;
  std::vector<deferred_apply> deferred;
  bool settle_timer_armed = false;
  static inline const char* name = "controller";
};

using controller_pointer = controller_actor::stateful_pointer<controller_state>;

// controller.cpp
void log_line(const std::string& line);
/// The records of a deployment by name (null when gone meanwhile).
std::pair<application_record*, deployment_record*>
find_records(controller_pointer self, const std::string& app_name, const std::string& dep_name);
/// The replica `id` of `dep`, or null.
replica_record* find_replica(deployment_record& dep, const std::string& id);
void reconcile(controller_pointer self, application_record& app, deployment_record& dep);
void check_pending(controller_pointer self);
void apply_now(controller_pointer self, serve_config config, std::vector<std::string> warnings,
               caf::typed_response_promise<apply_result> rp);
/// A replica handle arrived (spawned here or on a node): monitor it and run its init.
void attach_replica(controller_pointer self, const std::string& app_name,
                    const std::string& dep_name, const std::string& replica_id,
                    replica_actor handle);
/// A replica could not be started: the deployment failed (or its registry roll is abandoned).
void replica_start_failed(controller_pointer self, const std::string& app_name,
                          const std::string& dep_name, const std::string& replica_id,
                          const std::string& message);

// controller_nodes.cpp
/// Starts, replaces or stops node links to match `config.nodes`; reads the token file.
/// Returns an error text when the token file cannot be read.
std::optional<std::string> update_nodes(controller_pointer self, const serve_config& config);
/// Whether every configured node has reported once.
bool nodes_settled(controller_pointer self);
/// Why `waiting` replicas of `dep` have no node: each node of its placement and why it is down.
std::string placement_wait_message(controller_pointer self, const deployment_record& dep,
                                   size_t waiting);
/// Nodes `dep` may use that are up now (with "head"), in placement order.
std::vector<std::string> usable_nodes(controller_pointer self, const deployment_record& dep);
/// Starts the replica of `rec` (already in dep.replicas) on node `rec.node`.
void start_remote_replica(controller_pointer self, application_record& app, deployment_record& dep,
                          const replica_record& rec, const replica_options& opts);
/// A link's report.
void on_node_event(controller_pointer self, node_event& ev);
/// Ends every session on the nodes (the head stops).
void leave_nodes(controller_pointer self);
/// Runs the deferred applies once the nodes settled or the wait is over.
void run_deferred(controller_pointer self, bool timed_out);

} // namespace serve
