// The math operators through the registry (nodes built by hand, compiled, run) and the GEMM
// epilogue fusion pass, checked against small hand-computed or naive results.
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "libserve/future.hpp"
#include "libserve/onnx/fusion.hpp"
#include "libserve/onnx/op_registry.hpp"

namespace {

using namespace serve;
using namespace serve::onnx_ir;
using shape_t = std::vector<int64_t>;

tensor f32(shape_t shape, std::vector<float> values) {
  return tensor::from(dtype::float32, std::move(shape), values);
}

std::vector<float> floats(const tensor& t) {
  REQUIRE(t.type == dtype::float32);
  return std::vector<float>(t.as<float>(), t.as<float>() + t.numel());
}


node make_node(std::string op, std::vector<std::string> inputs, std::vector<std::string> outputs,
               std::map<std::string, attribute> attributes = {}, std::string domain = "") {
  node n;
  n.name = op + "_node";
  n.op_type = std::move(op);
  n.domain = std::move(domain);
  n.inputs = std::move(inputs);
  n.outputs = std::move(outputs);
  n.attributes = std::move(attributes);
  return n;
}

std::unique_ptr<op_kernel> compile(const node& n, int64_t opset,
                                   const std::map<std::string, tensor>* constants = nullptr) {
  const op_factory* factory = op_registry::global().find(n.domain, n.op_type, opset);
  REQUIRE_MESSAGE(factory != nullptr, n.op_type << " is not registered at opset " << opset);
  compile_context ctx;
  ctx.opset = opset;
  ctx.constants = constants;
  return (*factory)(n, ctx);
}

/// Compiles and runs `n` once; a null input is an omitted optional input.
tensor run_node(const node& n, int64_t opset, const std::vector<const tensor*>& inputs) {
  auto kernel = compile(n, opset);
  std::vector<value> holders(inputs.size());
  std::vector<const value*> in(inputs.size(), nullptr);
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i]) {
      holders[i].t = *inputs[i];
      in[i] = &holders[i];
    }
  std::vector<value> out(n.outputs.size());
  kernel->run(in, out);
  return out[0].t;
}

void check_close(const std::vector<float>& got, const std::vector<double>& expected,
                 double tolerance = 1e-5) {
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    CHECK(std::fabs(got[i] - expected[i]) <= tolerance * (1 + std::fabs(expected[i])));
  }
}

/// Runs a graph node by node in order (a stand-in for the executor): initializers and
/// `inputs` seed the values; returns every value by name.
std::map<std::string, tensor> run_graph(const graph& g, std::map<std::string, tensor> inputs) {
  std::map<std::string, tensor> values = g.initializers;
  for (auto& [name, t] : inputs)
    values[name] = t;
  for (auto& n : g.nodes) {
    auto kernel = compile(n, g.opset(n.domain), &g.initializers);
    std::vector<value> holders(n.inputs.size());
    std::vector<const value*> in(n.inputs.size(), nullptr);
    for (size_t i = 0; i < n.inputs.size(); ++i)
      if (!n.inputs[i].empty()) {
        holders[i].t = values.at(n.inputs[i]);
        in[i] = &holders[i];
      }
    std::vector<value> out(n.outputs.size());
    kernel->run(in, out);
    for (size_t i = 0; i < n.outputs.size(); ++i)
      values[n.outputs[i]] = out[i].t;
  }
  return values;
}

std::vector<float> iota_floats(int64_t n, float scale, float offset = 0) {
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i)
    v[i] = offset + scale * std::sin(float(i) * 0.7f + 0.3f);
  return v;
}

} // namespace

TEST_CASE("Softmax coerces to 2-D around axis 1 before opset 13 and uses the last axis from 13") {
  const auto xs = iota_floats(24, 2.0f);
  const tensor x = f32({2, 3, 4}, xs);
  const node softmax = make_node("Softmax", {"x"}, {"y"});
  auto reference = [&](int64_t rows, int64_t cols) {
    std::vector<double> y(xs.size());
    for (int64_t r = 0; r < rows; ++r) {
      double m = -1e30, sum = 0;
      for (int64_t c = 0; c < cols; ++c)
        m = std::max(m, double(xs[r * cols + c]));
      for (int64_t c = 0; c < cols; ++c)
        sum += std::exp(xs[r * cols + c] - m);
      for (int64_t c = 0; c < cols; ++c)
        y[r * cols + c] = std::exp(xs[r * cols + c] - m) / sum;
    }
    return y;
  };
  check_close(floats(run_node(softmax, 11, {&x})), reference(2, 12)); // [2, 3*4]
  check_close(floats(run_node(softmax, 13, {&x})), reference(6, 4));  // last axis
  // opset 13, axis 1: normalise the middle axis only; every (batch, column) sums to 1.
  const node middle = make_node("Softmax", {"x"}, {"y"}, {{"axis", attribute::of_int(1)}});
  const auto y = floats(run_node(middle, 13, {&x}));
  for (int b = 0; b < 2; ++b)
    for (int c = 0; c < 4; ++c)
      CHECK(y[b * 12 + c] + y[b * 12 + 4 + c] + y[b * 12 + 8 + c] == doctest::Approx(1.0));
}

