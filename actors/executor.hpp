// The executor: the thread on which a replica runs user code.
//
// A detached actor (its own thread), so a handler that computes for a second blocks only its
// replica, never a CAF scheduler thread. Executor 0 of a replica constructs the deployment on
// init; a replica with max_concurrent_batches = k has k executors sharing that instance.
// Handle calls made by user code are sent from here and their futures settle here.
#pragma once

#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "actors/interfaces.hpp"
#include "libserve/deployment.hpp"

namespace serve {

/// The deployment instance shared by a replica's executors. Written once, by executor 0's
/// init, before any call reaches an executor (the replica waits for init); read-only after.
struct deployment_slot {
  std::shared_ptr<deployment> instance;
};

struct executor_options {
  std::string application;
  std::string deployment;
  std::string replica_id;
  /// "class": name in the deployment_registry; empty for a graph.
  std::string class_name;
  /// "graph": its JSON; empty otherwise.
  std::string graph_json;
  /// "model": its JSON ({"uri", "labels", "features"}); empty otherwise.
  std::string model_json;
  /// user_config as JSON text ("null" when none).
  std::string user_config_json = "null";
  /// The deployment's "device" and "precision", and the replica's number (deployment_context).
  std::string device = "cpu";
  std::string precision = "tf32";
  uint64_t replica_index = 0;
  std::shared_ptr<const handle_backend> backend;
  std::shared_ptr<deployment_slot> slot;
};

/// Spawns an executor as a detached actor monitored by `parent`.
executor_actor spawn_executor(caf::local_actor* parent, executor_options opts);

} // namespace serve
