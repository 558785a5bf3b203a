// GEMM with fused epilogue (see gemm.hpp): OpenBLAS with beta = 0, then the epilogue (bias with
// beta folded in, then the activation) over each block of Y right after the BLAS call that wrote
// it, while it is in L1 - one pass over data already in cache, instead of copying C into Y
// before the product and an activation pass after it. With B in the plain layout a single output
// row (batch 1) or column goes to GEMV, faster than OpenBLAS's GEMM at that shape; with B packed
// in column panels (constant weights, gemm_bias_act_panels) every product is a GEMM per panel.
#include "kernels/cpu/gemm.hpp"

#include <algorithm>
#include <type_traits>

#include <cblas.h>

namespace serve::kernels::cpu {

namespace {

/// Output elements per epilogue block (16 KiB of float): stays in L1 between the two passes.
constexpr int64_t epilogue_block_elements = 4096;

/// OpenBLAS (0.3.17+, x86-64 builds with SMALL_MATRIX_OPT, as Debian's) runs products with
/// M * N * K up to 100^3 on direct kernels that skip packing the operands. Above that it packs
/// all of B on every call, which dominates few-row products: an MLP layer of 784 x 512 at M = 8
/// ran at 45 GFLOP/s, and at ~100 GFLOP/s as column blocks under this size (measured on this
/// project's machines). So few-row float products are issued as such column blocks.
constexpr int64_t openblas_small_mnk = 1'000'000;
/// Products with more rows are issued in blocks of this many rows, each then split into columns
/// (784 x 512 at M = 128, B not transposed: 16 x 64 blocks ~112 GFLOP/s, 32 x 32 ~109, one
/// packed product ~98).
constexpr int64_t max_split_rows = 16;
/// Narrower blocks stop paying off (M = 64 lost at 16 and 32 columns): no split below this.
constexpr int64_t min_split_columns = 32;

inline CBLAS_TRANSPOSE blas_trans(bool t) {
  return t ? CblasTrans : CblasNoTrans;
}

// Typed front doors to the BLAS routines.
inline void blas_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                      const float* A, int64_t lda, const float* B, int64_t ldb, float* Y,
                      int64_t ldy) {
  cblas_sgemm(CblasRowMajor, blas_trans(ta), blas_trans(tb), M, N, K, alpha, A, lda, B, ldb, 0.0f,
              Y, ldy);
}
inline void blas_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha,
                      const double* A, int64_t lda, const double* B, int64_t ldb, double* Y,
                      int64_t ldy) {
  cblas_dgemm(CblasRowMajor, blas_trans(ta), blas_trans(tb), M, N, K, alpha, A, lda, B, ldb, 0.0, Y,
              ldy);
}
inline void blas_gemv(bool trans, int64_t rows, int64_t cols, float alpha, const float* A,
                      int64_t lda, const float* x, float* y) {
  cblas_sgemv(CblasRowMajor, blas_trans(trans), rows, cols, alpha, A, lda, x, 1, 0.0f, y, 1);
}
inline void blas_gemv(bool trans, int64_t rows, int64_t cols, double alpha, const double* A,
                      int64_t lda, const double* x, double* y) {
  cblas_dgemv(CblasRowMajor, blas_trans(trans), rows, cols, alpha, A, lda, x, 1, 0.0, y, 1);
}

/// The epilogue of one product: Y += beta * C as `bias` says, then `act`. Y is [M, N].
template <class T>
struct epilogue_op {
  int64_t N;
  T beta;
  const T* C;
  bias_kind bias;
  T* Y;
  activation act;
  T act_alpha;

  bool empty() const { return bias == bias_kind::none && act == activation::none; }

  /// Applies the epilogue to rows [r0, r1) x columns [c0, c1) of Y. ReLU and LeakyReLU (as
  /// activate() computes them) go in the same pass as the bias: one loop per row, no call per
  /// row of a narrow column block (the 64-column blocks of packed panels).
  void apply(int64_t r0, int64_t r1, int64_t c0, int64_t c1) const {
    switch (act) {
    case activation::none:
      return add_bias(r0, r1, c0, c1, [](T v) { return v; });
    case activation::relu: // NaN passes through, as numpy.maximum(x, 0)
      return add_bias(r0, r1, c0, c1, [](T v) { return v < T(0) ? T(0) : v; });
    case activation::leaky_relu:
      return add_bias(r0, r1, c0, c1, [a = act_alpha](T v) { return v * (v < T(0) ? a : T(1)); });
    default:
      break;
    }
    if (bias != bias_kind::none)
      add_bias(r0, r1, c0, c1, [](T v) { return v; });
    if (c1 - c0 == N) // whole rows are contiguous: one call
      activate(act, Y + r0 * N, Y + r0 * N, (r1 - r0) * N, act_alpha);
    else
      for (int64_t r = r0; r < r1; ++r)
        activate(act, Y + r * N + c0, Y + r * N + c0, c1 - c0, act_alpha);
  }

