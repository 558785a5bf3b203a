// The ONNX loader and executor on small models built here with the protobuf classes: tensor
// encodings, external data and its confinement to the model's folder, declared inputs, refusals
// of unknown ops and domains, constant folding, input checks and concurrent runs.
#include "libserve/onnx/loader.hpp"
#include "libserve/onnx/model.hpp"

#include <doctest/doctest.h>
#include <onnx/onnx_pb.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <thread>
#include <unistd.h>

#include "libserve/future.hpp"

using namespace serve;
using namespace serve::onnx_ir;
namespace fs = std::filesystem;

namespace {

/// A folder under the system temp dir, removed with everything in it at scope exit.
struct temp_folder {
  fs::path path;
  temp_folder() {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path() /
           ("actorserve_onnx_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~temp_folder() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

/// A dim: a value (>= 0), a symbolic name, or neither.
struct dim {
  dim() = default;
  dim(int64_t v) : value(v) {}
  dim(int64_t v, std::string p) : value(v), param(std::move(p)) {}
  int64_t value = -1;
  std::string param;
};

/// An empty model at IR 8 importing the default domain at `opset`.
onnx::ModelProto new_model(int64_t opset = 13) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.set_producer_name("loader_test");
  auto op = m.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  return m;
}

void declare(onnx::ValueInfoProto* v, const std::string& name, int elem,
             const std::vector<dim>& dims) {
  v->set_name(name);
  auto tt = v->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem);
  auto shape = tt->mutable_shape();
  for (auto& d : dims) {
    auto out = shape->add_dim();
    if (d.value >= 0)
      out->set_dim_value(d.value);
    else if (!d.param.empty())
      out->set_dim_param(d.param);
  }
}

void add_input(onnx::ModelProto& m, const std::string& name, int elem,
               const std::vector<dim>& dims) {
  declare(m.mutable_graph()->add_input(), name, elem, dims);
}

void add_output(onnx::ModelProto& m, const std::string& name, int elem = onnx::TensorProto::FLOAT) {
  auto v = m.mutable_graph()->add_output();
  v->set_name(name);
  v->mutable_type()->mutable_tensor_type()->set_elem_type(elem);
}

onnx::NodeProto* add_node(onnx::ModelProto& m, const std::string& op,
                          const std::vector<std::string>& inputs,
                          const std::vector<std::string>& outputs, const std::string& name = "") {
  auto n = m.mutable_graph()->add_node();
  n->set_op_type(op);
  n->set_name(name.empty() ? op + "_" + outputs.at(0) : name);
  for (auto& i : inputs)
    n->add_input(i);
  for (auto& o : outputs)
    n->add_output(o);
  return n;
}

onnx::TensorProto* add_floats_raw(onnx::ModelProto& m, const std::string& name,
                                  const std::vector<int64_t>& dims, const std::vector<float>& v) {
  auto t = m.mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (auto d : dims)
    t->add_dims(d);
  t->set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
  return t;
}

onnx::TensorProto* add_int64s(onnx::ModelProto& m, const std::string& name,
                              const std::vector<int64_t>& dims, const std::vector<int64_t>& v) {
  auto t = m.mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::INT64);
  for (auto d : dims)
    t->add_dims(d);
  for (auto x : v)
    t->add_int64_data(x);
  return t;
}

std::string bytes_of(const onnx::ModelProto& m) {
  std::string s;
  REQUIRE(m.SerializeToString(&s));
  return s;
}

/// "<code>: <message>" of the refusal, or "<loaded>".
std::string load_error(const onnx::ModelProto& m, const std::string& base_dir = "") {
  try {
    onnx_model::load_bytes(bytes_of(m), base_dir);
    return "<loaded>";
  } catch (const serve_exception& e) {
    return std::string(to_string(e.code())) + ": " + e.what();
  }
}

std::string run_error(const onnx_model& model, const std::map<std::string, tensor>& inputs) {
  try {
    model.run(inputs);
    return "<ran>";
  } catch (const serve_exception& e) {
    return std::string(to_string(e.code())) + ": " + e.what();
  }
}

template <class T> std::vector<T> elements(const tensor& t) {
  return std::vector<T>(t.as<T>(), t.as<T>() + t.numel());
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("raw_data and the typed fields give the same tensor") {
  auto m = new_model();
  std::vector<float> values{1.5f, -2.f, 3.25f, 0.f, 1e-3f, 7.f};
  add_floats_raw(m, "raw", {2, 3}, values);
  auto typed = m.mutable_graph()->add_initializer();
  typed->set_name("typed");
  typed->set_data_type(onnx::TensorProto::FLOAT);
  typed->add_dims(2);
  typed->add_dims(3);
  for (auto v : values)
    typed->add_float_data(v);
  auto i8 = m.mutable_graph()->add_initializer(); // int8 travels in int32_data
  i8->set_name("i8");
  i8->set_data_type(onnx::TensorProto::INT8);
  i8->add_dims(3);
  for (int v : {-128, 0, 127})
    i8->add_int32_data(v);
  auto g = parse_model_bytes(bytes_of(m), "");
  auto& raw = g.initializers.at("raw");
  auto& from_fields = g.initializers.at("typed");
  CHECK(raw.type == dtype::float32);
  CHECK(raw.shape == std::vector<int64_t>{2, 3});
  CHECK(from_fields.shape == raw.shape);
  CHECK(from_fields.data == raw.data);
  CHECK(elements<float>(raw) == values);
  CHECK(elements<int8_t>(g.initializers.at("i8")) == std::vector<int8_t>{-128, 0, 127});
}

TEST_CASE("a typed field with the wrong element count is refused naming the tensor") {
  auto m = new_model();
  add_int64s(m, "shape", {3}, {1, 2});
  auto error = load_error(m);
  CHECK(contains(error, "invalid_argument"));
  CHECK(contains(error, "initializer \"shape\""));
}

TEST_CASE("an initializer whose dims multiply past 2^64 is refused, not wrapped to 0 elements") {
  // Found by scripts/fuzz onnx_loader: the product wrapped, the model loaded, the first run
  // crashed. (test/fuzz/regressions/onnx_loader holds the fuzzer's input.)
  auto m = new_model();
  auto t = m.mutable_graph()->add_initializer();
  t->set_name("W");
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : {int64_t{1} << 32, int64_t{1} << 32, int64_t{16}})
    t->add_dims(d);
  t->set_raw_data(std::string(16, '\0'));
  auto error = load_error(m);
  CHECK(contains(error, "invalid_argument"));
  CHECK(contains(error, "initializer \"W\""));
  CHECK(contains(error, "more elements than a 64-bit count can hold"));
}

TEST_CASE("an initializer declaring far more bytes than it carries is refused before allocating") {
  auto m = new_model();
  auto t = m.mutable_graph()->add_initializer();
  t->set_name("W");
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->add_dims(int64_t{1} << 40); // 4 TiB declared
  t->set_raw_data(std::string(16, '\0'));
  auto error = load_error(m);
  CHECK(contains(error, "raw_data has 16 bytes; the shape [1099511627776] needs 4398046511104"));
  auto typed = new_model();
  auto f = typed.mutable_graph()->add_initializer();
  f->set_name("F");
  f->set_data_type(onnx::TensorProto::FLOAT);
  f->add_dims(int64_t{1} << 40);
  f->add_float_data(1.f);
  CHECK(contains(load_error(typed), "holds 1 float32 values; the shape [1099511627776] needs"));
}

TEST_CASE("a tensor attribute given as another kind is refused, not read as a tensor") {
  // Found by scripts/fuzz onnx_loader: base_values_as_tensor given as a float read the empty
  // default tensor of the attribute as one float (a read past its buffer).
  auto m = new_model();
  add_input(m, "X", onnx::TensorProto::FLOAT, {1});
  add_output(m, "Y");
  auto n = add_node(m, "Constant", {}, {"Y"});
  auto a = n->add_attribute();
  a->set_name("value");
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(1.f);
  CHECK(contains(load_error(m), "value must be a tensor attribute"));
}

TEST_CASE("external data is read at its offset and length, relative to the model's folder") {
  temp_folder dir;
  fs::create_directories(dir.path / "data");
  std::vector<float> values{1.f, 2.f, 3.f, 4.f, 5.f, 6.f};
  {
    std::ofstream out(dir.path / "data" / "weights.bin", std::ios::binary);
    out << std::string(16, 'x'); // another tensor's bytes
    out.write(reinterpret_cast<const char*>(values.data()), 24);
    out << std::string(8, 'y');
  }
  auto m = new_model();
  auto t = m.mutable_graph()->add_initializer();
  t->set_name("W");
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->add_dims(2);
  t->add_dims(3);
  t->set_data_location(onnx::TensorProto::EXTERNAL);
  for (auto [k, v] : std::map<std::string, std::string>{
           {"location", "data/weights.bin"}, {"offset", "16"}, {"length", "24"}}) {
    auto kv = t->add_external_data();
    kv->set_key(k);
    kv->set_value(v);
  }
  add_node(m, "Identity", {"W"}, {"Y"});
  add_output(m, "Y");
  {
    std::ofstream out(dir.path / "model.onnx", std::ios::binary);
    out << bytes_of(m);
  }
  auto model = onnx_model::load((dir.path / "model.onnx").string());
  auto outputs = model->run({});
  REQUIRE(outputs.size() == 1);
  CHECK(outputs[0].t.shape == std::vector<int64_t>{2, 3});
  CHECK(elements<float>(outputs[0].t) == values);
  CHECK(model->info().parameter_count == 6);
  CHECK(model->info().parameter_bytes == 24);
}

namespace {

onnx::ModelProto model_with_external_location(const std::string& location) {
  auto m = new_model();
  auto t = m.mutable_graph()->add_initializer();
  t->set_name("W");
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->add_dims(1);
  t->set_data_location(onnx::TensorProto::EXTERNAL);
  auto kv = t->add_external_data();
  kv->set_key("location");
  kv->set_value(location);
  add_node(m, "Identity", {"W"}, {"Y"});
  add_output(m, "Y");
  return m;
}

} // namespace

TEST_CASE("external data outside the model's folder is refused naming tensor and location") {
  temp_folder dir;
  fs::create_directories(dir.path / "model");
  {
    std::ofstream out(dir.path / "secret.bin", std::ios::binary);
    out << std::string(4, 's');
  }
  auto base = (dir.path / "model").string();
  auto dotdot = load_error(model_with_external_location("../secret.bin"), base);
  CHECK(contains(dotdot, "invalid_argument"));
  CHECK(contains(dotdot, "initializer \"W\""));
  CHECK(contains(dotdot, "\"../secret.bin\""));
  auto absolute = (dir.path / "secret.bin").string();
  auto abs_error = load_error(model_with_external_location(absolute), base);
  CHECK(contains(abs_error, "initializer \"W\""));
  CHECK(contains(abs_error, "\"" + absolute + "\""));
  CHECK(contains(abs_error, "absolute"));
  fs::create_symlink(dir.path / "secret.bin", dir.path / "model" / "link.bin");
  auto link_error = load_error(model_with_external_location("link.bin"), base);
  CHECK(contains(link_error, "\"link.bin\" escapes the model's folder"));
}

TEST_CASE("an initializer also listed as a graph input is not a user input") {
  auto m = new_model();
  add_input(m, "X", onnx::TensorProto::FLOAT, {{-1, "batch"}, {3}});
  add_input(m, "shape", onnx::TensorProto::INT64, {{2}});
  add_int64s(m, "shape", {2}, {0, 3});
  add_node(m, "Reshape", {"X", "shape"}, {"Y"});
  add_output(m, "Y");
  auto model = onnx_model::load_bytes(bytes_of(m), "");
  REQUIRE(model->info().inputs.size() == 1);
  CHECK(model->info().inputs[0].name == "X");
  auto x = tensor::from<float>(dtype::float32, {2, 3}, std::vector<float>{1, 2, 3, 4, 5, 6});
  auto outputs = model->run({{"X", x}});
  CHECK(outputs[0].t.shape == std::vector<int64_t>{2, 3});
  CHECK(contains(run_error(*model, {{"X", x}, {"shape", x}}), "unknown input(s) \"shape\""));
}

TEST_CASE("dims are read as values, symbolic names or unknown") {
  auto m = new_model();
  add_input(m, "X", onnx::TensorProto::FLOAT, {{3}, {-1, "batch"}, {}});
  auto unshaped = m.mutable_graph()->add_input();
  unshaped->set_name("U");
  unshaped->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::INT64);
  auto g = parse_model_bytes(bytes_of(m), "");
  REQUIRE(g.inputs.size() == 2);
  CHECK(g.inputs[0].has_shape);
  CHECK(g.inputs[0].dims == std::vector<int64_t>{3, -1, -1});
  CHECK(g.inputs[0].dim_names == std::vector<std::string>{"", "batch", ""});
  CHECK_FALSE(g.inputs[1].has_shape);
  CHECK(g.inputs[1].type == dtype::int64);
}

