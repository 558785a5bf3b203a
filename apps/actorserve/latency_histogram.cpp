// The latency histogram's bucket layout and percentile search. See latency_histogram.hpp.
#include "apps/actorserve/latency_histogram.hpp"

#include <algorithm>
#include <cmath>

namespace serve::bench {

namespace {

// Values below 256 ns have a bucket each; above, every power of two [2^k, 2^(k+1)) is split
// into 128 equal buckets, indexed shift * 128 + (ns >> shift) with shift = k - 7.
constexpr uint64_t exact_below = 256;
constexpr uint64_t half_buckets = 128;
constexpr uint64_t max_shift = 36; // up to 2^44 ns, about 4.9 hours
constexpr size_t bucket_count = max_shift * half_buckets + exact_below;

} // namespace

latency_histogram::latency_histogram() : counts_(bucket_count, 0) {}

size_t latency_histogram::index_of(uint64_t ns) {
  if (ns < exact_below)
    return static_cast<size_t>(ns);
  uint64_t shift = 63 - __builtin_clzll(ns) - 7;
  if (shift > max_shift)
    return bucket_count - 1;
  return static_cast<size_t>(shift * half_buckets + (ns >> shift));
}

uint64_t latency_histogram::midpoint_of(size_t index) {
  if (index < exact_below)
    return index;
  uint64_t shift = index / half_buckets - 1;
  uint64_t sub = index - shift * half_buckets;
  return (sub << shift) + ((uint64_t{1} << shift) >> 1);
}

void latency_histogram::record(uint64_t ns) {
  ++counts_[index_of(ns)];
  ++count_;
  sum_ns_ += ns;
  min_ns_ = std::min(min_ns_, ns);
  max_ns_ = std::max(max_ns_, ns);
}

void latency_histogram::merge(const latency_histogram& other) {
  for (size_t i = 0; i < counts_.size(); ++i)
    counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ns_ += other.sum_ns_;
  min_ns_ = std::min(min_ns_, other.min_ns_);
  max_ns_ = std::max(max_ns_, other.max_ns_);
}

uint64_t latency_histogram::percentile(double percent) const {
  if (count_ == 0)
    return 0;
  if (percent >= 100)
    return max_ns_;
  auto rank = static_cast<uint64_t>(std::ceil(percent / 100.0 * static_cast<double>(count_)));
  rank = std::max<uint64_t>(rank, 1);
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank)
      return std::clamp(midpoint_of(i), min_ns_, max_ns_);
  }
  return max_ns_;
}

} // namespace serve::bench
