// The bench latency histogram: percentile accuracy, edges, merging.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "apps/actorserve/latency_histogram.hpp"

using serve::bench::latency_histogram;

namespace {

/// The value of rank ceil(p% of n) in `sorted`, as latency_histogram::percentile defines it.
uint64_t exact_percentile(const std::vector<uint64_t>& sorted, double percent) {
  auto rank = static_cast<size_t>(std::ceil(percent / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::max<size_t>(rank, 1) - 1];
}

} // namespace

TEST_CASE("percentiles of a known distribution are within 0.4 %") {
  // Log-normal latencies from about 10 us to several seconds.
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> dist(std::log(2e6), 1.5);
  std::vector<uint64_t> values;
  latency_histogram h;
  for (int i = 0; i < 100'000; ++i) {
    auto v = static_cast<uint64_t>(dist(rng)) + 1;
    values.push_back(v);
    h.record(v);
  }
  std::sort(values.begin(), values.end());
  for (double p : {0.1, 1.0, 10.0, 50.0, 90.0, 99.0, 99.9, 99.99}) {
    CAPTURE(p);
    double exact = static_cast<double>(exact_percentile(values, p));
    double reported = static_cast<double>(h.percentile(p));
    CHECK(std::abs(reported - exact) <= 0.004 * exact);
  }
  CHECK(h.count() == values.size());
  CHECK(h.min_ns() == values.front());
  CHECK(h.max_ns() == values.back());
  CHECK(h.percentile(100) == values.back());
}

TEST_CASE("values below 256 ns are reported exactly") {
  latency_histogram h;
  for (uint64_t v = 0; v < 256; ++v)
    h.record(v);
  CHECK(h.percentile(50) == 127);
  CHECK(h.percentile(1) == 2);
  CHECK(h.percentile(100) == 255);
  CHECK(h.mean_ns() == doctest::Approx(127.5));
}

TEST_CASE("an empty histogram reports zero for every statistic") {
  latency_histogram h;
  CHECK(h.count() == 0);
  CHECK(h.percentile(50) == 0);
  CHECK(h.percentile(100) == 0);
  CHECK(h.mean_ns() == 0.0);
  CHECK(h.min_ns() == 0);
  CHECK(h.max_ns() == 0);
}

TEST_CASE("a percentile never lies outside the recorded range") {
  latency_histogram h;
  h.record(1'000'001); // the bucket's midpoint is above the only value
  CHECK(h.percentile(0) == 1'000'001);
  CHECK(h.percentile(50) == 1'000'001);
  CHECK(h.percentile(99.9) == 1'000'001);
}

TEST_CASE("a value beyond about 4.9 hours lands in the last bucket and is still the max") {
  latency_histogram h;
  uint64_t huge = uint64_t{1} << 50;
  h.record(1000);
  h.record(huge);
  CHECK(h.max_ns() == huge);
  CHECK(h.percentile(100) == huge);
  CHECK(h.percentile(99) <= huge);
  CHECK(h.percentile(99) > (uint64_t{1} << 43));
}

TEST_CASE("merging two histograms equals recording everything into one") {
  latency_histogram a, b, both;
  for (uint64_t v = 1; v <= 5000; v += 7) {
    (v % 2 ? a : b).record(v * 997);
    both.record(v * 997);
  }
  a.merge(b);
  CHECK(a.count() == both.count());
  CHECK(a.min_ns() == both.min_ns());
  CHECK(a.max_ns() == both.max_ns());
  CHECK(a.mean_ns() == doctest::Approx(both.mean_ns()));
  for (double p : {1.0, 25.0, 50.0, 75.0, 99.0, 99.9})
    CHECK(a.percentile(p) == both.percentile(p));
}
