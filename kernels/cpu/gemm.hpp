// Dense matrix products on the CPU with the bias and activation fused into the product:
// OpenBLAS followed by one epilogue sweep over blocks of rows still in cache, or, for a constant
// B packed once at load time, ActorServe's own kernel that applies them in registers.
//
// Plain C++ over raw row-major buffers (no ActorServe or ONNX types). These are the kernels of
// ONNX Gemm, MatMul and ActorServe's FusedGemm:
//
//   Y[M, N] = act(alpha * op(A) * op(B) + beta * C)      op(X) = trans ? X^T : X
//
// with op(A) [M, K] and op(B) [K, N] dense (A stored [M, K], or [K, M] when trans_a; B stored
// [K, N], or [N, K] when trans_b) and C broadcast to [M, N] as bias_kind says.
// Threads: the caller decides, through OpenBLAS (OPENBLAS_NUM_THREADS or
// openblas_set_num_threads), and nothing here changes that setting. The packed-B kernel reads
// it too: with T > 1 it shares large products among T - 1 helper threads of its own (started
// on first use, spinning 100 us after each product before they sleep) and the caller; one
// product at a time uses them, concurrent callers meanwhile run single-threaded.
// Thread-safe (OpenBLAS is, in its pthread build).
#pragma once

#include <cstdint>
#include <vector>

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

/// A constant right operand op(B) [K, N] laid out once (at model load) for ActorServe's GEMM
/// kernel: panels of 16 columns, each K rows of 16 contiguous floats, the last panel
/// zero-padded. OpenBLAS packs B again on every call, which dominates small batches.
/// Immutable after construction; may be shared by threads.
class packed_matrix {
public:
  /// Columns per panel (two 8-float vectors).
  static constexpr int64_t panel_width = 16;

  /// Packs op(B) from B stored [K, N], or [N, K] when trans_b.
  packed_matrix(bool trans_b, int64_t K, int64_t N, const float* B);

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  /// Panel p: rows() x panel_width floats.
  const float* panel(int64_t p) const { return data_.data() + p * rows_ * panel_width; }

private:
  int64_t rows_, cols_;
  std::vector<float> data_;
};

/// Y = act(alpha * op(A) op(B) + beta * C). Y must not overlap A, B or C. M, N or K may be 0
/// (K = 0 gives act(beta * C)). `act_alpha` is leaky_relu's slope. `packed_b`, when given,
/// must hold op(B) (same K and N); the product then runs on ActorServe's register-blocked
/// kernel with bias and relu/leaky_relu applied in registers (~110 GFLOP/s per Zen 4 core,
/// where OpenBLAS reaches ~98 at M = 128 and 8-30 at M = 3..16 because it packs B on every
/// call), except for M = 1 when OpenBLAS may use several threads (its threaded GEMV wins).
void gemm_bias_act(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                   const float* A, const float* B, float beta, const float* C, bias_kind bias,
                   float* Y, activation act = activation::none, float act_alpha = 0.01f,
                   const packed_matrix* packed_b = nullptr);
void gemm_bias_act(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                   const double* A, const double* B, double beta, const double* C, bias_kind bias,
                   double* Y, activation act = activation::none, double act_alpha = 0.01);

/// Y = alpha * op(A) * B with B packed, always on ActorServe's kernel (no OpenBLAS, no bias or
/// activation); the product gemm_bias_act() runs when it takes the packed path.
void gemm_packed(bool trans_a, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                 const packed_matrix& B, float* Y);

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
