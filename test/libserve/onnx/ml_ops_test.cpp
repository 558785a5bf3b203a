// The ai.onnx.ml operators, compiled through the registry from hand-built nodes. Expected
// values are computed by hand (formulas in the checks); every configuration here was also run
// through onnxruntime 1.32 and agrees with it except where a comment says we depart on purpose.
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "libserve/future.hpp"
#include "libserve/onnx/op_registry.hpp"

using namespace serve;
using namespace serve::onnx_ir;

namespace {

const float nan_f = std::numeric_limits<float>::quiet_NaN();


using attributes = std::map<std::string, attribute>;

node ml_node(const std::string& op, attributes attrs, size_t inputs = 1, size_t outputs = 1) {
  node n;
  n.name = "n";
  n.op_type = op;
  n.domain = ml_domain;
  for (size_t i = 0; i < inputs; ++i)
    n.inputs.push_back("in" + std::to_string(i));
  for (size_t i = 0; i < outputs; ++i)
    n.outputs.push_back("out" + std::to_string(i));
  n.attributes = std::move(attrs);
  return n;
}

std::unique_ptr<op_kernel> compile(const node& n) {
  const op_factory* factory = op_registry::global().find("ai.onnx.ml", n.op_type, 3);
  REQUIRE(factory != nullptr);
  compile_context ctx;
  ctx.opset = 3;
  return (*factory)(n, ctx);
}

std::vector<value> run(const node& n, const std::vector<tensor>& in) {
  auto k = compile(n);
  std::vector<value> values(in.size());
  std::vector<const value*> ptrs;
  for (size_t i = 0; i < in.size(); ++i) {
    values[i].t = in[i];
    ptrs.push_back(&values[i]);
  }
  std::vector<value> out(n.outputs.size());
  k->run(ptrs, out);
  return out;
}

// The message of the serve_exception compiling (and, with inputs, running) `n` throws.
std::string refusal(const node& n, const std::vector<tensor>& in = {}) {
  try {
    if (in.empty())
      compile(n);
    else
      run(n, in);
  } catch (const serve_exception& e) {
    CHECK(e.code() == errc::invalid_argument);
    return e.what();
  }
  return "accepted";
}

tensor f32(std::vector<int64_t> shape, std::vector<float> v) {
  return tensor::from(dtype::float32, std::move(shape), v);
}

void check_floats(const tensor& t, const std::vector<int64_t>& shape,
                  const std::vector<float>& expected, double eps = 1e-5) {
  REQUIRE(t.type == dtype::float32);
  CHECK(t.shape == shape);
  REQUIRE(t.numel() == static_cast<int64_t>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) {
    CAPTURE(i);
    if (std::isnan(expected[i]))
      CHECK(std::isnan(t.as<float>()[i]));
    else if (std::isinf(expected[i]))
      CHECK(t.as<float>()[i] == expected[i]);
    else
      CHECK(t.as<float>()[i] == doctest::Approx(expected[i]).epsilon(eps));
  }
}

std::vector<int64_t> int64s(const tensor& t) {
  REQUIRE(t.type == dtype::int64);
  return std::vector<int64_t>(t.as<int64_t>(), t.as<int64_t>() + t.numel());
}

float sigmoid(float v) {
  return 1 / (1 + std::exp(-v));
}

std::vector<float> softmax(std::vector<float> v) {
  float sum = 0;
  for (float& x : v)
    sum += (x = std::exp(x));
  for (float& x : v)
    x /= sum;
  return v;
}

// Two stumps over 2 features: tree 0 asks x0 <= 0.5 (true: node 1, false: node 2), tree 1 asks
// x1 <= 1.0. For the rows of `stump_rows` row 0 reaches node 2 of both trees, rows 1 and 2
// node 1 of both.
attributes stumps(attributes extra) {
  attributes a = {
      {"nodes_treeids", attribute::of_ints({0, 0, 0, 1, 1, 1})},
      {"nodes_nodeids", attribute::of_ints({0, 1, 2, 0, 1, 2})},
      {"nodes_featureids", attribute::of_ints({0, 0, 0, 1, 0, 0})},
      {"nodes_modes", attribute::of_strings({"BRANCH_LEQ", "LEAF", "LEAF", "BRANCH_LEQ", "LEAF", "LEAF"})},
      {"nodes_values", attribute::of_floats({0.5f, 0, 0, 1.0f, 0, 0})},
      {"nodes_truenodeids", attribute::of_ints({1, 0, 0, 1, 0, 0})},
      {"nodes_falsenodeids", attribute::of_ints({2, 0, 0, 2, 0, 0})},
  };
  for (auto& [k, v] : extra)
    a[k] = v;
  return a;
}

const tensor stump_rows = f32({3, 2}, {1, 2, -1, 0.5f, 0, 0});

// Weights on (tree 0 node 1, tree 0 node 2, tree 1 node 1, tree 1 node 2), all for `class_id`.
attributes one_class(int64_t class_id, std::vector<float> w, std::string transform,
                     std::vector<float> base = {}) {
  attributes a = {{"class_treeids", attribute::of_ints({0, 0, 1, 1})},
                  {"class_nodeids", attribute::of_ints({1, 2, 1, 2})},
                  {"class_ids", attribute::of_ints({class_id, class_id, class_id, class_id})},
                  {"class_weights", attribute::of_floats(std::move(w))},
                  {"classlabels_int64s", attribute::of_ints({4, 9})},
                  {"post_transform", attribute::of_string(std::move(transform))}};
  if (!base.empty())
    a["base_values"] = attribute::of_floats(std::move(base));
  return stumps(a);
}

std::vector<value> classify(const attributes& a, const tensor& x = stump_rows) {
  return run(ml_node("TreeEnsembleClassifier", a, 1, 2), {x});
}

// Three classes: row 0 gets class 0 -0.4 and class 1 -0.2, rows 1-2 class 0 -0.3 and class 1
// -0.1; class 2 never gets a vote.
attributes three_classes(std::string transform, std::vector<float> base = {}) {
  attributes a = {{"class_treeids", attribute::of_ints({0, 0, 1, 1})},
                  {"class_nodeids", attribute::of_ints({1, 2, 1, 2})},
                  {"class_ids", attribute::of_ints({0, 1, 1, 0})},
                  {"class_weights", attribute::of_floats({-0.3f, -0.2f, -0.1f, -0.4f})},
                  {"classlabels_int64s", attribute::of_ints({4, 9, 7})},
                  {"post_transform", attribute::of_string(std::move(transform))}};
  if (!base.empty())
    a["base_values"] = attribute::of_floats(std::move(base));
  return stumps(a);
}

} // namespace