TEST_CASE("LogSoftmax is the log of Softmax under both version semantics") {
  const tensor x = f32({2, 3, 4}, iota_floats(24, 3.0f));
  for (int64_t opset : {11, 13}) {
    const auto p = floats(run_node(make_node("Softmax", {"x"}, {"y"}), opset, {&x}));
    const auto lp = floats(run_node(make_node("LogSoftmax", {"x"}, {"y"}), opset, {&x}));
    for (size_t i = 0; i < p.size(); ++i)
      CHECK(lp[i] == doctest::Approx(std::log(p[i])).epsilon(1e-5));
  }
}

TEST_CASE("Clip takes min/max attributes before opset 11 and optional inputs from 11") {
  const tensor x = f32({5}, {-3, -1, 0, 2, 9});
  const node with_attrs =
      make_node("Clip", {"x"}, {"y"}, {{"min", attribute::of_float(-2)}, {"max", attribute::of_float(4)}});
  CHECK(floats(run_node(with_attrs, 6, {&x})) == std::vector<float>{-2, -1, 0, 2, 4});
  const tensor lo = f32({}, {-2}), hi = f32({}, {4});
  const node with_inputs = make_node("Clip", {"x", "lo", "hi"}, {"y"});
  CHECK(floats(run_node(with_inputs, 13, {&x, &lo, &hi})) == std::vector<float>{-2, -1, 0, 2, 4});
  // Omitted min: no lower bound. Attributes are ignored from opset 11.
  CHECK(floats(run_node(with_inputs, 13, {&x, nullptr, &hi})) ==
        std::vector<float>{-3, -1, 0, 2, 4});
  CHECK(floats(run_node(with_attrs, 11, {&x})) == std::vector<float>{-3, -1, 0, 2, 9});
  const tensor x8 = tensor::from(dtype::int8, {3}, std::vector<int8_t>{-100, 5, 100});
  const tensor lo8 = tensor::from(dtype::int8, {}, std::vector<int8_t>{-10});
  const tensor y8 = run_node(with_inputs, 13, {&x8, &lo8});
  CHECK(y8.as<int8_t>()[0] == -10);
  CHECK(y8.as<int8_t>()[2] == 100);
}

TEST_CASE("MatMul broadcasts batch dims and promotes 1-D operands as numpy does") {
  const node matmul = make_node("MatMul", {"a", "b"}, {"y"});
  const auto av = iota_floats(2 * 1 * 3 * 4, 1.0f), bv = iota_floats(3 * 4 * 5, 1.0f, 0.5f);
  const tensor a = f32({2, 1, 3, 4}, av), b = f32({3, 4, 5}, bv);
  const tensor y = run_node(matmul, 13, {&a, &b});
  CHECK(y.shape == shape_t{2, 3, 3, 5});
  std::vector<double> expected;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int m = 0; m < 3; ++m)
        for (int n = 0; n < 5; ++n) {
          double s = 0;
          for (int k = 0; k < 4; ++k)
            s += double(av[i * 12 + m * 4 + k]) * bv[j * 20 + k * 5 + n];
          expected.push_back(s);
        }
  check_close(floats(y), expected);

  const tensor v = f32({4}, {1, 2, 3, 4});
  const tensor m = f32({4, 2}, {1, 0, 0, 1, 1, 0, 0, 1});
  const tensor vm = run_node(matmul, 13, {&v, &m});
  CHECK(vm.shape == shape_t{2});
  CHECK(floats(vm) == std::vector<float>{4, 6});
  const tensor mt = f32({2, 4}, {1, 0, 1, 0, 0, 1, 0, 1});
  const tensor mv = run_node(matmul, 13, {&mt, &v});
  CHECK(mv.shape == shape_t{2});
  CHECK(floats(mv) == std::vector<float>{4, 6});
  const tensor dot = run_node(matmul, 13, {&v, &v});
  CHECK(dot.shape == shape_t{});
  CHECK(floats(dot) == std::vector<float>{30});
  // A 3-D A with a 2-D B (one folded GEMM), and A 2-D with B batched.
  const tensor a3 = f32({2, 3, 4}, iota_floats(24, 1.0f));
  const tensor y3 = run_node(matmul, 13, {&a3, &m});
  CHECK(y3.shape == shape_t{2, 3, 2});
  const tensor b3 = f32({2, 4, 2}, iota_floats(16, 1.0f));
  const tensor y4 = run_node(matmul, 13, {&mt, &b3});
  CHECK(y4.shape == shape_t{2, 2, 2});
  CHECK(floats(y4)[7] == doctest::Approx(iota_floats(16, 1.0f)[11] + iota_floats(16, 1.0f)[15]));
  const tensor bad = f32({3, 2}, iota_floats(6, 1.0f));
  CHECK_THROWS_AS(run_node(matmul, 13, {&mt, &bad}), serve_exception);
}

