// The GPU plan compiler (libserve/onnx/gpu_plan.hpp): which graphs map onto the GPU pipeline,
// which are refused and why, and - through the plan's plain-loop reference - that a plan
// computes what the CPU executor computes. Runs without a GPU.
#include "libserve/onnx/gpu_plan.hpp"

#include <doctest/doctest.h>
#include <onnx/onnx_pb.h>

#include <cstdio>
#include <filesystem>
#include <initializer_list>

#include "libserve/future.hpp"
#include "test/libserve/onnx/gpu_test_support.hpp"

using namespace serve;
using namespace serve::onnx_ir;

namespace {

gpu_plan_result plan_of(const std::string& fixture) {
  return compile_gpu_plan(*onnx_model::load(gpu_test::fixture_model(fixture)));
}

/// Reference vs CPU executor on `rows` sample rows.
void check_reference(const onnx_model& model, const gpu_plan& plan, int64_t rows, double tol,
                     const std::string& what) {
  tensor input = gpu_test::sample_input(model, rows);
  auto want = model.run({{plan.input_name, input}});
  auto got = run_gpu_plan_reference(plan, input);
  gpu_test::check_close(got, want, tol, tol, what + ", " + std::to_string(rows) + " rows");
}

// ---- a small ModelProto builder for graphs the fixtures do not have ------------------------

struct graph_builder {
  onnx::ModelProto model;
  onnx::GraphProto* g = model.mutable_graph();

  explicit graph_builder(std::vector<int64_t> input_dims, int64_t opset = 17) {
    model.set_ir_version(8);
    model.add_opset_import()->set_version(opset);
    g->set_name("test");
    auto* in = g->add_input();
    in->set_name("x");
    auto* type = in->mutable_type()->mutable_tensor_type();
    type->set_elem_type(onnx::TensorProto::FLOAT);
    for (auto d : input_dims) {
      auto* dim = type->mutable_shape()->add_dim();
      if (d < 0)
        dim->set_dim_param("N");
      else
        dim->set_dim_value(d);
    }
  }

  /// A float initializer filled with 0.1, 0.2, ... (varied, deterministic).
  graph_builder& weight(const std::string& name, std::vector<int64_t> dims) {
    auto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    int64_t n = 1;
    for (auto d : dims) {
      t->add_dims(d);
      n *= d;
    }
    for (int64_t i = 0; i < n; ++i)
      t->add_float_data(float((i * 7) % 11) / 10.0f - 0.5f);
    return *this;
  }

  onnx::NodeProto& node(const std::string& op, std::initializer_list<std::string> inputs,
                        const std::string& output) {
    auto* n = g->add_node();
    n->set_op_type(op);
    n->set_name(op + "_" + output);
    for (auto& i : inputs)
      n->add_input(i);
    n->add_output(output);
    return *n;
  }

  static void attr(onnx::NodeProto& n, const std::string& name, int64_t value) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(value);
  }

  graph_builder& output(const std::string& name) {
    auto* out = g->add_output();
    out->set_name(name);
    out->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
    return *this;
  }

  std::shared_ptr<const onnx_model> load() const {
    return onnx_model::load_bytes(model.SerializeAsString(), "");
  }
};

} // namespace

TEST_CASE("the PyTorch MLP exports compile to a plan that computes what the CPU executor does") {
  for (const char* name : {"torch_mlp", "torch_mlp_784", "torch_mlp_view"}) {
    auto model = onnx_model::load(gpu_test::fixture_model(name));
    auto result = compile_gpu_plan(*model);
    INFO(name << ": " << result.unsupported);
    REQUIRE(result.plan);
    const gpu_plan& plan = *result.plan;
    CHECK(plan.layers.size() == 3);
    CHECK(plan.normalize == gpu_plan::normalization::softmax);
    CHECK_FALSE(plan.argmax_of);
    REQUIRE(plan.outputs.size() == 1);
    CHECK(plan.outputs[0].source == gpu_value::normalized);
    for (int64_t rows : {1, 5, 64})
      check_reference(*model, plan, rows, 1e-5, name);
  }
  CHECK(plan_of("torch_mlp").plan->summary() == "3 layers 4-16-16-3 (relu, relu, none), softmax");
  CHECK(plan_of("torch_mlp_784").plan->summary() ==
        "3 layers 784-512-512-10 (relu, relu, none), softmax");
}