TEST_CASE("ml tree classifier: the best scored class wins and unscored classes read as 0") {
  auto out = classify(three_classes("NONE"));
  // Class 2 has no vote: 0 > -0.2, yet class 1 (label 9) wins, as in onnxruntime.
  CHECK(int64s(out[0].t) == std::vector<int64_t>{9, 9, 9});
  check_floats(out[1].t, {3, 3}, {-0.4f, -0.2f, 0, -0.3f, -0.1f, 0, -0.3f, -0.1f, 0});

  auto a = softmax({-0.4f, -0.2f, 0}), b = softmax({-0.3f, -0.1f, 0});
  check_floats(classify(three_classes("SOFTMAX"))[1].t, {3, 3},
               {a[0], a[1], a[2], b[0], b[1], b[2], b[0], b[1], b[2]});
  check_floats(classify(three_classes("LOGISTIC"))[1].t, {3, 3},
               {sigmoid(-0.4f), sigmoid(-0.2f), 0.5f, sigmoid(-0.3f), sigmoid(-0.1f), 0.5f,
                sigmoid(-0.3f), sigmoid(-0.1f), 0.5f});
  // PROBIT uses onnxruntime's erfinv approximation: probit(0.3) = -0.5244459 (exact: -0.5244005).
  auto positive = three_classes("PROBIT");
  positive["class_weights"] = attribute::of_floats({0.3f, 0.2f, 0.1f, 0.4f});
  auto probit = classify(positive);
  CHECK(int64s(probit[0].t) == std::vector<int64_t>{4, 4, 4});
  check_floats(probit[1].t, {3, 3},
               {-0.2533535f, -0.8417561f, -std::numeric_limits<float>::infinity(), -0.5244459f,
                -1.2817129f, -std::numeric_limits<float>::infinity(), -0.5244459f, -1.2817129f,
                -std::numeric_limits<float>::infinity()});
}

TEST_CASE("ml tree classifier: base values score every class they are given for") {
  // Scores become [-0.3, 0.0, 0.3] and [-0.2, 0.1, 0.3]: class 2 (label 7) now wins.
  auto out = classify(three_classes("NONE", {0.1f, 0.2f, 0.3f}));
  CHECK(int64s(out[0].t) == std::vector<int64_t>{7, 7, 7});
  check_floats(out[1].t, {3, 3}, {-0.3f, 0, 0.3f, -0.2f, 0.1f, 0.3f, -0.2f, 0.1f, 0.3f});
  // SOFTMAX_ZERO leaves the exact zero at 0.
  const float e = std::exp(-0.6f);
  auto b = softmax({-0.2f, 0.1f, 0.3f});
  check_floats(classify(three_classes("SOFTMAX_ZERO", {0.1f, 0.2f, 0.3f}))[1].t, {3, 3},
               {e / (e + 1), 0, 1 / (e + 1), b[0], b[1], b[2], b[0], b[1], b[2]});
}

TEST_CASE("ml tree classifier: string labels") {
  auto a = three_classes("NONE");
  a.erase("classlabels_int64s");
  a["classlabels_strings"] = attribute::of_strings({"a", "b", "c"});
  auto out = classify(a);
  REQUIRE(out[0].t.type == dtype::string);
  CHECK(out[0].t.shape == std::vector<int64_t>{3});
  CHECK(out[0].t.strings == std::vector<std::string>{"b", "b", "b"});
}