TEST_CASE("Gemm broadcasts C as a scalar, a row or a column and applies alpha and beta") {
  const tensor a = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  const tensor b = f32({3, 2}, {1, 0, 0, 1, 1, 1}); // a * b = [[4, 5], [10, 11]]
  const node gemm =
      make_node("Gemm", {"a", "b", "c"}, {"y"}, {{"alpha", attribute::of_float(2.0f)}, {"beta", attribute::of_float(0.5f)}});
  const tensor scalar = f32({}, {10});
  CHECK(floats(run_node(gemm, 13, {&a, &b, &scalar})) == std::vector<float>{13, 15, 25, 27});
  const tensor row = f32({2}, {10, 20});
  CHECK(floats(run_node(gemm, 13, {&a, &b, &row})) == std::vector<float>{13, 20, 25, 32});
  const tensor column = f32({2, 1}, {10, 20});
  CHECK(floats(run_node(gemm, 13, {&a, &b, &column})) == std::vector<float>{13, 15, 30, 32});
  const tensor full = f32({2, 2}, {2, 4, 6, 8});
  CHECK(floats(run_node(gemm, 13, {&a, &b, &full})) == std::vector<float>{9, 12, 23, 26});
  const tensor wrong = f32({3}, {1, 2, 3});
  CHECK_THROWS_AS(run_node(gemm, 13, {&a, &b, &wrong}), serve_exception);
}

TEST_CASE("Gemm transposes operands and makes C optional only from opset 11") {
  const tensor at = f32({3, 2}, {1, 4, 2, 5, 3, 6}); // A^T
  const tensor bt = f32({2, 3}, {1, 0, 1, 0, 1, 1}); // B^T
  const node gemm =
      make_node("Gemm", {"a", "b"}, {"y"}, {{"transA", attribute::of_int(1)}, {"transB", attribute::of_int(1)}});
  CHECK(floats(run_node(gemm, 13, {&at, &bt})) == std::vector<float>{4, 5, 10, 11});
  CHECK_THROWS_AS(compile(gemm, 9), serve_exception);
}

TEST_CASE("FusedGemm equals Gemm followed by the activation") {
  const tensor a = f32({5, 7}, iota_floats(35, 1.0f));
  const tensor b = f32({3, 7}, iota_floats(21, 1.0f, 0.1f));
  const tensor c = f32({3}, {0.5f, -0.5f, 0.0f});
  const std::map<std::string, attribute> gemm_attrs = {{"transB", attribute::of_int(1)},
                                                       {"alpha", attribute::of_float(0.75f)}};
  const tensor z =
      run_node(make_node("Gemm", {"a", "b", "c"}, {"z"}, gemm_attrs), 13, {&a, &b, &c});
  for (auto [op, alpha] : {std::pair<std::string, float>{"Relu", 0},
                           {"LeakyRelu", 0.3f},
                           {"Sigmoid", 0},
                           {"Tanh", 0}}) {
    std::map<std::string, attribute> act_attrs;
    if (op == "LeakyRelu")
      act_attrs["alpha"] = attribute::of_float(alpha);
    const auto expected = floats(run_node(make_node(op, {"z"}, {"y"}, act_attrs), 13, {&z}));
    auto fused_attrs = gemm_attrs;
    fused_attrs["activation"] = attribute::of_string(op);
    if (op == "LeakyRelu")
      fused_attrs["activation_alpha"] = attribute::of_float(alpha);
    const node fused =
        make_node("FusedGemm", {"a", "b", "c"}, {"y"}, fused_attrs, actorserve_domain);
    const auto got = floats(run_node(fused, 1, {&a, &b, &c}));
    std::vector<double> exp_d(expected.begin(), expected.end());
    INFO(op);
    check_close(got, exp_d, 1e-6);
  }
}