TEST_CASE("x.view(x.size(0), -1) is resolved at compile time into a host-side flatten") {
  auto plan = plan_of("torch_mlp_view").plan;
  REQUIRE(plan);
  CHECK(plan->input_width == 4); // input [N, 2, 2]
  CHECK(plan->layers.front().in_features == 4);
}

TEST_CASE("sklearn's MLPClassifier compiles with its class label lookup") {
  auto model = onnx_model::load(gpu_test::fixture_model("sk_mlp_3class"));
  auto result = compile_gpu_plan(*model);
  INFO(result.unsupported);
  REQUIRE(result.plan);
  const gpu_plan& plan = *result.plan;
  CHECK(plan.summary() == "2 layers 4-16-3 (relu, none), softmax, argmax, class labels");
  CHECK(plan.argmax_of == gpu_value::normalized);
  REQUIRE(plan.outputs.size() == 2);
  CHECK(plan.outputs[0].source == gpu_value::labels);
  CHECK(plan.outputs[0].type == dtype::int64);
  CHECK(plan.outputs[0].shape == std::vector<int64_t>{gpu_plan::batch_dim});
  CHECK(plan.outputs[1].source == gpu_value::normalized);
  for (int64_t rows : {1, 7, 100})
    check_reference(*model, plan, rows, 1e-5, "sk_mlp_3class");
}

TEST_CASE("models without a GPU form are refused, naming the first node that has none") {
  CHECK(plan_of("sk_logreg_3class").unsupported ==
        "graph has LinearClassifier (ai.onnx.ml) which has no GPU kernel");
  CHECK(plan_of("sk_logreg_binary").unsupported ==
        "graph has LinearClassifier (ai.onnx.ml) which has no GPU kernel");
  CHECK(plan_of("sk_rf_3class").unsupported ==
        "graph has TreeEnsembleClassifier (ai.onnx.ml) which has no GPU kernel");
  CHECK(plan_of("sk_gb_3class").unsupported ==
        "graph has TreeEnsembleClassifier (ai.onnx.ml) which has no GPU kernel");
  CHECK(plan_of("sk_scaler_pipeline").unsupported ==
        "graph has Scaler (ai.onnx.ml) which has no GPU kernel");
  CHECK(plan_of("helper_int64_scale").unsupported ==
        "input \"counts\" is int64; the GPU pipeline takes float32");
  for (const char* name : {"sk_logreg_3class", "sk_rf_3class", "helper_string_echo"})
    CHECK_FALSE(plan_of(name).plan);
}

TEST_CASE("a Gemm without C, a bias Add and an activation fold into one layer") {
  // Load-time fusion takes Gemm -> activation and MatMul -> Add, not Gemm -> Add -> Relu.
  graph_builder b({-1, 3});
  b.weight("W", {3, 4}).weight("B", {1, 4});
  b.node("Gemm", {"x", "W"}, "m");
  b.node("Add", {"B", "m"}, "a");
  b.node("Relu", {"a"}, "y");
  b.output("y");
  auto model = b.load();
  auto result = compile_gpu_plan(*model);
  INFO(result.unsupported);
  REQUIRE(result.plan);
  CHECK(result.plan->summary() == "1 layer 3-4 (relu)");
  CHECK(result.plan->layers[0].bias.size() == 4);
  check_reference(*model, *result.plan, 6, 1e-6, "Gemm+Add+Relu");
}

TEST_CASE("a graph output that the chain has moved past is refused") {
  graph_builder b({-1, 3});
  b.weight("W", {3, 4}).weight("B", {4});
  b.node("MatMul", {"x", "W"}, "m");
  b.node("Add", {"m", "B"}, "a");
  b.node("Tanh", {"a"}, "y");
  b.output("y").output("a"); // "a" is also an output: fusion leaves Add and Tanh apart
  CHECK(compile_gpu_plan(*b.load()).unsupported ==
        "output \"a\" is an intermediate layer's value");
}

TEST_CASE("Gemm's alpha, beta, transB and a scalar bias are folded into the weights") {
  graph_builder b({-1, 3});
  b.weight("W", {5, 3}).weight("C", {1});
  auto& gemm = b.node("Gemm", {"x", "W", "C"}, "y");
  graph_builder::attr(gemm, "transB", 1);
  auto* alpha = gemm.add_attribute();
  alpha->set_name("alpha");
  alpha->set_type(onnx::AttributeProto::FLOAT);
  alpha->set_f(0.5f);
  auto* beta = gemm.add_attribute();
  beta->set_name("beta");
  beta->set_type(onnx::AttributeProto::FLOAT);
  beta->set_f(2.0f);
  b.output("y");
  auto model = b.load();
  auto result = compile_gpu_plan(*model);
  INFO(result.unsupported);
  REQUIRE(result.plan);
  CHECK(result.plan->layers[0].bias.size() == 5);
  check_reference(*model, *result.plan, 4, 1e-6, "Gemm alpha/beta/transB");
}