TEST_CASE("ml tree classifier binary case with mixed weights: a margin, label by margin > 0") {
  // Weights for class 0 only, of both signs: the sum s is the positive class's margin
  // (gradient boosting). Row 0: s = -0.4 + 0.1 = -0.3; rows 1-2: s = 0.3 + 0.2 = 0.5.
  auto out = classify(one_class(0, {0.3f, -0.4f, 0.2f, 0.1f}, "NONE"));
  CHECK(int64s(out[0].t) == std::vector<int64_t>{4, 9, 9});
  check_floats(out[1].t, {3, 2}, {0.3f, -0.3f, -0.5f, 0.5f, -0.5f, 0.5f}); // [-s, s]
  // scikit-learn's GradientBoostingClassifier export: one base value, LOGISTIC.
  // Two base values without a class-1 vote: both added, but class 1 still reads as 0 and the
  // label follows class 0's score.
  out = classify(one_class(0, {0.3f, -0.4f, 0.2f, 0.1f}, "NONE", {0.1f, 0.2f}));
  CHECK(int64s(out[0].t) == std::vector<int64_t>{4, 9, 9});
  check_floats(out[1].t, {3, 2}, {-0.2f, 0, 0.6f, 0, 0.6f, 0});
  out = classify(one_class(0, {0.3f, -0.4f, 0.2f, 0.1f}, "LOGISTIC", {0.1f}));
  CHECK(int64s(out[0].t) == std::vector<int64_t>{4, 9, 9});
  const float p0 = sigmoid(-0.2f), p1 = sigmoid(0.6f);
  check_floats(out[1].t, {3, 2}, {1 - p0, p0, 1 - p1, p1, 1 - p1, p1});
}

TEST_CASE("ml tree classifier binary case with weights >= 0: a probability, label by p > 0.5") {
  // Random forest export: p = 0.4 + 0.3 = 0.7 for row 0, 0.1 + 0.2 = 0.3 for rows 1-2.
  auto out = classify(one_class(0, {0.1f, 0.4f, 0.2f, 0.3f}, "NONE"));
  CHECK(int64s(out[0].t) == std::vector<int64_t>{9, 4, 4});
  check_floats(out[1].t, {3, 2}, {0.3f, 0.7f, 0.7f, 0.3f, 0.7f, 0.3f}); // [1 - p, p]
  out = classify(one_class(0, {0.1f, 0.4f, 0.2f, 0.3f}, "LOGISTIC"));
  CHECK(int64s(out[0].t) == std::vector<int64_t>{9, 4, 4}); // by the raw score
  const float q0 = sigmoid(0.7f), q1 = sigmoid(0.3f);
  check_floats(out[1].t, {3, 2}, {1 - q0, q0, 1 - q1, q1, 1 - q1, q1});
  // Exactly 0.5 is not above the threshold.
  out = classify(one_class(0, {0.25f, 0.25f, 0.25f, 0.25f}, "NONE"));
  CHECK(int64s(out[0].t) == std::vector<int64_t>{4, 4, 4});
}

TEST_CASE("ml tree classifier binary case with weights on class 1: both columns, class 0 at 0") {
  auto out = classify(one_class(1, {0.3f, -0.4f, 0.2f, 0.1f}, "NONE"));
  CHECK(int64s(out[0].t) == std::vector<int64_t>{4, 9, 9});
  check_floats(out[1].t, {3, 2}, {0, -0.3f, 0, 0.5f, 0, 0.5f});
  out = classify(one_class(1, {0.3f, -0.4f, 0.2f, 0.1f}, "LOGISTIC"));
  check_floats(out[1].t, {3, 2}, {0.5f, sigmoid(-0.3f), 0.5f, sigmoid(0.5f), 0.5f, sigmoid(0.5f)});
  // onnxruntime's rule for two base values: class 1 = base[1] + class 0's sum (here none).
  out = classify(one_class(1, {0.3f, -0.4f, 0.2f, 0.1f}, "NONE", {0.1f, 0.2f}));
  CHECK(int64s(out[0].t) == std::vector<int64_t>{9, 9, 9});
  check_floats(out[1].t, {3, 2}, {0, 0.2f, 0, 0.2f, 0, 0.2f});
}

TEST_CASE("ml tree classifier binary case under PROBIT writes [probit(s), 0]") {
  // onnxruntime leaves column 1 unwritten here; we write 0. probit(0.5) = 0, probit(-0.3) = NaN.
  auto out = classify(one_class(0, {0.3f, -0.4f, 0.2f, 0.1f}, "PROBIT"));
  check_floats(out[1].t, {3, 2}, {nan_f, 0, 0, 0, 0, 0});
}