TEST_CASE("Add, Sub, Mul and Div broadcast from opset 7 and follow the legacy axis before") {
  const tensor x = tensor::from(dtype::int64, {2, 3}, std::vector<int64_t>{1, 2, 3, 4, 5, 6});
  const tensor row = tensor::from(dtype::int64, {3}, std::vector<int64_t>{1, 2, 3});
  const tensor y = run_node(make_node("Mul", {"x", "r"}, {"y"}), 14, {&x, &row});
  CHECK(std::vector<int64_t>(y.as<int64_t>(), y.as<int64_t>() + 6) ==
        std::vector<int64_t>{1, 4, 9, 4, 10, 18});
  const tensor column = f32({2}, {10, 20});
  const tensor xf = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  const node legacy =
      make_node("Add", {"x", "c"}, {"y"}, {{"broadcast", attribute::of_int(1)}, {"axis", attribute::of_int(0)}});
  CHECK(floats(run_node(legacy, 6, {&xf, &column})) == std::vector<float>{11, 12, 13, 24, 25, 26});
  CHECK_THROWS_AS(run_node(make_node("Add", {"x", "c"}, {"y"}), 6, {&xf, &column}),
                  serve_exception);
  const tensor zero = tensor::from(dtype::int64, {}, std::vector<int64_t>{0});
  CHECK_THROWS_AS(run_node(make_node("Div", {"x", "z"}, {"y"}), 14, {&x, &zero}), serve_exception);
  const tensor mixed = tensor::from(dtype::float64, {3}, std::vector<double>{1, 2, 3});
  CHECK_THROWS_AS(run_node(make_node("Sub", {"x", "m"}, {"y"}), 14, {&xf, &mixed}),
                  serve_exception);
  const tensor d = run_node(make_node("Div", {"x", "c"}, {"y"}), 14, {&xf, &xf});
  CHECK(floats(d) == std::vector<float>(6, 1.0f));
}

TEST_CASE("ArgMax honours axis, keepdims and select_last_index") {
  const tensor x = f32({2, 3}, {1, 5, 5, 7, 2, 7});
  const tensor first = run_node(make_node("ArgMax", {"x"}, {"y"}, {{"axis", attribute::of_int(1)}}), 13, {&x});
  CHECK(first.type == dtype::int64);
  CHECK(first.shape == shape_t{2, 1});
  CHECK(std::vector<int64_t>(first.as<int64_t>(), first.as<int64_t>() + 2) ==
        std::vector<int64_t>{1, 0});
  const node last =
      make_node("ArgMax", {"x"}, {"y"},
                {{"axis", attribute::of_int(-1)}, {"keepdims", attribute::of_int(0)}, {"select_last_index", attribute::of_int(1)}});
  const tensor l = run_node(last, 13, {&x});
  CHECK(l.shape == shape_t{2});
  CHECK(std::vector<int64_t>(l.as<int64_t>(), l.as<int64_t>() + 2) == std::vector<int64_t>{2, 2});
  const tensor axis0 = run_node(make_node("ArgMax", {"x"}, {"y"}), 13, {&x});
  CHECK(axis0.shape == shape_t{1, 3});
  CHECK(std::vector<int64_t>(axis0.as<int64_t>(), axis0.as<int64_t>() + 3) ==
        std::vector<int64_t>{1, 0, 1});
}

