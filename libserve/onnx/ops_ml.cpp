// Operator family "ml" (see op_registry.hpp): the ai.onnx.ml operators that scikit-learn,
// XGBoost and LightGBM exports use - TreeEnsembleClassifier/Regressor, LinearClassifier/
// Regressor, Normalizer, ArrayFeatureExtractor, ZipMap, Scaler and Binarizer.
//
// Semantics follow ONNX's Operators-ml.md and, where it is silent or vague, what onnxruntime
// 1.32 outputs (checked op by op against it): trees compare in float32 for float input and in
// double for double input; unscored classes read as 0; the two-class rules below; single-output
// regressors apply only PROBIT. Deliberate departures, all in cases onnxruntime gets wrong:
//  - a two-class tree ensemble that is not the binary case labels with the declared labels
//    (onnxruntime returns the literal 1 or 0);
//  - PROBIT where one score must fill two columns: trees write [probit(s), 0], linear
//    classifiers [1 - probit(s), probit(s)] (onnxruntime leaves memory unwritten);
//  - malformed models (bad ids, base_values of the wrong length, unknown modes) are refused at
//    load time instead of being run.
// Integer inputs are converted to float32 first (as onnxruntime does).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <tuple>
#include <utility>

#include "kernels/cpu/tree_ensemble.hpp"
#include "libserve/future.hpp"
#include "libserve/onnx/op_registry.hpp"