TEST_CASE("ml tree classifier with votes for both of two classes labels by class 1's score > 0") {
  // Row 0 scores [1.1, 0.9], rows 1-2 [1.3, 0.7]: onnxruntime picks the positive class because
  // 0.9 > 0 (not the argmax). It returns the literal 1; we return the declared label (9).
  attributes a =
      stumps({{"class_treeids", attribute::of_ints({0, 0, 0, 0, 1, 1, 1, 1})},
              {"class_nodeids", attribute::of_ints({1, 1, 2, 2, 1, 1, 2, 2})},
              {"class_ids", attribute::of_ints({0, 1, 0, 1, 0, 1, 0, 1})},
              {"class_weights", attribute::of_floats({0.7f, 0.3f, 0.2f, 0.8f, 0.6f, 0.4f, 0.9f, 0.1f})},
              {"classlabels_int64s", attribute::of_ints({4, 9})}});
  auto out = classify(a);
  CHECK(int64s(out[0].t) == std::vector<int64_t>{9, 9, 9});
  check_floats(out[1].t, {3, 2}, {1.1f, 0.9f, 1.3f, 0.7f, 1.3f, 0.7f});
  // Two base values: class 1 = base[1] + class 0's score, class 0 = minus that.
  a["base_values"] = attribute::of_floats({0.1f, 0.2f});
  check_floats(classify(a)[1].t, {3, 2}, {-1.3f, 1.3f, -1.5f, 1.5f, -1.5f, 1.5f});
  // Class-1 scores <= 0 give the negative label (strings map the same way).
  a.erase("base_values");
  a.erase("classlabels_int64s");
  a["classlabels_strings"] = attribute::of_strings({"no", "yes"});
  a["class_weights"] = attribute::of_floats({0.7f, -0.3f, 0.2f, -0.8f, 0.6f, -0.4f, 0.9f, -0.1f});
  CHECK(classify(a)[0].t.strings == std::vector<std::string>{"no", "no", "no"});
}

TEST_CASE("ml tree classifier takes int64, int32 and double rows and tensor attributes (v3)") {
  auto a = three_classes("NONE");
  a["class_weights"] = attribute::of_floats({0.3f, 0.2f, 0.1f, 0.4f});
  const std::vector<float> expected = {0.3f, 0.1f, 0, 0.4f, 0.2f, 0, 0.7f, 0, 0};
  // Rows [0, 1], [1, 2], [0, 2].
  auto i64 =
      classify(a, tensor::from(dtype::int64, {3, 2}, std::vector<int64_t>{0, 1, 1, 2, 0, 2}));
  CHECK(int64s(i64[0].t) == std::vector<int64_t>{4, 4, 4});
  check_floats(i64[1].t, {3, 3}, expected);
  auto i32 =
      classify(a, tensor::from(dtype::int32, {3, 2}, std::vector<int32_t>{0, 1, 1, 2, 0, 2}));
  check_floats(i32[1].t, {3, 3}, expected);
  auto f64 =
      classify(a, tensor::from(dtype::float64, {3, 2}, std::vector<double>{0, 1, 1, 2, 0, 2}));
  check_floats(f64[1].t, {3, 3}, expected);

  a.erase("nodes_values");
  a["nodes_values_as_tensor"] = attribute::of_tensor(f32({6}, {0.5f, 0, 0, 1.0f, 0, 0}));
  a["base_values_as_tensor"] =
      attribute::of_tensor(tensor::from(dtype::float64, {3}, std::vector<double>{0.5, 0, 0}));
  auto v3 = classify(a, f32({3, 2}, {0, 1, 1, 2, 0, 2}));
  check_floats(v3[1].t, {3, 3}, {0.8f, 0.1f, 0, 0.9f, 0.2f, 0, 1.2f, 0, 0});
}

TEST_CASE("ml tree classifier routes NaN by nodes_missing_value_tracks_true, shorter lists too") {
  auto a = three_classes("NONE");
  a["class_weights"] = attribute::of_floats({0.3f, 0.2f, 0.1f, 0.4f});
  a["nodes_missing_value_tracks_true"] = attribute::of_ints({1, 0, 0}); // tree 1's root is past the end
  auto out = classify(a, f32({1, 2}, {nan_f, nan_f}));
  CHECK(int64s(out[0].t) == std::vector<int64_t>{4});
  check_floats(out[1].t, {1, 3}, {0.7f, 0, 0}); // tree 0: true child 0.3; tree 1: false 0.4
}

TEST_CASE("ml tree classifier refuses malformed attributes at compile time, naming them") {
  auto with = [](attributes a, const std::string& key, attribute v) {
    a[key] = std::move(v);
    return ml_node("TreeEnsembleClassifier", a, 1, 2);
  };
  const auto good = three_classes("NONE");
  CHECK(refusal(ml_node("TreeEnsembleClassifier", good, 1, 2)) == "accepted");
  CHECK(refusal(with(good, "nodes_nodeids", attribute::of_ints({0, 1, 1, 0, 1, 2}))).find("appears twice") !=
        std::string::npos);
  CHECK(
      refusal(with(good, "nodes_truenodeids", attribute::of_ints({5, 0, 0, 1, 0, 0}))).find("node 5 of tree 0") !=
      std::string::npos);
  CHECK(refusal(with(good, "nodes_modes",
                     attribute::of_strings({"BRANCH_XX", "LEAF", "LEAF", "BRANCH_LEQ", "LEAF", "LEAF"})))
            .find("BRANCH_XX") != std::string::npos);
  CHECK(refusal(with(good, "base_values", attribute::of_floats({1, 2}))).find("2 base_values for 3 classes") !=
        std::string::npos);
  CHECK(refusal(with(good, "class_ids", attribute::of_ints({0, 1, 5, 0}))).find("target 5") != std::string::npos);
  CHECK(refusal(with(good, "post_transform", attribute::of_string("SQUARE"))).find("SQUARE") != std::string::npos);
  CHECK(
      refusal(with(good, "classlabels_strings", attribute::of_strings({"a", "b", "c"}))).find("exactly one of") !=
      std::string::npos);
  auto node = ml_node("TreeEnsembleClassifier", good, 1, 2);
  CHECK(refusal(node, {f32({1, 1}, {0})}).find("1 features") != std::string::npos);
}