TEST_CASE("BatchNormalization normalises per channel, folding constant parameters") {
  const tensor x = f32({2, 2, 3}, iota_floats(12, 2.0f));
  const tensor s = f32({2}, {1.5f, -0.5f}), b = f32({2}, {0.1f, 0.2f});
  const tensor mean = f32({2}, {0.3f, -0.2f}), var = f32({2}, {2.0f, 0.5f});
  const node bn = make_node("BatchNormalization", {"x", "s", "b", "m", "v"}, {"y"},
                            {{"epsilon", attribute::of_float(1e-3f)}});
  std::vector<double> expected;
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 2; ++c)
      for (int i = 0; i < 3; ++i) {
        double v = x.as<float>()[(n * 2 + c) * 3 + i];
        expected.push_back((v - mean.as<float>()[c]) / std::sqrt(var.as<float>()[c] + 1e-3) *
                               s.as<float>()[c] +
                           b.as<float>()[c]);
      }
  check_close(floats(run_node(bn, 15, {&x, &s, &b, &mean, &var})), expected);
  const std::map<std::string, tensor> constants = {{"s", s}, {"b", b}, {"m", mean}, {"v", var}};
  auto kernel = compile(bn, 15, &constants);
  std::vector<value> in(5), out(1);
  in[0].t = x, in[1].t = s, in[2].t = b, in[3].t = mean, in[4].t = var;
  kernel->run({&in[0], &in[1], &in[2], &in[3], &in[4]}, out);
  check_close(floats(out[0].t), expected);
  const node training = make_node("BatchNormalization", {"x", "s", "b", "m", "v"}, {"y"},
                                  {{"training_mode", attribute::of_int(1)}});
  CHECK_THROWS_AS(compile(training, 15), serve_exception);
}

TEST_CASE("fuse_gemm_epilogues folds MatMul+Add+Relu and Gemm+Sigmoid without changing results") {
  graph g;
  g.opsets[""] = 13;
  g.opsets[actorserve_domain] = 1;
  g.initializers["w1"] = f32({4, 3}, iota_floats(12, 1.0f));
  g.initializers["b1"] = f32({3}, {0.1f, -0.2f, 0.3f});
  g.initializers["w2"] = f32({2, 3}, iota_floats(6, 1.0f, 0.2f));
  g.initializers["b2"] = f32({1, 2}, {0.5f, -0.5f});
  g.nodes = {make_node("MatMul", {"x", "w1"}, {"h0"}),
             make_node("Add", {"b1", "h0"}, {"h1"}), // bias on the left
             make_node("Relu", {"h1"}, {"h2"}),
             make_node("Gemm", {"h2", "w2", "b2"}, {"z"}, {{"transB", attribute::of_int(1)}}),
             make_node("Sigmoid", {"z"}, {"y"})};
  g.nodes[0].name = "fc1";
  g.nodes[3].name = "fc2";
  value_info out;
  out.name = "y";
  g.outputs = {out};
  const tensor x = f32({5, 4}, iota_floats(20, 1.5f));
  const auto before = run_graph(g, {{"x", x}});

  graph fused = g;
  CHECK(fuse_gemm_epilogues(fused) == 3);
  REQUIRE(fused.nodes.size() == 2);
  const node& first = fused.nodes[0];
  CHECK(first.op_type == "FusedGemm");
  CHECK(first.domain == actorserve_domain);
  CHECK(first.name == "fc1");
  CHECK(first.inputs == std::vector<std::string>{"x", "w1", "b1"});
  CHECK(first.outputs == std::vector<std::string>{"h2"});
  CHECK(first.attr_string("activation", "") == "Relu");
  const node& second = fused.nodes[1];
  CHECK(second.name == "fc2");
  CHECK(second.attr_int("transB", 0) == 1);
  CHECK(second.attr_string("activation", "") == "Sigmoid");
  CHECK(second.outputs == std::vector<std::string>{"y"});
  const auto after = run_graph(fused, {{"x", x}});
  const auto expected = floats(before.at("y"));
  check_close(floats(after.at("y")), std::vector<double>(expected.begin(), expected.end()), 1e-6);
}

