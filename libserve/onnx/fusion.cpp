// GEMM epilogue fusion (see fusion.hpp). Patterns, each intermediate value used by exactly one
// node and not a graph output:
//
//   Gemm -> act                          => FusedGemm(A, B, C?; Gemm's attributes, act)
//   MatMul(A, const B[K, N]) -> Add(const bias) [-> act]  => FusedGemm(A, B, bias; act)
//
// act is Relu, LeakyRelu (alpha), Sigmoid or Tanh. The bias must broadcast to [N] (all dims 1
// but the last, which is N or 1). FusedGemm's kernel folds leading dims of an N-D A into M as
// MatMul does with a 2-D B, so A's rank need not be known here. The fused node takes the first
// node's name and position and the last node's output name.
#include "libserve/onnx/fusion.hpp"

#include <map>
#include <set>
#include <string>
#include <vector>

#include "kernels/cpu/gemm.hpp"

namespace serve::onnx_ir {

namespace {

bool in_default_domain(const node& n) {
  return n.domain.empty() || n.domain == "ai.onnx";
}

bool is_fusable_activation(const node& n) {
  return in_default_domain(n) && n.inputs.size() == 1 && n.outputs.size() == 1 &&
         (n.op_type == "Relu" || n.op_type == "LeakyRelu" || n.op_type == "Sigmoid" ||
          n.op_type == "Tanh");
}


/// What the pass needs to know about the graph's values.
class value_index {
public:
  explicit value_index(const graph& g) : g_(g) {
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      for (auto& in : g.nodes[i].inputs)
        if (!in.empty()) {
          ++uses_[in];
          consumer_[in] = i;
        }
      const node& n = g.nodes[i];
      if (in_default_domain(n) && n.op_type == "Constant" && n.outputs.size() == 1)
        if (auto v = n.attr("value"); v && v->type == attribute::kind::t)
          constant_nodes_[n.outputs[0]] = &v->t;
    }
    for (auto& out : g.outputs)
      graph_outputs_.insert(out.name);
  }

  /// The index of the one node that reads `v`, when exactly one does and `v` is not a graph
  /// output; otherwise -1.
  long sole_consumer(const std::string& v) const {
    auto u = uses_.find(v);
    if (u == uses_.end() || u->second != 1 || graph_outputs_.count(v))
      return -1;
    return long(consumer_.at(v));
  }

  /// The constant tensor named `v` (initializer or Constant node), or nullptr.
  const tensor* constant(const std::string& v) const {
    if (auto i = g_.initializers.find(v); i != g_.initializers.end())
      return &i->second;
    auto c = constant_nodes_.find(v);
    return c == constant_nodes_.end() ? nullptr : c->second;
  }

private:
  const graph& g_;
  std::map<std::string, int> uses_;
  std::map<std::string, size_t> consumer_; // meaningful where uses_ == 1
  std::map<std::string, const tensor*> constant_nodes_;
  std::set<std::string> graph_outputs_;
};

/// Sets the activation attributes of `fused` from activation node `act`.
void take_activation(node& fused, const node& act) {
  fused.attributes["activation"] = attribute::of_string(act.op_type);
  if (act.op_type == "LeakyRelu")
    fused.attributes["activation_alpha"] = attribute::of_float(act.attr_float("alpha", 0.01f));
}

/// A bias for MatMul output [..., N]: float32, every dim 1 but the last, which is N or 1.
bool is_row_bias(const tensor* bias, int64_t N) {
  if (bias == nullptr || bias->type != dtype::float32)
    return false;
  if (bias->numel() == 1)
    return true;
  for (size_t d = 0; d + 1 < bias->shape.size(); ++d)
    if (bias->shape[d] != 1)
      return false;
  return bias->shape.back() == N;
}

node fused_node(const node& first) {
  node fused;
  fused.name = first.name;
  fused.op_type = "FusedGemm";
  fused.domain = actorserve_domain;
  return fused;
}

} // namespace

