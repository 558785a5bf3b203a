// Softmax kernels (see softmax.hpp). Rows (inner == 1): max, exp and sum, scale - three sweeps
// over a row that stays in L1. Strided (inner > 1): the same per block of up to 256 inner
// columns at once, so every sweep runs along contiguous memory. No heap allocation.
#include "kernels/cpu/softmax.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/elementwise.hpp"

namespace serve::kernels::cpu {

namespace {

/// Columns of the strided path handled per block (stack scratch: a few KiB).
constexpr int64_t block_columns = 256;

// 32-byte vectors of T (GCC/Clang vector extensions): the compiler will not vectorise a float
// max reduction written as a plain loop without -ffast-math, so it is written out here.
template <class T> struct vec32;
template <> struct vec32<float> { typedef float type __attribute__((vector_size(32))); };
template <> struct vec32<double> { typedef double type __attribute__((vector_size(32))); };

template <class T> T row_max(const T* x, int64_t n) {
  using vec = typename vec32<T>::type;
  constexpr int64_t lanes = sizeof(vec) / sizeof(T);
  T best = x[0];
  int64_t i = 0;
  if (n >= lanes) {
    vec m, v;
    std::memcpy(&m, x, sizeof m);
    for (i = lanes; i + lanes <= n; i += lanes) {
      std::memcpy(&v, x + i, sizeof v);
      m = v > m ? v : m;
    }
    for (int64_t l = 0; l < lanes; ++l)
      best = m[l] > best ? m[l] : best;
  }
  for (; i < n; ++i)
    best = x[i] > best ? x[i] : best;
  return best;
}

template <class T> void softmax_rows(const T* x, T* y, int64_t rows, int64_t n, bool log) {
  T scratch[block_columns];
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * n;
    T* yr = y + r * n;
    const T m = row_max(xr, n);
    if (!log) {
      const T inv = T(1) / exp_sum(xr, yr, n, m);
      for (int64_t i = 0; i < n; ++i)
        yr[i] *= inv;
      continue;
    }
    T sum = 0; // the exponentials go to scratch: x may be y, and x is needed below
    for (int64_t i = 0; i < n; i += block_columns)
      sum += exp_sum(xr + i, scratch, std::min(block_columns, n - i), m);
    const T shift = m + std::log(sum);
    for (int64_t i = 0; i < n; ++i)
      yr[i] = xr[i] - shift;
  }
}

// One block of `w` inner columns of one outer slice: x[d * inner + j], d < axis_len, j < w.
template <class T>
void softmax_block(const T* x, T* y, int64_t axis_len, int64_t inner, int64_t w, bool log) {
  T mx[block_columns], sum[block_columns], tmp[block_columns];
  for (int64_t j = 0; j < w; ++j)
    mx[j] = x[j];
  for (int64_t d = 1; d < axis_len; ++d) {
    const T* xd = x + d * inner;
    for (int64_t j = 0; j < w; ++j)
      mx[j] = xd[j] > mx[j] ? xd[j] : mx[j];
  }
  std::fill(sum, sum + w, T(0));
  for (int64_t d = 0; d < axis_len; ++d) {
    const T* xd = x + d * inner;
    T* e = log ? tmp : y + d * inner; // log-softmax still needs x, which may be y
    for (int64_t j = 0; j < w; ++j)
      e[j] = xd[j] - mx[j];
    exp_sum(e, e, w, T(0));
    for (int64_t j = 0; j < w; ++j)
      sum[j] += e[j];
  }
  if (!log) {
    for (int64_t j = 0; j < w; ++j)
      sum[j] = T(1) / sum[j];
    for (int64_t d = 0; d < axis_len; ++d) {
      T* yd = y + d * inner;
      for (int64_t j = 0; j < w; ++j)
        yd[j] *= sum[j];
    }
    return;
  }
  for (int64_t j = 0; j < w; ++j)
    mx[j] += std::log(sum[j]);
  for (int64_t d = 0; d < axis_len; ++d) {
    const T* xd = x + d * inner;
    T* yd = y + d * inner;
    for (int64_t j = 0; j < w; ++j)
      yd[j] = xd[j] - mx[j];
  }
}

template <class T>
void softmax_impl(const T* x, T* y, int64_t outer, int64_t axis_len, int64_t inner, bool log) {
  if (outer <= 0 || axis_len <= 0 || inner <= 0)
    return;
  if (inner == 1)
    return softmax_rows(x, y, outer, axis_len, log);
  const int64_t slice = axis_len * inner;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < inner; j += block_columns)
      softmax_block(x + o * slice + j, y + o * slice + j, axis_len, inner,
                    std::min(block_columns, inner - j), log);
}

} // namespace

void softmax(const float* x, float* y, int64_t outer, int64_t axis_len, int64_t inner) {
  softmax_impl(x, y, outer, axis_len, inner, false);
}
void softmax(const double* x, double* y, int64_t outer, int64_t axis_len, int64_t inner) {
  softmax_impl(x, y, outer, axis_len, inner, false);
}
void log_softmax(const float* x, float* y, int64_t outer, int64_t axis_len, int64_t inner) {
  softmax_impl(x, y, outer, axis_len, inner, true);
}
void log_softmax(const double* x, double* y, int64_t outer, int64_t axis_len, int64_t inner) {
  softmax_impl(x, y, outer, axis_len, inner, true);
}

} // namespace serve::kernels::cpu
