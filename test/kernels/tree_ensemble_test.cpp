// The tree-ensemble evaluator on hand-built trees: every branch mode, NaN routing, the four
// aggregates, float vs double comparison, malformed ensembles, and a randomized check against a
// naive recursive walk over more rows than one block.
#include "kernels/cpu/tree_ensemble.hpp"

#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include <doctest/doctest.h>

using namespace serve::kernels::cpu;

namespace {

constexpr float nan_f = std::numeric_limits<float>::quiet_NaN();

tree_node_spec branch(tree_node_mode mode, int64_t feature, double threshold, int64_t t, int64_t f,
                      bool missing_true = false) {
  return tree_node_spec{mode, feature, threshold, t, f, missing_true};
}

tree_node_spec leaf() {
  return tree_node_spec{};
}

// One stump on feature 0: true child votes 10, false child votes 20 (target 0).
tree_ensemble stump(tree_node_mode mode, double threshold, bool missing_true = false) {
  tree_ensemble_spec spec;
  spec.nodes = {branch(mode, 0, threshold, 1, 2, missing_true), leaf(), leaf()};
  spec.roots = {0};
  spec.weights = {{1, 0, 10.0}, {2, 0, 20.0}};
  return tree_ensemble(spec);
}

std::vector<float> score_column(const tree_ensemble& e, const std::vector<float>& x) {
  std::vector<float> scores(x.size());
  std::vector<uint8_t> has(x.size());
  e.evaluate(x.data(), static_cast<int64_t>(x.size()), 1, tree_aggregate::sum, scores.data(),
             has.data());
  return scores;
}

} // namespace

TEST_CASE("a tree branch in each mode sends a row to the child its comparison picks") {
  const std::vector<float> x = {0.5f, 1.0f, 1.5f};
  struct expectation {
    tree_node_mode mode;
    std::vector<float> scores; // 10 = true child, 20 = false child
  };
  for (const auto& e : std::vector<expectation>{
           {tree_node_mode::branch_leq, {10, 10, 20}},
           {tree_node_mode::branch_lt, {10, 20, 20}},
           {tree_node_mode::branch_gte, {20, 10, 10}},
           {tree_node_mode::branch_gt, {20, 20, 10}},
           {tree_node_mode::branch_eq, {20, 10, 20}},
           {tree_node_mode::branch_neq, {10, 20, 10}},
       }) {
    CAPTURE(static_cast<int>(e.mode));
    CHECK(score_column(stump(e.mode, 1.0), x) == e.scores);
  }
}

TEST_CASE("NaN goes to a tree node's false child unless the node tracks missing values to true") {
  const std::vector<float> x = {nan_f};
  CHECK(score_column(stump(tree_node_mode::branch_leq, 1.0), x)[0] == 20);
  CHECK(score_column(stump(tree_node_mode::branch_gt, 1.0), x)[0] == 20);
  CHECK(score_column(stump(tree_node_mode::branch_eq, 1.0), x)[0] == 20);
  CHECK(score_column(stump(tree_node_mode::branch_leq, 1.0, true), x)[0] == 10);
  CHECK(score_column(stump(tree_node_mode::branch_gt, 1.0, true), x)[0] == 10);
  // IEEE: NaN != t holds, so NEQ sends NaN to the true child (as onnxruntime does).
  CHECK(score_column(stump(tree_node_mode::branch_neq, 1.0), x)[0] == 10);
  // Missing tracking does not change where ordinary values go.
  CHECK(score_column(stump(tree_node_mode::branch_leq, 1.0, true), {2.0f})[0] == 20);
}

// Two trees over 2 features and 3 targets. Tree 0 splits on feature 0 at 0.5 (true leaf: t0 +1,
// t1 +2; false leaf: t0 +3); tree 1 splits on feature 1 at 1.0 (true leaf: t0 +10; false leaf:
// t1 +20, t0 +30). Target 2 never gets a vote.
tree_ensemble two_trees() {
  tree_ensemble_spec spec;
  spec.target_count = 3;
  spec.nodes = {branch(tree_node_mode::branch_leq, 0, 0.5, 1, 2), leaf(), leaf(),
                branch(tree_node_mode::branch_leq, 1, 1.0, 4, 5), leaf(), leaf()};
  spec.roots = {0, 3};
  spec.weights = {{1, 0, 1}, {1, 1, 2}, {2, 0, 3}, {4, 0, 10}, {5, 1, 20}, {5, 0, 30}};
  return tree_ensemble(spec);
}