namespace {

// Regression weights on (tree 0 node 1, tree 0 node 2 twice, tree 1 node 1, tree 1 node 2).
// Row 0 gets target 0: -0.2 and 0.4, target 1: 0.7; rows 1-2 get target 0: 0.3 and 0.1.
attributes three_targets(std::string aggregate, std::string transform) {
  return stumps({{"target_treeids", attribute::of_ints({0, 0, 0, 1, 1})},
                 {"target_nodeids", attribute::of_ints({1, 2, 2, 1, 2})},
                 {"target_ids", attribute::of_ints({0, 0, 1, 0, 0})},
                 {"target_weights", attribute::of_floats({0.3f, -0.2f, 0.7f, 0.1f, 0.4f})},
                 {"n_targets", attribute::of_int(3)},
                 {"base_values", attribute::of_floats({0.5f, 0.25f, 0.125f})},
                 {"aggregate_function", attribute::of_string(std::move(aggregate))},
                 {"post_transform", attribute::of_string(std::move(transform))}});
}

// One target: row 0 gets -0.2 and 0.4, rows 1-2 get 0.3 and 0.1.
attributes one_target(std::string aggregate, std::string transform) {
  return stumps({{"target_treeids", attribute::of_ints({0, 0, 1, 1})},
                 {"target_nodeids", attribute::of_ints({1, 2, 1, 2})},
                 {"target_ids", attribute::of_ints({0, 0, 0, 0})},
                 {"target_weights", attribute::of_floats({0.3f, -0.2f, 0.1f, 0.4f})},
                 {"n_targets", attribute::of_int(1)},
                 {"aggregate_function", attribute::of_string(std::move(aggregate))},
                 {"post_transform", attribute::of_string(std::move(transform))}});
}

tensor regress(const attributes& a, const tensor& x = stump_rows) {
  return run(ml_node("TreeEnsembleRegressor", a), {x})[0].t;
}

} // namespace

TEST_CASE("ml tree regressor aggregates per target; targets without votes stay 0") {
  // onnxruntime adds a target's base value only when some tree voted for it.
  check_floats(regress(three_targets("SUM", "NONE")), {3, 3},
               {0.7f, 0.95f, 0, 0.9f, 0, 0, 0.9f, 0, 0});
  check_floats(regress(three_targets("AVERAGE", "NONE")), {3, 3},
               {0.6f, 0.6f, 0, 0.7f, 0, 0, 0.7f, 0, 0});
  check_floats(regress(three_targets("MIN", "NONE")), {3, 3},
               {0.3f, 0.95f, 0, 0.6f, 0, 0, 0.6f, 0, 0});
  check_floats(regress(three_targets("MAX", "NONE")), {3, 3},
               {0.9f, 0.95f, 0, 0.8f, 0, 0, 0.8f, 0, 0});
  check_floats(
      regress(three_targets("SUM", "LOGISTIC")), {3, 3},
      {sigmoid(0.7f), sigmoid(0.95f), 0.5f, sigmoid(0.9f), 0.5f, 0.5f, sigmoid(0.9f), 0.5f, 0.5f});
  auto sm0 = softmax({0.7f, 0.95f, 0}), sm1 = softmax({0.9f, 0, 0});
  check_floats(regress(three_targets("SUM", "SOFTMAX")), {3, 3},
               {sm0[0], sm0[1], sm0[2], sm1[0], sm1[1], sm1[2], sm1[0], sm1[1], sm1[2]});
}

TEST_CASE("ml tree regressor with one target applies only PROBIT, as onnxruntime does") {
  check_floats(regress(one_target("SUM", "NONE")), {3, 1}, {0.2f, 0.4f, 0.4f});
  check_floats(regress(one_target("SUM", "LOGISTIC")), {3, 1}, {0.2f, 0.4f, 0.4f});
  check_floats(regress(one_target("AVERAGE", "SOFTMAX")), {3, 1}, {0.1f, 0.2f, 0.2f});
  check_floats(regress(one_target("MIN", "NONE")), {3, 1}, {-0.2f, 0.1f, 0.1f});
  check_floats(regress(one_target("MAX", "NONE")), {3, 1}, {0.4f, 0.3f, 0.3f});
  check_floats(regress(one_target("SUM", "PROBIT")), {3, 1},
               {-0.8417561f, -0.2533535f, -0.2533535f});
  auto a = one_target("SUM", "NONE");
  a["base_values"] = attribute::of_floats({0.1f});
  check_floats(regress(a), {3, 1}, {0.3f, 0.5f, 0.5f});
  a.erase("base_values");
  a.erase("nodes_values");
  a["nodes_values_as_tensor"] = attribute::of_tensor(f32({6}, {0.5f, 0, 0, 1.0f, 0, 0}));
  a["base_values_as_tensor"] = attribute::of_tensor(f32({1}, {1.0f}));
  check_floats(regress(a), {3, 1}, {1.2f, 1.4f, 1.4f});
}

