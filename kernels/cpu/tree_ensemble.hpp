// Decision-tree ensembles (random forests, gradient boosting): every tree walked for every row
// of a batch, and the weights of the leaves reached summed (or averaged, or min/max'ed) per
// target.
//
// Plain C++ (no ONNX types). The ONNX TreeEnsemble* ops (libserve/onnx/ops_ml.cpp) resolve
// ONNX's (tree id, node id) pairs into the flat indices taken here and apply base values, post
// transforms and class labels themselves; this file only walks trees.
//
// A branch sends a row to its true child when `x[feature] (mode) threshold` holds, or when the
// value is NaN and the node has missing_tracks_true. Comparisons follow IEEE: NaN compares false,
// so NaN goes to the false child - except for branch_neq, where NaN != t is true (onnxruntime
// and ONNX's reference implementation agree on that).
//
// Float rows are compared in float32 against thresholds rounded to float (exactly onnxruntime's
// behaviour, whose thresholds are float attributes); double rows against the double thresholds.
// Weights are summed in float for float rows and in double for double rows.
//
// Layout: one 20-byte node struct per node in one array; a leaf points at its run of weights.
// Rows are processed in blocks of 128, trees in the outer loop, so a tree's nodes stay in cache
// while the block's rows walk it. No allocation during evaluate().
// Immutable after construction; evaluate() may be called from many threads at once.
#pragma once

#include <cstdint>
#include <vector>

namespace serve::kernels::cpu {

enum class tree_node_mode : uint8_t {
  branch_leq, // x <= threshold
  branch_lt,  // x < threshold
  branch_gte, // x >= threshold
  branch_gt,  // x > threshold
  branch_eq,  // x == threshold
  branch_neq, // x != threshold
  leaf,
};

/// How the weights of one target, one per tree reached, combine into the target's score.
enum class tree_aggregate : uint8_t {
  sum,
  average, // the sum divided by the number of trees (all of them, not only those that voted)
  min,
  max,
};

/// One node as given to the constructor.
struct tree_node_spec {
  tree_node_mode mode = tree_node_mode::leaf;
  /// Column a branch reads; >= 0. Ignored for leaves.
  int64_t feature = 0;
  /// A branch's threshold. Float rows compare against float(threshold).
  double threshold = 0;
  /// Indices into the node array of a branch's children. Ignored for leaves.
  int64_t true_child = 0;
  int64_t false_child = 0;
  /// A NaN value takes the true child.
  bool missing_tracks_true = false;
};

/// A vote of a leaf for one target (regression target or class index).
struct tree_leaf_weight {
  /// Index of a leaf in the node array.
  int64_t node = 0;
  /// In [0, target_count).
  int64_t target = 0;
  double weight = 0;
};

struct tree_ensemble_spec {
  std::vector<tree_node_spec> nodes;
  /// One root node index per tree, in evaluation order.
  std::vector<int64_t> roots;
  /// Any order; a leaf's weights are applied in the order given. A leaf may have none.
  std::vector<tree_leaf_weight> weights;
  /// Width of the score rows; >= 1.
  int64_t target_count = 1;
};

class tree_ensemble {
public:
  /// Checks and packs `spec`. Throws std::invalid_argument naming the first bad entry: an index
  /// out of range, a negative feature, a weight on a branch, a target out of range, a cycle
  /// reachable from a root, more than 2^31 - 1 nodes or weights.
  explicit tree_ensemble(const tree_ensemble_spec& spec);

  int64_t tree_count() const { return static_cast<int64_t>(roots_.size()); }
  int64_t target_count() const { return target_count_; }
  /// The largest column any branch reads, -1 without branches. Rows need more columns.
  int64_t max_feature() const { return max_feature_; }

  /// Scores a row-major batch `x` of `rows` rows, `row_stride` values apart (>= max_feature()+1).
  /// Writes scores[r * target_count() + t] (the aggregate of target t's weights over the leaves
  /// row r reached) and has_score[same index] (1 when at least one of those leaves had a weight
  /// for t; otherwise the score is 0). Both buffers hold rows * target_count() elements.
  void evaluate(const float* x, int64_t rows, int64_t row_stride, tree_aggregate aggregate,
                float* scores, uint8_t* has_score) const;
  void evaluate(const double* x, int64_t rows, int64_t row_stride, tree_aggregate aggregate,
                double* scores, uint8_t* has_score) const;

private:
  /// 20 bytes. For a leaf, `first`/`count` locate its weights; for a branch, `first` and
  /// `count` are the true and false child indices.
  struct packed_node {
    float threshold;
    int32_t feature;
    uint32_t first;
    uint32_t count;
    tree_node_mode mode;
    uint8_t missing_tracks_true;
  };

  template <class T>
  void evaluate_impl(const T* x, int64_t rows, int64_t row_stride, tree_aggregate aggregate,
                     T* scores, uint8_t* has_score) const;
  template <class T> uint32_t find_leaf(uint32_t node, const T* row) const;
  template <class T> T threshold_of(uint32_t node) const;

  // All constant after construction.
  std::vector<packed_node> nodes_;
  /// Exact thresholds for double rows, by node index.
  std::vector<double> thresholds_double_;
  std::vector<uint32_t> roots_;
  std::vector<uint32_t> weight_targets_;
  std::vector<float> weights_float_;
  std::vector<double> weights_double_;
  int64_t target_count_ = 1;
  int64_t max_feature_ = -1;
  /// Every branch compares with branch_leq and none tracks missing values: the common case
  /// (scikit-learn, XGBoost, LightGBM exports), walked by a loop without a mode switch.
  bool all_leq_without_missing_ = true;
};

} // namespace serve::kernels::cpu
