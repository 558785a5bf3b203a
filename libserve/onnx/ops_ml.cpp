// Operator family "ml" (see op_registry.hpp). Placeholder until the family is implemented.
#include "libserve/onnx/op_registry.hpp"

namespace serve::onnx_ir {

void register_ml_ops(op_registry&) {}

} // namespace serve::onnx_ir