TEST_CASE("ml tree regressor compares float rows in float32 and double rows in double") {
  // Thresholds 0.3 (a float attribute); weights 1 | 10 (tree 0) and 100 | 1000 (tree 1).
  auto a = one_target("SUM", "NONE");
  a["nodes_values"] = attribute::of_floats({0.3f, 0, 0, 0.3f, 0, 0});
  a["target_weights"] = attribute::of_floats({1, 10, 100, 1000});
  // 0.30000001193 is above 0.3f = 0.30000001192... in double; in float both round to 0.3f.
  check_floats(regress(a, tensor::from(dtype::float64, {1, 2},
                                       std::vector<double>{0.30000001193, 0.3000000119})),
               {1, 1}, {110});
  check_floats(regress(a, f32({1, 2}, {0.30000001193f, 0.3000000119f})), {1, 1}, {101});
}

TEST_CASE("ml tree regressor refuses base_values that do not match n_targets") {
  auto a = three_targets("SUM", "NONE");
  a["base_values"] = attribute::of_floats({1.0f});
  CHECK(refusal(ml_node("TreeEnsembleRegressor", a)).find("1 base_values for 3 targets") !=
        std::string::npos);
  a = three_targets("MEDIAN", "NONE");
  CHECK(refusal(ml_node("TreeEnsembleRegressor", a)).find("MEDIAN") != std::string::npos);
}

namespace {

// One coefficient row (scikit-learn's binary LogisticRegression as older converters write it).
// Scores for stump_rows: 0.3 - 0.4 + 0.05 = -0.05, -0.3 - 0.1 + 0.05 = -0.35, 0.05.
node binary_linear(std::string transform) {
  return ml_node("LinearClassifier",
                 {{"coefficients", attribute::of_floats({0.3f, -0.2f})},
                  {"intercepts", attribute::of_floats({0.05f})},
                  {"classlabels_ints", attribute::of_ints({4, 9})},
                  {"post_transform", attribute::of_string(std::move(transform))}},
                 1, 2);
}

} // namespace

TEST_CASE("ml linear classifier with one coefficient row writes two columns [1 - p, p]") {
  auto out = run(binary_linear("NONE"), {stump_rows});
  CHECK(int64s(out[0].t) == std::vector<int64_t>{4, 4, 9});
  check_floats(out[1].t, {3, 2}, {1.05f, -0.05f, 1.35f, -0.35f, 0.95f, 0.05f});
  out = run(binary_linear("LOGISTIC"), {stump_rows});
  CHECK(int64s(out[0].t) == std::vector<int64_t>{4, 4, 9});
  const float p[] = {sigmoid(-0.05f), sigmoid(-0.35f), sigmoid(0.05f)};
  check_floats(out[1].t, {3, 2}, {1 - p[0], p[0], 1 - p[1], p[1], 1 - p[2], p[2]});
  // SOFTMAX of a single score is meaningless; onnxruntime leaves the score as it is.
  check_floats(run(binary_linear("SOFTMAX"), {stump_rows})[1].t, {3, 2},
               {1.05f, -0.05f, 1.35f, -0.35f, 0.95f, 0.05f});
  // PROBIT: [1 - probit(s), probit(s)] (onnxruntime writes garbage); probit(0.05) = -1.6446697.
  check_floats(run(binary_linear("PROBIT"), {f32({1, 2}, {0, 0})})[1].t, {1, 2},
               {2.6446697f, -1.6446697f});
  auto n = binary_linear("NONE");
  n.attributes.erase("classlabels_ints");
  n.attributes["classlabels_strings"] = attribute::of_strings({"neg", "pos"});
  CHECK(run(n, {stump_rows})[0].t.strings == std::vector<std::string>{"neg", "neg", "pos"});
}

TEST_CASE("ml linear classifier with a row per class: argmax label, transformed scores") {
  // Scores x0 + 0, x1 + 0.5, -x0 - x1: [1, 2.5, -3] and [-1, 1, 0.5].
  auto make = [](std::string transform) {
    return ml_node("LinearClassifier",
                   {{"coefficients", attribute::of_floats({1, 0, 0, 1, -1, -1})},
                    {"intercepts", attribute::of_floats({0, 0.5f, 0})},
                    {"classlabels_ints", attribute::of_ints({4, 9, 7})},
                    {"multi_class", attribute::of_int(1)},
                    {"post_transform", attribute::of_string(std::move(transform))}},
                   1, 2);
  };
  const tensor x = f32({2, 2}, {1, 2, -1, 0.5f});
  auto out = run(make("NONE"), {x});
  CHECK(int64s(out[0].t) == std::vector<int64_t>{9, 9});
  check_floats(out[1].t, {2, 3}, {1, 2.5f, -3, -1, 1, 0.5f});
  auto a = softmax({1, 2.5f, -3}), b = softmax({-1, 1, 0.5f});
  check_floats(run(make("SOFTMAX"), {x})[1].t, {2, 3}, {a[0], a[1], a[2], b[0], b[1], b[2]});
  check_floats(run(make("LOGISTIC"), {x})[1].t, {2, 3},
               {sigmoid(1), sigmoid(2.5f), sigmoid(-3), sigmoid(-1), sigmoid(1), sigmoid(0.5f)});
  auto ints_in =
      run(make("NONE"), {tensor::from(dtype::int64, {2, 2}, std::vector<int64_t>{1, 2, -1, 0})});
  CHECK(int64s(ints_in[0].t) == std::vector<int64_t>{9, 7});
  CHECK(refusal(make("NONE"), {f32({1, 3}, {1, 2, 3})}).find("3 features") != std::string::npos);
}

