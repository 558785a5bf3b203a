// Tree ensembles (see tree_ensemble.hpp): construction checks every index once so that the walk
// needs no bounds checks and cannot loop forever.
#include "kernels/cpu/tree_ensemble.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace serve::kernels::cpu {

namespace {

constexpr int64_t max_index = std::numeric_limits<int32_t>::max();
/// Rows scored together: each tree is walked for all of them before the next tree.
constexpr int64_t rows_per_block = 128;

[[noreturn]] void refuse(const std::string& message) {
  throw std::invalid_argument("tree ensemble: " + message);
}

template <class T> bool holds(tree_node_mode mode, T x, T threshold) {
  switch (mode) {
  case tree_node_mode::branch_leq:
    return x <= threshold;
  case tree_node_mode::branch_lt:
    return x < threshold;
  case tree_node_mode::branch_gte:
    return x >= threshold;
  case tree_node_mode::branch_gt:
    return x > threshold;
  case tree_node_mode::branch_eq:
    return x == threshold;
  case tree_node_mode::branch_neq:
    return x != threshold;
  case tree_node_mode::leaf:
    break;
  }
  return false;
}

// Refuses a cycle reachable from any root (a malformed model would otherwise walk forever).
// Iterative depth-first search; a node shared by two parents (a DAG) is fine.
void check_acyclic(const std::vector<tree_node_spec>& nodes, const std::vector<int64_t>& roots) {
  enum : uint8_t { unseen, on_path, done };
  std::vector<uint8_t> state(nodes.size(), unseen);
  std::vector<std::pair<int64_t, int>> path; // node, children visited so far
  for (int64_t root : roots) {
    if (state[static_cast<size_t>(root)] != unseen)
      continue;
    state[static_cast<size_t>(root)] = on_path;
    path.push_back({root, 0});
    while (!path.empty()) {
      auto& [index, visited] = path.back();
      const tree_node_spec& n = nodes[static_cast<size_t>(index)];
      if (n.mode == tree_node_mode::leaf || visited == 2) {
        state[static_cast<size_t>(index)] = done;
        path.pop_back();
        continue;
      }
      int64_t child = visited++ == 0 ? n.true_child : n.false_child;
      uint8_t& child_state = state[static_cast<size_t>(child)];
      if (child_state == on_path)
        refuse("node " + std::to_string(index) + " leads back to node " + std::to_string(child) +
               " (a cycle)");
      if (child_state == unseen) {
        child_state = on_path;
        path.push_back({child, 0});
      }
    }
  }
}

} // namespace

tree_ensemble::tree_ensemble(const tree_ensemble_spec& spec) : target_count_(spec.target_count) {
  const int64_t node_count = static_cast<int64_t>(spec.nodes.size());
  if (target_count_ < 1 || target_count_ > max_index)
    refuse("target_count must be in [1, 2^31); was " + std::to_string(target_count_));
  if (node_count > max_index || static_cast<int64_t>(spec.weights.size()) > max_index)
    refuse("more than 2^31 - 1 nodes or weights");
  auto check_index = [&](int64_t i, const std::string& what) {
    if (i < 0 || i >= node_count)
      refuse(what + " is " + std::to_string(i) + ", outside [0, " + std::to_string(node_count) +
             ")");
  };

  nodes_.resize(spec.nodes.size());
  thresholds_double_.resize(spec.nodes.size());
  for (int64_t i = 0; i < node_count; ++i) {
    const tree_node_spec& in = spec.nodes[static_cast<size_t>(i)];
    packed_node& out = nodes_[static_cast<size_t>(i)];
    out = packed_node{static_cast<float>(in.threshold),
                      0,
                      0,
                      0,
                      in.mode,
                      static_cast<uint8_t>(in.missing_tracks_true ? 1 : 0)};
    thresholds_double_[static_cast<size_t>(i)] = in.threshold;
    if (in.mode == tree_node_mode::leaf)
      continue;
    const std::string name = "node " + std::to_string(i);
    if (in.feature < 0 || in.feature > max_index)
      refuse(name + " reads feature " + std::to_string(in.feature));
    check_index(in.true_child, name + "'s true child");
    check_index(in.false_child, name + "'s false child");
    out.feature = static_cast<int32_t>(in.feature);
    out.first = static_cast<uint32_t>(in.true_child);
    out.count = static_cast<uint32_t>(in.false_child);
    max_feature_ = std::max(max_feature_, in.feature);
    if (in.mode != tree_node_mode::branch_leq || in.missing_tracks_true)
      all_leq_without_missing_ = false;
  }

  for (size_t t = 0; t < spec.roots.size(); ++t) {
    check_index(spec.roots[t], "the root of tree " + std::to_string(t));
    roots_.push_back(static_cast<uint32_t>(spec.roots[t]));
  }
  check_acyclic(spec.nodes, spec.roots);

  // Group the weights by leaf, keeping their given order within a leaf (a counting sort).
  std::vector<uint32_t> per_leaf(spec.nodes.size() + 1, 0);
  for (size_t k = 0; k < spec.weights.size(); ++k) {
    const tree_leaf_weight& w = spec.weights[k];
    const std::string name = "weight " + std::to_string(k);
    check_index(w.node, name + "'s node");
    if (spec.nodes[static_cast<size_t>(w.node)].mode != tree_node_mode::leaf)
      refuse(name + " is on node " + std::to_string(w.node) + ", which is not a leaf");
    if (w.target < 0 || w.target >= target_count_)
      refuse(name + " is for target " + std::to_string(w.target) + ", outside [0, " +
             std::to_string(target_count_) + ")");
    ++per_leaf[static_cast<size_t>(w.node) + 1];
  }
  for (size_t i = 1; i < per_leaf.size(); ++i)
    per_leaf[i] += per_leaf[i - 1];
  for (int64_t i = 0; i < node_count; ++i) {
    packed_node& n = nodes_[static_cast<size_t>(i)];
    if (n.mode == tree_node_mode::leaf) {
      n.first = per_leaf[static_cast<size_t>(i)];
      n.count = per_leaf[static_cast<size_t>(i) + 1] - n.first;
    }
  }
  weight_targets_.resize(spec.weights.size());
  weights_float_.resize(spec.weights.size());
  weights_double_.resize(spec.weights.size());
  std::vector<uint32_t> next(per_leaf.begin(), per_leaf.end() - 1);
  for (const tree_leaf_weight& w : spec.weights) {
    uint32_t slot = next[static_cast<size_t>(w.node)]++;
    weight_targets_[slot] = static_cast<uint32_t>(w.target);
    weights_float_[slot] = static_cast<float>(w.weight);
    weights_double_[slot] = w.weight;
  }
}

