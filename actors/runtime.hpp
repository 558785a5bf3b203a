// Setting up an actor system for ActorServe: message types, the error category and the
// scheduler settings measured to suit request/response serving (notes/caf-0.17.md).
#pragma once

#include <cstddef>

#include <caf/fwd.hpp>

#include "libserve/config.hpp"

namespace serve {

struct scheduler_options {
  /// CAF worker threads. 0 = min(hardware threads, 4).
  size_t worker_threads = 0;
  /// "sharing" (one shared queue: ~30 us idle hops) or "stealing" (CAF's default: ~120 us).
  const char* policy = "sharing";
};

/// Registers ActorServe's type-ID block and error category and applies `sched`.
void configure_actor_system(caf::actor_system_config& cfg, const scheduler_options& sched);

/// Loads CAF's network layer (the middleman, for heads with nodes and for nodes) and, when
/// `tls` has a certificate, its OpenSSL module with that certificate, key and CA file.
void configure_network(caf::actor_system_config& cfg, const tls_options& tls);

} // namespace serve
