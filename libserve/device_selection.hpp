// Which device a model deployment's replica computes on, and why.
//
// A deployment asks for a device in its config ("device": "cpu" | "auto" | "cuda" | "cuda:N");
// a replica combines that request with what the CUDA runtime reports (kernels/cuda/
// device_query.hpp) and with whether its graph compiles to a GPU plan (onnx/gpu_plan.hpp):
//
//   request   | no usable GPU / graph without GPU kernels     | GPU usable, graph supported
//   cpu       | cpu ("requested")                             | cpu ("requested")
//   auto      | cpu, with the reason ("...: using CPU")       | cuda:(replica % devices)
//   cuda      | error: the replica fails to start, saying why | cuda:(replica % devices)
//   cuda:N    | error (also when N >= the device count)       | cuda:N
//
// Pure functions: the device query and the graph's support are passed in, so every row of that
// table is testable on a machine without a GPU. Thread-safe (no state).
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "kernels/cuda/device_query.hpp"

namespace serve {

/// A parsed "device" config value.
struct device_request {
  enum class kind { cpu, auto_select, cuda_any, cuda_index };
  kind type = kind::cpu;
  /// The N of "cuda:N"; -1 otherwise.
  int index = -1;
};

/// What parse_device_request accepts, for error messages.
inline constexpr const char* device_request_syntax =
  "\"cpu\", \"auto\", \"cuda\" or \"cuda:N\" (N a device number >= 0)";

/// Parses "cpu", "auto", "cuda", "cuda:N" (N decimal, 0..9999, no sign or spaces). nullopt for
/// anything else.
std::optional<device_request> parse_device_request(const std::string& text);

/// True for "tf32", "fp32", "fp16" and "bf16" (the deployment's "precision").
bool is_known_precision(const std::string& text);
inline constexpr const char* precision_syntax = "\"tf32\", \"fp32\", \"fp16\" or \"bf16\"";

/// Everything the choice depends on.
struct device_selection_input {
  device_request request;
  /// The config text of the request, quoted in messages ("cuda:1").
  std::string request_text;
  /// What the CUDA runtime reported (a build without CUDA reports 0 devices and says so).
  kernels::cuda::device_query_result devices;
  /// "" when the graph compiles to a GPU plan; otherwise why not ("graph has
  /// TreeEnsembleClassifier (ai.onnx.ml) which has no GPU kernel").
  std::string graph_unsupported;
  /// The replica's number within its deployment: replicas spread over GPUs round-robin by it.
  size_t replica_index = 0;
};

/// The outcome: a device, or an error when an explicit GPU request cannot be honoured.
struct device_choice {
  /// "cpu" or "cuda:N"; empty when error is set.
  std::string device;
  /// N of "cuda:N"; -1 for the CPU.
  int cuda_index = -1;
  /// Why this device ("built without CUDA (...): using CPU", "auto: 2 CUDA devices, ...").
  std::string reason;
  /// Set when the replica must fail to start (explicit "cuda"/"cuda:N" not possible).
  std::string error;

  bool on_gpu() const { return cuda_index >= 0; }
};

/// Applies the table above. Never throws.
device_choice select_device(const device_selection_input& in);

} // namespace serve
