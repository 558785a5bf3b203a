// The node link: the head's side of one worker node.
//
// It connects to the node through CAF's middleman (BASP over TCP, or TLS through CAF's OpenSSL
// module when the cluster has certificates), proves the shared token (hello -> challenge ->
// join with HMAC-SHA256, libserve/node_token.hpp), then pings the node every
// heartbeat_interval_s. It tells the controller `node_event`s: up (with the node actor and the
// session) once joined; lost, with the reason, when the connection breaks (the node actor's
// down_msg: a SIGKILLed node is seen at once), when a ping is not answered within
// heartbeat_timeout_s (a stopped or partitioned node that sends no RST), or when the join was
// refused. After a loss or a failed attempt it tries again every reconnect_interval_s, so a node
// that comes back rejoins by itself. `leave` ends the session on the node (the head's
// shutdown). Nothing here blocks: the connect goes through the middleman actor's request.
#pragma once

#include <string>

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/interfaces.hpp"
#include "libserve/config.hpp"

namespace serve {

using node_link_actor = caf::typed_actor<caf::reacts_to<connect_atom>,
                                         caf::reacts_to<ping_atom, uint64_t>,
                                         caf::reacts_to<leave_atom>>;

struct node_link_options {
  node_config node;
  cluster_options cluster;
  /// The token (from cluster.token_file), or "" to send an empty proof.
  std::string token;
  /// Random per head process (join_request::head_id).
  std::string head_id;
  /// Where node_events go.
  controller_actor controller;
};

node_link_actor spawn_node_link(caf::actor_system& sys, node_link_options opts);

} // namespace serve