  /// y = f(y + beta * C) over rows [r0, r1) x columns [c0, c1), one pass per row.
  template <class F> void add_bias(int64_t r0, int64_t r1, int64_t c0, int64_t c1, F f) const {
    for (int64_t r = r0; r < r1; ++r) {
      T* y = Y + r * N;
      switch (bias) {
      case bias_kind::none:
        for (int64_t j = c0; j < c1; ++j)
          y[j] = f(y[j]);
        break;
      case bias_kind::scalar:
      case bias_kind::column: {
        const T b = beta * C[bias == bias_kind::scalar ? 0 : r];
        for (int64_t j = c0; j < c1; ++j)
          y[j] = f(y[j] + b);
        break;
      }
      case bias_kind::row:
        for (int64_t j = c0; j < c1; ++j)
          y[j] = f(y[j] + beta * C[j]);
        break;
      case bias_kind::full: {
        const T* c = C + r * N;
        for (int64_t j = c0; j < c1; ++j)
          y[j] = f(y[j] + beta * c[j]);
        break;
      }
      }
    }
  }

  /// Applies the epilogue to rows [r0, r1) in blocks small enough to stay in L1 between the
  /// bias and the activation pass.
  void apply_rows(int64_t r0, int64_t r1) const {
    const int64_t rows_per_block = std::max<int64_t>(1, epilogue_block_elements / N);
    for (int64_t r = r0; r < r1; r += rows_per_block)
      apply(r, std::min(r1, r + rows_per_block), 0, N);
  }
};

// Y[row0 .., :] = alpha * op(A) op(B), dense, M, N, K >= 1, then the epilogue `ep` on what was
// written: block by block right after each BLAS call while the block is still in L1 when the
// product is issued in blocks, else once over all rows. `row0` is the first row's index in the
// whole product (for column biases).
template <class T>
void product(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, const T* B,
             T* Y, const epilogue_op<T>& ep, int64_t row0) {
  if (M == 1) { // y[N] = op(B)^T a: B [K, N] is read transposed, B^T [N, K] as is
    if (tb)
      blas_gemv(false, N, K, alpha, B, K, A, Y);
    else
      blas_gemv(true, K, N, alpha, B, N, A, Y);
    if (!ep.empty())
      ep.apply_rows(row0, row0 + 1);
    return;
  }
  if (N == 1) { // y[M] = op(A) b; b is contiguous whether or not B is transposed
    if (ta)
      blas_gemv(true, K, M, alpha, A, M, B, Y);
    else
      blas_gemv(false, M, K, alpha, A, K, B, Y);
    if (!ep.empty())
      ep.apply_rows(row0, row0 + M);
    return;
  }
  const int64_t lda = ta ? M : K;
  const int64_t ldb = tb ? K : N;
  if (std::is_same_v<T, float> && !ta && M > max_split_rows && M * N * K > openblas_small_mnk) {
    // Many rows: blocks of max_split_rows rows (rows of A are contiguous), split into columns.
    for (int64_t r = 0; r < M; r += max_split_rows)
      product(ta, tb, std::min(max_split_rows, M - r), N, K, alpha, A + r * K, B, Y + r * N, ep,
              row0 + r);
    return;
  }
  // Widest power-of-two block under the limit (non-power-of-two widths measured slower).
  int64_t block = 0;
  if (std::is_same_v<T, float>)
    for (int64_t limit = openblas_small_mnk / (M * K), w = 1; w <= limit; w *= 2)
      block = w;
  if (M * N * K <= openblas_small_mnk || block < min_split_columns) {
    blas_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, Y, N);
    if (!ep.empty())
      ep.apply_rows(row0, row0 + M);
    return;
  }
  for (int64_t c = 0; c < N; c += block) { // columns [c, c + width) of op(B) and Y
    const int64_t width = std::min(block, N - c);
    blas_gemm(ta, tb, M, width, K, alpha, A, lda, tb ? B + c * K : B + c, ldb, Y + c, N);
    if (!ep.empty())
      ep.apply(row0, row0 + M, c, c + width);
  }
}

/// The epilogue of Y = act(alpha * op(A) op(B) + beta * C): no bias when beta is 0 or C is absent.
/// Y is the whole output (product() passes absolute row indices).
template <class T>
epilogue_op<T> make_epilogue(int64_t N, T beta, const T* C, bias_kind bias, T* Y, activation act,
                             T act_alpha) {
  if (beta == T(0) || C == nullptr)
    bias = bias_kind::none;
  return {N, beta, C, bias, Y, act, act_alpha};
}

