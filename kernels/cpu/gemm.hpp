// Dense matrix products on the CPU with the bias and activation fused into the product:
// OpenBLAS (GEMV for a single output row or column, GEMM otherwise) followed by one epilogue
// sweep over blocks of rows still in cache.
//
// Plain C++ over raw row-major buffers (no ActorServe or ONNX types). These are the kernels of
// ONNX Gemm, MatMul and ActorServe's FusedGemm:
//
//   Y[M, N] = act(alpha * op(A) * op(B) + beta * C)      op(X) = trans ? X^T : X
//
// with op(A) [M, K] and op(B) [K, N] dense (A stored [M, K], or [K, M] when trans_a; B stored
// [K, N], or [N, K] when trans_b) and C broadcast to [M, N] as bias_kind says.
// Threads: the caller decides, through OpenBLAS (OPENBLAS_NUM_THREADS or
// openblas_set_num_threads), and nothing here changes that setting or starts threads of its own.
// Thread-safe (OpenBLAS is, in its pthread build).
#pragma once

#include <cstdint>

#include "kernels/cpu/elementwise.hpp"

namespace serve::kernels::cpu {

/// How the bias C broadcasts to the [M, N] output.
enum class bias_kind : uint8_t {
  none,   // no bias (C may be null)
  scalar, // C[0] everywhere
  row,    // C[N]: one value per column, repeated for every row (the usual layer bias)
  column, // C[M]: one value per row
  full,   // C[M, N]
};

/// Y = act(alpha * op(A) op(B) + beta * C). Y must not overlap A, B or C. M, N or K may be 0
/// (K = 0 gives act(beta * C)). `act_alpha` is leaky_relu's slope.
void gemm_bias_act(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                   const float* A, const float* B, float beta, const float* C, bias_kind bias,
                   float* Y, activation act = activation::none, float act_alpha = 0.01f);
void gemm_bias_act(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                   const double* A, const double* B, double beta, const double* C, bias_kind bias,
                   double* Y, activation act = activation::none, double act_alpha = 0.01);

// ---- Constant weights packed in column panels -------------------------------------------------
// A layer's weights B [K, N] are constant for the life of a model, so they can be stored once in
// the layout OpenBLAS's direct small-matrix kernels read fastest: column panels, panel p holding
// columns [p * width, min(N, (p + 1) * width)) as one contiguous row-major [K, w_p] block at
// offset p * width * K. gemm_bias_act_panels then runs panel by panel (each panel stays in L2
// while every block of rows of A passes over it), issuing blocks small enough for those kernels.
// Measured on the MLP 784-512-512-10 (scripts/bench-kernels' model, one thread), against the
// plain [K, N] layout with gemm_bias_act: 1.06-1.07x rows/s at 8-128 rows and 1.16x at one row,
// where a GEMM per panel replaces one GEMV over all of B (BENCHMARKS.md).

/// The panel width for weights of K rows and N columns, or 0 when B is best left as one
/// row-major [K, N] matrix (N fits in one panel, or K is too large for the direct kernels).
int64_t gemm_panel_width(int64_t K, int64_t N);

/// Writes B (stored [K, N], or [N, K] when trans_b) into `out` (K * N floats, not overlapping B)
/// as panels of `width` columns (width >= 1).
void pack_b_panels(bool trans_b, int64_t K, int64_t N, const float* B, int64_t width, float* out);

/// Where element (k, j) of a [K, N] matrix lives in that layout.
inline int64_t panel_offset(int64_t K, int64_t N, int64_t width, int64_t k, int64_t j) {
  const int64_t first = j / width * width; // the panel's first column
  const int64_t w = N - first < width ? N - first : width;
  return first * K + k * w + (j - first);
}

/// Y = act(alpha * A B + beta * C) as gemm_bias_act with A [M, K] not transposed and B packed by
/// pack_b_panels with `width`.
void gemm_bias_act_panels(int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                          const float* B, int64_t width, float beta, const float* C, bias_kind bias,
                          float* Y, activation act = activation::none, float act_alpha = 0.01f);

/// Y_i = alpha * op(A_i) op(B_i) for i < batch, where X_i = X + i * stride_x (elements); a
/// stride of 0 repeats that operand (MatMul broadcasting). When B repeats and the A_i and Y_i
/// are contiguous the batch runs as one GEMM with batch * M rows.
void gemm_strided_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                          const float* A, int64_t stride_a, const float* B, int64_t stride_b,
                          float* Y, int64_t stride_y, int64_t batch);
void gemm_strided_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                          const double* A, int64_t stride_a, const double* B, int64_t stride_b,
                          double* Y, int64_t stride_y, int64_t batch);

} // namespace serve::kernels::cpu