TEST_CASE("fuse_gemm_epilogues leaves values used twice, graph outputs and non-constant B alone") {
  graph g;
  g.opsets[""] = 13;
  g.initializers["w"] = f32({4, 3}, iota_floats(12, 1.0f));
  g.initializers["b"] = f32({3}, {0.1f, -0.2f, 0.3f});
  g.initializers["wide"] = f32({2, 3}, iota_floats(6, 1.0f)); // not broadcastable to [3]
  g.nodes = {make_node("MatMul", {"x", "w"}, {"h0"}),
             make_node("Add", {"h0", "b"}, {"h1"}),
             make_node("Relu", {"h1"}, {"h2"}),
             make_node("Tanh", {"h1"}, {"h3"}),       // h1 used twice: Add stays unfused
             make_node("MatMul", {"x", "x2"}, {"m"}), // B not constant
             make_node("Add", {"m", "b"}, {"m1"}),
             make_node("MatMul", {"x", "w"}, {"n0"}),
             make_node("Add", {"n0", "wide"}, {"n1"}), // bias of the wrong shape
             make_node("Gemm", {"x", "w"}, {"g"}),
             make_node("Relu", {"g"}, {"g1"})};
  value_info out;
  out.name = "g"; // Gemm output is a graph output: Relu cannot be folded into it
  g.outputs = {out};
  graph copy = g;
  // MatMul+Add of the first chain fuses (h1 is the Add's output, used twice: no activation).
  CHECK(fuse_gemm_epilogues(copy) == 1);
  CHECK(copy.nodes.size() == g.nodes.size() - 1);
  CHECK(copy.nodes[0].op_type == "FusedGemm");
  CHECK(copy.nodes[0].outputs == std::vector<std::string>{"h1"});
  CHECK_FALSE(copy.nodes[0].attr("activation"));
  CHECK(copy.nodes[1].op_type == "Relu");
  CHECK(copy.nodes[3].op_type == "MatMul");
}

TEST_CASE("pack_gemm_weights stores transB weights transposed without changing results") {
  graph g;
  g.opsets[""] = 13;
  g.opsets[actorserve_domain] = 1;
  g.initializers["w1"] = f32({3, 4}, iota_floats(12, 1.0f, 0.3f)); // [N, K], transB = 1
  g.initializers["b1"] = f32({3}, {0.1f, -0.2f, 0.3f});
  g.initializers["w2"] = f32({2, 3}, iota_floats(6, -1.0f, 0.4f)); // read by two nodes
  g.nodes = {make_node("Gemm", {"x", "w1", "b1"}, {"h"}, {{"transB", attribute::of_int(1)}}),
             make_node("Relu", {"h"}, {"h1"}),
             make_node("Gemm", {"h1", "w2"}, {"y"}, {{"transB", attribute::of_int(1)}}),
             make_node("Gemm", {"h1", "w2"}, {"z"}, {{"transB", attribute::of_int(1)}})};
  value_info y, z;
  y.name = "y";
  z.name = "z";
  g.outputs = {y, z};
  const tensor x = f32({5, 4}, iota_floats(20, 1.5f, -0.2f));
  const auto before = run_graph(g, {{"x", x}});

  graph rewritten = g;
  CHECK(fuse_gemm_epilogues(rewritten) == 1);
  CHECK(pack_gemm_weights(rewritten) == 1); // the FusedGemm (too narrow for panels); w2 is shared
  REQUIRE(rewritten.nodes.size() == 3);
  CHECK(rewritten.nodes[0].op_type == "FusedGemm");
  CHECK(rewritten.nodes[0].attr_int("transB", 1) == 0);
  CHECK_FALSE(rewritten.nodes[0].attr(b_panel_width_attribute));
  CHECK(rewritten.initializers.at("w1").shape == std::vector<int64_t>{4, 3});
  CHECK(rewritten.initializers.at("w1").as<float>()[1] == g.initializers.at("w1").as<float>()[4]);
  CHECK(rewritten.nodes[1].attr_int("transB", 0) == 1);
  CHECK(rewritten.initializers.at("w2").shape == std::vector<int64_t>{2, 3});
  const auto after = run_graph(rewritten, {{"x", x}});
  for (const char* name : {"y", "z"}) {
    const auto expected = floats(before.at(name));
    check_close(floats(after.at(name)), std::vector<double>(expected.begin(), expected.end()),
                1e-6);
  }
}

