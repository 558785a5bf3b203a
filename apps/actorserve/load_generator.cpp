// run_load: validates the options, splits the load over event-loop threads (load_worker),
// reports progress once a second and merges the results. See load_generator.hpp.
#include "apps/actorserve/load_generator.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <thread>

#include "apps/actorserve/load_worker.hpp"
#include "apps/actorserve/tcp_connect.hpp"

namespace serve::bench {

namespace {

/// Splits `total` into `parts` shares that differ by at most one.
size_t share(size_t total, size_t parts, size_t index) {
  return total / parts + (index < total % parts ? 1 : 0);
}

/// One plan per thread: its share of the connections and of the rate, the common clock marks.
std::vector<worker_plan> plan_workers(const load_options& opts, size_t threads) {
  bool open_loop = opts.rate_per_s > 0;
  worker_plan base;
  base.start_ns = now_ns() + 20'000'000; // every thread starts together
  base.window_start_ns = base.start_ns + opts.warmup.count();
  base.window_end_ns = base.window_start_ns + opts.duration.count();
  std::vector<worker_plan> plans;
  for (size_t i = 0; i < threads; ++i) {
    worker_plan plan = base;
    plan.connections = share(opts.connections, threads, i);
    plan.max_connections = share(opts.max_connections, threads, i);
    plan.rate_per_s = opts.rate_per_s / static_cast<double>(threads);
    // Even spacing over all threads: thread i's arrivals sit i/rate after thread 0's.
    plan.first_arrival_ns =
        base.start_ns + (open_loop ? static_cast<int64_t>(1e9 * i / opts.rate_per_s) : 0);
    plan.seed = opts.seed * 7919 + i;
    plans.push_back(plan);
  }
  return plans;
}

/// Calls `on_progress` once a second of the run (from plan.start_ns) until the window closes.
void report_progress(const worker_plan& plan, const std::vector<worker_progress>& progress,
                     const std::function<void(const load_progress&)>& on_progress) {
  for (int64_t tick = plan.start_ns + 1'000'000'000; tick < plan.window_end_ns;
       tick += 1'000'000'000) {
    std::this_thread::sleep_for(std::chrono::nanoseconds(tick - now_ns()));
    if (!on_progress)
      continue;
    load_progress p;
    p.elapsed_s = static_cast<double>(tick - plan.start_ns) / 1e9;
    p.warming_up = tick < plan.window_start_ns;
    for (auto& wp : progress) {
      p.completed += wp.completed.load(std::memory_order_relaxed);
      p.errors += wp.errors.load(std::memory_order_relaxed);
    }
    on_progress(p);
  }
}

} // namespace

std::string validate_load_options(const load_options& o) {
  if (o.requests.empty())
    return "requests must not be empty";
  if (o.threads < 1)
    return "threads must be >= 1; was 0";
  if (o.rate_per_s < 0 || !std::isfinite(o.rate_per_s))
    return "rate_per_s must be >= 0; was " + std::to_string(o.rate_per_s);
  if (o.rate_per_s == 0 && o.connections < 1)
    return "connections must be >= 1; was 0";
  if (o.rate_per_s > 0 && o.max_connections < o.threads)
    return "max_connections must be >= threads (" + std::to_string(o.threads) + "); was " +
           std::to_string(o.max_connections);
  if (o.duration.count() <= 0)
    return "duration must be > 0";
  if (o.warmup.count() < 0)
    return "warmup must be >= 0";
  if (o.timeout.count() <= 0)
    return "timeout must be > 0";
  return {};
}

bool run_load(const load_options& opts,
              const std::function<void(const load_progress&)>& on_progress, load_result& result,
              std::string& error) {
  error = validate_load_options(opts);
  if (!error.empty())
    return false;
  socket_address addr;
  error = resolve(opts.host, opts.port, addr);
  if (!error.empty())
    return false;

  bool open_loop = opts.rate_per_s > 0;
  size_t threads = std::min(opts.threads, open_loop ? opts.max_connections : opts.connections);
  auto plans = plan_workers(opts, threads);
  std::vector<worker_progress> progress(threads);
  std::vector<std::unique_ptr<load_worker>> workers;
  for (size_t i = 0; i < threads; ++i)
    workers.push_back(std::make_unique<load_worker>(opts, addr, plans[i], progress[i]));
  std::vector<std::thread> running;
  for (auto& w : workers)
    running.emplace_back([&w] { w->run(); });

  report_progress(plans.front(), progress, on_progress);
  for (auto& t : running)
    t.join();
  result = load_result{};
  for (auto& w : workers)
    result.merge(w->result());
  return true;
}

} // namespace serve::bench
