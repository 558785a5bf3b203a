// The part of a router that callers in its process share: each replica's in-flight count and
// whether calls wait in the router's queue.
//
// The router owns the replica set, its own wait queue and every decision that needs its state
// (bounces, dead replicas, retiring, calls to other nodes). A caller in the same process — an HTTP io thread — may
// skip it: it takes a free slot on a replica itself (power of two choices over the shared
// counts) and sends its call straight there, so a call that needs no queue crosses one thread on
// its way into CAF and one on its way out. Because the router and every caller count on the
// same atomics, max_ongoing_requests holds across all of them. A caller that finds no free
// slot waits in the callers' queue here (FIFO, oldest first, one queue for all callers) and is
// sent when a call ends and frees a slot, on the thread that freed it; calls from elsewhere
// (handles, graphs) wait in the router's queue, which is served first.
//
// Ordering: a caller increments a replica's count and then reads its `retired` flag; the
// router sets the flag and then reads the count (both sequentially consistent), so a replica
// the router retires with no call on it cannot receive one afterwards. A caller releasing a slot
// decrements and then reads the queue length; the router publishes the queue length and then
// looks for a free slot, so a queued call cannot be left waiting beside a free replica. A
// caller that joins the callers' queue counts itself in `waiting_` and then looks for a slot
// once more; a release decrements and then reads `waiting_`: the same pairing.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "actors/interfaces.hpp"
#include "libserve/metrics.hpp"

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

/// What admit() decided for a call.
enum class admission {
  /// A slot is taken: send the call to `slot`'s replica.
  granted,
  /// Every replica is at its cap: the call waits; its grant function runs when a slot is free.
  waiting,
  /// The wait is full (max_queued_requests): answer 503 with `reason`.
  rejected,
  /// Send the call to the router (no replica offered, or calls wait in the router's queue).
  router,
};

class direct_route {
public:
  /// Runs when a waiting call got a slot (or nullptr: the route closed, ask the router), on
  /// the thread that freed the slot: it must hand the call over to its own thread.
  using grant_fn = std::function<void(std::shared_ptr<replica_slot>)>;

  struct admit_result {
    admission kind = admission::router;
    std::shared_ptr<replica_slot> slot;
    /// For waiting: the key for cancel(). For rejected: the message.
    uint64_t key = 0;
    std::string reason;
  };

  /// `router`: whom release() wakes (a weak reference: the route does not keep it alive).
  explicit direct_route(caf::actor_addr router) : router_(std::move(router)) {}

  /// Any thread: a slot on a replica for one call, or nullptr when the call must go to the
  /// router (no replica offered, every replica at its cap, calls already waiting).
  std::shared_ptr<replica_slot> acquire();

  /// Any thread: acquire(), or, when every replica is at its cap, a place in the callers' wait
  /// queue (FIFO over all callers, counted with the router's queue against max_queued).
  admit_result admit(grant_fn grant);

  /// Any thread: a waiting call gave up (its deadline passed). False when it got its slot
  /// already (its grant function runs or ran: it must release the slot).
  bool cancel(uint64_t key);

  /// Any thread: a direct call's slot is free again: it goes to the oldest waiting call, or
  /// the router hears of it when calls wait there, the replica is being retired or the router
  /// is closing.
  void release(replica_slot& slot);

  /// Router: after one of its own calls freed a slot, hands free slots to waiting callers.
  void hand_out();

  /// Router: the replicas callers may use (empty: none — every call goes to the router, and
  /// waiting calls are sent there).
  void publish(std::vector<std::shared_ptr<replica_slot>> replicas, uint64_t max_ongoing,
               int64_t max_queued);

  /// Router: the length of its wait queue, published before it looks for a free slot again.
  void set_queued(size_t length) { queued_.store(length); }

  /// Router: while set, every release wakes the router (it is closing and waits for the last
  /// call to end).
  void watch_releases(bool on) { watch_releases_.store(on); }

  /// Router: the gauges its queue length goes to; waiting callers count there too.
  void set_gauges(metrics::gauge queued, metrics::gauge pending);

  /// Calls that went straight to a replica (for the router's status).
  uint64_t direct_calls() const { return direct_calls_.load(std::memory_order_relaxed); }
  /// Callers waiting for a slot now, and those refused because the wait was full.
  uint64_t waiting() const { return waiting_.load(); }
  uint64_t rejected() const { return rejected_.load(std::memory_order_relaxed); }

private:
  struct snapshot {
    std::vector<std::shared_ptr<replica_slot>> replicas;
    uint64_t max_ongoing = 1;
    int64_t max_queued = -1;
  };
  struct waiter {
    uint64_t key;
    grant_fn grant;
  };

  std::shared_ptr<replica_slot> take_slot(const snapshot& snap);
  /// Under mtx_: moves the waiters that can have a slot now into `granted`.
  void grant_waiters(std::vector<std::pair<grant_fn, std::shared_ptr<replica_slot>>>& granted);
  void wake_router();
  void count_waiting(double delta);

  caf::actor_addr router_;
  std::atomic<size_t> queued_{0};
  std::atomic<bool> watch_releases_{false};
  std::atomic<uint64_t> direct_calls_{0};
  std::atomic<uint64_t> waiting_{0};
  std::atomic<uint64_t> rejected_{0};
  std::shared_ptr<const snapshot> current_ = std::make_shared<const snapshot>();
  metrics::gauge queued_gauge_, pending_gauge_;
  std::mutex mtx_;
  uint64_t next_key_ = 0;        // protected by mtx_
  std::deque<waiter> waiters_;   // protected by mtx_; oldest first
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