TEST_CASE("sequence and map outputs are described, not refused") {
  auto m = new_model();
  auto out = m.mutable_graph()->add_output();
  out->set_name("Z");
  auto map = out->mutable_type()->mutable_sequence_type()->mutable_elem_type()->mutable_map_type();
  map->set_key_type(onnx::TensorProto::INT64);
  map->mutable_value_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  auto g = parse_model_bytes(bytes_of(m), "");
  REQUIRE(g.outputs.size() == 1);
  CHECK(g.outputs[0].non_tensor_type == "seq(map(int64,float))");
}

TEST_CASE("attributes of every kind are read; a subgraph attribute refuses the model") {
  auto m = new_model();
  auto n = add_node(m, "Custom", {}, {"Y"}, "n1");
  auto add = [&](const std::string& name, onnx::AttributeProto::AttributeType type) {
    auto a = n->add_attribute();
    a->set_name(name);
    a->set_type(type);
    return a;
  };
  add("f", onnx::AttributeProto::FLOAT)->set_f(0.5f);
  add("i", onnx::AttributeProto::INT)->set_i(-3);
  add("s", onnx::AttributeProto::STRING)->set_s("text");
  auto t = add("t", onnx::AttributeProto::TENSOR)->mutable_t();
  t->set_data_type(onnx::TensorProto::INT64);
  t->add_int64_data(9);
  auto floats = add("floats", onnx::AttributeProto::FLOATS);
  floats->add_floats(1.f);
  floats->add_floats(2.f);
  add("ints", onnx::AttributeProto::INTS)->add_ints(4);
  add("strings", onnx::AttributeProto::STRINGS)->add_strings("a");
  auto scalar = add("tensors", onnx::AttributeProto::TENSORS)->add_tensors();
  scalar->set_data_type(onnx::TensorProto::FLOAT);
  scalar->add_float_data(2.5f);
  m.mutable_graph()->mutable_node(0)->set_domain("ai.onnx"); // the default domain's other name
  auto g = parse_model_bytes(bytes_of(m), "");
  auto& node = g.nodes.at(0);
  CHECK(node.domain == "");
  CHECK(node.attr_float("f", 0) == 0.5f);
  CHECK(node.attr_int("i", 0) == -3);
  CHECK(node.attr_string("s", "") == "text");
  CHECK(elements<int64_t>(node.attr("t")->t) == std::vector<int64_t>{9});
  CHECK(node.attr("floats")->floats == std::vector<float>{1.f, 2.f});
  CHECK(node.attr("ints")->ints == std::vector<int64_t>{4});
  CHECK(node.attr("strings")->strings == std::vector<std::string>{"a"});
  CHECK(node.attr("tensors")->tensors.size() == 1);
  add("then_branch", onnx::AttributeProto::GRAPH)->mutable_g()->set_name("sub");
  auto error = load_error(m);
  CHECK(contains(error, "unsupported operator Custom in node 'n1' attribute 'then_branch'"));
  CHECK(contains(error, "subgraphs"));
}

