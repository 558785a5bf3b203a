// The registry watcher of one model deployment pinned to an alias, a stage or "latest": every
// poll interval it resolves the deployment's model URI against its registry and tells the
// controller which version that is now (or why it could not tell). The controller rolls the
// deployment when the version changed.
//
// A detached actor (its own thread): resolving reads files, a database or a tracking server
// and may block. Protocol: it sends `registry_version{...}` to its parent after each poll,
// starting right away; while the registry cannot be read it polls with a doubling backoff (up to
// 5 minutes), back to the interval once it answers. It stops when told to (exit).
#pragma once

#include <chrono>
#include <string>

#include <caf/fwd.hpp>

#include "actors/interfaces.hpp"

namespace serve {

struct registry_watch_options {
  std::string application;
  std::string deployment;
  /// The deployment's model.uri and model.registry_uri.
  std::string uri;
  std::string registry_uri;
  /// Time between polls. > 0.
  std::chrono::milliseconds interval{10'000};
};

/// True when `uri` names a registry entry that can move (an alias, a stage or "latest"), i.e.
/// when a deployment of it needs a watcher. Never throws (a malformed URI is not watched; the
/// replica reports it).
bool needs_registry_watch(const std::string& uri);

/// Spawns the watcher; it reports to `controller`.
caf::actor spawn_registry_watcher(caf::actor_system& sys, controller_actor controller,
                                  registry_watch_options opts);

} // namespace serve