namespace serve::onnx_ir {

namespace {

namespace cpu = serve::kernels::cpu;
using inputs_t = std::vector<const value*>;

// ---- attributes, inputs, errors --------------------------------------------------------------

std::string where(const node& n) {
  return n.op_type + " node '" + n.name + "'";
}

[[noreturn]] void refuse(const std::string& at, const std::string& message) {
  throw serve_exception(errc::invalid_argument, at + ": " + message);
}

const tensor& input(const inputs_t& in, size_t i, const std::string& at) {
  if (i >= in.size() || in[i] == nullptr)
    refuse(at, "input " + std::to_string(i) + " is missing");
  if (in[i]->maps)
    refuse(at, "input " + std::to_string(i) + " is not a tensor");
  return in[i]->t;
}

std::vector<int64_t> ints_attr(const node& n, const std::string& key) {
  auto a = n.attr(key);
  return a ? a->ints : std::vector<int64_t>{};
}

std::vector<float> floats_attr(const node& n, const std::string& key) {
  auto a = n.attr(key);
  return a ? a->floats : std::vector<float>{};
}

std::vector<std::string> strings_attr(const node& n, const std::string& key) {
  auto a = n.attr(key);
  return a ? a->strings : std::vector<std::string>{};
}

// An enum attribute's value by name; refuses unknown names.
template <class E>
E named(const std::map<std::string, E>& names, const std::string& name, const std::string& at,
        const std::string& what) {
  auto i = names.find(name);
  if (i == names.end())
    refuse(at, "unknown " + what + " '" + name + "'");
  return i->second;
}

// `key` (floats) or `key`_as_tensor (a float or double tensor, opset 3), as doubles.
std::vector<double> floats_or_tensor(const node& n, const std::string& key) {
  if (n.attr(key + "_as_tensor") && !n.tensor_attr(key + "_as_tensor"))
    refuse(where(n), key + "_as_tensor must be a tensor attribute");
  const tensor* as_tensor = n.tensor_attr(key + "_as_tensor");
  const std::vector<float> floats = floats_attr(n, key);
  if (as_tensor && !floats.empty())
    refuse(where(n), "both " + key + " and " + key + "_as_tensor are set");
  if (!as_tensor)
    return {floats.begin(), floats.end()};
  const tensor& t = *as_tensor;
  if (t.type == dtype::float32)
    return {t.as<float>(), t.as<float>() + t.numel()};
  if (t.type != dtype::float64)
    refuse(where(n), key + "_as_tensor must be float or double, not " + dtype_name(t.type));
  return {t.as<double>(), t.as<double>() + t.numel()};
}

// Calls f(T{}) with the element type of a float, double, int64 or int32 tensor type.
template <class F> void visit_numeric(dtype type, const std::string& at, F&& f) {
  switch (type) {
  case dtype::float32:
    return f(float{});
  case dtype::float64:
    return f(double{});
  case dtype::int64:
    return f(int64_t{});
  case dtype::int32:
    return f(int32_t{});
  default:
    refuse(at, std::string("input must be float, double, int64 or int32, not ") + dtype_name(type));
  }
}

// The elements of a float, double, int64 or int32 tensor as float32: `x`'s own buffer when it
// is float32, otherwise converted into `buffer`.
const float* float_data(const tensor& x, std::vector<float>& buffer, const std::string& at) {
  if (x.type == dtype::float32)
    return x.as<float>();
  visit_numeric(x.type, at, [&](auto zero) {
    const auto* p = x.as<decltype(zero)>();
    buffer.assign(p, p + x.numel());
  });
  return buffer.data();
}

// A feature matrix's {rows, columns}: rank 1 is one row, rank 2 is [rows, columns].
std::pair<int64_t, int64_t> matrix_dims(const tensor& x, const std::string& at) {
  if (x.rank() != 1 && x.rank() != 2)
    refuse(at, "input must be [N, F] or [F]; got " + shape_to_string(x.shape));
  return x.rank() == 1 ? std::make_pair(int64_t{1}, x.shape[0])
                       : std::make_pair(x.shape[0], x.shape[1]);
}

// ---- post transforms (computed in float32, as onnxruntime does) -----------------------------

enum class post_transform { none, softmax, logistic, softmax_zero, probit };

post_transform parse_post_transform(const node& n) {
  static const std::map<std::string, post_transform> names = {
      {"NONE", post_transform::none},
      {"SOFTMAX", post_transform::softmax},
      {"LOGISTIC", post_transform::logistic},
      {"SOFTMAX_ZERO", post_transform::softmax_zero},
      {"PROBIT", post_transform::probit}};
  return named(names, n.attr_string("post_transform", "NONE"), where(n), "post_transform");
}

float logistic(float v) {
  const float e = 1.0f / (1.0f + std::exp(-std::abs(v)));
  return v < 0 ? 1.0f - e : e;
}

// sqrt(2) * erfinv(2p - 1), with erfinv from Winitzki's closed-form approximation (a = 0.147),
// the one onnxruntime uses: outputs agree with it, not with an exact inverse (within ~2e-3).
float probit(float p) {
  constexpr float a = 0.147f;
  constexpr float two_over_pi_a = static_cast<float>(2.0 / (3.14159265358979323846 * 0.147));
  const float x = 2 * p - 1;
  const float ln = std::log((1 - x) * (1 + x));
  const float t = two_over_pi_a + 0.5f * ln;
  const float erf_inv = std::sqrt(-t + std::sqrt(t * t - ln / a));
  return static_cast<float>(std::sqrt(2.0)) * (x < 0 ? -erf_inv : erf_inv);
}

// Applies `pt` to one row of scores in place.
void transform_row(post_transform pt, float* v, size_t n) {
  switch (pt) {
  case post_transform::none:
    return;
  case post_transform::logistic:
    for (size_t i = 0; i < n; ++i)
      v[i] = logistic(v[i]);
    return;
  case post_transform::probit:
    for (size_t i = 0; i < n; ++i)
      v[i] = probit(v[i]);
    return;
  case post_transform::softmax:
  case post_transform::softmax_zero: {
    // SOFTMAX_ZERO leaves (near-)zero scores at 0 instead of giving them exp(0 - max).
    const bool skip_zeros = pt == post_transform::softmax_zero;
    float max = -std::numeric_limits<float>::max();
    for (size_t i = 0; i < n; ++i)
      max = std::max(max, v[i]);
    float sum = 0;
    for (size_t i = 0; i < n; ++i) {
      if (skip_zeros && std::abs(v[i]) <= 1e-7f) {
        v[i] = 0;
        continue;
      }
      v[i] = std::exp(v[i] - max);
      sum += v[i];
    }
    if (sum > 0)
      for (size_t i = 0; i < n; ++i)
        v[i] /= sum;
    return;
  }
  }
}

// Writes a binary classifier's single score `s` as two columns [negative, positive]: t = s
// under LOGISTIC and PROBIT transformed, else s as it is (SOFTMAX of one value is meaningless);
// the negative column is 1 - t for probabilities (`complement`, LOGISTIC), else -t (margins).
void write_binary_pair(post_transform pt, float s, bool complement, float* z) {
  const float t = pt == post_transform::logistic ? logistic(s)
                  : pt == post_transform::probit ? probit(s)
                                                 : s;
  z[0] = complement || pt == post_transform::logistic ? 1 - t : -t;
  z[1] = t;
}

class closure_kernel : public op_kernel {
public:
  using fn = std::function<void(const inputs_t&, std::vector<value>&)>;
  explicit closure_kernel(fn f) : f_(std::move(f)) {}
  void run(const inputs_t& in, std::vector<value>& out) const override { f_(in, out); }

private:
  const fn f_;
};

std::unique_ptr<op_kernel> kernel(closure_kernel::fn f) {
  return std::make_unique<closure_kernel>(std::move(f));
}

// ---- tree ensembles ---------------------------------------------------------------------------

// What both tree ensemble ops read from their attributes.
struct tree_attributes {
  std::shared_ptr<const cpu::tree_ensemble> trees;
  /// The distinct class or target ids the weights name.
  std::set<int64_t> target_ids;
  /// No weight is negative.
  bool weights_all_positive = true;
  std::vector<float> base_values;
  post_transform transform = post_transform::none;
};

// Reads the nodes_* and `prefix`_* (class_ or target_) attributes into the evaluator's flat
// form: (tree id, node id) pairs become indices, each contiguous run of one tree id is a tree
// whose first node is its root, and weights on branches are dropped (old onnxmltools exports
// have them; onnxruntime ignores them too).
tree_attributes read_trees(const node& n, const std::string& prefix, int64_t target_count) {
  const std::string at = where(n);
  tree_attributes out;
  for (double b : floats_or_tensor(n, "base_values"))
    out.base_values.push_back(static_cast<float>(b));
  out.transform = parse_post_transform(n);
  const auto tree_ids = ints_attr(n, "nodes_treeids");
  const auto node_ids = ints_attr(n, "nodes_nodeids");
  const auto features = ints_attr(n, "nodes_featureids");
  const auto modes = strings_attr(n, "nodes_modes");
  const auto true_ids = ints_attr(n, "nodes_truenodeids");
  const auto false_ids = ints_attr(n, "nodes_falsenodeids");
  const auto thresholds = floats_or_tensor(n, "nodes_values");
  const auto missing = ints_attr(n, "nodes_missing_value_tracks_true");
  const size_t count = tree_ids.size();
  if (count == 0)
    refuse(at, "has no nodes");
  for (size_t size : {node_ids.size(), features.size(), modes.size(), true_ids.size(),
                      false_ids.size(), thresholds.size()})
    if (size != count)
      refuse(at, "the nodes_* attributes differ in length (" + std::to_string(count) +
                     " tree ids, " + std::to_string(size) + " in another)");

  static const std::map<std::string, cpu::tree_node_mode> node_modes = {
      {"BRANCH_LEQ", cpu::tree_node_mode::branch_leq},
      {"BRANCH_LT", cpu::tree_node_mode::branch_lt},
      {"BRANCH_GTE", cpu::tree_node_mode::branch_gte},
      {"BRANCH_GT", cpu::tree_node_mode::branch_gt},
      {"BRANCH_EQ", cpu::tree_node_mode::branch_eq},
      {"BRANCH_NEQ", cpu::tree_node_mode::branch_neq},
      {"LEAF", cpu::tree_node_mode::leaf}};
  cpu::tree_ensemble_spec spec;
  spec.target_count = target_count;
  std::map<std::pair<int64_t, int64_t>, int64_t> index; // (tree id, node id) -> node index
  for (size_t i = 0; i < count; ++i) {
    if (!index.emplace(std::make_pair(tree_ids[i], node_ids[i]), static_cast<int64_t>(i)).second)
      refuse(at, "node " + std::to_string(node_ids[i]) + " of tree " + std::to_string(tree_ids[i]) +
                     " appears twice");
    cpu::tree_node_spec s;
    s.mode = named(node_modes, modes[i], at, "node mode");
    s.feature = features[i];
    s.threshold = thresholds[i];
    s.missing_tracks_true = i < missing.size() && missing[i] == 1;
    spec.nodes.push_back(s);
    if (i == 0 || tree_ids[i] != tree_ids[i - 1])
      spec.roots.push_back(static_cast<int64_t>(i));
  }
  auto find = [&](int64_t tree, int64_t id, const std::string& what) {
    auto i = index.find({tree, id});
    if (i == index.end())
      refuse(at, what + " refers to node " + std::to_string(id) + " of tree " +
                     std::to_string(tree) + ", which does not exist");
    return i->second;
  };
  for (size_t i = 0; i < count; ++i) {
    if (spec.nodes[i].mode == cpu::tree_node_mode::leaf)
      continue;
    const std::string what =
        "node " + std::to_string(node_ids[i]) + " of tree " + std::to_string(tree_ids[i]);
    spec.nodes[i].true_child = find(tree_ids[i], true_ids[i], what);
    spec.nodes[i].false_child = find(tree_ids[i], false_ids[i], what);
  }

  const auto w_trees = ints_attr(n, prefix + "_treeids");
  const auto w_nodes = ints_attr(n, prefix + "_nodeids");
  const auto w_ids = ints_attr(n, prefix + "_ids");
  const auto w_values = floats_or_tensor(n, prefix + "_weights");
  if (w_nodes.size() != w_trees.size() || w_ids.size() != w_trees.size() ||
      w_values.size() != w_trees.size())
    refuse(at, "the " + prefix + "_* attributes differ in length");
  for (size_t k = 0; k < w_trees.size(); ++k) {
    const int64_t leaf = find(w_trees[k], w_nodes[k], prefix + " weight " + std::to_string(k));
    out.target_ids.insert(w_ids[k]);
    out.weights_all_positive = out.weights_all_positive && !(w_values[k] < 0);
    if (spec.nodes[static_cast<size_t>(leaf)].mode == cpu::tree_node_mode::leaf)
      spec.weights.push_back({leaf, w_ids[k], w_values[k]});
  }
  try {
    out.trees = std::make_shared<const cpu::tree_ensemble>(spec);
  } catch (const std::invalid_argument& e) {
    refuse(at, e.what());
  }
  return out;
}

// Runs the trees over input 0: scores [rows, targets] in float, has_score beside them.
// Float and integer rows walk in float32, double rows in double.
int64_t score_rows(const cpu::tree_ensemble& trees, const tensor& x, cpu::tree_aggregate agg,
                   std::vector<float>& scores, std::vector<uint8_t>& has, const std::string& at) {
  const auto [rows, columns] = matrix_dims(x, at);
  if (rows > 0 && columns <= trees.max_feature())
    refuse(at, "input has " + std::to_string(columns) + " features but the trees read feature " +
                   std::to_string(trees.max_feature()));
  const size_t size = static_cast<size_t>(rows * trees.target_count());
  scores.resize(size);
  has.resize(size);
  if (x.type == dtype::float64) {
    std::vector<double> wide(size);
    trees.evaluate(x.as<double>(), rows, columns, agg, wide.data(), has.data());
    std::copy(wide.begin(), wide.end(), scores.begin());
  } else {
    std::vector<float> buffer;
    trees.evaluate(float_data(x, buffer, at), rows, columns, agg, scores.data(), has.data());
  }
  return rows;
}

// How one row's class sums become TreeEnsembleClassifier scores and a label (onnxruntime's
// rules, see the file comment). Unscored classes read as 0.
struct class_scoring {
  size_t classes = 0;
  std::vector<float> base;
  post_transform pt = post_transform::none;
  /// The binary case: two labels, weights for one class id only. Its score is the positive
  /// class's probability when all weights are >= 0, else its margin.
  bool binary = false;
  bool all_positive = true;

