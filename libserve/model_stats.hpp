// Per-model inference statistics in Triton's vocabulary, for GET /v2/models/{m}/stats and the
// nv_inference_* Prometheus metrics.
//
// A model deployment's replicas record into one model_statistics per (application, deployment),
// shared process-wide: per request its outcome, end-to-end and queue time; per execution (one
// graph run for a batch) the batch size and the compute_input / compute_infer / compute_output
// times. Counters live in the metrics registry (per-thread shards, merged on scrape); the
// per-batch-size table is updated once per execution under a mutex.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "libserve/metrics.hpp"
#include "libserve/payload.hpp"

namespace serve {

class model_statistics {
public:
  /// The statistics of a model deployment, created on first use; `model` is its v2 name (the
  /// deployment name) and labels the nv_inference_* series.
  static std::shared_ptr<model_statistics> of(const std::string& application,
                                              const std::string& deployment);
  /// The statistics of a deployment, or nullptr when it never recorded anything.
  static std::shared_ptr<model_statistics> find(const std::string& application,
                                                const std::string& deployment);

  explicit model_statistics(const std::string& model, const std::string& version = "1");

  /// One request answered: `ok` = success; duration = receipt to reply; queue = receipt to
  /// the start of its execution (both ns, 0 when unknown).
  void record_request(bool ok, int64_t duration_ns, int64_t queue_ns);
  /// One request's share of an execution: the execution's compute times (ns).
  void record_compute(int64_t input_ns, int64_t infer_ns, int64_t output_ns);
  /// One execution of `batch_size` requests covering `inferences` rows; batch_stats are keyed
  /// by rows, as Triton's.
  void record_execution(uint64_t batch_size, uint64_t inferences, int64_t input_ns,
                        int64_t infer_ns, int64_t output_ns);

  /// Writes one entry of Triton's "model_stats" list.
  void write_json(json_writer& w, const std::string& name, const std::string& version) const;

private:
  struct duration_pair {
    metrics::counter count;
    metrics::counter us;
  };
  struct batch_row {
    uint64_t count = 0;
    int64_t input_ns = 0, infer_ns = 0, output_ns = 0;
  };

  // Constant after construction.
  duration_pair success_, fail_, queue_, compute_input_, compute_infer_, compute_output_;
  metrics::counter request_success_, request_failure_, inference_count_, exec_count_;
  metrics::counter request_duration_us_;
  std::atomic<int64_t> last_inference_ms_{0};
  mutable std::mutex mtx_;
  std::map<uint64_t, batch_row> batches_; // protected by mtx_
};

} // namespace serve
