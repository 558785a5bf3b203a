// The part of a router that callers in its process share: each replica's in-flight count and
// whether calls wait in the router's queue.
//
// The router owns the replica set, the wait queue and every decision that needs time or state
// (deadlines, bounces, dead replicas). A caller in the same process — an HTTP io thread — may
// skip it: it takes a free slot on a replica itself (power of two choices over the shared
// counts) and sends its call straight there, so a call that needs no queue crosses one thread on
// its way into CAF and one on its way out. Because the router and every caller count on the
// same atomics, max_ongoing_requests holds across all of them. A caller that finds no free
// slot, or calls already waiting (first come, first served), asks the router instead.
//
// Ordering: a caller increments a replica's count and then reads its `retired` flag; the
// router sets the flag and then reads the count (both sequentially consistent), so a replica
// the router retires with no call on it cannot receive one afterwards. A caller releasing a slot
// decrements and then reads the queue length; the router publishes the queue length and then
// looks for a free slot, so a queued call cannot be left waiting beside a free replica.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "actors/interfaces.hpp"

namespace serve {

/// One replica as the router and its direct callers see it.
struct replica_slot {
  replica_slot(call_target_actor handle, std::string id)
    : handle(std::move(handle)), id(std::move(id)) {}

  const call_target_actor handle;
  const std::string id;
  /// Calls sent to the replica and not yet answered (by the router's or a direct caller's).
  std::atomic<uint64_t> in_flight{0};
  /// Set by the router when it stops offering the replica (removed, down, bounced a call).
  std::atomic<bool> retired{false};

  /// Takes a slot when fewer than `cap` calls are on the replica and it is not retired.
  bool try_acquire(uint64_t cap);
};

class direct_route {
  struct snapshot;

public:
  /// `router`: whom release() wakes (a weak reference: the route does not keep it alive).
  explicit direct_route(caf::actor_addr router) : router_(std::move(router)) {}

  /// One caller's copy of the published replicas, reloaded only after the router publishes
  /// again: loading the shared snapshot takes a lock (std::atomic_load of a shared_ptr, a
  /// mutex in libstdc++) and bumps a count that every io thread shares; this does neither.
  /// Owned and used by one thread.
  class view {
  private:
    friend class direct_route;
    uint64_t version_ = 0;
    std::shared_ptr<const snapshot> snap_;
  };

  /// Any thread: a slot on a replica for one call, or nullptr when the call must go to the
  /// router (no replica offered, every replica at its cap, calls already waiting). `cache`:
  /// the calling thread's view of this route, if it keeps one.
  std::shared_ptr<replica_slot> acquire(view* cache = nullptr);

  /// Any thread: a direct call's slot is free again; wakes the router when calls wait for a
  /// slot or the replica is being retired.
  void release(replica_slot& slot);

  /// Router: the replicas callers may use (empty: none — every call goes to the router).
  void publish(std::vector<std::shared_ptr<replica_slot>> replicas, uint64_t max_ongoing);

  /// Router: the length of its wait queue, published before it looks for a free slot again.
  void set_queued(size_t length) { queued_.store(length); }

  /// Router: while set, every release wakes the router (it is closing and waits for the last
  /// call to end).
  void watch_releases(bool on) { watch_releases_.store(on); }

  /// Calls that went straight to a replica (for the router's status).
  uint64_t direct_calls() const { return direct_calls_.load(std::memory_order_relaxed); }

private:
  struct snapshot {
    std::vector<std::shared_ptr<replica_slot>> replicas;
    uint64_t max_ongoing = 1;
  };

  caf::actor_addr router_;
  std::atomic<size_t> queued_{0};
  std::atomic<bool> watch_releases_{false};
  std::atomic<uint64_t> direct_calls_{0};
  std::shared_ptr<const snapshot> current_ = std::make_shared<const snapshot>();
  /// Bumped after each publish (views reload when it moved).
  std::atomic<uint64_t> version_{1};
};

/// The direct routes of the routers of this process, by router actor id: the router registers
/// its route when it starts and removes it when it ends; the ingress looks routes up when its
/// route table changes, never per request.
class direct_routes {
public:
  static direct_routes& global();

  void add(caf::actor_id router, std::shared_ptr<direct_route> route);
  void remove(caf::actor_id router);
  std::shared_ptr<direct_route> find(caf::actor_id router) const;

private:
  mutable std::mutex mtx_;
  std::vector<std::pair<caf::actor_id, std::shared_ptr<direct_route>>> routes_;
};

} // namespace serve
