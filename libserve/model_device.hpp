// Where a model deployment's replica runs its graph: the CPU executor (onnx_model::run) or a GPU
// executor (onnx/gpu_executor.hpp), chosen once at start by the deployment's "device"
// (device_selection.hpp). Request parsing, validation, batching and reply formatting stay in
// model_deployment.cpp; this only replaces "run the graph on this batch of inputs".
//
// "auto" that picked a GPU whose executor cannot be set up (out of memory, ...) falls back to
// the CPU and says why; an explicit "cuda"/"cuda:N" fails the replica's start instead.
// Thread-safe after construction (run() may be called from several executor threads).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "libserve/deployment.hpp"
#include "libserve/device_selection.hpp"
#include "libserve/onnx/gpu_executor.hpp"
#include "libserve/payload.hpp"

namespace serve {

class model_device {
public:
  /// Chooses the device for ctx.device / ctx.precision / ctx.replica_index; `query` reports the
  /// CUDA devices (injected by tests). Throws serve_exception(invalid_argument) when an
  /// explicit GPU request cannot be honoured, naming the reason.
  model_device(const deployment_context& ctx, std::shared_ptr<const onnx_ir::onnx_model> model,
               const kernels::cuda::device_query_result& query);
  /// The same, asking the CUDA runtime.
  model_device(const deployment_context& ctx, std::shared_ptr<const onnx_ir::onnx_model> model);

  /// Runs the graph once on `feed` (every input by name). Throws as onnx_model::run on the CPU
  /// and as gpu_executor::run on a GPU (replica_failure for a sticky device error).
  std::vector<onnx_ir::value> run(const std::map<std::string, tensor>& feed) const;

  /// "cpu" or "cuda:N".
  const std::string& device() const { return choice_.device; }
  /// Why this device ("requested", "built without CUDA (...): using CPU", ...).
  const std::string& reason() const { return choice_.reason; }
  bool on_gpu() const { return gpu_ != nullptr; }

  /// Adds "device", "device_reason" and, on a GPU, "precision" and "gpu_plan" to an open JSON
  /// object (the deployment's describe()).
  void describe(json_writer& w) const;

private:
  std::shared_ptr<const onnx_ir::onnx_model> model_;
  std::string precision_;
  device_choice choice_;
  std::unique_ptr<onnx_ir::gpu_executor> gpu_;
};

} // namespace serve
