// The GPU executor: runs a gpu_plan (gpu_plan.hpp) on one CUDA device for a model deployment's
// replica.
//
// Construction uploads the weights once (kernels::cuda::prepare_linear) on the replica's own
// stream. run() takes one batch: its rows are copied into pinned host staging, sent to the
// device asynchronously, the layers run (the fused whole-MLP kernel when it supports the row
// count and precision, else one fused GEMM+bias+activation launch per layer), then Softmax /
// LogSoftmax and ArgMax, and the results come back asynchronously; the calling thread waits for
// the batch's completion event, then builds the graph outputs (gpu_plan_outputs).
//
// Double buffering: a replica with max_concurrent_batches = k calls run() from k executor
// threads. Each batch in flight takes its own set of staging buffers and device workspaces from
// a small pool (grown on demand, so it holds at most k sets), so one batch's host staging and
// output copying overlap another batch's kernels. The stream is shared: enqueueing is
// serialised by a mutex, waiting is per batch (its own event), outside the mutex. Workspaces
// grow to the largest batch seen (powers of two, from 32 rows): the row count of a batch is
// not bounded by max_batch_size (a request may carry many rows), so they are not pre-sized.
//
// Errors: a CUDA error that leaves the device usable (out of memory, ...) fails the batch with
// serve_exception(errc::internal); a sticky one (the device context is corrupted) throws
// serve::replica_failure, which takes the replica down so the controller replaces it.
// Built without CUDA, make_gpu_executor always throws.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "libserve/onnx/gpu_plan.hpp"

namespace serve::onnx_ir {

struct gpu_executor_options {
  /// The CUDA device (the N of "cuda:N").
  int device = 0;
  /// "tf32", "fp32", "fp16" or "bf16" (see the deployment's "precision").
  std::string precision = "tf32";
};

/// Thread-safe: run() may be called from several threads at once.
class gpu_executor {
public:
  virtual ~gpu_executor() = default;

  /// Runs one batch. `input`: float32, batch first, plan().input_width values per row. Blocks
  /// the calling thread until the results are on the host - call it from an executor's own
  /// thread, never from a CAF scheduler thread. Throws as described in the file comment.
  virtual std::vector<value> run(const tensor& input) = 0;

  virtual const gpu_plan& plan() const = 0;
};

/// Makes the stream and uploads the plan's layers to opts.device. Throws serve_exception
/// (internal) when that fails, naming the CUDA error; always in builds without CUDA.
std::unique_ptr<gpu_executor> make_gpu_executor(std::shared_ptr<const gpu_plan> plan,
                                                const gpu_executor_options& opts);

} // namespace serve::onnx_ir
