// ONNX protobuf -> onnx_ir::graph. Private to libserve/onnx: model.cpp is its only caller, and
// no protobuf type appears here so that nothing else depends on the generated headers.
//
// What the loader accepts: IR versions 3-10 (ONNX's 1.12 checker is not used: it refuses newer
// IR versions that load fine); tensors from raw_data, from the typed fields and from external
// data files inside the model's folder; opset imports and node domains with "ai.onnx" spelled
// as the default domain "". What it refuses, with serve_exception(invalid_argument) naming the
// tensor, node or attribute: subgraph attributes (If, Loop, Scan), sparse tensors, element
// types without a serve::dtype, external data outside the folder.
#pragma once

#include <string>

#include "libserve/onnx/graph.hpp"

namespace serve::onnx_ir {

/// Parses a serialized ModelProto. External data `location`s are relative to `base_dir`
/// ("" = the current directory).
graph parse_model_bytes(const std::string& bytes, const std::string& base_dir);

} // namespace serve::onnx_ir
