// The node: what `actorserve node` runs on a worker machine. It hosts replicas for heads.
//
// Protocol (node_actor in interfaces.hpp): a head asks `hello` for a one-time challenge and
// `join`s with HMAC-SHA256(token, challenge) (libserve/node_token.hpp); a wrong proof is
// refused and logged on both sides. A joined head gets a session: `spawn` starts a replica for
// it (writing the model files the head shipped below work_dir first) and answers the replica's
// handle, which the head's controller and routers then use like a local one; `ping` keeps the
// session alive; `leave` ends it. A session ends - its replicas stop and its files go - when
// the head leaves, when the head's link actor goes down (the head process died or its
// connection broke), when the head joins again (a restarted or reconnected head), or when no
// ping came for the session's heartbeat timeout. So a head that restarts never leaves orphaned
// replicas behind.
//
// The node actor is detached: writing shipped model files blocks only its own thread.
#pragma once

#include <string>

#include <caf/fwd.hpp>

#include "actors/interfaces.hpp"

namespace serve {

struct node_options {
  /// Shown to heads and in log lines.
  std::string name;
  /// The token heads must prove; "" = any head may join (a warning is logged at start).
  std::string token;
  /// Where model files shipped by heads are written (one folder per session and replica).
  std::string work_dir;
  /// The CUDA device summary reported to heads ("" = none).
  std::string devices;
};

/// Spawns the node actor (detached). Publishing it on a port is the caller's business.
node_actor spawn_node(caf::actor_system& sys, node_options opts);

} // namespace serve