TEST_CASE("IR versions 3 to 10 load; others are refused") {
  auto m = new_model();
  m.set_ir_version(10);
  CHECK(load_error(m) == "<loaded>");
  m.set_ir_version(11);
  CHECK(contains(load_error(m), "IR version 11"));
  m.set_ir_version(2);
  CHECK(contains(load_error(m), "IR version 2"));
}

TEST_CASE("a missing model file is not_found") {
  try {
    onnx_model::load("/nonexistent/folder/model.onnx");
    FAIL("loaded a missing file");
  } catch (const serve_exception& e) {
    CHECK(e.code() == errc::not_found);
    CHECK(contains(e.what(), "/nonexistent/folder/model.onnx"));
  }
}

TEST_CASE("an unknown operator is refused with its name, domain and opset") {
  auto m = new_model(13);
  add_input(m, "X", onnx::TensorProto::FLOAT, {{2}});
  add_node(m, "FrobnicateV2", {"X"}, {"Y"}, "frob");
  add_output(m, "Y");
  CHECK(load_error(m) == "invalid_argument: unsupported operator FrobnicateV2 (domain ai.onnx, "
                         "opset 13) in node 'frob'");
}

TEST_CASE("an operator of a domain without an implementation or an import is refused") {
  auto m = new_model();
  add_input(m, "X", onnx::TensorProto::FLOAT, {{2}});
  add_node(m, "Thing", {"X"}, {"Y"}, "t1")->set_domain("com.example");
  add_output(m, "Y");
  auto not_imported = load_error(m);
  CHECK(contains(not_imported, "unsupported domain com.example"));
  CHECK(contains(not_imported, "Thing"));
  auto op = m.add_opset_import();
  op->set_domain("com.example");
  op->set_version(2);
  CHECK(load_error(m) == "invalid_argument: unsupported operator Thing (domain com.example, "
                         "opset 2) in node 't1'");
}

