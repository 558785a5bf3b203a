// The typed interfaces of ActorServe's actors, declared apart from their implementations.
//
//   ingress --call--> router --call--> replica --call/exec--> executor --> user deployment
//   controller: spawns routers and replicas, keeps their desired state, answers status.
//
// Every call is answered exactly once: with a call_reply or a caf::error of category "serve".
#pragma once

#include <string>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/node_id.hpp>
#include <caf/typed_actor.hpp>

#include "actors/messages.hpp"

namespace serve {

/// What a router (or the ingress, on its direct path) sends calls to: a replica (batching) or,
/// without batching, its executor directly (one hop less). Callers in the same process send a
/// local_call, which a bounce hands back untouched; others send the call_request.
using call_target_actor
  = caf::typed_actor<caf::replies_to<call_atom, call_request>::with<call_reply>,
                     caf::replies_to<call_atom, local_call>::with<call_reply>>;

/// Runs user code on its own thread (a detached actor). Executor 0 of a replica constructs the
/// deployment on init; the others share it.
using executor_actor = caf::typed_actor<
  caf::replies_to<init_atom>::with<std::string>,
  caf::replies_to<call_atom, call_request>::with<call_reply>,
  caf::replies_to<call_atom, local_call>::with<call_reply>,
  caf::replies_to<exec_atom, std::vector<call_request>>::with<std::vector<call_reply>>,
  caf::replies_to<reconfig_atom, std::string>::with<bool>>;

/// One running instance of a deployment: enforces batching and feeds its executors. `init`
/// answers the call target routers should use.
using replica_actor = caf::typed_actor<
  caf::replies_to<init_atom>::with<replica_ready>,
  caf::replies_to<call_atom, call_request>::with<call_reply>,
  caf::replies_to<call_atom, local_call>::with<call_reply>,
  caf::reacts_to<reconfig_atom, std::string, batch_settings>,
  caf::reacts_to<flush_atom>,
  caf::reacts_to<abort_atom>>;

/// Per deployment: picks a replica (power of two choices), queues when all are busy, sheds load
/// beyond max_queued_requests, re-routes requests whose replica stopped before starting them.
/// `drain`: a direct caller freed a slot the router may be waiting for (direct_route.hpp).
using router_actor = caf::typed_actor<
  caf::replies_to<call_atom, call_request>::with<call_reply>,
  caf::reacts_to<update_atom, replica_set>,
  caf::replies_to<status_atom>::with<router_status>,
  caf::reacts_to<abort_atom>,
  caf::reacts_to<reap_atom, caf::actor_addr>,
  caf::reacts_to<lost_atom, caf::node_id, std::string>,
  caf::reacts_to<flush_atom>,
  caf::reacts_to<drain_atom>>;

/// Owns the desired state (the config): applies configs, replaces failed replicas, reports
/// status as Ray Serve's JSON, and stops everything on drain. `routes` answers the current
/// routes and v2 models; `load`/`unload` (a v2 model name) start or stop a model deployment's
/// replicas without touching the others, answering once it serves (load) or at once (unload).
using controller_actor = caf::typed_actor<
  caf::replies_to<apply_atom, std::string>::with<apply_result>,
  caf::replies_to<status_atom>::with<std::string>,
  caf::replies_to<routes_atom>::with<apply_result>,
  caf::replies_to<load_atom, std::string>::with<apply_result>,
  caf::replies_to<unload_atom, std::string>::with<apply_result>,
  caf::reacts_to<registry_atom, registry_version>,
  caf::reacts_to<node_atom, node_event>,
  caf::reacts_to<settle_atom>,
  caf::reacts_to<abort_atom>,
  caf::replies_to<drain_atom>::with<bool>>;

/// A worker node (`actorserve node`), published on its port. A head proves it holds the node's
/// token (hello gives a one-time challenge; join answers it) and gets a session; spawn starts a
/// replica for that session and answers its handle; ping answers the number of replicas the
/// session has there; leave stops them. Anything with an unknown session is refused.
using node_actor = caf::typed_actor<
  caf::replies_to<hello_atom>::with<std::string>,
  caf::replies_to<join_atom, join_request>::with<join_reply>,
  caf::replies_to<spawn_atom, uint64_t, replica_spec>::with<caf::actor>,
  caf::replies_to<ping_atom, uint64_t>::with<uint64_t>,
  caf::reacts_to<leave_atom, uint64_t>,
  caf::reacts_to<watchdog_atom>>;

} // namespace serve
