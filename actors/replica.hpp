// The replica: one running instance of a deployment.
//
// Protocol: `init` constructs the deployment (on executor 0's thread) and answers the actor that
// routers send calls to, or the constructor's error. Without batching that is executor 0
// itself (no hop through the replica); a `call` reaching the replica anyway is delegated to it. With batching the replica
// gathers calls in a batch_queue (Ray's @serve.batch timing) and hands whole batches to up to
// max_concurrent_batches executors; every caller of a batch gets its own reply, or the batch's
// error. Calls whose deadline passed while queued are dropped with request_timeout. When an
// executor dies (user code threw replica_failure) the replica fails the batches it had started,
// bounces the calls it had not started (request_receiver_down, so routers re-route them) and
// quits; the controller replaces it.
#pragma once

#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "actors/executor.hpp"
#include "actors/interfaces.hpp"

namespace serve {

struct replica_options {
  /// How the executors construct and run the deployment.
  executor_options exec;
  /// Batching; enabled = false sends each call on its own.
  batch_settings batching;
};

/// Spawns a replica (a scheduled actor; its executors are detached).
replica_actor spawn_replica(caf::actor_system& sys, replica_options opts);

} // namespace serve
