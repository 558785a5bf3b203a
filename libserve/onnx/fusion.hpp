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

/// The attribute pack_gemm_weights sets on a Gemm or FusedGemm whose B it stored in column
/// panels (kernels/cpu/gemm.hpp): the panel width. B keeps its [K, N] shape; its elements are
/// where kernels::cpu::panel_offset says.
inline const char* b_panel_width_attribute = "actorserve_b_panel_width";

/// Stores constant float weights of Gemm/FusedGemm nodes once in the layout the CPU kernel reads
/// fastest, and clears transB: in column panels when A is not transposed and
/// kernels::cpu::gemm_panel_width gives a width (6-16 % faster on an MLP, kernels/cpu/gemm.hpp),
/// else as a plain [K, N] matrix when they were transposed (OpenBLAS runs [M, K] x [K, N] up to
/// ~10 % faster than the transposed form on few-row products). Only weights read by that one
/// node and not a graph output. Returns the number of nodes rewritten.
size_t pack_gemm_weights(graph& g);

} // namespace serve::onnx_ir
