// A log-linear latency histogram for `actorserve bench`: records every reply's latency in O(1)
// with bounded memory and answers percentiles within 0.4 % of a recorded value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace serve::bench {

/// Log-linear histogram of latencies in nanoseconds: 128 linear sub-buckets per power of two,
/// so a percentile is reported within 0.4 % of a recorded value (bucket midpoint). Values from
/// 1 ns to about 4.9 hours; larger ones land in the last bucket.
///
/// Invariants: count() is the sum of the buckets; min_ns() <= every percentile <= max_ns().
/// Not thread-safe: each event loop records into its own and the results are merged.
class latency_histogram {
public:
  latency_histogram();
  void record(uint64_t ns);
  void merge(const latency_histogram& other);
  uint64_t count() const { return count_; }
  /// The latency below which `percent` % of the values lie (0 when empty). percent in [0, 100].
  uint64_t percentile(double percent) const;
  double mean_ns() const { return count_ ? static_cast<double>(sum_ns_) / count_ : 0.0; }
  uint64_t min_ns() const { return count_ ? min_ns_ : 0; }
  uint64_t max_ns() const { return max_ns_; }

private:
  static size_t index_of(uint64_t ns);
  static uint64_t midpoint_of(size_t index);

  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t sum_ns_ = 0;
  uint64_t min_ns_ = UINT64_MAX;
  uint64_t max_ns_ = 0;
};

} // namespace serve::bench
