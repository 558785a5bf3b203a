// Model deployments: an ONNX model served as a deployment ("model": {"uri": ...} in config).
//
// One replica loads the model once (onnx_model) and answers batches with one graph execution:
// the requests' inputs are concatenated along the batch dimension, the outputs split back per
// request. A request whose inputs do not match the model's signature gets its own 400 (naming
// the input, the expected and the received dtype/shape) without failing the rest of its batch.
//
// Accepted bodies (see README "Model deployments"):
//   {"inputs": {"<input>": nested list, ...}}  or, single-input models, {"inputs": nested list}
//       -> {"outputs": {"<output>": nested list, ...}}
//   POST <route>/invocations with MLflow's scoring formats: {"instances": ...}, {"inputs": ...},
//       {"dataframe_split": {"columns", "data"}}, {"dataframe_records": [...]}
//       -> {"predictions": ...}
//   with "features" configured, one row as an object {"<feature>": value, ...}
//       -> {"result": <label>} (the first output's value, named through "labels" when given)
// A single row may omit its batch dimension ([5.1, 3.5, 1.4, 0.2] for input [-1, 4]); its
// outputs then omit it too.
#pragma once

#include <memory>

#include "libserve/deployment.hpp"

namespace serve {

/// Builds the deployment from ctx.model_config. Throws serve_exception when the model cannot
/// be loaded (the replica then fails to start with that message).
std::unique_ptr<deployment> make_model_deployment(const deployment_context& ctx);

} // namespace serve