TEST_CASE("pack_gemm_weights stores wide weights in column panels without changing results") {
  // K = 300: panels of 128 columns (16 x 128 x 300 <= 100^3), so N = 300 is 128 + 128 + 44.
  const int64_t K = 300, N = 300;
  graph g;
  g.opsets[""] = 13;
  g.opsets[actorserve_domain] = 1;
  g.initializers["w1"] = f32({N, K}, iota_floats(N * K, -1.0f, 0.00002f)); // transB = 1
  g.initializers["b1"] = f32({N}, iota_floats(N, 0.5f, -0.003f));
  g.initializers["w2"] = f32({N, 5}, iota_floats(N * 5, 0.3f, -0.001f));   // one panel: kept
  g.initializers["w3"] = f32({N, K}, iota_floats(N * K, 1.0f, -0.00001f)); // transA = 1: plain
  g.nodes = {make_node("Gemm", {"x", "w1", "b1"}, {"h"}, {{"transB", attribute::of_int(1)}}),
             make_node("Relu", {"h"}, {"h1"}), make_node("Gemm", {"h1", "w2"}, {"y"}),
             make_node("Gemm", {"xt", "w3"}, {"z"}, {{"transA", attribute::of_int(1)}})};
  value_info y, z;
  y.name = "y";
  z.name = "z";
  g.outputs = {y, z};
  const std::map<std::string, tensor> inputs = {
      {"x", f32({20, K}, iota_floats(20 * K, 1.5f, -0.0005f))},
      {"xt", f32({N, 3}, iota_floats(N * 3, 0.2f, 0.001f))}};
  const auto before = run_graph(g, inputs);

  graph rewritten = g;
  CHECK(fuse_gemm_epilogues(rewritten) == 1);
  CHECK(pack_gemm_weights(rewritten) == 1);
  REQUIRE(rewritten.nodes.size() == 3);
  CHECK(rewritten.nodes[0].op_type == "FusedGemm");
  CHECK(rewritten.nodes[0].attr_int(b_panel_width_attribute, 0) == 128);
  CHECK(rewritten.nodes[0].attr_int("transB", 1) == 0);
  const tensor& w1 = rewritten.initializers.at("w1");
  CHECK(w1.shape == std::vector<int64_t>{K, N});
  // Element (k = 2, j = 260) sits in the third panel, 44 columns wide.
  CHECK(w1.as<float>()[256 * K + 2 * 44 + 4] == g.initializers.at("w1").as<float>()[260 * K + 2]);
  CHECK_FALSE(rewritten.nodes[1].attr(b_panel_width_attribute));
  CHECK_FALSE(rewritten.nodes[2].attr(b_panel_width_attribute));
  const auto after = run_graph(rewritten, inputs);
  for (const char* name : {"y", "z"}) { // float sums of 300 terms in another order: 1e-4
    const auto expected = floats(before.at(name));
    check_close(floats(after.at(name)), std::vector<double>(expected.begin(), expected.end()),
                1e-4);
  }
}

TEST_CASE("Gemm, MatMul and FusedGemm give the same results with B a compile-time constant") {
  const tensor w = f32({7, 19}, iota_floats(7 * 19, 1.0f, 0.1f));
  const tensor wt = f32({19, 7}, iota_floats(7 * 19, 1.0f, -0.1f));
  const std::map<std::string, tensor> constants = {{"w", w}, {"wt", wt}};
  auto run_both = [&](const node& n, int64_t opset, const std::vector<const tensor*>& inputs) {
    auto with_constants = compile(n, opset, &constants);
    auto plain = compile(n, opset);
    std::vector<value> holders(inputs.size());
    std::vector<const value*> in;
    for (size_t i = 0; i < inputs.size(); ++i) {
      holders[i].t = *inputs[i];
      in.push_back(&holders[i]);
    }
    std::vector<value> a(1), b(1);
    with_constants->run(in, a);
    plain->run(in, b);
    REQUIRE(a[0].t.shape == b[0].t.shape);
    const auto x = floats(a[0].t), y = floats(b[0].t);
    for (size_t i = 0; i < x.size(); ++i)
      CHECK(x[i] == doctest::Approx(y[i]).epsilon(1e-5));
  };
  for (int64_t rows : {1, 2, 5, 13, 40}) {
    const tensor a = f32({rows, 7}, iota_floats(rows * 7, 1.0f));
    run_both(make_node("MatMul", {"a", "w"}, {"y"}), 13, {&a, &w});
    run_both(make_node("Gemm", {"a", "wt"}, {"y"}, {{"transB", attribute::of_int(1)}}), 13, {&a, &wt});
    const tensor bias = f32({19}, iota_floats(19, 1.0f));
    run_both(make_node("FusedGemm", {"a", "w", "c"}, {"y"}, {{"activation", attribute::of_string("Relu")}},
                       actorserve_domain),
             1, {&a, &w, &bias});
  }
  const tensor a3 = f32({2, 3, 7}, iota_floats(42, 1.0f));
  run_both(make_node("MatMul", {"a", "w"}, {"y"}), 13, {&a3, &w});
}