TEST_CASE("ml linear classifier refuses labels that do not match the coefficient rows") {
  auto n = binary_linear("NONE");
  n.attributes["classlabels_ints"] = attribute::of_ints({4, 9, 7});
  CHECK(refusal(n).find("exactly 2 class labels") != std::string::npos);
  n = binary_linear("NONE");
  n.attributes["intercepts"] = attribute::of_floats({0, 0});
  n.attributes["classlabels_ints"] = attribute::of_ints({4, 9, 7});
  CHECK(refusal(n).find("2 coefficient rows need as many labels") != std::string::npos);
  n.attributes["intercepts"] = attribute::of_floats({0, 0, 0});
  CHECK(refusal(n).find("do not make 3 rows") != std::string::npos);
}

TEST_CASE("ml linear regressor: one target takes only PROBIT, several take any transform") {
  const tensor x = f32({3, 3}, {1, -2, 0.5f, 0, 0, 0, -3, -1, -0.5f});
  auto one = [&](std::string transform) {
    return run(ml_node("LinearRegressor", {{"coefficients", attribute::of_floats({0.1f, 0.2f, 0.3f})},
                                           {"intercepts", attribute::of_floats({0.05f})},
                                           {"post_transform", attribute::of_string(std::move(transform))}}),
               {x})[0]
        .t;
  };
  check_floats(one("NONE"), {3, 1}, {-0.1f, 0.05f, -0.6f});
  check_floats(one("LOGISTIC"), {3, 1}, {-0.1f, 0.05f, -0.6f});
  check_floats(one("PROBIT"), {3, 1}, {nan_f, -1.6446697f, nan_f});
  auto two =
      run(ml_node("LinearRegressor", {{"coefficients", attribute::of_floats({0.1f, 0.2f, 0.3f, -0.1f, 0, 0.4f})},
                                      {"intercepts", attribute::of_floats({0.05f, 0.1f})},
                                      {"targets", attribute::of_int(2)},
                                      {"post_transform", attribute::of_string("SOFTMAX")}}),
          {x})[0]
          .t;
  auto r0 = softmax({-0.1f, 0.2f}), r1 = softmax({0.05f, 0.1f}), r2 = softmax({-0.6f, 0.2f});
  check_floats(two, {3, 2}, {r0[0], r0[1], r1[0], r1[1], r2[0], r2[1]});
  auto bare = run(ml_node("LinearRegressor", {{"coefficients", attribute::of_floats({0.1f, 0.2f, 0.3f})}}), {x});
  check_floats(bare[0].t, {3, 1}, {-0.15f, 0, -0.65f});
}

TEST_CASE("ml Normalizer divides each row by its MAX, L1 or L2 norm; zero norms leave it") {
  const tensor x = f32({2, 3}, {-1, 0, -0.5f, 0, -2, 3});
  auto norm = [&](const char* kind, const tensor& in) {
    return run(ml_node("Normalizer", {{"norm", attribute::of_string(kind)}}), {in})[0].t;
  };
  // MAX is the largest value, not the largest magnitude: row 0's is 0, so it stays.
  check_floats(norm("MAX", x), {2, 3}, {-1, 0, -0.5f, 0, -2.0f / 3, 1});
  check_floats(norm("L1", x), {2, 3}, {-1 / 1.5f, 0, -0.5f / 1.5f, 0, -0.4f, 0.6f});
  const float l2a = std::sqrt(1.25f), l2b = std::sqrt(13.0f);
  check_floats(norm("L2", x), {2, 3}, {-1 / l2a, 0, -0.5f / l2a, 0, -2 / l2b, 3 / l2b});
  check_floats(norm("L1", f32({2}, {0, 0})), {2}, {0, 0});
  check_floats(norm("MAX", tensor::from(dtype::int64, {3}, std::vector<int64_t>{1, -2, 4})), {3},
               {0.25f, -0.5f, 1});
  CHECK(refusal(ml_node("Normalizer", {{"norm", attribute::of_string("L3")}})).find("L3") != std::string::npos);
}

