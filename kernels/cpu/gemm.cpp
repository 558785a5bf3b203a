// GEMM with fused epilogue (see gemm.hpp). Two ways to the product:
//
// - OpenBLAS with beta = 0, then one epilogue sweep over Y in blocks of rows small enough for
//   L1 (bias with beta folded in, then the activation): one pass over data already in cache,
//   instead of copying C into Y before the product and an activation pass after it. A single
//   output row (batch 1) or column goes to GEMV, faster than OpenBLAS's GEMM at that shape.
// - With B packed at load time: a 6 x 16 register-blocked kernel on GCC vector types that adds
//   the bias and applies relu/leaky_relu to each tile in registers before its only store, its
//   panels shared among helper threads (as many as OpenBLAS may use) for larger products.
#include "kernels/cpu/gemm.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

#include <cblas.h>

namespace serve::kernels::cpu {

namespace {

/// Output elements per epilogue block (16 KiB of float): stays in L1 between the two passes.
constexpr int64_t epilogue_block_elements = 4096;

inline CBLAS_TRANSPOSE blas_trans(bool t) {
  return t ? CblasTrans : CblasNoTrans;
}

// Typed front doors to the BLAS routines.
inline void blas_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                      const float* A, int64_t lda, const float* B, int64_t ldb, float* Y) {
  cblas_sgemm(CblasRowMajor, blas_trans(ta), blas_trans(tb), M, N, K, alpha, A, lda, B, ldb, 0.0f,
              Y, N);
}
inline void blas_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha,
                      const double* A, int64_t lda, const double* B, int64_t ldb, double* Y) {
  cblas_dgemm(CblasRowMajor, blas_trans(ta), blas_trans(tb), M, N, K, alpha, A, lda, B, ldb, 0.0, Y,
              N);
}
inline void blas_gemv(bool trans, int64_t rows, int64_t cols, float alpha, const float* A,
                      int64_t lda, const float* x, float* y) {
  cblas_sgemv(CblasRowMajor, blas_trans(trans), rows, cols, alpha, A, lda, x, 1, 0.0f, y, 1);
}
inline void blas_gemv(bool trans, int64_t rows, int64_t cols, double alpha, const double* A,
                      int64_t lda, const double* x, double* y) {
  cblas_dgemv(CblasRowMajor, blas_trans(trans), rows, cols, alpha, A, lda, x, 1, 0.0, y, 1);
}

// Y = alpha * op(A) op(B), dense, M, N, K >= 1.
template <class T>
void product(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, const T* B,
             T* Y) {
  if (M == 1) { // y[N] = op(B)^T a: B [K, N] is read transposed, B^T [N, K] as is
    if (tb)
      blas_gemv(false, N, K, alpha, B, K, A, Y);
    else
      blas_gemv(true, K, N, alpha, B, N, A, Y);
    return;
  }
  if (N == 1) { // y[M] = op(A) b; b is contiguous whether or not B is transposed
    if (ta)
      blas_gemv(true, K, M, alpha, A, M, B, Y);
    else
      blas_gemv(false, M, K, alpha, A, K, B, Y);
    return;
  }
  blas_gemm(ta, tb, M, N, K, alpha, A, ta ? M : K, B, tb ? K : N, Y);
}

// ---- few-rows kernel over a packed B ----------------------------------------------------------

typedef float f32x8 __attribute__((vector_size(32)));

/// Rows per micro-kernel call: 6 rows x 16 columns = 12 accumulators of 8 floats, plus two B
/// vectors and a broadcast A value, fit the 16 vector registers of AVX2.
constexpr int64_t micro_rows = 6;

// Keeps two loaded B vectors in registers: otherwise GCC folds each load into every FMA that
// uses it, and with few rows the doubled loads make the kernel load-bound (M = 2: 30 -> 21 us
// for 784 x 512).
inline void pin_in_registers(f32x8& a, f32x8& b) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  __asm__("" : "+x"(a), "+x"(b));
#else
  (void)a;
  (void)b;
#endif
}

/// What the packed kernel applies to each tile in registers before storing it: + beta * C,
/// with C element (row, col) at C[row * c_row + col * c_col] (stride 0 where C repeats), then
/// relu or leaky_relu. The other activations run as a pass over each block of rows afterwards.
struct tile_epilogue {
  const float* C = nullptr; // null: no bias
  int64_t c_row = 0, c_col = 0;
  float beta = 0;
  activation act = activation::none; // none, relu or leaky_relu
  float act_alpha = 0;
};