size_t fuse_gemm_epilogues(graph& g) {
  const value_index values(g);
  std::vector<bool> removed(g.nodes.size(), false);
  size_t removed_count = 0;
  auto take = [&](long j) { // marks node j as fused away; returns it
    removed[size_t(j)] = true;
    ++removed_count;
    return g.nodes[size_t(j)];
  };
  auto fusable_next = [&](const node& n) -> long { // the sole consumer of n's output, if free
    if (n.outputs.size() != 1)
      return -1;
    long j = values.sole_consumer(n.outputs[0]);
    return j >= 0 && !removed[size_t(j)] ? j : -1;
  };

  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const node& first = g.nodes[i];
    if (removed[i] || !in_default_domain(first))
      continue;

    if (first.op_type == "Gemm" && first.inputs.size() >= 2) {
      const bool has_c = first.inputs.size() >= 3 && !first.inputs[2].empty();
      if (!has_c && g.opset("") < 11) // Gemm refuses this; fusing must not hide that
        continue;
      long j = fusable_next(first);
      if (j < 0 || !is_fusable_activation(g.nodes[size_t(j)]))
        continue;
      node fused = fused_node(first);
      fused.inputs = first.inputs;
      for (const char* key : {"transA", "transB", "alpha", "beta"})
        if (auto a = first.attr(key))
          fused.attributes[key] = *a;
      const node act = take(j);
      take_activation(fused, act);
      fused.outputs = act.outputs;
      g.nodes[i] = std::move(fused);
      continue;
    }

    if (first.op_type == "MatMul" && first.inputs.size() == 2 && g.opset("") >= 7) {
      const tensor* b = values.constant(first.inputs[1]);
      if (b == nullptr || b->type != dtype::float32 || b->rank() != 2)
        continue;
      long j = fusable_next(first);
      if (j < 0)
        continue;
      const node& add = g.nodes[size_t(j)];
      if (!in_default_domain(add) || add.op_type != "Add" || add.inputs.size() != 2 ||
          add.outputs.size() != 1 || add.inputs[0] == add.inputs[1])
        continue;
      const std::string& bias_name =
          add.inputs[0] == first.outputs[0] ? add.inputs[1] : add.inputs[0];
      if (!is_row_bias(values.constant(bias_name), b->shape[1]))
        continue;
      node fused = fused_node(first);
      fused.inputs = {first.inputs[0], first.inputs[1], bias_name};
      fused.outputs = take(j).outputs;
      long k = fusable_next(g.nodes[size_t(j)]);
      if (k >= 0 && is_fusable_activation(g.nodes[size_t(k)])) {
        const node act = take(k);
        take_activation(fused, act);
        fused.outputs = act.outputs;
      }
      g.nodes[i] = std::move(fused);
    }
  }

  std::vector<node> kept;
  kept.reserve(g.nodes.size() - removed_count);
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (!removed[i])
      kept.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(kept);
  return removed_count;
}

size_t pack_gemm_weights(graph& g) {
  const value_index values(g);
  size_t rewritten = 0;
  for (node& n : g.nodes) {
    const bool gemm = (in_default_domain(n) && n.op_type == "Gemm") ||
                      (n.domain == actorserve_domain && n.op_type == "FusedGemm");
    if (!gemm || n.inputs.size() < 2 || values.sole_consumer(n.inputs[1]) < 0)
      continue;
    auto b = g.initializers.find(n.inputs[1]);
    if (b == g.initializers.end() || b->second.type != dtype::float32 || b->second.rank() != 2)
      continue;
    const bool trans_b = n.attr_int("transB", 0) != 0;
    const tensor& from = b->second; // [K, N], or [N, K] when transposed
    const int64_t K = from.shape[trans_b ? 1 : 0], N = from.shape[trans_b ? 0 : 1];
    const int64_t width = n.attr_int("transA", 0) == 0 ? kernels::cpu::gemm_panel_width(K, N) : 0;
    if (width == 0 && !trans_b)
      continue;
    tensor to = tensor::zeros(dtype::float32, {K, N});
    // One panel as wide as B is the plain [K, N] layout: a transpose.
    kernels::cpu::pack_b_panels(trans_b, K, N, from.as<float>(), width > 0 ? width : N,
                                to.as<float>());
    b->second = std::move(to);
    n.attributes["transB"] = attribute::of_int(0);
    if (width > 0)
      n.attributes[b_panel_width_attribute] = attribute::of_int(width);
    ++rewritten;
  }
  return rewritten;
}

} // namespace serve::onnx_ir
