// compile_gpu_plan (see gpu_plan.hpp): one pass over the nodes in execution order, tracking
// what each value is in terms of the pipeline.
//
// Every value the compiler meets is either data (a pipeline value with its shape, the batch
// dimension marked) or a shape vector computed from the batch size (Shape, Gather, ...). The
// layer chain may only grow at its end: every change (a layer added, a bias Add or an activation
// folded into the last layer) starts a new "step", and data of an older step may not be read
// again - the GPU keeps only the chain's current value. Once a Softmax or ArgMax has read the
// chain, the chain is closed.
#include "libserve/onnx/gpu_plan.hpp"

#include <algorithm>
#include <limits>
#include <map>

#include "kernels/cpu/gemm.hpp"
#include "libserve/onnx/fusion.hpp"

namespace serve::onnx_ir {

namespace {

using shape_t = std::vector<int64_t>;

/// In shape vectors (the values of Shape and friends): the batch size.
constexpr int64_t sym_rows = std::numeric_limits<int64_t>::min();
constexpr int64_t batch_dim = gpu_plan::batch_dim;

struct refusal {
  std::string reason;
};

struct tracked {
  bool is_shape = false;
  // data
  gpu_value stage = gpu_value::input;
  dtype type = dtype::float32;
  shape_t shape; // batch_dim marks the batch
  int step = 0;  // chain values (input, scores): the step that made them
  // shape vectors
  shape_t dims; // sym_rows marks the batch size
  bool scalar = false;
};

std::string domain_label(const std::string& domain) {
  return domain.empty() ? "ai.onnx" : domain;
}

bool default_domain_op(const node& n) {
  return n.domain.empty() || n.domain == "ai.onnx";
}

int64_t per_row(const shape_t& shape) {
  int64_t n = 1;
  for (auto d : shape)
    if (d != batch_dim)
      n *= d;
  return n;
}

/// The shape after reshaping data shaped `from` to `target` (sym_rows = the batch size, 0 =
/// copy, -1 = infer), when the batch stays a dimension of its own with only 1s before it.
std::optional<shape_t> reshaped(const shape_t& from, shape_t target, bool allowzero) {
  int rows_at = -1, infer_at = -1;
  int64_t known = 1;
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] == 0 && !allowzero) {
      if (i >= from.size())
        return std::nullopt;
      target[i] = from[i] == batch_dim ? sym_rows : from[i];
    }
    if (target[i] == sym_rows) {
      if (rows_at >= 0)
        return std::nullopt;
      rows_at = static_cast<int>(i);
    } else if (target[i] == -1) {
      if (infer_at >= 0)
        return std::nullopt;
      infer_at = static_cast<int>(i);
    } else if (target[i] < 0) {
      return std::nullopt;
    } else {
      known *= target[i];
    }
  }
  const int64_t row = per_row(from);
  if (rows_at < 0) { // the inferred dim is the batch when the rest holds exactly one row
    if (infer_at < 0 || known != row)
      return std::nullopt;
    rows_at = infer_at;
  } else if (infer_at >= 0) {
    if (known == 0 || row % known != 0)
      return std::nullopt;
    target[static_cast<size_t>(infer_at)] = row / known;
  } else if (known != row) {
    return std::nullopt;
  }
  target[static_cast<size_t>(rows_at)] = batch_dim;
  for (int i = 0; i < rows_at; ++i)
    if (target[static_cast<size_t>(i)] != 1)
      return std::nullopt;
  return target;
}

