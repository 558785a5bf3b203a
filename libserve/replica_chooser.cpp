#include "libserve/replica_chooser.hpp"

namespace serve {

std::optional<size_t> replica_chooser::choose(const std::vector<replica_load>& replicas) {
  candidates_.clear();
  for (size_t i = 0; i < replicas.size(); ++i)
    if (replicas[i].alive && replicas[i].in_flight < replicas[i].max_in_flight)
      candidates_.push_back(i);
  if (candidates_.empty())
    return std::nullopt;
  if (candidates_.size() == 1)
    return candidates_.front();
  std::uniform_int_distribution<size_t> pick(0, candidates_.size() - 1);
  size_t a = pick(rng_);
  size_t b = pick(rng_);
  while (b == a)
    b = pick(rng_);
  size_t first = candidates_[a];
  size_t second = candidates_[b];
  return replicas[second].in_flight < replicas[first].in_flight ? second : first;
}

} // namespace serve