TEST_CASE("tree weights are summed per target and has_score marks the targets that got a vote") {
  const auto e = two_trees();
  CHECK(e.tree_count() == 2);
  CHECK(e.target_count() == 3);
  CHECK(e.max_feature() == 1);
  const std::vector<float> x = {0.0f, 0.0f, 1.0f, 2.0f};
  std::vector<float> s(6);
  std::vector<uint8_t> h(6);
  e.evaluate(x.data(), 2, 2, tree_aggregate::sum, s.data(), h.data());
  CHECK(s == std::vector<float>{11, 2, 0, 33, 20, 0});
  CHECK(h == std::vector<uint8_t>{1, 1, 0, 1, 1, 0});
}

TEST_CASE("tree average divides by every tree; min and max keep the extreme vote") {
  const auto e = two_trees();
  const std::vector<float> x = {0.0f, 0.0f, 1.0f, 2.0f};
  std::vector<float> s(6);
  std::vector<uint8_t> h(6);
  e.evaluate(x.data(), 2, 2, tree_aggregate::average, s.data(), h.data());
  CHECK(s == std::vector<float>{5.5f, 1, 0, 16.5f, 10, 0});
  e.evaluate(x.data(), 2, 2, tree_aggregate::min, s.data(), h.data());
  CHECK(s == std::vector<float>{1, 2, 0, 3, 20, 0});
  e.evaluate(x.data(), 2, 2, tree_aggregate::max, s.data(), h.data());
  CHECK(s == std::vector<float>{10, 2, 0, 30, 20, 0});
  CHECK(h == std::vector<uint8_t>{1, 1, 0, 1, 1, 0});
}

TEST_CASE("tree thresholds compare in float32 for float rows and in double for double rows") {
  // 0.30000001 rounds to the float 0.3f, which equals the threshold rounded to float; in double
  // it is larger than 0.3.
  const auto e = stump(tree_node_mode::branch_leq, 0.3);
  const std::vector<float> xf = {0.30000001f};
  std::vector<float> sf(1);
  std::vector<uint8_t> h(1);
  e.evaluate(xf.data(), 1, 1, tree_aggregate::sum, sf.data(), h.data());
  CHECK(sf[0] == 10);
  const std::vector<double> xd = {0.30000001};
  std::vector<double> sd(1);
  e.evaluate(xd.data(), 1, 1, tree_aggregate::sum, sd.data(), h.data());
  CHECK(sd[0] == 20);
}

TEST_CASE("a tree leaf may carry several weights for one target, or none at all") {
  tree_ensemble_spec spec;
  spec.nodes = {branch(tree_node_mode::branch_lt, 0, 0.0, 1, 2), leaf(), leaf()};
  spec.roots = {0};
  spec.weights = {{2, 0, 1.5}, {2, 0, 2.5}};
  const tree_ensemble e(spec);
  const std::vector<float> x = {-1.0f, 1.0f};
  std::vector<float> s(2);
  std::vector<uint8_t> h(2);
  e.evaluate(x.data(), 2, 1, tree_aggregate::sum, s.data(), h.data());
  CHECK(s == std::vector<float>{0, 4});
  CHECK(h == std::vector<uint8_t>{0, 1});
}

TEST_CASE("two tree branches may share a child") {
  tree_ensemble_spec spec;
  spec.nodes = {branch(tree_node_mode::branch_leq, 0, 0.0, 1, 2),
                branch(tree_node_mode::branch_leq, 0, -1.0, 3, 2), leaf(), leaf()};
  spec.roots = {0};
  spec.weights = {{2, 0, 1}, {3, 0, 2}};
  const tree_ensemble e(spec);
  CHECK(score_column(e, {-2.0f, -0.5f, 1.0f}) == std::vector<float>{2, 1, 1});
}

