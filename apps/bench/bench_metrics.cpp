// How much a metric update costs when threads share one series: ns per counter::inc and per
// histogram::observe (Ray's latency buckets) with 1, 2 and 4 threads on the same handle, against
// the naive design, one shared std::atomic<uint64_t> fetch_add. Thread CPU time per update, so
// a flat column means no contention (cache-line bouncing shows up as CPU time; waiting for a
// core on a busy machine does not).
//
// Run: ./build/apps/bench_metrics
#include <atomic>
#include <cstdio>
#include <ctime>
#include <thread>
#include <vector>

#include "libserve/metrics.hpp"

namespace {

constexpr long updates_per_thread = 20'000'000;

double thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/// Per-thread CPU ns per update (wall time would count waiting for a core on a busy machine)
/// when `threads` threads each run `update` updates_per_thread times at once.
template <class F> double ns_per_update(int threads, F update) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<double> cpu_ns(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      update(); // the first touch allocates this thread's shard: not timed
      ++ready;
      while (!go.load())
        ;
      double start = thread_cpu_ns();
      for (long i = 0; i < updates_per_thread; ++i)
        update();
      cpu_ns[t] = thread_cpu_ns() - start;
    });
  while (ready.load() < threads)
    ;
  go = true;
  for (auto& t : pool)
    t.join();
  double total = 0;
  for (double ns : cpu_ns)
    total += ns;
  return total / threads / updates_per_thread;
}

} // namespace

int main() {
  serve::metrics::registry r;
  auto c = r.get_counter("bench_total", "Benchmark counter.", {{"deployment", "d"}});
  auto h = r.get_histogram("bench_ms", "Benchmark histogram.", serve::metrics::latency_ms_buckets(),
                           {{"deployment", "d"}});
  std::atomic<uint64_t> shared{0};
  std::printf("threads  counter::inc  histogram::observe  shared atomic fetch_add  (ns/update)\n");
  for (int threads : {1, 2, 4}) {
    double inc = ns_per_update(threads, [&] { c.inc(); });
    double observe = ns_per_update(threads, [&] { h.observe(42.0); });
    double atomic = ns_per_update(threads, [&] { shared.fetch_add(1, std::memory_order_relaxed); });
    std::printf("%7d  %12.2f  %18.2f  %23.2f\n", threads, inc, observe, atomic);
  }
  std::printf("(%u hardware threads)\n", std::thread::hardware_concurrency());
  return c.value() > 0 && shared.load() > 0 ? 0 : 1;
}
