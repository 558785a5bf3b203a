#include "libserve/registry/mlmodel.hpp"

#include <filesystem>
#include <system_error>

#include <rapidjson/document.h>

#include "libserve/future.hpp"
#include "libserve/registry/artifact_locator.hpp"
#include "libserve/registry/yaml_file.hpp"
#include "libserve/json.hpp"

namespace serve::registry {
namespace fs = std::filesystem;
namespace {

[[noreturn]] void corrupt(const std::string& what, const std::string& problem) {
  throw serve_exception(errc::invalid_argument, what + ": " + problem);
}

bool is_file(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

signature_field parse_field(const rapidjson::Value& v, const std::string& what) {
  if (!v.IsObject())
    corrupt(what, "each entry should be an object");
  signature_field f;
  if (v.HasMember("name")) {
    if (!v["name"].IsString())
      corrupt(what, "\"name\" should be a string");
    f.name = v["name"].GetString();
  }
  auto label = f.name.empty() ? std::string("an unnamed entry") : "'" + f.name + "'";
  if (!v.HasMember("type") || !v["type"].IsString())
    corrupt(what, label + " has no \"type\" string");
  f.type = v["type"].GetString();
  if (v.HasMember("required") && v["required"].IsBool())
    f.required = v["required"].GetBool();
  if (f.type != "tensor") {
    f.dtype = f.type;
    return f;
  }
  if (!v.HasMember("tensor-spec") || !v["tensor-spec"].IsObject())
    corrupt(what, label + " is a tensor without a \"tensor-spec\" object");
  const auto& spec = v["tensor-spec"];
  if (!spec.HasMember("dtype") || !spec["dtype"].IsString())
    corrupt(what, label + ": tensor-spec has no \"dtype\" string");
  f.dtype = spec["dtype"].GetString();
  if (!spec.HasMember("shape") || !spec["shape"].IsArray())
    corrupt(what, label + ": tensor-spec has no \"shape\" list");
  for (const auto& d : spec["shape"].GetArray()) {
    if (!d.IsInt64())
      corrupt(what, label + ": tensor-spec shape entries should be integers");
    f.shape.push_back(d.GetInt64());
  }
  return f;
}

// flavors.onnx.data must stay inside the folder.
std::string checked_data_file(const std::string& data, const std::string& mlmodel) {
  if (data.empty() || data[0] == '/')
    corrupt(mlmodel, "flavors.onnx.data '" + data + "' should be a file name inside the folder");
  for (const auto& part : fs::path(data))
    if (part == "..")
      corrupt(mlmodel, "flavors.onnx.data '" + data + "' leaves the model folder");
  return data;
}

} // namespace

std::vector<signature_field> parse_signature_schema(const std::string& json,
                                                    const std::string& what) {
  rapidjson::Document doc;
  if (auto error = parse_json(doc, json))
    corrupt(what, "not valid JSON: " + *error);
  if (!doc.IsArray())
    corrupt(what, "expected a JSON list of inputs or outputs");
  std::vector<signature_field> out;
  for (const auto& v : doc.GetArray())
    out.push_back(parse_field(v, what));
  return out;
}

model_folder read_model_folder(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw serve_exception(errc::not_found, "model folder " + dir + " does not exist");
  model_folder out;
  out.dir = dir;
  auto mlmodel = join_path(dir, "MLmodel");
  if (!is_file(mlmodel)) {
    out.model_file = "model.onnx";
    out.model_path = join_path(dir, out.model_file);
    if (!is_file(out.model_path))
      corrupt(dir, "not a model folder: it holds neither MLmodel nor model.onnx");
    return out;
  }
  out.has_mlmodel = true;
  auto node = read_yaml_map(mlmodel);
  auto flavors = node["flavors"];
  if (!flavors || !flavors.IsMap())
    corrupt(mlmodel, "no flavors mapping");
  auto onnx = flavors["onnx"];
  if (!onnx) {
    std::string names;
    for (const auto& entry : flavors)
      names += (names.empty() ? "" : ", ") + entry.first.as<std::string>();
    corrupt(mlmodel, "no onnx flavor (flavors: " + names +
                         "); ActorServe serves ONNX models "
                         "(log them with mlflow.onnx)");
  }
  auto data = onnx.IsMap() ? yaml_scalar(onnx, "data", mlmodel) : "";
  out.model_file = checked_data_file(data.empty() ? "model.onnx" : data, mlmodel);
  out.model_path = join_path(dir, out.model_file);
  if (!is_file(out.model_path))
    corrupt(mlmodel, "the model file " + out.model_file + " it names is missing from " + dir +
                         " (a partial copy or download?)");
  out.mlflow_version = yaml_scalar(node, "mlflow_version", mlmodel);
  out.model_id = yaml_scalar(node, "model_id", mlmodel);
  out.run_id = yaml_scalar(node, "run_id", mlmodel);

  auto signature = node["signature"];
  if (signature && signature.IsMap()) {
    out.has_signature = true;
    auto inputs = yaml_scalar(signature, "inputs", mlmodel);
    auto outputs = yaml_scalar(signature, "outputs", mlmodel);
    if (!inputs.empty())
      out.inputs = parse_signature_schema(inputs, mlmodel + ": signature.inputs");
    if (!outputs.empty())
      out.outputs = parse_signature_schema(outputs, mlmodel + ": signature.outputs");
  }
  return out;
}

} // namespace serve::registry