/// The values of an int64 (or int32) constant tensor.
std::vector<int64_t> int_values(const tensor& t) {
  std::vector<int64_t> v(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = t.type == dtype::int32 ? t.as<int32_t>()[i] : t.as<int64_t>()[i];
  return v;
}

class plan_compiler {
public:
  explicit plan_compiler(const onnx_model& model) : model_(model), g_(model.ir()) {}

  gpu_plan compile() {
    take_input();
    for (const node& n : g_.nodes)
      visit(n);
    map_outputs();
    prune_unread_tail();
    return std::move(plan_);
  }

private:
  [[noreturn]] static void refuse(const node& n, const std::string& why) {
    throw refusal{n.op_type + " node '" + n.name + "': " + why};
  }

  void take_input() {
    if (g_.inputs.size() != 1)
      throw refusal{"the GPU pipeline takes one input; the model has " +
                    std::to_string(g_.inputs.size())};
    const value_info& in = g_.inputs[0];
    if (in.type != dtype::float32)
      throw refusal{"input \"" + in.name + "\" is " + dtype_name(in.type) + "; the GPU pipeline "
                    "takes float32"};
    if (!in.has_shape || in.dims.empty())
      throw refusal{"input \"" + in.name + "\" declares no batch dimension"};
    tracked t;
    t.shape = in.dims;
    t.shape[0] = batch_dim;
    for (size_t d = 1; d < t.shape.size(); ++d)
      if (t.shape[d] <= 0)
        throw refusal{"input \"" + in.name + "\" has a dynamic or empty dimension " +
                      std::to_string(d) + " (" + shape_to_string(in.dims) + ")"};
    plan_.input_name = in.name;
    plan_.input_width = per_row(t.shape);
    values_[in.name] = t;
  }

  // ---- reading inputs ----------------------------------------------------------------------

  const tensor& constant_input(const node& n, size_t i, const char* what) const {
    const tensor* t = i < n.inputs.size() ? model_.constant(n.inputs[i]) : nullptr;
    if (t == nullptr)
      refuse(n, std::string(what) + " must be a constant");
    return *t;
  }

  const tracked& tracked_input(const node& n, size_t i) const {
    auto v = i < n.inputs.size() ? values_.find(n.inputs[i]) : values_.end();
    if (v == values_.end())
      refuse(n, "input " + std::to_string(i) + " is not computed from the model's input");
    return v->second;
  }

  /// A data input; chain values must be the chain's current one.
  const tracked& data_input(const node& n, size_t i) const {
    const tracked& t = tracked_input(n, i);
    if (t.is_shape)
      refuse(n, "input " + std::to_string(i) + " is a shape, not data");
    const bool chain = t.stage == gpu_value::input || t.stage == gpu_value::scores;
    if (chain && t.step != step_)
      refuse(n, "reads \"" + n.inputs[i] + "\", an intermediate value the GPU pipeline does not "
                "keep");
    return t;
  }

  /// The chain's current value as a [batch, width] matrix.
  const tracked& chain_matrix(const node& n, size_t i) const {
    const tracked& t = data_input(n, i);
    if (t.stage != gpu_value::input && t.stage != gpu_value::scores)
      refuse(n, "must read the layer chain's output");
    if (t.shape.size() != 2 || t.shape[0] != batch_dim)
      refuse(n, "reads a " + shape_to_string(t.shape) + " value (-1 = batch); the GPU pipeline "
                "needs [batch, features]");
    return t;
  }

  void define(const node& n, tracked t) {
    if (n.outputs.empty() || n.outputs[0].empty())
      refuse(n, "has no output");
    for (size_t k = 1; k < n.outputs.size(); ++k)
      if (!n.outputs[k].empty())
        refuse(n, "its output " + std::to_string(k) + " has no GPU kernel");
    values_[n.outputs[0]] = std::move(t);
  }

  void open_chain(const node& n) const {
    if (closed_)
      refuse(n, "changes the layer chain after a Softmax or ArgMax read it");
  }

  tracked chain_value(int64_t width) {
    tracked t;
    t.stage = gpu_value::scores;
    t.shape = {batch_dim, width};
    t.step = ++step_;
    return t;
  }

  // ---- nodes -------------------------------------------------------------------------------

  void visit(const node& n) {
    const std::string& op = n.op_type;
    if (n.domain == actorserve_domain && op == "FusedGemm")
      return add_layer(n);
    if (n.domain == ml_domain && op == "ArrayFeatureExtractor")
      return lookup_labels(n);
    if (!default_domain_op(n))
      throw refusal{"graph has " + op + " (" + domain_label(n.domain) +
                    ") which has no GPU kernel"};
    if (op == "Gemm" || op == "MatMul")
      return add_layer(n);
    if (op == "Add")
      return fold_bias(n);
    if (op == "Relu" || op == "Sigmoid" || op == "Tanh")
      return fold_activation(n, op);
    if (op == "Softmax" || op == "LogSoftmax")
      return normalize(n);
    if (op == "ArgMax")
      return argmax(n);
    if (op == "Identity" || op == "Cast")
      return alias(n);
    if (op == "Reshape" || op == "Flatten")
      return reshape(n);
    if (op == "Shape" || op == "Gather" || op == "Unsqueeze" || op == "Squeeze" || op == "Concat")
      return shape_op(n);
    throw refusal{"graph has " + op + " (ai.onnx) which has no GPU kernel"};
  }

  void add_layer(const node& n) {
    open_chain(n);
    const tracked& a = chain_matrix(n, 0);
    const bool matmul = n.op_type == "MatMul";
    if (!matmul && n.attr_int("transA", 0) != 0)
      refuse(n, "transA = 1 has no GPU kernel");
    const tensor& b = constant_input(n, 1, "B (the weights)");
    if (b.type != dtype::float32 || b.rank() != 2)
      refuse(n, "B must be a float32 matrix; it is " + std::string(dtype_name(b.type)) + " " +
                    shape_to_string(b.shape));
    const bool trans_b = !matmul && n.attr_int("transB", 0) != 0;
    const int64_t K = a.shape[1], N = trans_b ? b.shape[0] : b.shape[1];
    if ((trans_b ? b.shape[1] : b.shape[0]) != K)
      refuse(n, "B " + shape_to_string(b.shape) + " does not take " + std::to_string(K) +
                    " features");
    const float alpha = matmul ? 1.0f : n.attr_float("alpha", 1.0f);
    const float beta = matmul ? 0.0f : n.attr_float("beta", 1.0f);
    gpu_layer layer;
    layer.node = n.name;
    layer.in_features = K;
    layer.out_features = N;
    layer.weight.resize(static_cast<size_t>(K * N));
    const float* w = b.as<float>();
    const int64_t panels = n.attr_int(b_panel_width_attribute, 0); // the CPU kernel's layout
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < N; ++j)
        layer.weight[static_cast<size_t>(k * N + j)] =
            alpha * w[panels > 0 ? kernels::cpu::panel_offset(K, N, panels, k, j)
                      : trans_b  ? j * K + k
                                 : k * N + j];
    if (!matmul && n.inputs.size() > 2 && !n.inputs[2].empty())
      layer.bias = row_bias(n, constant_input(n, 2, "C (the bias)"), N, beta);
    if (n.domain == actorserve_domain)
      layer.act = activation_of(n, n.attr_string("activation", ""));
    plan_.layers.push_back(std::move(layer));
    define(n, chain_value(N));
  }

  /// C broadcast to out_features values, times beta. Refuses a C that depends on the row or
  /// would add dimensions to the result.
  std::vector<float> row_bias(const node& n, const tensor& c, int64_t N, float beta) const {
    bool row = c.type == dtype::float32 && c.rank() <= 2 &&
               (c.numel() == 1 || (!c.shape.empty() && c.shape.back() == N && c.numel() == N));
    if (!row)
      refuse(n, "bias " + std::string(dtype_name(c.type)) + " " + shape_to_string(c.shape) +
                    " is not one float32 row of " + std::to_string(N));
    std::vector<float> bias(static_cast<size_t>(N));
    for (int64_t j = 0; j < N; ++j)
      bias[static_cast<size_t>(j)] = beta * c.as<float>()[c.numel() == 1 ? 0 : j];
    return bias;
  }

  gpu_activation activation_of(const node& n, const std::string& name) const {
    if (name.empty())
      return gpu_activation::none;
    if (name == "Relu")
      return gpu_activation::relu;
    if (name == "Sigmoid")
      return gpu_activation::sigmoid;
    if (name == "Tanh")
      return gpu_activation::tanh;
    refuse(n, "activation " + name + " has no GPU kernel");
  }

  /// Add of a constant row to the last layer's output (a MatMul's bias fusion did not take).
  void fold_bias(const node& n) {
    open_chain(n);
    if (n.inputs.size() != 2)
      refuse(n, "needs two inputs");
    const bool data_first = values_.count(n.inputs[0]) > 0;
    const tracked& x = chain_matrix(n, data_first ? 0 : 1);
    if (plan_.layers.empty() || plan_.layers.back().act != gpu_activation::none)
      refuse(n, "adds to a value that is not a layer's product");
    gpu_layer& layer = plan_.layers.back();
    auto add = row_bias(n, constant_input(n, data_first ? 1 : 0, "the added value"),
                        x.shape[1], 1.0f);
    if (layer.bias.empty())
      layer.bias.assign(add.size(), 0.0f);
    for (size_t j = 0; j < add.size(); ++j)
      layer.bias[j] += add[j];
    define(n, chain_value(x.shape[1]));
  }

  void fold_activation(const node& n, const std::string& name) {
    open_chain(n);
    const tracked& x = chain_matrix(n, 0);
    if (plan_.layers.empty() || plan_.layers.back().act != gpu_activation::none)
      refuse(n, "follows no layer (an activation runs only in a layer's epilogue on the GPU)");
    plan_.layers.back().act = activation_of(n, name);
    define(n, chain_value(x.shape[1]));
  }

  void normalize(const node& n) {
    const tracked& x = chain_matrix(n, 0);
    const int64_t axis = n.attr_int("axis", g_.opset("") < 13 ? 1 : -1);
    if (axis != 1 && axis != -1)
      refuse(n, "axis " + std::to_string(axis) + " is not the feature axis");
    if (plan_.normalize != gpu_plan::normalization::none)
      refuse(n, "a second Softmax/LogSoftmax has no GPU kernel");
    plan_.normalize = n.op_type == "Softmax" ? gpu_plan::normalization::softmax
                                             : gpu_plan::normalization::log_softmax;
    closed_ = true;
    tracked t;
    t.stage = gpu_value::normalized;
    t.shape = x.shape;
    define(n, t);
  }

  void argmax(const node& n) {
    const tracked& x = tracked_input(n, 0).stage == gpu_value::normalized ? data_input(n, 0)
                                                                           : chain_matrix(n, 0);
    if (x.shape.size() != 2 || x.shape[0] != batch_dim)
      refuse(n, "reads a " + shape_to_string(x.shape) + " value; needs [batch, features]");
    const int64_t axis = n.attr_int("axis", 0);
    if (axis != 1 && axis != -1)
      refuse(n, "axis " + std::to_string(axis) + " is not the feature axis");
    if (g_.opset("") >= 12 && n.attr_int("select_last_index", 0) != 0)
      refuse(n, "select_last_index = 1 has no GPU kernel");
    if (plan_.argmax_of)
      refuse(n, "a second ArgMax has no GPU kernel");
    plan_.argmax_of = x.stage;
    closed_ = true;
    tracked t;
    t.stage = gpu_value::indices;
    t.type = dtype::int64;
    t.shape = n.attr_int("keepdims", 1) != 0 ? shape_t{batch_dim, 1} : shape_t{batch_dim};
    define(n, t);
  }

  /// ArrayFeatureExtractor(classes, indices): the class label of each row's ArgMax.
  void lookup_labels(const node& n) {
    const tensor& classes = constant_input(n, 0, "X (the classes)");
    const tracked& idx = data_input(n, 1);
    if (idx.stage != gpu_value::indices || classes.rank() != 1)
      refuse(n, "only a lookup of ArgMax results in a 1-D constant has a GPU form");
    if (classes.numel() < plan_.width()) // every index ArgMax can give must name a class
      refuse(n, "has " + std::to_string(classes.numel()) + " classes for " +
                    std::to_string(plan_.width()) + " scores");
    if (plan_.classes)
      refuse(n, "a second label lookup has no GPU kernel");
    plan_.classes = classes;
    tracked t;
    t.stage = gpu_value::labels;
    t.type = classes.type;
    t.shape = {1, batch_dim}; // a 1-D X gives [1, k] (the CPU kernel's shape)
    define(n, t);
  }

  void alias(const node& n) {
    tracked x = tracked_input(n, 0);
    if (!x.is_shape)
      data_input(n, 0); // refuses stale chain values
    const auto to = static_cast<dtype>(n.attr_int("to", 0));
    if (n.op_type == "Cast" && (x.is_shape ? to != dtype::int64 : to != x.type)) {
      if (x.stage != gpu_value::labels || !is_numeric(to) || !is_numeric(x.type))
        refuse(n, std::string("a cast to ") + dtype_name(to) + " has no GPU kernel");
      plan_.classes = cast_numeric(*plan_.classes, to); // casting labels = casting the classes
      x.type = to;
    }
    define(n, x);
  }

  static bool is_numeric(dtype t) {
    return t == dtype::int32 || t == dtype::int64 || t == dtype::float32 || t == dtype::float64;
  }

  static tensor cast_numeric(const tensor& from, dtype to) {
    tensor t = tensor::zeros(to, from.shape);
    for (int64_t i = 0; i < from.numel(); ++i) {
      const double v = from.type == dtype::int32   ? from.as<int32_t>()[i]
                       : from.type == dtype::int64 ? double(from.as<int64_t>()[i])
                       : from.type == dtype::float32 ? from.as<float>()[i]
                                                     : from.as<double>()[i];
      if (to == dtype::int32)
        t.as<int32_t>()[i] = static_cast<int32_t>(v);
      else if (to == dtype::int64)
        t.as<int64_t>()[i] = static_cast<int64_t>(v);
      else if (to == dtype::float32)
        t.as<float>()[i] = static_cast<float>(v);
      else
        t.as<double>()[i] = v;
    }
    return t;
  }

  void reshape(const node& n) {
    tracked x = data_input(n, 0);
    std::optional<shape_t> to;
    if (n.op_type == "Flatten") {
      to = flattened(x.shape, n.attr_int("axis", 1));
    } else {
      shape_t target;
      if (auto s = values_.find(n.inputs.size() > 1 ? n.inputs[1] : ""); s != values_.end()) {
        if (!s->second.is_shape || s->second.scalar)
          refuse(n, "its shape input is not a shape");
        target = s->second.dims;
      } else {
        target = int_values(constant_input(n, 1, "the shape"));
      }
      to = reshaped(x.shape, target, n.attr_int("allowzero", 0) != 0);
    }
    if (!to)
      refuse(n, "mixes the batch dimension with others");
    x.shape = *to;
    define(n, x);
  }

  static std::optional<shape_t> flattened(const shape_t& shape, int64_t axis) {
    const int64_t rank = static_cast<int64_t>(shape.size());
    if (axis < 0)
      axis += rank;
    if (axis < 1 || axis > rank || shape[0] != batch_dim)
      return std::nullopt;
    for (int64_t d = 1; d < axis; ++d)
      if (shape[static_cast<size_t>(d)] != 1)
        return std::nullopt;
    int64_t rest = 1;
    for (int64_t d = axis; d < rank; ++d)
      rest *= shape[static_cast<size_t>(d)];
    return shape_t{batch_dim, rest};
  }

  /// Shape, Gather, Unsqueeze, Squeeze, Concat over shape vectors (and int constants).
  void shape_op(const node& n) {
    const std::string& op = n.op_type;
    tracked out;
    out.is_shape = true;
    if (op == "Shape") {
      const tracked& x = data_input(n, 0);
      const int64_t rank = static_cast<int64_t>(x.shape.size());
      int64_t start = n.attr_int("start", 0), end = n.attr_int("end", rank);
      start = std::clamp(start < 0 ? start + rank : start, int64_t{0}, rank);
      end = std::clamp(end < 0 ? end + rank : end, int64_t{0}, rank);
      for (int64_t d = start; d < end; ++d)
        out.dims.push_back(x.shape[static_cast<size_t>(d)] == batch_dim
                             ? sym_rows
                             : x.shape[static_cast<size_t>(d)]);
    } else if (op == "Concat") {
      if (n.attr_int("axis", 0) != 0)
        refuse(n, "only axis 0 of shape vectors has a GPU form");
      for (size_t i = 0; i < n.inputs.size(); ++i) {
        auto dims = shape_values(n, i);
        out.dims.insert(out.dims.end(), dims.begin(), dims.end());
      }
    } else {
      const tracked& x = tracked_input(n, 0);
      if (!x.is_shape)
        refuse(n, "has no GPU kernel for data");
      const shape_t axes =
        g_.opset("") >= 13 && n.inputs.size() > 1 && !n.inputs[1].empty()
          ? int_values(constant_input(n, 1, "axes"))
          : (n.attr("axes") ? n.attr("axes")->ints : shape_t{});
      if (op == "Gather") {
        const tensor& idx = constant_input(n, 1, "the indices");
        if (n.attr_int("axis", 0) != 0 || x.scalar || idx.rank() > 1)
          refuse(n, "only picking from a shape vector has a GPU form");
        for (int64_t i : int_values(idx)) {
          const int64_t size = static_cast<int64_t>(x.dims.size());
          if (i < -size || i >= size)
            refuse(n, "index " + std::to_string(i) + " is out of range");
          out.dims.push_back(x.dims[static_cast<size_t>(i < 0 ? i + size : i)]);
        }
        out.scalar = idx.rank() == 0;
      } else if (op == "Unsqueeze" && x.scalar && axes == shape_t{0}) {
        out.dims = x.dims;
      } else if (op == "Squeeze" && !x.scalar && x.dims.size() == 1 &&
                 (axes.empty() || axes == shape_t{0})) {
        out.dims = x.dims;
        out.scalar = true;
      } else {
        refuse(n, "only a scalar <-> 1-D shape vector has a GPU form");
      }
    }
    define(n, out);
  }

  /// Input i of a shape op as a 1-D shape vector.
  shape_t shape_values(const node& n, size_t i) const {
    if (auto v = values_.find(n.inputs[i]); v != values_.end()) {
      if (!v->second.is_shape || v->second.scalar)
        refuse(n, "input " + std::to_string(i) + " is not a 1-D shape vector");
      return v->second.dims;
    }
    const tensor& t = constant_input(n, i, "every input");
    if (t.rank() != 1 || (t.type != dtype::int64 && t.type != dtype::int32))
      refuse(n, "input " + std::to_string(i) + " is not a 1-D integer vector");
    return int_values(t);
  }

  // ---- outputs -----------------------------------------------------------------------------

  void map_outputs() {
    for (const value_info& out : g_.outputs) {
      auto v = values_.find(out.name);
      if (v == values_.end() || v->second.is_shape)
        throw refusal{"output \"" + out.name + "\" is not computed by the GPU pipeline"};
      const tracked& t = v->second;
      gpu_value source = t.stage;
      if (source == gpu_value::input || source == gpu_value::scores) {
        if (t.step != step_)
          throw refusal{"output \"" + out.name + "\" is an intermediate layer's value"};
        source = plan_.layers.empty() ? gpu_value::input : gpu_value::scores;
      }
      if (source == gpu_value::labels && t.type != plan_.classes->type) // one Cast for all
        throw refusal{"output \"" + out.name + "\" reads the class labels before a Cast"};
      plan_.outputs.push_back({out.name, source, t.type, t.shape});
    }
  }

  /// Drops a normalization or ArgMax no output reads (skl2onnx's graphs always compute both).
  void prune_unread_tail() {
    const bool labels = plan_.outputs_read(gpu_value::labels);
    if (!plan_.outputs_read(gpu_value::indices) && !labels)
      plan_.argmax_of.reset();
    if (!labels)
      plan_.classes.reset();
    if (!plan_.outputs_read(gpu_value::normalized) && plan_.argmax_of != gpu_value::normalized)
      plan_.normalize = gpu_plan::normalization::none;
  }

  const onnx_model& model_;
  const graph& g_;
  gpu_plan plan_;
  std::map<std::string, tracked> values_;
  /// Bumped by every change to the layer chain.
  int step_ = 0;
  /// A Softmax or ArgMax read the chain: no more layers.
  bool closed_ = false;
};

} // namespace

gpu_plan_result compile_gpu_plan(const onnx_model& model) {
  gpu_plan_result result;
  try {
    result.plan = plan_compiler(model).compile();
  } catch (const refusal& r) {
    result.unsupported = r.reason;
  } catch (const std::exception& e) {
    result.unsupported = std::string("the GPU plan could not be made: ") + e.what();
  }
  return result;
}

} // namespace serve::onnx_ir
