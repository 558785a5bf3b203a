#include "libserve/replica_plan.hpp"

#include <algorithm>
#include <map>

namespace serve {

namespace {

/// The plan's working copy of the replicas: starts and stops are applied to it as they are
/// decided, so each rule sees the ones before.
struct simulation {
  std::vector<replica_view> replicas;
  uint64_t generation;
  const std::vector<std::string>& usable;

  bool current(const replica_view& r) const {
    return r.generation == generation && r.phase != replica_phase::stopping;
  }

  size_t active() const { return count_active(replicas, generation); }
  size_t running() const { return count_running(replicas, generation); }

  bool any_starting() const {
    return std::any_of(replicas.begin(), replicas.end(), [&](const replica_view& r) {
      return r.generation == generation && r.phase == replica_phase::starting;
    });
  }

  /// Current replicas per usable node (0 for a usable node without any).
  std::map<std::string, size_t> per_usable_node() const {
    std::map<std::string, size_t> counts;
    for (auto& node : usable)
      counts[node] = 0;
    for (auto& r : replicas)
      if (current(r) && counts.count(r.node) > 0)
        ++counts[r.node];
    return counts;
  }

  /// Starts one on the usable node with the fewest current replicas; false when none is usable.
  bool start_one(replica_plan& plan) {
    if (usable.empty())
      return false;
    std::map<std::string, size_t> counts;
    for (auto& r : replicas)
      if (current(r))
        ++counts[r.node];
    std::string best = usable.front();
    for (auto& node : usable)
      if (counts[node] < counts[best])
        best = node;
    replica_view started;
    started.generation = generation;
    started.phase = replica_phase::starting;
    started.node = best;
    replicas.push_back(std::move(started));
    plan.start_on.push_back(best);
    return true;
  }

  /// Stops one extra current replica (rule 3).
  void stop_one(replica_plan& plan) {
    auto counts = per_usable_node();
    replica_view* victim = nullptr;
    size_t victim_count = 0;
    for (auto i = replicas.rbegin(); i != replicas.rend(); ++i) {
      if (!current(*i))
        continue;
      auto c = counts.count(i->node) > 0 ? counts[i->node] : SIZE_MAX; // a node it may not use
      bool better = victim == nullptr || c > victim_count
                    || (c == victim_count && i->phase == replica_phase::starting
                        && victim->phase != replica_phase::starting);
      if (better) {
        victim = &*i;
        victim_count = c;
      }
    }
    if (victim == nullptr)
      return;
    victim->phase = replica_phase::stopping;
    plan.stop.push_back(victim->id);
  }
};

} // namespace

double version_backoff::failed(const std::string& version, double now_s, double first_delay_s) {
  constexpr double max_delay_s = 300;
  failed_ = version;
  delay_s_ = std::min(max_delay_s, delay_s_ > 0 ? delay_s_ * 2 : std::max(1.0, first_delay_s));
  retry_at_s_ = now_s + delay_s_;
  return delay_s_;
}

void version_backoff::reset() {
  failed_.clear();
  retry_at_s_ = 0;
  delay_s_ = 0;
}

replica_plan plan_replicas(const std::vector<replica_view>& replicas, uint64_t generation,
                           size_t target, const std::vector<std::string>& usable) {
  replica_plan plan;
  simulation sim{replicas, generation, usable};
  while (sim.active() < target)
    if (!sim.start_one(plan)) {
      plan.unplaced = target - sim.active();
      break;
    }
  if (sim.active() == target && target > 0 && !sim.any_starting()) {
    auto counts = sim.per_usable_node();
    size_t lo = SIZE_MAX, hi = 0;
    for (auto& [_, n] : counts) {
      lo = std::min(lo, n);
      hi = std::max(hi, n);
    }
    if (!counts.empty() && hi >= lo + 2)
      sim.start_one(plan);
  }
  if (!sim.any_starting()) {
    size_t guard = sim.replicas.size();
    while (sim.active() > target && guard-- > 0)
      sim.stop_one(plan);
  }
  plan.whole = sim.running() == target;
  for (auto& r : sim.replicas)
    if (r.generation != generation && r.phase != replica_phase::stopping
        && (plan.whole || r.phase == replica_phase::starting)) {
      r.phase = replica_phase::stopping;
      plan.stop.push_back(r.id);
    }
  return plan;
}

} // namespace serve