TEST_CASE("malformed tree ensembles are refused with the reason") {
  auto refused = [](tree_ensemble_spec spec) {
    try {
      tree_ensemble e(spec);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  tree_ensemble_spec good;
  good.nodes = {branch(tree_node_mode::branch_leq, 0, 0.0, 1, 2), leaf(), leaf()};
  good.roots = {0};
  good.weights = {{1, 0, 1}, {2, 0, 2}};
  CHECK(refused(good) == "accepted");

  auto bad = good;
  bad.nodes[0].false_child = 7;
  CHECK(refused(bad).find("false child is 7") != std::string::npos);
  bad = good;
  bad.nodes[0].true_child = 0;
  CHECK(refused(bad).find("cycle") != std::string::npos);
  bad = good;
  bad.nodes[0].feature = -1;
  CHECK(refused(bad).find("feature -1") != std::string::npos);
  bad = good;
  bad.weights.push_back({0, 0, 1});
  CHECK(refused(bad).find("not a leaf") != std::string::npos);
  bad = good;
  bad.weights[1].target = 1;
  CHECK(refused(bad).find("target 1") != std::string::npos);
  bad = good;
  bad.roots = {3};
  CHECK(refused(bad).find("root of tree 0") != std::string::npos);
  bad = good;
  bad.target_count = 0;
  CHECK(refused(bad).find("target_count") != std::string::npos);
}

TEST_CASE("rows with fewer columns than the trees read are refused") {
  const auto e = two_trees();
  const std::vector<float> x = {0.0f, 0.0f};
  std::vector<float> s(6);
  std::vector<uint8_t> h(6);
  CHECK_THROWS_AS(e.evaluate(x.data(), 2, 1, tree_aggregate::sum, s.data(), h.data()),
                  std::invalid_argument);
}

namespace {

// A naive recursive walk: the reference the packed evaluator must agree with.
double walk(const tree_ensemble_spec& spec, int64_t i, const float* row) {
  const tree_node_spec& n = spec.nodes[static_cast<size_t>(i)];
  if (n.mode == tree_node_mode::leaf) {
    double sum = 0;
    for (const auto& w : spec.weights)
      if (w.node == i)
        sum += w.weight;
    return sum;
  }
  const float v = row[n.feature], t = static_cast<float>(n.threshold);
  bool go = false;
  switch (n.mode) {
  case tree_node_mode::branch_leq:
    go = v <= t;
    break;
  case tree_node_mode::branch_lt:
    go = v < t;
    break;
  case tree_node_mode::branch_gte:
    go = v >= t;
    break;
  case tree_node_mode::branch_gt:
    go = v > t;
    break;
  case tree_node_mode::branch_eq:
    go = v == t;
    break;
  case tree_node_mode::branch_neq:
    go = v != t;
    break;
  case tree_node_mode::leaf:
    break;
  }
  go = go || (n.missing_tracks_true && std::isnan(v));
  return walk(spec, go ? n.true_child : n.false_child, row);
}

// A random complete tree of `depth` appended to spec.nodes; returns its root index.
int64_t grow(tree_ensemble_spec& spec, int depth, std::mt19937& rng, bool mixed_modes) {
  const int64_t index = static_cast<int64_t>(spec.nodes.size());
  if (depth == 0) {
    spec.nodes.push_back(leaf());
    spec.weights.push_back({index, 0, std::uniform_real_distribution<double>(-1, 1)(rng)});
    return index;
  }
  std::uniform_int_distribution<int> mode(0, mixed_modes ? 5 : 0);
  spec.nodes.push_back(
      branch(static_cast<tree_node_mode>(mode(rng)), rng() % 4,
             std::round(std::uniform_real_distribution<double>(-2, 2)(rng) * 4) / 4, 0, 0,
             rng() % 3 == 0 && mixed_modes));
  const int64_t t = grow(spec, depth - 1, rng, mixed_modes);
  const int64_t f = grow(spec, depth - 1, rng, mixed_modes);
  spec.nodes[static_cast<size_t>(index)].true_child = t;
  spec.nodes[static_cast<size_t>(index)].false_child = f;
  return index;
}

} // namespace

TEST_CASE("random tree forests agree with a naive walk over more rows than one block") {
  std::mt19937 rng(7);
  for (bool mixed : {false, true}) {
    CAPTURE(mixed);
    tree_ensemble_spec spec;
    for (int t = 0; t < 12; ++t)
      spec.roots.push_back(grow(spec, 1 + t % 6, rng, mixed));
    const tree_ensemble e(spec);
    const int64_t rows = 300;
    std::vector<float> x(static_cast<size_t>(rows) * 4);
    for (auto& v : x) // quarter steps so that equality comparisons sometimes hold
      v = rng() % 17 == 0 ? nan_f : static_cast<float>(static_cast<int>(rng() % 17) - 8) / 4;
    std::vector<float> s(static_cast<size_t>(rows));
    std::vector<uint8_t> h(static_cast<size_t>(rows));
    e.evaluate(x.data(), rows, 4, tree_aggregate::sum, s.data(), h.data());
    for (int64_t r = 0; r < rows; ++r) {
      double expected = 0;
      for (int64_t root : spec.roots)
        expected += walk(spec, root, &x[static_cast<size_t>(r) * 4]);
      CHECK(s[static_cast<size_t>(r)] == doctest::Approx(expected).epsilon(1e-5));
    }
  }
}