TEST_CASE("graphs that do not fit the pipeline are refused with the node and the reason") {
  {
    graph_builder b({-1, 3});
    b.weight("W", {3, 3});
    auto& gemm = b.node("Gemm", {"x", "W"}, "y");
    graph_builder::attr(gemm, "transA", 1);
    b.output("y");
    CHECK(compile_gpu_plan(*b.load()).unsupported ==
          "Gemm node 'Gemm_y': transA = 1 has no GPU kernel");
  }
  {
    graph_builder b({-1, 3});
    b.weight("W", {3, 4}).weight("V", {4, 2});
    b.node("MatMul", {"x", "W"}, "h");
    b.node("Softmax", {"h"}, "p");
    b.node("MatMul", {"p", "V"}, "y");
    b.output("y");
    CHECK(compile_gpu_plan(*b.load()).unsupported ==
          "MatMul node 'MatMul_y': changes the layer chain after a Softmax or ArgMax read it");
  }
  {
    graph_builder b({-1, 3});
    b.weight("W", {3, 4});
    b.node("MatMul", {"x", "W"}, "h");
    graph_builder::attr(b.node("ArgMax", {"h"}, "y"), "axis", 0);
    b.output("y");
    CHECK(compile_gpu_plan(*b.load()).unsupported ==
          "ArgMax node 'ArgMax_y': axis 0 is not the feature axis");
  }
  {
    graph_builder b({-1, 3});
    b.weight("W", {3, 4}).weight("S", {4});
    b.node("MatMul", {"x", "W"}, "h");
    b.node("Mul", {"h", "S"}, "y");
    b.output("y");
    CHECK(compile_gpu_plan(*b.load()).unsupported ==
          "graph has Mul (ai.onnx) which has no GPU kernel");
  }
  {
    graph_builder b({-1, 3});
    b.node("MatMul", {"x", "x"}, "y"); // weights that are not constants
    b.output("y");
    CHECK(compile_gpu_plan(*b.load()).unsupported ==
          "MatMul node 'MatMul_y': B (the weights) must be a constant");
  }
  {
    graph_builder b({-1, 3});
    b.weight("W", {3, 4}).weight("V", {3, 4});
    b.node("MatMul", {"x", "W"}, "h");
    b.node("MatMul", {"x", "V"}, "y"); // a second branch from the input
    b.output("y").output("h");
    CHECK(compile_gpu_plan(*b.load()).unsupported ==
          "MatMul node 'MatMul_y': reads \"x\", an intermediate value the GPU pipeline does not "
          "keep");
  }
}

TEST_CASE("ONNX backend node tests that compile to a plan give their expected outputs") {
  const std::string dir = gpu_test::node_tests_dir();
  if (dir.empty()) {
    std::printf("skipped: libonnx-testdata is not installed\n");
    return;
  }
  std::vector<std::string> compiled;
  for (const char* name :
       {"test_softmax_example", "test_softmax_axis_1", "test_softmax_default_axis",
        "test_softmax_large_number", "test_logsoftmax_example_1", "test_logsoftmax_axis_1",
        "test_argmax_keepdims_example", "test_argmax_no_keepdims_example", "test_gemm_alpha",
        "test_gemm_transposeB", "test_matmul_2d", "test_flatten_axis1"}) {
    const std::string folder = dir + "/" + name;
    if (!std::filesystem::exists(folder + "/model.onnx"))
      continue;
    auto model = onnx_model::load(folder + "/model.onnx");
    auto result = compile_gpu_plan(*model);
    if (!result.plan)
      continue;
    compiled.push_back(name);
    tensor input = load_tensor_proto_file(folder + "/test_data_set_0/input_0.pb");
    std::vector<value> want(1);
    want[0].t = load_tensor_proto_file(folder + "/test_data_set_0/output_0.pb");
    gpu_test::check_close(run_gpu_plan_reference(*result.plan, input), want, 1e-6, 1e-4, name);
  }
  std::string list;
  for (auto& n : compiled)
    list += " " + n;
  std::printf("node tests with a GPU plan:%s\n", list.c_str());
  CHECK(compiled.size() >= 4);
}
