// What an MLflow model folder holds for ActorServe: the ONNX file to load and the signature
// MLflow recorded, read from its MLmodel file.
//
//   auto folder = read_model_folder(resolved.local_dir);           // throws serve_exception
//   auto model = onnx_ir::onnx_model::load(folder.model_path);
//
// MLmodel is YAML (read with yaml-cpp): `flavors.onnx.data` names the ONNX file (model.onnx when
// the flavor has no data key). `signature.inputs` / `signature.outputs` are JSON strings inside
// the YAML, often folded over several lines, e.g.
//   inputs: '[{"name": "float_input", "type": "tensor", "tensor-spec": {"dtype": "float32",
//     "shape": [-1, 4]}}]'
// yaml-cpp unfolds the scalar; RapidJSON parses the JSON. Column-based signatures
// ({"name": "x", "type": "double"}) are read too. A folder without MLmodel but with model.onnx
// is a model without a signature.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace serve::registry {

/// One input or output of an MLflow signature.
struct signature_field {
  /// "" when the schema does not name it (MLflow allows unnamed tensor specs).
  std::string name;
  /// "tensor" for a tensor spec, else MLflow's column type ("double", "long", "string", ...).
  std::string type;
  /// Tensor specs: the numpy dtype ("float32", "int64", ...); columns: the column type.
  std::string dtype;
  /// Tensor specs: the shape, -1 for a dimension of any size. Empty for columns.
  std::vector<int64_t> shape;
  /// False for a column marked "required": false.
  bool required = true;
};

/// A model folder as read_model_folder() found it.
struct model_folder {
  /// The folder, as given.
  std::string dir;
  /// The ONNX file, relative to dir: flavors.onnx.data, or "model.onnx" without MLmodel.
  std::string model_file;
  /// dir + "/" + model_file.
  std::string model_path;
  bool has_mlmodel = false;
  /// False when MLmodel has no signature (or there is no MLmodel).
  bool has_signature = false;
  std::vector<signature_field> inputs;
  std::vector<signature_field> outputs;
  /// From MLmodel when present: the MLflow version that wrote it, the logged model id (MLflow
  /// 3) and the run id.
  std::string mlflow_version;
  std::string model_id;
  std::string run_id;
};

/// Reads the model folder `dir`. Throws serve_exception: not_found when `dir` is not a folder;
/// invalid_argument naming the file when the folder holds neither MLmodel nor model.onnx, when
/// MLmodel is not valid YAML, has no onnx flavor, names a data file outside the folder or a file
/// that is missing, or when its signature is not valid JSON of MLflow's schema form.
model_folder read_model_folder(const std::string& dir);

/// Parses one signature schema (the JSON text of signature.inputs or .outputs). Throws
/// serve_exception(invalid_argument) naming `what` (file and key) and the problem.
std::vector<signature_field> parse_signature_schema(const std::string& json,
                                                    const std::string& what);

} // namespace serve::registry
