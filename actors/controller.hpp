// The controller: owns the desired state (the config) and makes the running actors match it.
//
// Protocol:
// - `apply(config_json)` validates the config (refusing it with invalid_argument and the JSON
//   path of the bad field), then reconciles: new applications and deployments get a router and
//   replicas; deployments whose code changed (class, graph, model) are replaced by a rolling
//   update (new replicas ready before old ones stop); option changes (user_config, batching,
//   num_replicas, max_ongoing_requests, max_queued_requests) are applied in place, user_config
//   through the deployment's reconfigure hook without a restart; applications no longer listed
//   are deleted. Answered once every replica has started, with the routes to serve, or with the
//   first deployment's start-up error.
// - `status` answers Ray Serve's GET /api/serve/applications/ JSON; `routes` the routes of the
//   applications as they stand (also after an apply that failed half-way).
// - A replica that dies unexpectedly is replaced; the router has already failed or re-routed
//   its calls.
// - `abort` fails every queued and in-flight call (shutdown after the grace period);
//   `drain` stops every router and replica and answers when done.
#pragma once

#include <caf/fwd.hpp>

#include "actors/interfaces.hpp"

namespace serve {

controller_actor spawn_controller(caf::actor_system& sys);

} // namespace serve