template <> float tree_ensemble::threshold_of<float>(uint32_t node) const {
  return nodes_[node].threshold;
}

template <> double tree_ensemble::threshold_of<double>(uint32_t node) const {
  return thresholds_double_[node];
}

template <class T> uint32_t tree_ensemble::find_leaf(uint32_t i, const T* row) const {
  const packed_node* nodes = nodes_.data();
  if (all_leq_without_missing_) {
    while (nodes[i].mode != tree_node_mode::leaf)
      i = row[nodes[i].feature] <= threshold_of<T>(i) ? nodes[i].first : nodes[i].count;
    return i;
  }
  while (nodes[i].mode != tree_node_mode::leaf) {
    const packed_node& n = nodes[i];
    const T v = row[n.feature];
    const bool to_true =
        holds(n.mode, v, threshold_of<T>(i)) || (n.missing_tracks_true != 0 && std::isnan(v));
    i = to_true ? n.first : n.count;
  }
  return i;
}

namespace {

// Folds one weight into a score according to the aggregate (chosen once per call).
template <tree_aggregate A, class T> inline void fold(T& score, uint8_t& has, T weight) {
  if constexpr (A == tree_aggregate::min)
    score = (!has || weight < score) ? weight : score;
  else if constexpr (A == tree_aggregate::max)
    score = (!has || weight > score) ? weight : score;
  else
    score += weight;
  has = 1;
}

} // namespace

template <class T>
void tree_ensemble::evaluate_impl(const T* x, int64_t rows, int64_t row_stride,
                                  tree_aggregate aggregate, T* scores, uint8_t* has_score) const {
  if (rows < 0 || (rows > 0 && row_stride <= max_feature_))
    throw std::invalid_argument("tree ensemble: rows have " + std::to_string(row_stride) +
                                " values but a branch reads column " +
                                std::to_string(max_feature_));
  const int64_t width = target_count_;
  std::fill(scores, scores + rows * width, T(0));
  std::fill(has_score, has_score + rows * width, uint8_t(0));
  const T* weights = nullptr;
  if constexpr (std::is_same_v<T, float>)
    weights = weights_float_.data();
  else
    weights = weights_double_.data();

  auto run = [&](auto aggregate_tag) {
    constexpr tree_aggregate A = decltype(aggregate_tag)::value;
    for (int64_t begin = 0; begin < rows; begin += rows_per_block) {
      const int64_t end = std::min(rows, begin + rows_per_block);
      for (uint32_t root : roots_) {
        for (int64_t r = begin; r < end; ++r) {
          const packed_node& leaf = nodes_[find_leaf(root, x + r * row_stride)];
          T* row_scores = scores + r * width;
          uint8_t* row_has = has_score + r * width;
          for (uint32_t k = leaf.first, stop = leaf.first + leaf.count; k < stop; ++k) {
            const uint32_t t = weight_targets_[k];
            fold<A>(row_scores[t], row_has[t], weights[k]);
          }
        }
      }
    }
  };
  switch (aggregate) {
  case tree_aggregate::sum:
  case tree_aggregate::average:
    run(std::integral_constant<tree_aggregate, tree_aggregate::sum>{});
    break;
  case tree_aggregate::min:
    run(std::integral_constant<tree_aggregate, tree_aggregate::min>{});
    break;
  case tree_aggregate::max:
    run(std::integral_constant<tree_aggregate, tree_aggregate::max>{});
    break;
  }
  if (aggregate == tree_aggregate::average && !roots_.empty()) {
    const T trees = static_cast<T>(roots_.size());
    for (int64_t i = 0; i < rows * width; ++i)
      scores[i] /= trees;
  }
}

void tree_ensemble::evaluate(const float* x, int64_t rows, int64_t row_stride,
                             tree_aggregate aggregate, float* scores, uint8_t* has_score) const {
  evaluate_impl(x, rows, row_stride, aggregate, scores, has_score);
}

void tree_ensemble::evaluate(const double* x, int64_t rows, int64_t row_stride,
                             tree_aggregate aggregate, double* scores, uint8_t* has_score) const {
  evaluate_impl(x, rows, row_stride, aggregate, scores, has_score);
}

} // namespace serve::kernels::cpu
