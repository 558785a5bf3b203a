// read_model_folder: the MLmodel that MLflow 3.17 wrote (test/fixtures/mlflow), hand-written
// MLmodel files in the other YAML styles a signature may come in, and the folders it refuses.
#include "libserve/registry/mlmodel.hpp"

#include <string>

#include <doctest/doctest.h>

#include "mlflow_fixture.hpp"

using namespace serve;
using namespace serve::registry;
using namespace serve::registry::testing;

namespace {

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

fs::path iris_onnx() {
  return fixtures_dir().parent_path().parent_path().parent_path() / "apps" / "examples" / "models" /
         "iris" / "model.onnx";
}

// A model folder in a temporary directory with `mlmodel` as its MLmodel (none when empty) and
// the iris model as `onnx_file` (none when empty).
struct folder {
  temp_dir tmp;
  folder(const std::string& mlmodel, const std::string& onnx_file) {
    if (!mlmodel.empty())
      write_text(tmp.path() / "MLmodel", mlmodel);
    if (!onnx_file.empty())
      fs::copy_file(iris_onnx(), tmp.path() / onnx_file);
  }
  std::string dir() const { return tmp.path().string(); }
  std::string mlmodel() const { return (tmp.path() / "MLmodel").string(); }
};

std::string refusal(const folder& f) {
  return error_of([&] { read_model_folder(f.dir()); }, errc::invalid_argument);
}

} // namespace

TEST_CASE("mlflow MLmodel: the one MLflow wrote gives the onnx file and the signature, JSON "
          "folded over lines") {
  auto ids = read_ids("sqlite");
  auto dir = fixtures_dir() / "sqlite" / "mlruns" / "1" / "models" / ids.full_model / "artifacts";
  // MLflow's YAML wraps the outputs' JSON string over two lines.
  REQUIRE(contains(read_text(dir / "MLmodel"), "\"int64\",\n    \"shape\""));
  auto m = read_model_folder(dir.string());
  CHECK(m.has_mlmodel);
  CHECK(m.model_file == "model.onnx");
  CHECK(m.model_path == (dir / "model.onnx").string());
  CHECK(m.mlflow_version == "3.17.2");
  CHECK(m.model_id == ids.full_model);
  CHECK(m.run_id == ids.full_run);
  REQUIRE(m.has_signature);
  REQUIRE(m.inputs.size() == 1);
  CHECK(m.inputs[0].name == "float_input");
  CHECK(m.inputs[0].type == "tensor");
  CHECK(m.inputs[0].dtype == "float32");
  CHECK(m.inputs[0].shape == std::vector<int64_t>{-1, 4});
  REQUIRE(m.outputs.size() == 2);
  CHECK(m.outputs[0].name == "label");
  CHECK(m.outputs[0].dtype == "int64");
  CHECK(m.outputs[0].shape == std::vector<int64_t>{-1});
  CHECK(m.outputs[1].name == "probabilities");
  CHECK(m.outputs[1].shape == std::vector<int64_t>{-1, 3});
}

TEST_CASE("mlflow MLmodel: double-quoted, folded-block and column signatures are read") {
  folder f(R"(flavors:
  onnx:
    data: net.onnx
signature:
  inputs: "[{\"name\": \"x\", \"type\": \"tensor\", \"tensor-spec\": {\"dtype\": \"float64\",
    \"shape\": [-1, 2]}}]"
  outputs: >
    [{"type": "tensor",
      "tensor-spec": {"dtype": "float32", "shape": [-1]}}]
)",
           "net.onnx");
  auto m = read_model_folder(f.dir());
  CHECK(m.model_file == "net.onnx");
  REQUIRE(m.inputs.size() == 1);
  CHECK(m.inputs[0].dtype == "float64");
  CHECK(m.inputs[0].shape == std::vector<int64_t>{-1, 2});
  REQUIRE(m.outputs.size() == 1);
  CHECK(m.outputs[0].name.empty());
  CHECK(m.outputs[0].shape == std::vector<int64_t>{-1});

  folder columns(R"(flavors:
  onnx: {}
signature:
  inputs: '[{"type": "double", "name": "sepal length", "required": true}, {"type": "string",
    "name": "note", "required": false}]'
  outputs: null
)",
                 "model.onnx");
  auto c = read_model_folder(columns.dir());
  CHECK(c.model_file == "model.onnx"); // the flavor names no data file
  REQUIRE(c.inputs.size() == 2);
  CHECK(c.inputs[0].name == "sepal length");
  CHECK(c.inputs[0].type == "double");
  CHECK(c.inputs[0].dtype == "double");
  CHECK(c.inputs[0].shape.empty());
  CHECK_FALSE(c.inputs[1].required);
  CHECK(c.outputs.empty());
}

TEST_CASE("mlflow MLmodel: a folder with only model.onnx is a model without a signature") {
  folder f("", "model.onnx");
  auto m = read_model_folder(f.dir());
  CHECK_FALSE(m.has_mlmodel);
  CHECK_FALSE(m.has_signature);
  CHECK(m.model_path == f.dir() + "/model.onnx");
}

TEST_CASE("mlflow MLmodel: folders that are not ONNX models are refused, naming the file") {
  CHECK(contains(refusal(folder("", "")), "holds neither MLmodel nor model.onnx"));
  CHECK(contains(error_of([] { read_model_folder("/nonexistent/model"); }, errc::not_found),
                 "does not exist"));

  folder missing("flavors:\n  onnx:\n    data: net.onnx\n", "");
  CHECK(refusal(missing) == missing.mlmodel() +
                                ": the model file net.onnx it names is missing "
                                "from " +
                                missing.dir() + " (a partial copy or download?)");

  folder sklearn("flavors:\n  python_function: {loader_module: mlflow.sklearn}\n"
                 "  sklearn: {pickled_model: model.pkl}\n",
                 "model.onnx");
  CHECK(contains(refusal(sklearn), "no onnx flavor (flavors: python_function, sklearn)"));

  folder escape("flavors:\n  onnx:\n    data: ../model.onnx\n", "model.onnx");
  CHECK(contains(refusal(escape), "flavors.onnx.data '../model.onnx' leaves the model folder"));
  folder absolute("flavors:\n  onnx:\n    data: /etc/passwd\n", "model.onnx");
  CHECK(contains(refusal(absolute), "should be a file name inside the folder"));
}

TEST_CASE("mlflow MLmodel: corrupt YAML or signature JSON is invalid_argument naming the file") {
  folder yaml("flavors: {onnx: [\n", "model.onnx");
  CHECK(contains(refusal(yaml), "corrupt YAML in " + yaml.mlmodel()));

  folder json("flavors:\n  onnx: {data: model.onnx}\nsignature:\n"
              "  inputs: '[{\"name\": \"x\", \"type\": \"tensor\"'\n",
              "model.onnx");
  CHECK(contains(refusal(json), json.mlmodel() + ": signature.inputs: not valid JSON"));

  folder spec("flavors:\n  onnx: {data: model.onnx}\nsignature:\n"
              "  inputs: '[{\"name\": \"x\", \"type\": \"tensor\"}]'\n",
              "model.onnx");
  CHECK(contains(refusal(spec), "'x' is a tensor without a \"tensor-spec\" object"));
}