inline f32x8 splat8(float v) {
  return f32x8{v, v, v, v, v, v, v, v};
}

// Applies `e` to one output row segment (columns c0.. of row `row`, `width` of them valid) held
// in lo (first 8) and hi (next 8).
inline void apply_tile_epilogue(const tile_epilogue& e, int64_t row, int64_t c0, int64_t width,
                                f32x8& lo, f32x8& hi) {
  if (e.C != nullptr) {
    const float* c = e.C + row * e.c_row + c0 * e.c_col;
    f32x8 b_lo, b_hi;
    if (e.c_col == 0) {
      b_lo = b_hi = splat8(c[0]);
    } else if (width == packed_matrix::panel_width) {
      std::memcpy(&b_lo, c, sizeof b_lo);
      std::memcpy(&b_hi, c + 8, sizeof b_hi);
    } else {
      float padded[packed_matrix::panel_width] = {};
      std::memcpy(padded, c, static_cast<size_t>(width) * sizeof(float));
      std::memcpy(&b_lo, padded, sizeof b_lo);
      std::memcpy(&b_hi, padded + 8, sizeof b_hi);
    }
    lo += e.beta * b_lo;
    hi += e.beta * b_hi;
  }
  if (e.act == activation::relu) { // NaN passes through, as in activate()
    lo = lo < 0.0f ? f32x8{} : lo;
    hi = hi < 0.0f ? f32x8{} : hi;
  } else if (e.act == activation::leaky_relu) {
    lo *= lo < 0.0f ? splat8(e.act_alpha) : splat8(1.0f);
    hi *= hi < 0.0f ? splat8(e.act_alpha) : splat8(1.0f);
  }
}

// Y[MR, width] = alpha * A[MR, K] panel[K, 16] (first `width` columns stored), then the tile
// epilogue (Y's first row is output row `row0`, its first column c0). A element
// (r, k) is at A[r * a_row + k * a_col]; Y rows are ldy apart. KU independent sets of
// accumulators (k, k + 1, ...) keep enough FMAs in flight when MR is small: the FMA latency is
// 4 cycles at 2 per cycle, so 8 independent accumulators are needed to keep the units busy.
template <int MR, int KU>
void micro_kernel(int64_t K, const float* A, int64_t a_row, int64_t a_col, const float* panel,
                  float alpha, float* Y, int64_t ldy, int64_t width, const tile_epilogue& e,
                  int64_t row0, int64_t c0) {
  constexpr int64_t w = packed_matrix::panel_width;
  f32x8 acc0[KU][MR], acc1[KU][MR];
  for (int u = 0; u < KU; ++u)
    for (int r = 0; r < MR; ++r)
      acc0[u][r] = acc1[u][r] = f32x8{};
  int64_t k = 0;
  for (; k + KU <= K; k += KU)
    for (int u = 0; u < KU; ++u) {
      f32x8 b0, b1;
      std::memcpy(&b0, panel + (k + u) * w, sizeof b0);
      std::memcpy(&b1, panel + (k + u) * w + 8, sizeof b1);
      pin_in_registers(b0, b1);
      for (int r = 0; r < MR; ++r) {
        const float a = A[r * a_row + (k + u) * a_col];
        acc0[u][r] += a * b0;
        acc1[u][r] += a * b1;
      }
    }
  for (; k < K; ++k) {
    f32x8 b0, b1;
    std::memcpy(&b0, panel + k * w, sizeof b0);
    std::memcpy(&b1, panel + k * w + 8, sizeof b1);
    for (int r = 0; r < MR; ++r) {
      const float a = A[r * a_row + k * a_col];
      acc0[0][r] += a * b0;
      acc1[0][r] += a * b1;
    }
  }
  for (int r = 0; r < MR; ++r) {
    f32x8 lo = acc0[0][r], hi = acc1[0][r];
    for (int u = 1; u < KU; ++u) {
      lo += acc0[u][r];
      hi += acc1[u][r];
    }
    lo *= alpha;
    hi *= alpha;
    apply_tile_epilogue(e, row0 + r, c0, width, lo, hi);
    float* y = Y + r * ldy;
    if (width == w) { // full panel: two vector stores
      std::memcpy(y, &lo, sizeof lo);
      std::memcpy(y + 8, &hi, sizeof hi);
    } else {
      float out[w];
      std::memcpy(out, &lo, sizeof lo);
      std::memcpy(out + 8, &hi, sizeof hi);
      std::memcpy(y, out, static_cast<size_t>(width) * sizeof(float));
    }
  }
}