/// K = 0 or alpha = 0: Y = the epilogue applied to zeros; returns whether that was the case.
template <class T>
bool skip_product(int64_t M, int64_t N, int64_t K, T alpha, T* Y, const epilogue_op<T>& ep) {
  if (K > 0 && alpha != T(0))
    return false;
  std::fill(Y, Y + M * N, T(0));
  if (!ep.empty())
    ep.apply_rows(0, M);
  return true;
}

template <class T>
void gemm_bias_act_impl(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                        const T* B, T beta, const T* C, bias_kind bias, T* Y, activation act,
                        T act_alpha) {
  if (M <= 0 || N <= 0)
    return;
  const auto ep = make_epilogue(N, beta, C, bias, Y, act, act_alpha);
  if (!skip_product(M, N, K, alpha, Y, ep))
    product(ta, tb, M, N, K, alpha, A, B, Y, ep, 0);
}

template <class T>
void gemm_strided_batched_impl(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha,
                               const T* A, int64_t stride_a, const T* B, int64_t stride_b, T* Y,
                               int64_t stride_y, int64_t batch) {
  if (batch <= 0 || M <= 0 || N <= 0)
    return;
  if (stride_b == 0 && !ta && stride_a == M * K && stride_y == M * N)
    return gemm_bias_act_impl(false, tb, batch * M, N, K, alpha, A, B, T(0), (const T*)nullptr,
                              bias_kind::none, Y, activation::none, T(0));
  for (int64_t i = 0; i < batch; ++i)
    gemm_bias_act_impl(ta, tb, M, N, K, alpha, A + i * stride_a, B + i * stride_b, T(0),
                       (const T*)nullptr, bias_kind::none, Y + i * stride_y, activation::none,
                       T(0));
}

} // namespace

void gemm_bias_act(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                   const float* A, const float* B, float beta, const float* C, bias_kind bias,
                   float* Y, activation act, float act_alpha) {
  gemm_bias_act_impl(trans_a, trans_b, M, N, K, alpha, A, B, beta, C, bias, Y, act, act_alpha);
}
void gemm_bias_act(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                   const double* A, const double* B, double beta, const double* C, bias_kind bias,
                   double* Y, activation act, double act_alpha) {
  gemm_bias_act_impl(trans_a, trans_b, M, N, K, alpha, A, B, beta, C, bias, Y, act, act_alpha);
}

void gemm_strided_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                          const float* A, int64_t stride_a, const float* B, int64_t stride_b,
                          float* Y, int64_t stride_y, int64_t batch) {
  gemm_strided_batched_impl(trans_a, trans_b, M, N, K, alpha, A, stride_a, B, stride_b, Y, stride_y,
                            batch);
}
void gemm_strided_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                          const double* A, int64_t stride_a, const double* B, int64_t stride_b,
                          double* Y, int64_t stride_y, int64_t batch) {
  gemm_strided_batched_impl(trans_a, trans_b, M, N, K, alpha, A, stride_a, B, stride_b, Y, stride_y,
                            batch);
}

int64_t gemm_panel_width(int64_t K, int64_t N) {
  if (K <= 0 || N <= 0)
    return 0;
  int64_t width = 0; // the widest power of two whose max_split_rows-row blocks stay direct
  for (int64_t w = 1; max_split_rows * w * K <= openblas_small_mnk; w *= 2)
    width = w;
  return width >= min_split_columns && width < N ? width : 0;
}

void pack_b_panels(bool trans_b, int64_t K, int64_t N, const float* B, int64_t width, float* out) {
  for (int64_t first = 0; first < N; first += width) {
    const int64_t w = std::min(width, N - first);
    float* panel = out + first * K;
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < w; ++j)
        panel[k * w + j] = trans_b ? B[(first + j) * K + k] : B[k * N + first + j];
  }
}

void gemm_bias_act_panels(int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                          const float* B, int64_t width, float beta, const float* C, bias_kind bias,
                          float* Y, activation act, float act_alpha) {
  if (M <= 0 || N <= 0)
    return;
  const auto ep = make_epilogue(N, beta, C, bias, Y, act, act_alpha);
  if (skip_product(M, N, K, alpha, Y, ep))
    return;
  // Rows per BLAS call: as many as keep the block on the direct kernels, at most max_split_rows.
  const int64_t rows = std::clamp<int64_t>(openblas_small_mnk / (width * K), 1, max_split_rows);
  for (int64_t first = 0; first < N; first += width) { // panel by panel: each stays in L2
    const int64_t w = std::min(width, N - first);
    const float* panel = B + first * K;
    for (int64_t r = 0; r < M; r += rows) {
      const int64_t m = std::min(rows, M - r);
      // Even one row: GEMM per panel beats one GEMV over all of B (the MLP at batch 1: 1.16x).
      blas_gemm(false, false, m, w, K, alpha, A + r * K, K, panel, w, Y + r * N + first, N);
      if (!ep.empty())
        ep.apply(r, r + m, first, first + w);
    }
  }
}

} // namespace serve::kernels::cpu
