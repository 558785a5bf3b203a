// The controller's records of applications, deployments and replicas, and the status JSON
// built from them. Accessed only from the controller actor.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/typed_response_promise.hpp>

#include "actors/call_context.hpp"
#include "actors/interfaces.hpp"
#include "libserve/config.hpp"
#include "libserve/replica_plan.hpp"

namespace serve {

struct replica_record {
  replica_actor handle;
  /// Where routers send this replica's calls (the replica, or its executor); set by init.
  caf::actor call_target;
  /// What the replica loaded (deployment::describe()), a JSON object or "".
  std::string description;
  std::string id;
  replica_phase phase = replica_phase::starting;
  double start_time_s = 0;
  /// Code generation the replica runs; older ones are stopped once the new ones are ready.
  uint64_t generation = 0;
  /// Where it runs: "head" or a node name. A remote replica's handle is null until the node
  /// has spawned it.
  std::string node = "head";
};

struct deployment_record {
  std::string application;
  deployment_config cfg;
  router_actor router;
  std::vector<replica_record> replicas;
  uint64_t generation = 0;
  uint64_t next_replica_no = 0;
  /// Set when a replica failed to start: the deployment is DEPLOY_FAILED.
  std::string failure;
  /// Set after an unexpected replica death until the deployment is whole again.
  bool recovering = false;
  std::string warning;
  /// Unloaded through the v2 repository API: no replicas until loaded again.
  bool unloaded = false;

  // Models pinned to an alias, stage or "latest" (actors/registry_watcher.hpp).
  /// The watcher polling the registry, or null.
  caf::actor watcher;
  /// The version a registry roll is starting replicas for; "" when none runs.
  std::string rolling_to;
  /// The generation that served before the roll (restored when the new version fails).
  uint64_t generation_before_roll = 0;
  /// A version that failed to load, and when to try it again (wall clock s, doubling backoff).
  version_backoff backoff;
  /// Why the registry's current version is not serving (unreachable, failed to load), or "".
  std::string registry_message;
  /// Why replicas are missing for want of a node to place them on, or "".
  std::string placement_message;

  /// The registry version running replicas of the current generation serve, or "".
  std::string serving_version() const;

  /// Replicas wanted now: num_replicas, or 0 while unloaded.
  size_t target_replicas() const { return unloaded ? 0 : static_cast<size_t>(cfg.num_replicas); }

  size_t running_current() const;
  size_t active_current() const;
  bool has_old_generation() const;
  /// Ray's deployment status: HEALTHY, UPDATING, UNHEALTHY or DEPLOY_FAILED.
  std::string status() const;
};

/// A worker node as the controller sees it.
struct node_record {
  node_config cfg;
  /// Up: joined, the node actor and session valid.
  bool up = false;
  /// The link has reported at least once (joined or failed): placement may count on its state.
  bool reported = false;
  caf::actor node;
  uint64_t session = 0;
  /// Why it is down ("" while up).
  std::string reason;
  double since_s = 0;
};

struct application_record {
  application_config cfg;
  std::shared_ptr<router_directory> directory = std::make_shared<router_directory>();
  std::shared_ptr<const handle_backend> backend;
  std::map<std::string, deployment_record> deployments;
  double last_deployed_time_s = 0;
  /// Ray's application status: RUNNING, DEPLOYING, DEPLOY_FAILED or UNHEALTHY.
  std::string status() const;
};

/// Builds GET /api/serve/applications/ from the records and the routers' in-flight counts
/// (router_status by "app/deployment"; missing entries show no counts).
std::string build_status_json(const http_options& http,
                              const std::map<std::string, application_record>& apps,
                              const std::map<std::string, router_status>& routers,
                              const std::map<std::string, node_record>& nodes = {});

const char* to_string(replica_phase phase);

double wall_clock_s();

} // namespace serve
