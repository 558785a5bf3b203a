#include "actors/direct_route.hpp"

#include <algorithm>

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>

#include "libserve/replica_chooser.hpp"

namespace serve {

bool replica_slot::try_acquire(uint64_t cap) {
  uint64_t n = in_flight.load();
  while (n < cap)
    if (in_flight.compare_exchange_weak(n, n + 1))
      return true;
  return false;
}

std::shared_ptr<replica_slot> direct_route::acquire(view* cache) {
  if (queued_.load() != 0)
    return nullptr; // first come, first served: the router hands out the next free slot
  view fresh;
  view& v = cache != nullptr ? *cache : fresh;
  uint64_t version = version_.load(); // read before the snapshot: a newer one reloads later
  if (v.version_ != version || !v.snap_) {
    v.version_ = version;
    v.snap_ = std::atomic_load(&current_);
  }
  const snapshot* snap = v.snap_.get();
  if (snap->replicas.empty())
    return nullptr;
  thread_local replica_chooser chooser;
  thread_local std::vector<replica_load> loads;
  const auto& replicas = snap->replicas;
  loads.resize(replicas.size());
  for (size_t i = 0; i < replicas.size(); ++i)
    loads[i] = replica_load{replicas[i]->in_flight.load(std::memory_order_relaxed),
                            snap->max_ongoing, !replicas[i]->retired.load(std::memory_order_relaxed)};
  auto index = chooser.choose(loads);
  if (!index || !replicas[*index]->try_acquire(snap->max_ongoing))
    return nullptr; // all busy, or another caller took the last slot: the router decides
  auto& slot = replicas[*index];
  if (slot->retired.load()) {
    release(*slot); // retired meanwhile: the router may be waiting for this count to drop
    return nullptr;
  }
  direct_calls_.fetch_add(1, std::memory_order_relaxed);
  return slot;
}

void direct_route::release(replica_slot& slot) {
  slot.in_flight.fetch_sub(1);
  if (queued_.load() != 0 || slot.retired.load() || watch_releases_.load())
    if (auto router = caf::actor_cast<caf::actor>(router_))
      caf::anon_send(router, drain_atom::value);
}

void direct_route::publish(std::vector<std::shared_ptr<replica_slot>> replicas,
                           uint64_t max_ongoing) {
  auto next = std::make_shared<snapshot>();
  next->replicas = std::move(replicas);
  next->max_ongoing = std::max<uint64_t>(1, max_ongoing);
  std::atomic_store(&current_, std::shared_ptr<const snapshot>(std::move(next)));
  version_.fetch_add(1); // after the store: a view that sees the new version loads it
}

direct_routes& direct_routes::global() {
  static direct_routes instance;
  return instance;
}

void direct_routes::add(caf::actor_id router, std::shared_ptr<direct_route> route) {
  std::lock_guard<std::mutex> guard(mtx_);
  routes_.emplace_back(router, std::move(route));
}

void direct_routes::remove(caf::actor_id router) {
  std::lock_guard<std::mutex> guard(mtx_);
  routes_.erase(std::remove_if(routes_.begin(), routes_.end(),
                               [&](const auto& r) { return r.first == router; }),
                routes_.end());
}

std::shared_ptr<direct_route> direct_routes::find(caf::actor_id router) const {
  std::lock_guard<std::mutex> guard(mtx_);
  for (auto& [id, route] : routes_)
    if (id == router)
      return route;
  return nullptr;
}

} // namespace serve
