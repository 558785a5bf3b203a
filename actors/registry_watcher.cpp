#include "actors/registry_watcher.hpp"

#include <algorithm>
#include <memory>

#include <caf/all.hpp>

#include "libserve/error.hpp"
#include "libserve/future.hpp"
#include "libserve/registry/model_uri.hpp"
#include "libserve/registry/registry_store.hpp"

namespace serve {

namespace {

using poll_atom = caf::atom_constant<caf::atom("poll")>;

registry_version poll_once(const registry_watch_options& opts) {
  registry_version out;
  out.application = opts.application;
  out.deployment = opts.deployment;
  try {
    auto store = registry::open_registry(opts.registry_uri, "");
    auto found = store->resolve(registry::model_uri::parse(opts.uri));
    out.version = found.version;
  } catch (...) {
    out.error = current_exception_info().message;
  }
  return out;
}

/// Longest wait between polls while the registry cannot be read.
constexpr std::chrono::milliseconds max_backoff{300'000};

caf::behavior watcher_impl(caf::event_based_actor* self, controller_actor controller,
                           registry_watch_options opts) {
  self->send(self, poll_atom::value);
  auto next_wait = std::make_shared<std::chrono::milliseconds>(opts.interval);
  return {
    [=](poll_atom) {
      auto report = poll_once(opts);
      // While the registry cannot be read, wait twice as long each time (up to 5 minutes);
      // back to the configured interval as soon as it answers.
      *next_wait = report.error.empty() ? opts.interval
                                        : std::min(max_backoff, *next_wait * 2);
      self->send(controller, registry_atom::value, std::move(report));
      self->delayed_send(self, *next_wait, poll_atom::value);
    },
  };
}

} // namespace

bool needs_registry_watch(const std::string& uri) {
  try {
    auto parsed = registry::model_uri::parse(uri);
    return parsed.kind == registry::model_uri_kind::alias
           || parsed.kind == registry::model_uri_kind::stage
           || parsed.kind == registry::model_uri_kind::latest;
  } catch (...) {
    return false;
  }
}

caf::actor spawn_registry_watcher(caf::actor_system& sys, controller_actor controller,
                                  registry_watch_options opts) {
  return sys.spawn<caf::detached>(watcher_impl, std::move(controller), std::move(opts));
}

} // namespace serve
