// A loaded, compiled ONNX model: load once per replica, run many times from many threads.
//
//   auto model = onnx_model::load("models/iris/model.onnx");   // throws serve_exception
//   auto outputs = model->run({{"float_input", batch}});        // one graph execution
//
// Loading parses the protobuf with Debian's libonnx-dev classes (IR 3-10; the 1.12 checker is
// not used), reads tensors from raw_data or typed fields and external data files (relative to
// the model's folder, never escaping it), drops initializers from the user inputs, and compiles
// every node through the op_registry. An op or domain without an implementation refuses the
// model here, naming the op, its domain and opset version - never a wrong answer at run time.
// Thread-safe after load: run() is const.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "libserve/onnx/graph.hpp"
#include "libserve/onnx/op_registry.hpp"
#include "libserve/tensor.hpp"

namespace serve::onnx_ir {

struct model_info {
  /// User inputs and the graph outputs, as declared.
  std::vector<value_info> inputs;
  std::vector<value_info> outputs;
  /// Elements and bytes of all initializers.
  int64_t parameter_count = 0;
  size_t parameter_bytes = 0;
  int64_t ir_version = 0;
  std::map<std::string, int64_t> opsets;
  std::string producer;
  size_t node_count = 0;
};

class onnx_model {
public:
  /// Loads `path` (a .onnx file). Throws serve_exception: not_found when the file is missing,
  /// invalid_argument when it is not a model we can run (message names the reason).
  static std::shared_ptr<const onnx_model> load(const std::string& path);

  /// Loads from serialized bytes; external data files are looked up in `base_dir`.
  static std::shared_ptr<const onnx_model> load_bytes(const std::string& bytes,
                                                      const std::string& base_dir);

  const model_info& info() const { return info_; }
  /// The graph as it runs: after fusion and constant folding, nodes in execution order. Its
  /// initializers map is empty: the constant tensors were moved into the executor (info() has
  /// their sizes).
  const graph& ir() const { return graph_; }
  /// A constant tensor the graph as it runs reads (an initializer or a folded value), by name;
  /// nullptr when `name` is not one. Lets other executors (onnx/gpu_plan.hpp) take the weights.
  const tensor* constant(const std::string& name) const;

  /// Runs the graph once. `inputs` holds every user input by name; the result holds the graph
  /// outputs in info().outputs order. Throws serve_exception(invalid_argument) naming the input
  /// whose dtype or shape does not match the declaration, or the op that could not take its
  /// operands; serve_exception(internal) for anything else.
  std::vector<value> run(const std::map<std::string, tensor>& inputs) const;

  ~onnx_model();

private:
  onnx_model() = default;
  struct compiled_node;
  struct value_slots;
  graph graph_;
  model_info info_;
  std::vector<compiled_node> plan_;    // topological order
  std::unique_ptr<value_slots> slots_; // where each value lives during run(); constants owned
};

/// Reads a serialized TensorProto file (ONNX backend test data: input_0.pb, output_0.pb).
/// Throws serve_exception(invalid_argument) when it cannot.
tensor load_tensor_proto_file(const std::string& path);

} // namespace serve::onnx_ir
