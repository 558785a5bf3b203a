// One dense layer on the GPU: y = act(x · W + b) with GEMM, bias and activation fused in one
// kernel (tensor cores for tf32/fp16/bf16). Implemented in linear.cu; CPU reference in
// reference.hpp (reference_linear). Conventions in cuda_api.hpp.
#pragma once

#include "kernels/cuda/runtime.hpp"

namespace serve::kernels::cuda {

/// One dense layer y = act(x · W + b), uploaded once by prepare_linear and read-only afterwards
/// (any number of streams on the same device may use it at once).
/// Layout (set by prepare_linear; kernels rely on it): `weight` holds W as [k_padded, ld]
/// row-major in the storage type of `prec` (fp32 for fp32/tf32 (tf32 values pre-rounded),
/// __half for fp16, __nv_bfloat16 for bf16), zero-filled outside [in_features, out_features];
/// k_padded = in_features rounded up to 32, ld = out_features rounded up to 16. `bias` holds
/// out_features fp32 values, or is empty (no bias).
struct linear_weights {
  device_buffer weight;
  device_buffer bias;
  int in_features = 0;
  int out_features = 0;
  int k_padded = 0;
  int ld = 0;
  activation act = activation::none;
  precision prec = precision::tf32;
};

/// Uploads a layer. `w` is row-major [in_features, out_features] fp32 on the host (ONNX Gemm
/// with transB=1 must be transposed by the caller); `bias` has out_features values or is null.
/// Blocks until the upload has finished (host memory may be freed on return). Sizes >= 1.
status prepare_linear(const float* w, const float* bias, int in_features, int out_features,
                      activation act, precision prec, const stream& s, linear_weights& out);

/// y[rows, out_features] = act(x[rows, in_features] · W + b) in one launch (GEMM, bias and
/// activation fused). Picks a kernel by shape: rows <= 32 a split-K kernel over 16-column
/// tiles; otherwise 64x64 or 128x128 tensor-core tiles (fp32 precision: a CUDA-core tile).
/// rows >= 0 (0 does nothing). x and y must not overlap; x needs no particular alignment.
status linear_forward(const float* x_dev, const linear_weights& layer, float* y_dev, int rows,
                      const stream& s);

} // namespace serve::kernels::cuda
