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

std::shared_ptr<replica_slot> direct_route::take_slot(const snapshot& snap) {
  if (snap.replicas.empty())
    return nullptr;
  thread_local replica_chooser chooser;
  thread_local std::vector<replica_load> loads;
  const auto& replicas = snap.replicas;
  loads.resize(replicas.size());
  for (size_t i = 0; i < replicas.size(); ++i)
    loads[i] = replica_load{replicas[i]->in_flight.load(std::memory_order_relaxed),
                            snap.max_ongoing, !replicas[i]->retired.load(std::memory_order_relaxed)};
  auto index = chooser.choose(loads);
  if (!index || !replicas[*index]->try_acquire(snap.max_ongoing))
    return nullptr; // all busy, or another caller took the last slot
  auto& slot = replicas[*index];
  if (slot->retired.load()) {
    // Retired meanwhile: the router may be waiting for this count to drop.
    slot->in_flight.fetch_sub(1);
    wake_router();
    return nullptr;
  }
  direct_calls_.fetch_add(1, std::memory_order_relaxed);
  return slot;
}

std::shared_ptr<replica_slot> direct_route::acquire() {
  if (queued_.load() != 0 || waiting_.load() != 0)
    return nullptr; // first come, first served
  return take_slot(*std::atomic_load(&current_));
}

direct_route::admit_result direct_route::admit(grant_fn grant) {
  admit_result out;
  if (queued_.load() != 0)
    return out; // calls wait in the router: join them there (first come, first served)
  auto snap = std::atomic_load(&current_);
  if (snap->replicas.empty())
    return out;
  if (waiting_.load() == 0)
    if (auto slot = take_slot(*snap)) {
      out.kind = admission::granted;
      out.slot = std::move(slot);
      return out;
    }
  std::lock_guard<std::mutex> guard(mtx_);
  if (snap->max_queued >= 0
      && waiters_.size() + queued_.load() >= static_cast<uint64_t>(snap->max_queued)) {
    rejected_.fetch_add(1, std::memory_order_relaxed);
    out.kind = admission::rejected;
    out.reason = "Request dropped due to backpressure (num_queued_requests="
                 + std::to_string(waiters_.size() + queued_.load())
                 + ", max_queued_requests=" + std::to_string(snap->max_queued) + ").";
    return out;
  }
  // Count ourselves as waiting, then look once more (a release in between reads the count).
  waiting_.fetch_add(1);
  if (waiters_.empty())
    if (auto slot = take_slot(*snap)) {
      waiting_.fetch_sub(1);
      out.kind = admission::granted;
      out.slot = std::move(slot);
      return out;
    }
  out.kind = admission::waiting;
  out.key = next_key_++;
  waiters_.push_back(waiter{out.key, std::move(grant)});
  count_waiting(1);
  return out;
}

bool direct_route::cancel(uint64_t key) {
  std::lock_guard<std::mutex> guard(mtx_);
  auto i = std::find_if(waiters_.begin(), waiters_.end(),
                        [&](const waiter& w) { return w.key == key; });
  if (i == waiters_.end())
    return false;
  waiters_.erase(i);
  waiting_.fetch_sub(1);
  count_waiting(-1);
  return true;
}

void direct_route::grant_waiters(
  std::vector<std::pair<grant_fn, std::shared_ptr<replica_slot>>>& granted) {
  auto snap = std::atomic_load(&current_);
  while (!waiters_.empty()) {
    std::shared_ptr<replica_slot> slot;
    if (!snap->replicas.empty()) {
      if (queued_.load() != 0)
        break; // the router's calls first
      slot = take_slot(*snap);
      if (!slot)
        break;
    } // else: the route closed; the waiter asks the router
    granted.emplace_back(std::move(waiters_.front().grant), std::move(slot));
    waiters_.pop_front();
    waiting_.fetch_sub(1);
    count_waiting(-1);
  }
}

void direct_route::hand_out() {
  if (waiting_.load() == 0)
    return;
  std::vector<std::pair<grant_fn, std::shared_ptr<replica_slot>>> granted;
  {
    std::lock_guard<std::mutex> guard(mtx_);
    grant_waiters(granted);
  }
  for (auto& [grant, slot] : granted)
    grant(std::move(slot)); // outside the lock: a grant posts to its caller's thread
}

void direct_route::release(replica_slot& slot) {
  slot.in_flight.fetch_sub(1);
  if (queued_.load() != 0 || slot.retired.load() || watch_releases_.load())
    wake_router();
  hand_out();
}

void direct_route::wake_router() {
  if (auto router = caf::actor_cast<caf::actor>(router_))
    caf::anon_send(router, drain_atom::value);
}

void direct_route::count_waiting(double delta) {
  if (queued_gauge_.valid())
    queued_gauge_.add(delta);
  if (pending_gauge_.valid())
    pending_gauge_.add(delta);
}

void direct_route::set_gauges(metrics::gauge queued, metrics::gauge pending) {
  std::lock_guard<std::mutex> guard(mtx_);
  queued_gauge_ = queued;
  pending_gauge_ = pending;
}

void direct_route::publish(std::vector<std::shared_ptr<replica_slot>> replicas,
                           uint64_t max_ongoing, int64_t max_queued) {
  auto next = std::make_shared<snapshot>();
  next->replicas = std::move(replicas);
  next->max_ongoing = std::max<uint64_t>(1, max_ongoing);
  next->max_queued = max_queued;
  std::atomic_store(&current_, std::shared_ptr<const snapshot>(std::move(next)));
  hand_out(); // new replicas or a higher cap free slots; a closed route sends waiters away
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
