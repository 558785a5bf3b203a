// The router of one deployment: every call to the deployment goes through it.
//
// Protocol: `call` is answered exactly once - with the replica's reply, or an error:
// unavailable ("Request dropped due to backpressure ...") when the wait queue is full,
// request_timeout when the deadline passes while queued or on the replica, internal when the
// replica died while handling it. Replicas are picked by power of two choices among those
// below their in-flight cap; when none is free the call waits in a FIFO queue. A call bounced
// by a replica that stopped before starting it (request_receiver_down) is routed again, first
// in line. `update` replaces the replica set (the controller sends it); `abort` fails every
// queued call (shutdown). The router monitors its replicas and fails their in-flight calls
// itself when they go down, instead of waiting for timeouts. The queue length is published as
// ray_serve_deployment_queued_queries (and, for models, nv_inference_pending_request_count).
//
// Direct callers (actors/direct_route.hpp): the router publishes its replicas' shared in-flight
// counts, and callers in this process take a free slot and call a replica without it. `drain`
// is their signal that a slot came free while calls wait, on a retiring replica, or while the
// router is closing. Calls to replicas in this process travel as local_call, so a bounce brings
// the request back without the router having copied it.
#pragma once

#include <string>

#include <caf/fwd.hpp>

#include "actors/interfaces.hpp"

namespace serve {

struct router_options {
  /// "app/deployment", used in messages.
  std::string deployment_label;
  /// Seed of the replica chooser (0 = random).
  uint64_t seed = 0;
  /// For model deployments: the model name that labels nv_inference_pending_request_count.
  std::string model_name;
};

router_actor spawn_router(caf::actor_system& sys, router_options opts);

} // namespace serve
