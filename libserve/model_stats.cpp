#include "libserve/model_stats.hpp"

#include <chrono>
#include <cmath>

namespace serve {

namespace {

std::mutex directory_mtx;
std::map<std::string, std::shared_ptr<model_statistics>>& directory() { // protected by directory_mtx
  static auto* models = new std::map<std::string, std::shared_ptr<model_statistics>>;
  return *models;
}

double to_us(int64_t ns) {
  return ns > 0 ? static_cast<double>(ns) / 1000.0 : 0.0;
}

uint64_t to_ns(double us) {
  return static_cast<uint64_t>(std::llround(us * 1000.0));
}

void write_duration(json_writer& w, const char* key, uint64_t count, uint64_t ns) {
  w.Key(key);
  w.StartObject();
  w.Key("count");
  w.Uint64(count);
  w.Key("ns");
  w.Uint64(ns);
  w.EndObject();
}

} // namespace

std::shared_ptr<model_statistics> model_statistics::of(const std::string& application,
                                                       const std::string& deployment) {
  std::lock_guard<std::mutex> guard(directory_mtx);
  auto& slot = directory()[application + "/" + deployment];
  if (!slot)
    slot = std::make_shared<model_statistics>(deployment);
  return slot;
}

std::shared_ptr<model_statistics> model_statistics::find(const std::string& application,
                                                         const std::string& deployment) {
  std::lock_guard<std::mutex> guard(directory_mtx);
  auto i = directory().find(application + "/" + deployment);
  return i == directory().end() ? nullptr : i->second;
}

model_statistics::model_statistics(const std::string& model, const std::string& version) {
  auto& reg = metrics::registry::global();
  const metrics::label_set labels{{"model", model}, {"version", version}};
  auto phase = [&](const char* name) {
    metrics::label_set l = labels;
    l.emplace_back("phase", name);
    return l;
  };
  request_success_ = reg.get_counter("nv_inference_request_success",
                                     "Number of successful inference requests, all batch sizes",
                                     labels);
  request_failure_ = reg.get_counter("nv_inference_request_failure",
                                     "Number of failed inference requests, all batch sizes",
                                     labels);
  inference_count_ = reg.get_counter(
    "nv_inference_count", "Number of inferences performed (each row of a batch counts)", labels);
  exec_count_ = reg.get_counter("nv_inference_exec_count",
                                "Number of model executions performed (a batch counts once)",
                                labels);
  request_duration_us_ = reg.get_counter("nv_inference_request_duration_us",
                                         "Cumulative inference request duration in microseconds",
                                         labels);
  queue_.us = reg.get_counter("nv_inference_queue_duration_us",
                              "Cumulative inference queuing duration in microseconds", labels);
  compute_input_.us = reg.get_counter(
    "nv_inference_compute_input_duration_us",
    "Cumulative compute input duration in microseconds (parsing and batching inputs)", labels);
  compute_infer_.us = reg.get_counter("nv_inference_compute_infer_duration_us",
                                      "Cumulative compute inference duration in microseconds",
                                      labels);
  compute_output_.us = reg.get_counter(
    "nv_inference_compute_output_duration_us",
    "Cumulative inference compute output duration in microseconds (splitting and encoding)",
    labels);
  // What Triton's statistics need beyond its metrics: durations of successes and failures
  // apart, and a count per phase.
  const char* split_help = "Cumulative request duration in microseconds by outcome and phase "
                           "(the parts of GET /v2/models/{m}/stats)";
  const char* count_help = "Requests counted per outcome and phase (GET /v2/models/{m}/stats)";
  success_.count = request_success_;
  fail_.count = request_failure_;
  success_.us = reg.get_counter("actorserve_inference_phase_duration_us", split_help,
                                phase("success"));
  fail_.us = reg.get_counter("actorserve_inference_phase_duration_us", split_help, phase("fail"));
  queue_.count = reg.get_counter("actorserve_inference_phase_count", count_help, phase("queue"));
  compute_input_.count = reg.get_counter("actorserve_inference_phase_count", count_help,
                                         phase("compute_input"));
  compute_infer_.count = reg.get_counter("actorserve_inference_phase_count", count_help,
                                         phase("compute_infer"));
  compute_output_.count = reg.get_counter("actorserve_inference_phase_count", count_help,
                                          phase("compute_output"));
}

void model_statistics::record_request(bool ok, int64_t duration_ns, int64_t queue_ns) {
  auto& outcome = ok ? success_ : fail_;
  outcome.count.inc();
  outcome.us.inc(to_us(duration_ns));
  request_duration_us_.inc(to_us(duration_ns));
  queue_.count.inc();
  queue_.us.inc(to_us(queue_ns));
}

void model_statistics::record_compute(int64_t input_ns, int64_t infer_ns, int64_t output_ns) {
  compute_input_.count.inc();
  compute_input_.us.inc(to_us(input_ns));
  compute_infer_.count.inc();
  compute_infer_.us.inc(to_us(infer_ns));
  compute_output_.count.inc();
  compute_output_.us.inc(to_us(output_ns));
}

void model_statistics::record_execution(uint64_t batch_size, uint64_t inferences,
                                        int64_t input_ns, int64_t infer_ns, int64_t output_ns) {
  exec_count_.inc();
  inference_count_.inc(static_cast<double>(inferences));
  last_inference_ms_.store(std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count(),
                           std::memory_order_relaxed);
  std::lock_guard<std::mutex> guard(mtx_);
  auto& row = batches_[inferences]; // Triton's batch size: rows, not requests
  (void)batch_size;
  ++row.count;
  row.input_ns += input_ns;
  row.infer_ns += infer_ns;
  row.output_ns += output_ns;
}

void model_statistics::write_json(json_writer& w, const std::string& name,
                                  const std::string& version) const {
  auto pair = [&](const char* key, const duration_pair& d) {
    write_duration(w, key, static_cast<uint64_t>(d.count.value()), to_ns(d.us.value()));
  };
  w.StartObject();
  w.Key("name");
  w.String(name.c_str());
  w.Key("version");
  w.String(version.c_str());
  w.Key("last_inference");
  w.Int64(last_inference_ms_.load(std::memory_order_relaxed));
  w.Key("inference_count");
  w.Uint64(static_cast<uint64_t>(inference_count_.value()));
  w.Key("execution_count");
  w.Uint64(static_cast<uint64_t>(exec_count_.value()));
  w.Key("inference_stats");
  w.StartObject();
  pair("success", success_);
  pair("fail", fail_);
  pair("queue", queue_);
  pair("compute_input", compute_input_);
  pair("compute_infer", compute_infer_);
  pair("compute_output", compute_output_);
  write_duration(w, "cache_hit", 0, 0);
  write_duration(w, "cache_miss", 0, 0);
  w.EndObject();
  w.Key("batch_stats");
  w.StartArray();
  {
    std::lock_guard<std::mutex> guard(mtx_);
    for (auto& [size, row] : batches_) {
      w.StartObject();
      w.Key("batch_size");
      w.Uint64(size);
      write_duration(w, "compute_input", row.count, static_cast<uint64_t>(row.input_ns));
      write_duration(w, "compute_infer", row.count, static_cast<uint64_t>(row.infer_ns));
      write_duration(w, "compute_output", row.count, static_cast<uint64_t>(row.output_ns));
      w.EndObject();
    }
  }
  w.EndArray();
  w.EndObject();
}

} // namespace serve
