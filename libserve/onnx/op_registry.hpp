// Operator kernels and how the executor finds them: by (domain, op type, opset version).
//
// For each operator, implementations register under the ONNX "since version" of the semantics
// they implement. A model with opset N for a domain gets the implementation with the highest
// since-version <= N; none means the model is refused at load time, naming op, domain, version.
//
// A factory runs once per node at load time ("compiling" it: reading and validating attributes,
// precomputing what it can) and returns a kernel that runs many times. Kernels are immutable
// after construction and run() is called concurrently from several threads: keep no mutable
// state in them.
#pragma once

#include <functional>
#include <mutex>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "libserve/onnx/graph.hpp"
#include "libserve/tensor.hpp"

namespace serve::onnx_ir {

/// An output value that is not a plain tensor: ZipMap's list of {label: probability} maps.
/// Rendered as JSON objects by the payload layer.
struct map_sequence {
  /// Keys: either int64 labels or string labels (one of the two is used).
  std::vector<int64_t> int_keys;
  std::vector<std::string> string_keys;
  /// values[row][k] is the value for key k of row `row`.
  std::vector<std::vector<float>> values;
};

/// One value flowing through the graph.
struct value {
  tensor t;
  /// Set instead of `t` for ZipMap outputs.
  std::shared_ptr<map_sequence> maps;
};

class op_kernel {
public:
  virtual ~op_kernel() = default;
  /// Computes the node's outputs. `inputs[i]` is nullptr for an omitted optional input.
  /// `outputs` has one (default-constructed) entry per node output. Throws
  /// serve_exception(errc::invalid_argument) for shapes/dtypes the op cannot take.
  virtual void run(const std::vector<const value*>& inputs, std::vector<value>& outputs) const = 0;
};

/// What a factory may look at while compiling a node.
struct compile_context {
  /// The opset version of the node's domain in this model.
  int64_t opset = 0;
  /// Constant inputs known at load time (initializers, Constant outputs), by value name;
  /// lets a factory precompute (e.g. pre-pack GEMM weights). May be null. Valid only while the
  /// factory runs (the loader then moves the tensors into the executor): a kernel keeps copies
  /// or pre-packed forms, never pointers into it.
  const std::map<std::string, tensor>* constants = nullptr;
};

using op_factory = std::function<std::unique_ptr<op_kernel>(const node&, const compile_context&)>;

//// The registry of all operators. Thread-safe.
class op_registry {
public:
  static op_registry& global();

  void add(const std::string& domain, const std::string& op_type, int since_version,
           op_factory factory);

  /// The factory for `op_type` in `domain` at `opset`, or nullptr when not implemented.
  const op_factory* find(const std::string& domain, const std::string& op_type,
                         int64_t opset) const;

  /// The since-version find() would pick, or 0.
  int since_version(const std::string& domain, const std::string& op_type, int64_t opset) const;

  /// "domain:op" of every registered operator, sorted.
  std::vector<std::string> list() const;

private:
  struct entry {
    int since_version;
    op_factory factory;
  };
  mutable std::mutex mtx_;
  std::map<std::pair<std::string, std::string>, std::vector<entry>> ops_; // protected by mtx_
};

/// The built-in operators, one function per family (each in its own ops_*.cpp). Called once by
/// op_registry::global(); explicit calls rather than static registrars, because objects of a
/// static library that nothing references are not linked.
void register_structural_ops(op_registry& registry); // ops_structural.cpp
void register_math_ops(op_registry& registry);       // ops_math.cpp
void register_ml_ops(op_registry& registry);         // ops_ml.cpp

} // namespace serve::onnx_ir