// Panels [p_begin, p_end) of Y[M, N] = alpha * op(A) * B with B packed: panel by panel (each
// stays in L2 while every block of rows passes over it).
void packed_panels(bool ta, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                   const packed_matrix& B, float* Y, const tile_epilogue& e, int64_t p_begin,
                   int64_t p_end) {
  const int64_t a_row = ta ? 1 : K, a_col = ta ? M : 1;
  for (int64_t p = p_begin; p < p_end; ++p) {
    const int64_t c0 = p * packed_matrix::panel_width;
    const int64_t width = std::min(packed_matrix::panel_width, N - c0);
    // Rows split evenly into blocks of at most micro_rows (8 = 4 + 4, not 6 + 2): blocks of
    // 3 or more rows keep the FMA units busy.
    const int64_t blocks = (M + micro_rows - 1) / micro_rows;
    for (int64_t b = 0, r = 0; b < blocks; ++b) {
      const int64_t rows = (M - r) / (blocks - b);
      const float* a = A + r * a_row;
      float* y = Y + r * N + c0;
      switch (rows) {
      case 6:
        micro_kernel<6, 1>(K, a, a_row, a_col, B.panel(p), alpha, y, N, width, e, r, c0);
        break;
      case 5:
        micro_kernel<5, 1>(K, a, a_row, a_col, B.panel(p), alpha, y, N, width, e, r, c0);
        break;
      case 4:
        micro_kernel<4, 1>(K, a, a_row, a_col, B.panel(p), alpha, y, N, width, e, r, c0);
        break;
      case 3:
        micro_kernel<3, 2>(K, a, a_row, a_col, B.panel(p), alpha, y, N, width, e, r, c0);
        break;
      case 2:
        micro_kernel<2, 2>(K, a, a_row, a_col, B.panel(p), alpha, y, N, width, e, r, c0);
        break;
      default:
        micro_kernel<1, 4>(K, a, a_row, a_col, B.panel(p), alpha, y, N, width, e, r, c0);
        break;
      }
      r += rows;
    }
  }
}

// Helper threads for the packed kernel, as many as the caller lets OpenBLAS use minus one
// (the calling thread works too); started on first use, blocked on a condition variable when
// idle after spinning for spin_before_sleep (waking a sleeping thread costs 20-50 us on a VM,
// more than a whole batch-2 layer; onnxruntime's pool spins the same way). Tasks are claimed
// one at a time, so a helper that wakes late finds less (or nothing) left, and the caller
// waits only for helpers that are running a task, never for one still waking up. One parallel
// region at a time: a caller that finds the pool busy (another replica's GEMM) runs alone
// instead of waiting. Thread-safe.
class worker_pool {
public:
  /// How long an idle helper polls for the next region before it blocks.
  static constexpr std::chrono::microseconds spin_before_sleep{100};

  static worker_pool& instance() {
    static worker_pool pool;
    return pool;
  }

