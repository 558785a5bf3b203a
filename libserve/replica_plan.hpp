// What the controller does to a deployment's replicas, decided apart from the actor: which
// replicas to start and on which node, which to stop. A pure function of the replicas' states,
// the target and the nodes that are up (test/libserve/replica_plan_test.cpp); the controller
// (actors/controller.cpp, reconcile) carries the plan out and keeps the bookkeeping that needs
// its actors (spawning, the registry roll, publishing the set to the router).
//
// Rules, in order:
// 1. Missing replicas of the current generation start, each on the usable node with the fewest
//    of them (the first such node in placement order). With no usable node they wait
//    (`unplaced`), and the deployment says why.
// 2. Rebalance: when the target is met and nothing is starting, while the usable nodes' counts
//    differ by two or more, one more replica starts on the emptiest (the extra is stopped on
//    the fullest once it runs, by rule 3 of a later plan).
// 3. Extra replicas stop only when none is starting (capacity never dips below the target while
//    a replacement loads): the newest on the node with the most, a replica on a node it may not
//    use first, a starting one before a running one on a tie.
// 4. The old generation (code that changed) stops once the new one runs whole; its replicas
//    still starting stop at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace serve {

/// Ray Serve's replica states.
enum class replica_phase { starting, running, stopping };

/// A replica as the plan sees it.
struct replica_view {
  std::string id;
  uint64_t generation = 0;
  replica_phase phase = replica_phase::starting;
  /// "head" or a worker node's name.
  std::string node = "head";
};

/// Replicas of `generation` not stopping (starting or running), and those running. `Replica`:
/// anything with `generation` and `phase` (replica_view, the controller's records).
template <class Replica>
size_t count_active(const std::vector<Replica>& replicas, uint64_t generation) {
  size_t n = 0;
  for (auto& r : replicas)
    n += r.generation == generation && r.phase != replica_phase::stopping;
  return n;
}

template <class Replica>
size_t count_running(const std::vector<Replica>& replicas, uint64_t generation) {
  size_t n = 0;
  for (auto& r : replicas)
    n += r.generation == generation && r.phase == replica_phase::running;
  return n;
}

struct replica_plan {
  /// Replicas to start, by node, in order.
  std::vector<std::string> start_on;
  /// Replicas to stop, by id, in order.
  std::vector<std::string> stop;
  /// Replicas wanted that no usable node can take now.
  size_t unplaced = 0;
  /// After the plan: the current generation runs exactly the target.
  bool whole = false;
};

/// A model version that failed to load in a registry roll, and when it may be tried again:
/// the delay starts at the registry's poll interval (at least 1 s) and doubles with each
/// failure, up to 5 minutes; a version that serves resets it. Time (s) is passed in.
class version_backoff {
public:
  /// `version` failed at `now_s`; returns the delay before it may be tried again.
  double failed(const std::string& version, double now_s, double first_delay_s);
  /// Whether a roll to `version` may start at `now_s`.
  bool may_try(const std::string& version, double now_s) const {
    return version != failed_ || now_s >= retry_at_s_;
  }
  /// The version that failed last, or "".
  const std::string& failed_version() const { return failed_; }
  /// A version serves: the next failure starts from the first delay again.
  void reset();

private:
  std::string failed_;
  double retry_at_s_ = 0;
  double delay_s_ = 0;
};

/// The plan for `replicas` (every replica of the deployment, any generation), `generation`
/// being the current code, `target` the replicas wanted and `usable` the nodes of its placement
/// that are up, in placement order.
replica_plan plan_replicas(const std::vector<replica_view>& replicas, uint64_t generation,
                           size_t target, const std::vector<std::string>& usable);

} // namespace serve