TEST_CASE("nodes may be listed in any order, but cycles are refused") {
  auto m = new_model();
  add_input(m, "X", onnx::TensorProto::FLOAT, {{2}});
  add_node(m, "Identity", {"A"}, {"B"});
  add_node(m, "Identity", {"X"}, {"A"});
  add_output(m, "B");
  auto model = onnx_model::load_bytes(bytes_of(m), "");
  auto x = tensor::from<float>(dtype::float32, {2}, std::vector<float>{4, 5});
  CHECK(elements<float>(model->run({{"X", x}})[0].t) == std::vector<float>{4, 5});
  auto cyclic = new_model();
  add_input(cyclic, "X", onnx::TensorProto::FLOAT, {{2}});
  add_node(cyclic, "Concat", {"X", "B"}, {"A"})->add_attribute()->set_name("axis");
  add_node(cyclic, "Identity", {"A"}, {"B"});
  add_output(cyclic, "B");
  CHECK(contains(load_error(cyclic), "cycle"));
}

namespace {

// Shape -> Gather -> Unsqueeze -> Concat -> Reshape, as PyTorch's `view` exports it, once on the
// constant W (folded at load) and once on the input X with a dynamic batch dim (kept).
onnx::ModelProto view_glue_model() {
  auto m = new_model(13);
  add_input(m, "X", onnx::TensorProto::FLOAT, {{-1, "batch"}, {2}, {3}});
  add_floats_raw(m, "W", {2, 3}, {1, 2, 3, 4, 5, 6});
  add_int64s(m, "zero", {}, {0});
  add_int64s(m, "one", {}, {1});
  add_int64s(m, "axes0", {1}, {0});
  add_int64s(m, "minus_one", {1}, {-1});
  auto c = add_node(m, "Constant", {}, {"six"});
  auto value = c->add_attribute();
  value->set_name("value_ints");
  value->set_type(onnx::AttributeProto::INTS);
  value->add_ints(6);
  auto concat_axis0 = [](onnx::NodeProto* n) {
    auto a = n->add_attribute();
    a->set_name("axis");
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(0);
  };
  add_node(m, "Shape", {"W"}, {"w_shape"});
  add_node(m, "Gather", {"w_shape", "one"}, {"w_cols"});
  add_node(m, "Unsqueeze", {"w_cols", "axes0"}, {"w_cols1"});
  concat_axis0(add_node(m, "Concat", {"w_cols1", "minus_one"}, {"w_target"}));
  add_node(m, "Reshape", {"W", "w_target"}, {"Z"});
  add_node(m, "Shape", {"X"}, {"x_shape"});
  add_node(m, "Gather", {"x_shape", "zero"}, {"batch"});
  add_node(m, "Unsqueeze", {"batch", "axes0"}, {"batch1"});
  concat_axis0(add_node(m, "Concat", {"batch1", "six"}, {"x_target"}));
  add_node(m, "Reshape", {"X", "x_target"}, {"Y"});
  add_output(m, "Y");
  add_output(m, "Z");
  return m;
}

} // namespace

