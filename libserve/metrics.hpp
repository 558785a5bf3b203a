// A process-wide Prometheus metrics registry whose hot path does not contend.
//
// Metrics are declared once (get_counter / get_gauge / get_histogram: a locked map lookup, so
// callers keep the returned handle) and then updated through the handle from any thread: HTTP
// workers, CAF scheduler threads, executor threads. Each thread writes its own shard of slots:
// no lock, no allocation and no cache line shared with another writer once the thread has
// touched the series (a thread's first write to a registry allocates its 32 KiB shard index,
// the first write into each run of 512 slots a 4 KiB chunk). A scrape (render, value, read)
// takes the registry mutex and sums the shards, plus the totals folded in by threads that have
// exited. It may miss an increment still in flight; it never sees a torn value and never loses
// or double-counts one across a thread's exit.
//
// The exposition follows Prometheus text format 0.0.4, so the same registry serves Ray Serve's
// (ray_serve_*, latency in ms) and Triton's (nv_inference_*, latency in us) vocabularies.
//
// Invariants:
//  - a name keeps the kind, help, label names (in order) and buckets it was first declared with;
//  - the slots of a removed series are never reused, so a stale handle cannot write into a new
//    series; a registry holds at most 2^21 slots over its life (a counter or gauge takes 1, a
//    histogram bounds + 2), and get_* throws errc::internal past that.
//
// Thread-safe. Handles are plain values; they must not be used after their registry is
// destroyed (registry::global() never is).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace serve::metrics {

/// Label name -> value pairs, in the order given; every series of a family uses the same names.
using label_set = std::vector<std::pair<std::string, std::string>>;

class registry;

/// A monotonically increasing count. A default-constructed handle does nothing.
class counter {
public:
  counter() = default;
  /// Adds `v` to the calling thread's shard. `v` must be >= 0; negative or NaN is ignored.
  void inc(double v = 1.0) const;
  /// The total over all threads; 0 once the series was removed. Takes the registry mutex.
  double value() const;
  bool valid() const { return reg_ != nullptr; }

private:
  friend class registry;
  counter(registry* reg, uint32_t series, uint32_t slot)
      : reg_(reg), series_(series), slot_(slot) {}
  registry* reg_ = nullptr;
  uint32_t series_ = 0;
  uint32_t slot_ = 0;
};

/// A value that goes up and down (queue length, replicas alive). Any thread may add; the value
/// is the sum over threads. A default-constructed handle does nothing.
class gauge {
public:
  gauge() = default;
  void add(double delta) const;
  void inc() const { add(1); }
  void dec() const { add(-1); }
  /// Makes the value `v`. Meant for gauges that one thread sets (health, utilisation): it takes
  /// the registry mutex, and an add() racing with it from another thread may be lost.
  void set(double v) const;
  /// The sum over all threads; 0 once the series was removed. Takes the registry mutex.
  double value() const;
  bool valid() const { return reg_ != nullptr; }

private:
  friend class registry;
  gauge(registry* reg, uint32_t series, uint32_t slot) : reg_(reg), series_(series), slot_(slot) {}
  registry* reg_ = nullptr;
  uint32_t series_ = 0;
  uint32_t slot_ = 0;
};

/// Observations counted in buckets by upper bound (v <= bound), plus their sum and count.
/// A default-constructed handle does nothing.
class histogram {
public:
  struct snapshot {
    std::vector<double> upper_bounds;
    /// Per bucket, NOT cumulative; one more than upper_bounds, the last being +Inf.
    std::vector<uint64_t> counts;
    double sum = 0;
    uint64_t count = 0;
  };

  histogram() = default;
  /// Counts `v` in the calling thread's shard. NaN is ignored (it would poison the sum).
  void observe(double v) const;
  /// The totals over all threads; zero counts once the series was removed. Takes the mutex.
  snapshot read() const;
  bool valid() const { return reg_ != nullptr; }

private:
  friend class registry;
  histogram(registry* reg, uint32_t series, uint32_t slot, const std::vector<double>* bounds)
      : reg_(reg), bounds_(bounds), series_(series), slot_(slot) {}
  registry* reg_ = nullptr;
  const std::vector<double>* bounds_ = nullptr; // owned by the family, which is never freed
  uint32_t series_ = 0;
  uint32_t slot_ = 0;
};

class registry {
public:
  registry();
  ~registry();
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  /// The process's registry; intentionally leaked so threads still running at exit can use it.
  static registry& global();

  /// Declare-or-find. Names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*
  /// (not "__..."; not "le" on histograms). Throws serve_exception(errc::invalid_argument)
  /// naming the metric when the name was declared with another kind, help, label names or
  /// buckets, or when a name is malformed. Costs a map lookup under the mutex: keep the handle.
  counter get_counter(const std::string& name, const std::string& help,
                      const label_set& labels = {});
  gauge get_gauge(const std::string& name, const std::string& help, const label_set& labels = {});
  /// `upper_bounds` must be finite and strictly increasing; +Inf is implied. At most 500.
  histogram get_histogram(const std::string& name, const std::string& help,
                          const std::vector<double>& upper_bounds, const label_set& labels = {});

  /// Removes every series, of every family, that has label `label` == `value` (e.g. all series
  /// of an unloaded deployment). Their handles become no-ops; get_* creates a fresh series.
  void remove_series_with(const std::string& label, const std::string& value);

  /// Prometheus text exposition format 0.0.4: families sorted by name, series by label values.
  std::string render() const;

  class state; // opaque: public only so that metrics.cpp's helpers can name it

private:
  friend class counter;
  friend class gauge;
  friend class histogram;

  /// The calling thread's slot `index` (its chunk holds the whole series); nullptr while the
  /// thread is exiting. The hot path.
  std::atomic<double>* local_slot(uint32_t index) const;

  const uint64_t id_;            // unique over the process, never reused
  std::unique_ptr<state> state_; // families, shards and retired totals, behind its mutex
};

/// Ray Serve's default latency buckets in ms, 1 ms to 10 min: DEFAULT_LATENCY_BUCKET_MS in
/// python/ray/serve/_private/constants.py (older releases had 12 bounds, 1 to 5000).
inline const std::vector<double>& latency_ms_buckets() {
  static const std::vector<double> bounds{1,     2,     5,      10,     20,    50,   100,
                                          200,   300,   400,    500,    1000,  2000, 5000,
                                          10000, 60000, 120000, 300000, 600000};
  return bounds;
}

/// The same bounds in microseconds, for Triton-style *_us histograms.
inline const std::vector<double>& latency_us_buckets() {
  static const std::vector<double> bounds = [] {
    auto us = latency_ms_buckets();
    for (auto& b : us)
      b *= 1000;
    return us;
  }();
  return bounds;
}

} // namespace serve::metrics