TEST_CASE("ml Scaler subtracts offset and multiplies by scale, one value or one per column") {
  const tensor x = f32({2, 3}, {1, -2, 0.5f, 0, 0, 0});
  auto scaler = [](std::vector<float> offset, std::vector<float> scale) {
    return ml_node("Scaler",
                   {{"offset", attribute::of_floats(std::move(offset))}, {"scale", attribute::of_floats(std::move(scale))}});
  };
  check_floats(run(scaler({1}, {2}), {x})[0].t, {2, 3}, {0, -6, -1, -2, -2, -2});
  check_floats(run(scaler({1, 2, 3}, {2, 0.5f, -1}), {x})[0].t, {2, 3}, {0, -2, 2.5f, -2, -1, 3});
  check_floats(
      run(scaler({1}, {2}), {tensor::from(dtype::int64, {1, 3}, std::vector<int64_t>{1, 2, 3})})[0]
          .t,
      {1, 3}, {0, 2, 4});
  CHECK(refusal(scaler({1, 2}, {1}), {x}).find("1 or 3 values") != std::string::npos);
}

TEST_CASE("ml Binarizer maps x > threshold to 1 in the input's type and refuses NaN") {
  auto bin = ml_node("Binarizer", {{"threshold", attribute::of_float(0.5f)}});
  check_floats(run(bin, {f32({2, 3}, {1, -2, 0.5f, 0.6f, 0.4f, 0})})[0].t, {2, 3},
               {1, 0, 0, 1, 0, 0});
  auto i = run(bin, {tensor::from(dtype::int64, {3}, std::vector<int64_t>{0, 1, 2})})[0].t;
  CHECK(int64s(i) == std::vector<int64_t>{0, 1, 1});
  CHECK(refusal(bin, {f32({2}, {0, nan_f})}).find("element 1 is NaN") != std::string::npos);
}

TEST_CASE("ml ArrayFeatureExtractor picks columns along the last axis for any element type") {
  auto afe = ml_node("ArrayFeatureExtractor", {}, 2);
  const tensor idx = tensor::from(dtype::int64, {2}, std::vector<int64_t>{2, 0});
  std::vector<float> x(12);
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = static_cast<float>(i);
  check_floats(run(afe, {f32({3, 4}, x), idx})[0].t, {3, 2}, {2, 0, 6, 4, 10, 8});
  check_floats(run(afe, {f32({4}, {0, 1, 2, 3}), idx})[0].t, {1, 2}, {2, 0}); // 1-D gives [1, k]
  check_floats(run(afe, {f32({2, 1, 4}, {0, 1, 2, 3, 4, 5, 6, 7}), idx})[0].t, {2, 1, 2},
               {2, 0, 6, 4});
  auto i = run(afe, {tensor::from(dtype::int64, {2, 3}, std::vector<int64_t>{0, 1, 2, 3, 4, 5}),
                     tensor::from(dtype::int64, {1}, std::vector<int64_t>{2})})[0]
               .t;
  CHECK(int64s(i) == std::vector<int64_t>{2, 5});
  CHECK(i.shape == std::vector<int64_t>{2, 1});
  tensor words = tensor::zeros(dtype::string, {2, 2});
  words.strings = {"a", "b", "c", "d"};
  auto s = run(afe, {words, tensor::from(dtype::int64, {1}, std::vector<int64_t>{1})})[0].t;
  CHECK(s.strings == std::vector<std::string>{"b", "d"});
  CHECK(refusal(afe, {f32({3, 4}, x), tensor::from(dtype::int64, {1}, std::vector<int64_t>{4})})
            .find("index 4 is outside [0, 4)") != std::string::npos);
}

TEST_CASE("ml ZipMap turns score rows into one {label: score} map per row") {
  const tensor x = f32({2, 3}, {0.1f, 0.2f, 0.7f, 0.5f, 0.25f, 0.25f});
  auto out = run(ml_node("ZipMap", {{"classlabels_int64s", attribute::of_ints({4, 9, 7})}}), {x});
  REQUIRE(static_cast<bool>(out[0].maps));
  const map_sequence& maps = *out[0].maps;
  CHECK(maps.int_keys == std::vector<int64_t>{4, 9, 7});
  CHECK(maps.string_keys.empty());
  REQUIRE(maps.values.size() == 2);
  CHECK(maps.values[0] == std::vector<float>{0.1f, 0.2f, 0.7f});
  CHECK(maps.values[1] == std::vector<float>{0.5f, 0.25f, 0.25f});

  auto words = run(ml_node("ZipMap", {{"classlabels_strings", attribute::of_strings({"a", "b", "c"})}}), {x});
  CHECK(words[0].maps->string_keys == std::vector<std::string>{"a", "b", "c"});
  CHECK(words[0].maps->int_keys.empty());
  CHECK(refusal(ml_node("ZipMap", {{"classlabels_int64s", attribute::of_ints({4, 9})}}), {x})
            .find("3 columns for 2 labels") != std::string::npos);
}

TEST_CASE("ml ops are registered for opsets 1 and 3 of ai.onnx.ml") {
  for (const char* op :
       {"TreeEnsembleClassifier", "TreeEnsembleRegressor", "LinearClassifier", "LinearRegressor",
        "Normalizer", "Scaler", "Binarizer", "ArrayFeatureExtractor", "ZipMap"}) {
    CAPTURE(op);
    CHECK(op_registry::global().find("ai.onnx.ml", op, 1) != nullptr);
    CHECK(op_registry::global().find("ai.onnx.ml", op, 3) != nullptr);
  }
  CHECK(op_registry::global().since_version("ai.onnx.ml", "TreeEnsembleClassifier", 5) == 3);
}