  /// Runs task(i) for every i < tasks on the calling thread and up to `helpers` pool threads;
  /// returns false, having run nothing, when another region holds the pool.
  bool try_run(int helpers, int64_t tasks, const std::function<void(int64_t)>& task) {
    std::unique_lock<std::mutex> region(region_mtx_, std::try_to_lock);
    if (!region.owns_lock())
      return false;
    helpers = start_threads(helpers);
    {
      std::lock_guard<std::mutex> lock(mtx_);
      task_ = &task;
      tasks_ = tasks;
      next_.store(0);
      helpers_ = helpers;
      open_ = true;
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    run_tasks(task);
    std::unique_lock<std::mutex> lock(mtx_);
    open_ = false; // every task is claimed: helpers not yet awake stay out
    done_.wait(lock, [&] { return running_ == 0; });
    task_ = nullptr;
    return true;
  }

  ~worker_pool() {
    {
      std::lock_guard<std::mutex> lock(mtx_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_)
      t.join();
  }

private:
  // Returns when a region after `seen` starts or spin_before_sleep has passed.
  void spin_until_next_region(uint64_t seen) const {
    const auto until = std::chrono::steady_clock::now() + spin_before_sleep;
    for (;;) {
      for (int i = 0; i < 64; ++i) {
        if (generation_.load(std::memory_order_acquire) != seen)
          return;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
      }
      if (std::chrono::steady_clock::now() >= until)
        return;
    }
  }

  void run_tasks(const std::function<void(int64_t)>& task) {
    for (int64_t i = next_.fetch_add(1); i < tasks_; i = next_.fetch_add(1))
      task(i);
  }

  // Makes sure `wanted` helpers exist (fewer if threads cannot be started); returns how many.
  int start_threads(int wanted) {
    while (int(threads_.size()) < wanted) {
      try {
        threads_.emplace_back([this, id = int(threads_.size())] { work(id); });
      } catch (const std::system_error&) {
        break;
      }
    }
    return std::min(wanted, int(threads_.size()));
  }

  void work(int id) {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mtx_);
    for (;;) {
      lock.unlock();
      spin_until_next_region(seen);
      lock.lock();
      wake_.wait(lock,
                 [&] { return stop_ || (open_ && generation_.load() != seen && id < helpers_); });
      if (stop_)
        return;
      seen = generation_.load();
      ++running_;
      const std::function<void(int64_t)>* task = task_;
      lock.unlock();
      run_tasks(*task);
      lock.lock();
      if (--running_ == 0)
        done_.notify_one();
    }
  }

  std::mutex region_mtx_;            // held by the caller of the running region
  std::vector<std::thread> threads_; // grown only under region_mtx_

  std::mutex mtx_; // protects what follows, except next_ (atomic; tasks_ is set before open_)
  std::condition_variable wake_, done_;
  const std::function<void(int64_t)>* task_ = nullptr;
  int64_t tasks_ = 0;
  std::atomic<int64_t> next_{0};
  int helpers_ = 0;
  int running_ = 0;                     // helpers inside run_tasks
  bool open_ = false;                   // a region is running and accepts helpers
  std::atomic<uint64_t> generation_{0}; // regions started; also read while spinning
  bool stop_ = false;
};

/// Smallest product (M * N * K multiply-adds) worth waking helper threads for: 128K is ~3 us
/// on one core; a wake-up costs a few us, and batch 1 of 784 x 512 goes from 18 to 15 us.
constexpr int64_t min_parallel_madds = int64_t(1) << 17;

// Y[M, N] = alpha * op(A) * B with B packed, the panels shared among the threads the caller
// allows OpenBLAS (openblas_get_num_threads()) when the product is large enough.
void packed_product(bool ta, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                    const packed_matrix& B, float* Y, const tile_epilogue& e) {
  const int64_t panels = (N + packed_matrix::panel_width - 1) / packed_matrix::panel_width;
  const int64_t threads =
      std::min<int64_t>(openblas_get_num_threads(), std::min<int64_t>(panels, 64));
  if (threads > 1 && M * N * K >= min_parallel_madds) {
    // A few chunks per thread: one that wakes late leaves its share to the others.
    const int64_t chunks = std::min(panels, threads * 4);
    const std::function<void(int64_t)> task = [&](int64_t c) {
      packed_panels(ta, M, N, K, alpha, A, B, Y, e, c * panels / chunks, (c + 1) * panels / chunks);
    };
    if (worker_pool::instance().try_run(int(threads - 1), chunks, task))
      return;
  }
  packed_panels(ta, M, N, K, alpha, A, B, Y, e, 0, panels);
}

// Whether M rows run faster on our packed kernel than in OpenBLAS (see gemm.hpp).
bool prefer_packed(int64_t M) {
  // One row with threads to spare: OpenBLAS's threaded GEMV (12 us for 784 x 512 on 2 cores)
  // beats our kernel (15 us); everything else is faster here.
  return M >= 2 || openblas_get_num_threads() <= 1;
}

// Rows [r0, r1) of Y: add beta * C as `bias` says, then apply `act`.
template <class T>
void epilogue(int64_t r0, int64_t r1, int64_t N, T beta, const T* C, bias_kind bias, T* Y,
              activation act, T act_alpha) {
  for (int64_t r = r0; r < r1; ++r) {
    T* y = Y + r * N;
    switch (bias) {
    case bias_kind::none:
      break;
    case bias_kind::scalar:
    case bias_kind::column: {
      const T b = beta * C[bias == bias_kind::scalar ? 0 : r];
      for (int64_t j = 0; j < N; ++j)
        y[j] += b;
      break;
    }
    case bias_kind::row:
      for (int64_t j = 0; j < N; ++j)
        y[j] += beta * C[j];
      break;
    case bias_kind::full: {
      const T* c = C + r * N;
      for (int64_t j = 0; j < N; ++j)
        y[j] += beta * c[j];
      break;
    }
    }
  }
  if (act != activation::none) // rows r0..r1 are contiguous: one call for the block
    activate(act, Y + r0 * N, Y + r0 * N, (r1 - r0) * N, act_alpha);
}

template <class T>
void gemm_bias_act_impl(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                        const T* B, T beta, const T* C, bias_kind bias, T* Y, activation act,
                        T act_alpha, const packed_matrix* packed = nullptr) {
  if (M <= 0 || N <= 0)
    return;
  if (beta == T(0) || C == nullptr)
    bias = bias_kind::none;
  if constexpr (std::is_same_v<T, float>) {
    if (K > 0 && alpha != 0.0f && packed && prefer_packed(M)) {
      // Bias, relu and leaky_relu go into the kernel's stores; other activations follow.
      tile_epilogue e;
      if (bias != bias_kind::none) {
        e.C = C;
        e.beta = beta;
        e.c_row = bias == bias_kind::column ? 1 : bias == bias_kind::full ? N : 0;
        e.c_col = bias == bias_kind::row || bias == bias_kind::full ? 1 : 0;
      }
      const bool in_tile =
          act == activation::none || act == activation::relu || act == activation::leaky_relu;
      if (in_tile) {
        e.act = act;
        e.act_alpha = act_alpha;
      }
      packed_product(ta, M, N, K, alpha, A, *packed, Y, e);
      if (!in_tile)
        activate(act, Y, Y, M * N, act_alpha);
      return;
    }
  }
  if (K <= 0 || alpha == T(0))
    std::fill(Y, Y + M * N, T(0));
  else
    product(ta, tb, M, N, K, alpha, A, B, Y);
  if (bias == bias_kind::none && act == activation::none)
    return;
  const int64_t rows_per_block = std::max<int64_t>(1, epilogue_block_elements / N);
  for (int64_t r = 0; r < M; r += rows_per_block)
    epilogue(r, std::min(M, r + rows_per_block), N, beta, C, bias, Y, act, act_alpha);
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

packed_matrix::packed_matrix(bool trans_b, int64_t K, int64_t N, const float* B)
    : rows_(K), cols_(N) {
  const int64_t panels = (N + panel_width - 1) / panel_width;
  data_.assign(static_cast<size_t>(panels * K * panel_width), 0.0f);
  for (int64_t p = 0; p < panels; ++p) {
    float* dst = data_.data() + p * K * panel_width;
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < panel_width && p * panel_width + j < N; ++j) {
        const int64_t n = p * panel_width + j;
        dst[k * panel_width + j] = trans_b ? B[n * K + k] : B[k * N + n];
      }
  }
}

void gemm_bias_act(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                   const float* A, const float* B, float beta, const float* C, bias_kind bias,
                   float* Y, activation act, float act_alpha, const packed_matrix* packed_b) {
  gemm_bias_act_impl(trans_a, trans_b, M, N, K, alpha, A, B, beta, C, bias, Y, act, act_alpha,
                     packed_b);
}
void gemm_bias_act(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                   const double* A, const double* B, double beta, const double* C, bias_kind bias,
                   double* Y, activation act, double act_alpha) {
  gemm_bias_act_impl(trans_a, trans_b, M, N, K, alpha, A, B, beta, C, bias, Y, act, act_alpha);
}

void gemm_packed(bool trans_a, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                 const packed_matrix& B, float* Y) {
  if (M <= 0 || N <= 0)
    return;
  if (K <= 0 || alpha == 0.0f)
    std::fill(Y, Y + M * N, 0.0f);
  else
    packed_product(trans_a, M, N, K, alpha, A, B, Y, tile_epilogue{});
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

} // namespace serve::kernels::cpu
