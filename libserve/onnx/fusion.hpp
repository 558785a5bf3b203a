// Load-time graph rewrites that let kernels do more per pass over memory: GEMM/MatMul with a
// following bias Add and activation (Relu, LeakyRelu, Sigmoid, Tanh) become one node of op type
// "FusedGemm" in domain "ai.actorserve", whose kernel applies bias and activation in the GEMM's
// epilogue. Only rewrites when the intermediate values are used once and are not graph outputs.
#pragma once

#include "libserve/onnx/graph.hpp"

namespace serve::onnx_ir {

/// The domain of ActorServe's own fused ops.
inline const char* actorserve_domain = "ai.actorserve";

/// Rewrites `g` in place; returns the number of nodes fused away.
size_t fuse_gemm_epilogues(graph& g);

/// Stores constant float weights of Gemm/FusedGemm nodes with transB = 1 transposed, once, and
/// clears transB: OpenBLAS runs the [M, K] x [K, N] form up to ~10 % faster on the few-row
/// products a batched MLP makes (see kernels/cpu/gemm.cpp). Only weights read by that one node.
/// Returns the number of nodes rewritten.
size_t pretranspose_gemm_weights(graph& g);

} // namespace serve::onnx_ir
