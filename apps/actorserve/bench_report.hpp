// How `actorserve bench` reports its steps: a text block per step and a table for sweeps on
// stdout, or one JSON document, and a CSV file with one row per step (the input of --plot).
// Latencies are reported in microseconds; percentiles come from the run's latency histogram.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "apps/actorserve/load_result.hpp"

namespace serve::cli {

/// One step of a run (one connection count or one rate) with what it measured.
struct step_report {
  bool open_loop = false;
  size_t connections = 0; // closed loop: the count; open loop: the peak
  size_t max_connections = 0;
  size_t threads = 0;
  double rate = 0;
  bool poisson = false;
  double warmup_s = 0;
  bench::load_result result;

  /// The open loop sent at least 90 % of the offered rate (always true for the closed loop).
  bool kept_up() const { return !open_loop || result.sent_per_s() >= 0.9 * rate; }
};

// The printers write to stdout and are meant for the command's one thread.

/// The text block of step `index` (of `steps`), with a warning when the rate was not reached.
void print_step(const step_report& s, size_t index, size_t steps);

/// One line per step: mode, connections, rate, req/s, p50-p99.9 and errors.
void print_sweep_table(const std::vector<step_report>& steps);

/// {"target": target, "steps": [...]}, pretty-printed.
void print_json(const std::string& target, const std::vector<step_report>& steps);

/// Writes the CSV (header and one row per step); false, after saying so on stderr, when the
/// file cannot be written.
bool write_csv(const std::string& path, const std::vector<step_report>& steps);

} // namespace serve::cli