  /// Adds base values to sums `s` (has-flags `h`), writes z[classes]; returns the label index.
  size_t finish(float* s, uint8_t* h, float* z) const {
    return classes > 2 ? finish_many(s, h, z) : finish_two(s, h, z);
  }

  size_t finish_many(float* s, uint8_t* h, float* z) const {
    for (size_t k = 0; k < base.size(); ++k) {
      s[k] = h[k] ? s[k] + base[k] : base[k];
      h[k] = 1;
    }
    size_t best = 0;
    bool found = false;
    for (size_t k = 0; k < classes; ++k) {
      if (h[k] && (!found || s[k] > s[best])) {
        best = k;
        found = true;
      }
      z[k] = h[k] ? s[k] : 0.0f;
    }
    transform_row(pt, z, classes);
    return best;
  }

  size_t finish_two(float* s, uint8_t* h, float* z) const {
    bool one_score = false; // class 1 has no score: s[0] carries the only one
    if (base.size() == 2) {
      if (h[1]) { // onnxruntime's rule: class 1 = base[1] + class 0's sum, class 0 = -that
        s[1] = base[1] + s[0];
        s[0] = -s[1];
      } else {
        s[0] += base[0];
        s[1] += base[1];
      }
    } else {
      if (base.size() == 1)
        s[0] += base[0];
      one_score = !h[1];
    }
    const float s0 = h[0] ? s[0] : 0.0f, s1 = h[1] ? s[1] : 0.0f;
    const float positive = !one_score && h[1] ? s1 : s0;
    const size_t label = binary && all_positive ? positive > 0.5f : positive > 0;
    z[0] = s0;
    z[1] = s1;
    if (!one_score)
      transform_row(pt, z, 2);
    else if (pt == post_transform::probit)
      z[0] = probit(s0);
    else if (binary || base.empty())
      write_binary_pair(pt, s0, binary && all_positive, z);
    // else: two class ids, one base value, no class-1 score: onnxruntime defines no column 1
    return label;
  }
};

// TreeEnsembleClassifier: Y labels [N] (int64 or string), Z scores [N, classes].
std::unique_ptr<op_kernel> make_tree_classifier(const node& n, const compile_context&) {
  const std::string at = where(n);
  auto int_labels = ints_attr(n, "classlabels_int64s");
  auto string_labels = strings_attr(n, "classlabels_strings");
  if (int_labels.empty() == string_labels.empty())
    refuse(at, "needs exactly one of classlabels_int64s and classlabels_strings");
  const bool use_strings = !string_labels.empty();
  const size_t classes = use_strings ? string_labels.size() : int_labels.size();
  if (classes < 2)
    refuse(at, "needs at least 2 class labels");
  tree_attributes a = read_trees(n, "class", static_cast<int64_t>(classes));
  const size_t bases = a.base_values.size();
  if (bases != 0 && bases != classes && !(classes == 2 && bases == 1))
    refuse(at, "has " + std::to_string(bases) + " base_values for " + std::to_string(classes) +
                   " classes");
  const class_scoring scoring{classes, a.base_values, a.transform,
                              classes == 2 && a.target_ids.size() == 1, a.weights_all_positive};
  auto trees = a.trees;

  return kernel([=](const inputs_t& in, std::vector<value>& out) {
    std::vector<float> scores;
    std::vector<uint8_t> has;
    const int64_t rows =
        score_rows(*trees, input(in, 0, at), cpu::tree_aggregate::sum, scores, has, at);
    tensor labels = tensor::zeros(use_strings ? dtype::string : dtype::int64, {rows});
    tensor z = tensor::zeros(dtype::float32, {rows, static_cast<int64_t>(classes)});
    for (int64_t r = 0; r < rows; ++r) {
      const size_t offset = static_cast<size_t>(r) * classes;
      const size_t label = scoring.finish(&scores[offset], &has[offset], z.as<float>() + offset);
      if (use_strings)
        labels.strings[static_cast<size_t>(r)] = string_labels[label];
      else
        labels.as<int64_t>()[r] = int_labels[label];
    }
    out.at(0).t = std::move(labels);
    if (out.size() > 1)
      out[1].t = std::move(z);
  });
}

// TreeEnsembleRegressor: Y [N, n_targets] float.
std::unique_ptr<op_kernel> make_tree_regressor(const node& n, const compile_context&) {
  const std::string at = where(n);
  const int64_t targets = n.attr_int("n_targets", 1);
  if (targets < 1)
    refuse(at, "n_targets must be >= 1; was " + std::to_string(targets));
  static const std::map<std::string, cpu::tree_aggregate> aggregates = {
      {"SUM", cpu::tree_aggregate::sum},
      {"AVERAGE", cpu::tree_aggregate::average},
      {"MIN", cpu::tree_aggregate::min},
      {"MAX", cpu::tree_aggregate::max}};
  const cpu::tree_aggregate agg =
      named(aggregates, n.attr_string("aggregate_function", "SUM"), at, "aggregate_function");
  tree_attributes a = read_trees(n, "target", targets);
  std::vector<float> base = a.base_values;
  if (!base.empty() && static_cast<int64_t>(base.size()) != targets)
    refuse(at, "has " + std::to_string(base.size()) + " base_values for " +
                   std::to_string(targets) + " targets");
  base.resize(static_cast<size_t>(targets), 0.0f);
  const post_transform pt = a.transform;
  auto trees = a.trees;

  return kernel([=](const inputs_t& in, std::vector<value>& out) {
    const tensor& x = input(in, 0, at);
    std::vector<float> scores;
    std::vector<uint8_t> has;
    const int64_t rows = score_rows(*trees, x, agg, scores, has, at);
    tensor y = tensor::zeros(dtype::float32, {rows, targets});
    float* py = y.as<float>();
    const auto width = static_cast<size_t>(targets);
    for (size_t r = 0; r < static_cast<size_t>(rows); ++r) {
      float* row = py + r * width;
      if (width == 1) { // onnxruntime: one target takes the base value and only PROBIT
        row[0] = (has[r] ? scores[r] : 0.0f) + base[0];
        if (pt == post_transform::probit)
          row[0] = probit(row[0]);
        continue;
      }
      for (size_t t = 0; t < width; ++t) // unscored targets stay 0, without their base value
        row[t] = has[r * width + t] ? scores[r * width + t] + base[t] : 0.0f;
      transform_row(pt, row, width);
    }
    out.at(0).t = std::move(y);
  });
}

// ---- linear models ----------------------------------------------------------------------------

// scores[r, c] = intercepts[c] + sum_f x[r, f] * coefficients[c, f]; float accumulation.
std::vector<float> linear_scores(const tensor& x, const std::vector<float>& coefficients,
                                 const std::vector<float>& intercepts, size_t outputs,
                                 int64_t& rows, const std::string& at) {
  int64_t features = 0;
  std::tie(rows, features) = matrix_dims(x, at);
  if (static_cast<size_t>(features) * outputs != coefficients.size())
    refuse(at, "input has " + std::to_string(features) + " features; the coefficients expect " +
                   std::to_string(coefficients.size() / outputs));
  std::vector<float> buffer;
  const float* px = float_data(x, buffer, at);
  std::vector<float> scores(static_cast<size_t>(rows) * outputs);
  const auto f_count = static_cast<size_t>(features);
  for (size_t r = 0; r < static_cast<size_t>(rows); ++r)
    for (size_t c = 0; c < outputs; ++c) {
      const float* w = coefficients.data() + c * f_count;
      const float* row = px + r * f_count;
      float sum = 0;
      for (size_t f = 0; f < f_count; ++f)
        sum += row[f] * w[f];
      scores[r * outputs + c] = sum + (intercepts.empty() ? 0.0f : intercepts[c]);
    }
  return scores;
}

// LinearClassifier: Y labels [N], Z [N, classes]. One coefficient row with two labels is
// binary: label by score > 0, Z = [1 - p, p] (p = logistic(score) under LOGISTIC, else the
// score itself).
std::unique_ptr<op_kernel> make_linear_classifier(const node& n, const compile_context&) {
  const std::string at = where(n);
  const auto coefficients = floats_attr(n, "coefficients");
  const auto intercepts = floats_attr(n, "intercepts");
  const auto int_labels = ints_attr(n, "classlabels_ints");
  const auto string_labels = strings_attr(n, "classlabels_strings");
  if (int_labels.empty() == string_labels.empty())
    refuse(at, "needs exactly one of classlabels_ints and classlabels_strings");
  const bool use_strings = !string_labels.empty();
  const size_t labels = use_strings ? string_labels.size() : int_labels.size();
  const size_t outputs = intercepts.empty() ? labels : intercepts.size();
  if (coefficients.empty() || coefficients.size() % outputs != 0)
    refuse(at, std::to_string(coefficients.size()) + " coefficients do not make " +
                   std::to_string(outputs) + " rows");
  const bool binary = outputs == 1;
  if (binary && labels != 2)
    refuse(at, "one coefficient row needs exactly 2 class labels; has " + std::to_string(labels));
  if (!binary && labels != outputs)
    refuse(at, std::to_string(outputs) + " coefficient rows need as many labels; has " +
                   std::to_string(labels));
  const post_transform pt = parse_post_transform(n);
  const size_t columns = binary ? 2 : outputs;

  return kernel([=](const inputs_t& in, std::vector<value>& out) {
    int64_t rows = 0;
    auto scores = linear_scores(input(in, 0, at), coefficients, intercepts, outputs, rows, at);
    tensor y = tensor::zeros(use_strings ? dtype::string : dtype::int64, {rows});
    tensor z = tensor::zeros(dtype::float32, {rows, static_cast<int64_t>(columns)});
    for (size_t r = 0; r < static_cast<size_t>(rows); ++r) {
      const float* s = &scores[r * outputs];
      float* zr = z.as<float>() + r * columns;
      size_t label = 0;
      if (binary) {
        label = s[0] > 0 ? 1 : 0;
        write_binary_pair(pt, s[0], true, zr);
      } else {
        for (size_t c = 1; c < outputs; ++c)
          if (s[c] > s[label])
            label = c;
        std::copy(s, s + outputs, zr);
        transform_row(pt, zr, outputs);
      }
      if (use_strings)
        y.strings[r] = string_labels[label];
      else
        y.as<int64_t>()[r] = int_labels[label];
    }
    out.at(0).t = std::move(y);
    if (out.size() > 1)
      out[1].t = std::move(z);
  });
}

// LinearRegressor: Y [N, targets]. One target takes only PROBIT (as onnxruntime does).
std::unique_ptr<op_kernel> make_linear_regressor(const node& n, const compile_context&) {
  const std::string at = where(n);
  const auto coefficients = floats_attr(n, "coefficients");
  const auto intercepts = floats_attr(n, "intercepts");
  const int64_t targets = n.attr_int("targets", 1);
  if (targets < 1)
    refuse(at, "targets must be >= 1; was " + std::to_string(targets));
  const auto outputs = static_cast<size_t>(targets);
  if (coefficients.empty() || coefficients.size() % outputs != 0)
    refuse(at, std::to_string(coefficients.size()) + " coefficients do not make " +
                   std::to_string(outputs) + " rows");
  if (!intercepts.empty() && intercepts.size() != outputs)
    refuse(at, "has " + std::to_string(intercepts.size()) + " intercepts for " +
                   std::to_string(outputs) + " targets");
  const post_transform pt = parse_post_transform(n);

  return kernel([=](const inputs_t& in, std::vector<value>& out) {
    int64_t rows = 0;
    auto scores = linear_scores(input(in, 0, at), coefficients, intercepts, outputs, rows, at);
    for (size_t r = 0; r < static_cast<size_t>(rows); ++r) {
      if (outputs > 1)
        transform_row(pt, &scores[r * outputs], outputs);
      else if (pt == post_transform::probit)
        scores[r] = probit(scores[r]);
    }
    out.at(0).t = tensor::from(dtype::float32, {rows, targets}, scores);
  });
}

// ---- feature transforms -----------------------------------------------------------------------

// The elements of input 0 as float32 in a tensor of its shape, and the length of its last
// axis (the unit Normalizer and Scaler work along).
tensor float_copy(const tensor& x, const std::string& at, size_t& row_length) {
  if (x.rank() == 0)
    refuse(at, "input must have at least one dimension");
  row_length = static_cast<size_t>(x.shape.back());
  std::vector<float> buffer;
  const float* p = float_data(x, buffer, at);
  tensor y = tensor::zeros(dtype::float32, x.shape);
  std::copy(p, p + x.numel(), y.as<float>());
  return y;
}

// Normalizer: each row (along the last axis) divided by its MAX, L1 or L2 norm; rows whose norm
// is 0 are left as they are.
std::unique_ptr<op_kernel> make_normalizer(const node& n, const compile_context&) {
  const std::string at = where(n);
  enum class norm_kind { max, l1, l2 };
  static const std::map<std::string, norm_kind> norms = {
      {"MAX", norm_kind::max}, {"L1", norm_kind::l1}, {"L2", norm_kind::l2}};
  const norm_kind norm = named(norms, n.attr_string("norm", "MAX"), at, "norm");
  return kernel([=](const inputs_t& in, std::vector<value>& out) {
    size_t width = 0;
    tensor y = float_copy(input(in, 0, at), at, width);
    float* p = y.as<float>();
    const size_t total = static_cast<size_t>(y.numel());
    for (size_t begin = 0; width > 0 && begin < total; begin += width) {
      float* row = p + begin;
      float divisor = 0;
      if (norm == norm_kind::max) {
        divisor = *std::max_element(row, row + width);
      } else {
        for (size_t i = 0; i < width; ++i)
          divisor += norm == norm_kind::l1 ? std::abs(row[i]) : row[i] * row[i];
        if (norm == norm_kind::l2)
          divisor = std::sqrt(divisor);
      }
      if (divisor != 0)
        for (size_t i = 0; i < width; ++i)
          row[i] /= divisor;
    }
    out.at(0).t = std::move(y);
  });
}

// Scaler: y = (x - offset) * scale along the last axis; each of offset and scale holds one
// value (for every column) or one per column. Missing offset means 0, missing scale 1.
std::unique_ptr<op_kernel> make_scaler(const node& n, const compile_context&) {
  const std::string at = where(n);
  auto offset = floats_attr(n, "offset");
  auto scale = floats_attr(n, "scale");
  if (offset.empty())
    offset = {0.0f};
  if (scale.empty())
    scale = {1.0f};
  return kernel([=](const inputs_t& in, std::vector<value>& out) {
    size_t width = 0;
    tensor y = float_copy(input(in, 0, at), at, width);
    for (auto* v : {&offset, &scale})
      if (v->size() != 1 && v->size() != width)
        refuse(at, "offset and scale need 1 or " + std::to_string(width) + " values; one has " +
                       std::to_string(v->size()));
    float* p = y.as<float>();
    const size_t total = static_cast<size_t>(y.numel());
    for (size_t i = 0; i < total; ++i) {
      const size_t c = width == 0 ? 0 : i % width;
      p[i] = (p[i] - offset[offset.size() == 1 ? 0 : c]) * scale[scale.size() == 1 ? 0 : c];
    }
    out.at(0).t = std::move(y);
  });
}

// Binarizer: 1 where x > threshold, else 0, in x's element type. NaN is refused (as
// onnxruntime does) rather than silently becoming 0.
std::unique_ptr<op_kernel> make_binarizer(const node& n, const compile_context&) {
  const std::string at = where(n);
  const double threshold = n.attr_float("threshold", 0.0f);
  return kernel([=](const inputs_t& in, std::vector<value>& out) {
    const tensor& x = input(in, 0, at);
    tensor y = tensor::zeros(x.type, x.shape);
    visit_numeric(x.type, at, [&](auto zero) {
      using T = decltype(zero);
      const T* src = x.as<T>();
      T* dst = y.as<T>();
      for (int64_t i = 0; i < x.numel(); ++i) {
        if (std::isnan(static_cast<double>(src[i])))
          refuse(at, "input element " + std::to_string(i) + " is NaN");
        dst[i] = static_cast<double>(src[i]) > threshold ? T(1) : T(0);
      }
    });
    out.at(0).t = std::move(y);
  });
}

// ArrayFeatureExtractor: picks the columns Y (int64 indices, any shape) along X's last axis.
// X [.., C] gives [.., k]; a 1-D X gives [1, k] (onnxruntime's shape).
std::unique_ptr<op_kernel> make_array_feature_extractor(const node& n, const compile_context&) {
  const std::string at = where(n);
  return kernel([=](const inputs_t& in, std::vector<value>& out) {
    const tensor& x = input(in, 0, at);
    const tensor& idx = input(in, 1, at);
    if (x.rank() == 0)
      refuse(at, "X must have at least one dimension");
    std::vector<int64_t> indices;
    if (idx.type == dtype::int64)
      indices.assign(idx.as<int64_t>(), idx.as<int64_t>() + idx.numel());
    else if (idx.type == dtype::int32)
      indices.assign(idx.as<int32_t>(), idx.as<int32_t>() + idx.numel());
    else
      refuse(at, std::string("indices must be int64, not ") + dtype_name(idx.type));
    if (indices.empty())
      refuse(at, "no indices given");
    const int64_t width = x.shape.back();
    for (int64_t i : indices)
      if (i < 0 || i >= width)
        refuse(at, "index " + std::to_string(i) + " is outside [0, " + std::to_string(width) + ")");
    std::vector<int64_t> shape = x.shape;
    if (x.rank() == 1)
      shape.insert(shape.begin(), 1);
    shape.back() = static_cast<int64_t>(indices.size());
    tensor y = tensor::zeros(x.type, shape);
    const size_t rows = width == 0 ? 0 : static_cast<size_t>(x.numel() / width);
    const size_t elem = dtype_size(x.type), k = indices.size();
    for (size_t r = 0; r < rows; ++r)
      for (size_t j = 0; j < k; ++j) {
        const size_t from = r * static_cast<size_t>(width) + static_cast<size_t>(indices[j]);
        if (x.type == dtype::string)
          y.strings[r * k + j] = x.strings[from];
        else
          std::memcpy(y.data.data() + (r * k + j) * elem, x.data.data() + from * elem, elem);
      }
    out.at(0).t = std::move(y);
  });
}

// ZipMap: float scores [N, C] (or [C]) become N maps {label: score}.
std::unique_ptr<op_kernel> make_zip_map(const node& n, const compile_context&) {
  const std::string at = where(n);
  const auto int_labels = ints_attr(n, "classlabels_int64s");
  const auto string_labels = strings_attr(n, "classlabels_strings");
  if (int_labels.empty() == string_labels.empty())
    refuse(at, "needs exactly one of classlabels_int64s and classlabels_strings");
  const size_t labels = std::max(int_labels.size(), string_labels.size());
  return kernel([=](const inputs_t& in, std::vector<value>& out) {
    const tensor& x = input(in, 0, at);
    if (x.type != dtype::float32)
      refuse(at, std::string("input must be float, not ") + dtype_name(x.type));
    const auto [rows, columns] = matrix_dims(x, at);
    if (static_cast<size_t>(columns) != labels)
      refuse(at, "input has " + std::to_string(columns) + " columns for " + std::to_string(labels) +
                     " labels");
    auto maps = std::make_shared<map_sequence>();
    maps->int_keys = int_labels;
    maps->string_keys = string_labels;
    maps->values.reserve(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r)
      maps->values.emplace_back(x.as<float>() + r * columns, x.as<float>() + (r + 1) * columns);
    out.at(0).maps = std::move(maps);
  });
}

} // namespace

void register_ml_ops(op_registry& registry) {
  const std::string ml = ml_domain;
  // Versions 1 and 3 of the tree ensembles differ only by the *_as_tensor attributes, which
  // one factory reads when present.
  for (int version : {1, 3}) {
    registry.add(ml, "TreeEnsembleClassifier", version, make_tree_classifier);
    registry.add(ml, "TreeEnsembleRegressor", version, make_tree_regressor);
  }
  registry.add(ml, "LinearClassifier", 1, make_linear_classifier);
  registry.add(ml, "LinearRegressor", 1, make_linear_regressor);
  registry.add(ml, "Normalizer", 1, make_normalizer);
  registry.add(ml, "Scaler", 1, make_scaler);
  registry.add(ml, "Binarizer", 1, make_binarizer);
  registry.add(ml, "ArrayFeatureExtractor", 1, make_array_feature_extractor);
  registry.add(ml, "ZipMap", 1, make_zip_map);
}

} // namespace serve::onnx_ir