TEST_CASE("constant folding removes view glue on constant shapes and keeps it on the batch dim") {
  auto model = onnx_model::load_bytes(bytes_of(view_glue_model()), "");
  CHECK(model->info().node_count == 5); // 11 nodes: Constant and the W chain were folded
  std::vector<std::string> ops;
  for (auto& n : model->ir().nodes)
    ops.push_back(n.op_type);
  CHECK(ops == std::vector<std::string>{"Shape", "Gather", "Unsqueeze", "Concat", "Reshape"});
  std::vector<float> x(24);
  std::iota(x.begin(), x.end(), 0.f);
  auto outputs = model->run({{"X", tensor::from<float>(dtype::float32, {4, 2, 3}, x)}});
  REQUIRE(outputs.size() == 2);
  CHECK(outputs[0].t.shape == std::vector<int64_t>{4, 6});
  CHECK(elements<float>(outputs[0].t) == x);
  CHECK(outputs[1].t.shape == std::vector<int64_t>{3, 2});
  CHECK(elements<float>(outputs[1].t) == std::vector<float>{1, 2, 3, 4, 5, 6});
  CHECK(model->info().parameter_count == 2 * 3 + 4); // W, zero, one, axes0, minus_one
}

TEST_CASE("run refuses inputs whose dtype or shape differ from the declaration, naming them") {
  auto m = new_model();
  add_input(m, "X", onnx::TensorProto::FLOAT, {{-1, "batch"}, {4}});
  add_node(m, "Identity", {"X"}, {"Y"});
  add_output(m, "Y");
  auto model = onnx_model::load_bytes(bytes_of(m), "");
  auto ints = tensor::zeros(dtype::int64, {2, 3});
  CHECK(run_error(*model, {{"X", ints}}) ==
        "invalid_argument: input \"X\": expected float32 [-1, 4], got int64 [2, 3]");
  CHECK(run_error(*model, {{"X", tensor::zeros(dtype::float32, {2, 3})}}) ==
        "invalid_argument: input \"X\": expected float32 [-1, 4], got float32 [2, 3]");
  CHECK(run_error(*model, {{"X", tensor::zeros(dtype::float32, {4})}}) ==
        "invalid_argument: input \"X\": expected float32 [-1, 4], got float32 [4]");
  CHECK(contains(run_error(*model, {}), "missing input \"X\""));
  auto short_data = tensor::zeros(dtype::float32, {1, 4});
  short_data.data.resize(8);
  CHECK(contains(run_error(*model, {{"X", short_data}}), "input \"X\": float32 [1, 4] holds 8"));
  auto good = tensor::zeros(dtype::float32, {3, 4});
  CHECK(contains(run_error(*model, {{"X", good}, {"extra", good}}), "unknown input(s) \"extra\""));
  CHECK(run_error(*model, {{"X", good}}) == "<ran>");
}

