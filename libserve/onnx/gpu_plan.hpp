// The GPU plan: what a loaded ONNX graph becomes when a GPU replica runs it.
//
// The GPU executor (gpu_executor.hpp) does not interpret graphs; it runs one fixed pipeline
// over a batch of `rows` rows:
//
//   input [rows, ...] --(host: flatten to [rows, input_width])--> staged on the device
//     -> layers: y = act(x · W + b), one after the other (Gemm, MatMul[+Add], FusedGemm)
//     -> "scores" [rows, width]
//     -> optional normalization: Softmax or LogSoftmax over each row -> "normalized"
//     -> optional ArgMax over each row of scores or normalized -> "indices" (int64)
//     -> optional host-side label lookup: classes[index] -> "labels" (ArrayFeatureExtractor)
//
// compile_gpu_plan() maps a graph onto that pipeline, or says why it cannot, naming the first
// node that does not fit ("graph has TreeEnsembleClassifier (ai.onnx.ml) which has no GPU
// kernel"). Shape-only nodes (Shape, Gather, Unsqueeze, Concat, ... feeding a Reshape: what
// PyTorch's x.view(x.size(0), -1) exports to), Flatten, Reshape, Identity and same-type Cast are
// resolved at compile time, tracking the batch dimension symbolically. Each graph output becomes
// one of the pipeline's values with its shape (the batch dimension marked) and dtype.
//
// run_gpu_plan_reference() executes a plan with plain loops on the host: the tests compare it
// with the CPU graph executor, which checks the compilation on every fixture without a GPU.
// Plain data; no CUDA. A plan is immutable after compilation and may be read from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "libserve/onnx/model.hpp"

namespace serve::onnx_ir {

enum class gpu_activation { none, relu, sigmoid, tanh };

/// One dense layer y = act(x · weight + bias).
struct gpu_layer {
  /// The graph node it came from (for messages).
  std::string node;
  int64_t in_features = 0;
  int64_t out_features = 0;
  /// [in_features, out_features] row-major, Gemm's alpha and transB already applied.
  std::vector<float> weight;
  /// out_features values (Gemm's beta applied, a scalar C broadcast), or empty: no bias.
  std::vector<float> bias;
  gpu_activation act = gpu_activation::none;
};

/// Which pipeline value a graph output is.
enum class gpu_value { input, scores, normalized, indices, labels };

struct gpu_plan_output {
  std::string name;
  gpu_value source = gpu_value::scores;
  dtype type = dtype::float32;
  /// The output's shape; gpu_plan::batch_dim marks the batch dimension. Every dim before it is 1,
  /// so the values of one row are contiguous.
  std::vector<int64_t> shape;
};

struct gpu_plan {
  /// Marks the batch dimension in gpu_plan_output::shape.
  static constexpr int64_t batch_dim = -1;

  /// The model's only input (float32; its first dim is the batch).
  std::string input_name;
  /// Elements per row of the input (its non-batch dims multiplied).
  int64_t input_width = 0;
  std::vector<gpu_layer> layers;
  /// Computed only when an output or the ArgMax reads it (unused tails are pruned).
  enum class normalization { none, softmax, log_softmax } normalize = normalization::none;
  /// What ArgMax reads (input, scores or normalized); unset = no ArgMax, or nothing reads it.
  std::optional<gpu_value> argmax_of;
  /// ArrayFeatureExtractor's classes (1-D); only when an output is gpu_value::labels.
  std::optional<tensor> classes;
  /// In the graph's output order.
  std::vector<gpu_plan_output> outputs;

  /// Elements per row of scores (the last layer's out_features, or input_width without layers).
  int64_t width() const { return layers.empty() ? input_width : layers.back().out_features; }
  /// Whether some output is this value (then the executor copies it to the host); labels
  /// count as reading indices.
  bool outputs_read(gpu_value v) const;
  /// "3 layers 784-512-512-10 (relu, relu, none), softmax, argmax" (for describe()).
  std::string summary() const;
};

/// A plan, or why the graph has none (exactly one is set).
struct gpu_plan_result {
  std::optional<gpu_plan> plan;
  std::string unsupported;
};

/// Maps `model`'s graph (as it runs: fused, folded) onto the GPU pipeline. Never throws.
gpu_plan_result compile_gpu_plan(const onnx_model& model);

/// The graph outputs from the pipeline's host-side results for `rows` rows: scores and
/// normalized hold rows x width floats, indices rows values (each may be null when the plan
/// does not need it). Shared by the GPU executor and the reference. Throws serve_exception
/// (internal) when an index is outside the classes (cannot happen for a valid plan).
std::vector<value> gpu_plan_outputs(const gpu_plan& plan, int64_t rows, const float* input,
                                    const float* scores, const float* normalized,
                                    const int64_t* indices);

/// Runs the plan on the host in plain fp32 loops: the semantics the GPU executor implements.
/// `input` must be float32 with the batch as its first dim and input_width values per row.
std::vector<value> run_gpu_plan_reference(const gpu_plan& plan, const tensor& input);

} // namespace serve::onnx_ir
