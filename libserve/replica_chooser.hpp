// Picks the replica for the next request: Ray Serve's "power of two choices".
//
// Among replicas that are alive and below their in-flight cap, sample two at random and take the
// one with fewer requests in flight (ties: the first sampled). With one candidate, take it; with
// none, the caller queues the request. The random source is injected for repeatable tests.
// Not thread-safe: accessed only from the owning router actor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <vector>

namespace serve {

/// What the chooser needs to know of one replica.
struct replica_load {
  size_t in_flight = 0;
  size_t max_in_flight = 1;
  bool alive = true;
};

class replica_chooser {
public:
  explicit replica_chooser(uint64_t seed = std::random_device{}()) : rng_(seed) {}

  /// Index of the chosen replica, or nullopt when every replica is dead or at its cap.
  std::optional<size_t> choose(const std::vector<replica_load>& replicas);

private:
  std::mt19937_64 rng_;
  std::vector<size_t> candidates_; // reused scratch space
};

} // namespace serve