TEST_CASE("one model runs from two threads at once") {
  auto m = new_model();
  add_input(m, "X", onnx::TensorProto::FLOAT, {{-1, "batch"}, {3}});
  add_node(m, "Transpose", {"X"}, {"T"});
  add_node(m, "Flatten", {"T"}, {"Y"});
  add_output(m, "Y");
  auto model = onnx_model::load_bytes(bytes_of(m), "");
  std::atomic<int> wrong{0};
  auto worker = [&](float base) {
    for (int i = 0; i < 300; ++i) {
      int64_t rows = 1 + i % 5;
      std::vector<float> x(static_cast<size_t>(rows * 3));
      std::iota(x.begin(), x.end(), base);
      auto out = model->run({{"X", tensor::from<float>(dtype::float32, {rows, 3}, x)}});
      auto y = elements<float>(out.at(0).t);
      bool ok = out[0].t.shape == std::vector<int64_t>{3, rows};
      for (int64_t r = 0; ok && r < rows; ++r)
        for (int64_t c = 0; c < 3; ++c)
          ok = ok && y[static_cast<size_t>(c * rows + r)] == x[static_cast<size_t>(r * 3 + c)];
      if (!ok)
        ++wrong;
    }
  };
  std::thread a(worker, 0.f), b(worker, 1000.f);
  a.join();
  b.join();
  CHECK(wrong == 0);
}
