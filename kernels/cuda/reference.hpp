// CPU references of the CUDA ops (plain loops, double accumulation), for tests: the GPU result
// of every op in kernels/cuda is compared with these. Header-only, plain C++ (no CUDA); the
// tests check these references against independent code (kernels/cpu, _Float16).
//
// quantize() rounds an fp32 value the way the GPU rounds operands for a precision, so that a
// reference computed on quantized operands differs from the GPU only by the order and rounding
// of fp32 accumulation: tests can then use tight bounds and still catch a missing term.
// Stateless and thread-safe.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "kernels/cuda/elementwise.hpp"
#include "kernels/cuda/runtime.hpp"

namespace serve::kernels::cuda::reference {

/// `v` rounded to the operand format of `prec`, returned as fp32:
/// fp32 unchanged; tf32 10 mantissa bits, round to nearest, ties away from zero (cvt.rna.tf32,
/// what wmma::__float_to_tf32 and prepare_linear do); fp16 IEEE half, round to nearest even,
/// with subnormals, |v| >= 65520 -> inf; bf16 8 significant bits, round to nearest even.
/// inf and NaN pass through.
inline float quantize(float v, precision prec) {
  if (prec == precision::fp32 || !std::isfinite(v))
    return v;
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  switch (prec) {
  case precision::tf32:
    bits = (bits + 0x1000u) & 0xffffe000u;
    break;
  case precision::bf16:
    bits = (bits + 0x7fffu + ((bits >> 16) & 1u)) & 0xffff0000u;
    break;
  case precision::fp16: {
    const double a = std::fabs(static_cast<double>(v));
    double q;
    if (a < 0x1p-14) { // subnormal half: a fixed spacing of 2^-24
      q = std::nearbyint(a * 0x1p24) * 0x1p-24;
    } else { // 11 significant bits
      int e = 0;
      const double m = std::frexp(a, &e); // a = m * 2^e, m in [0.5, 1)
      q = std::ldexp(std::nearbyint(std::ldexp(m, 11)), e - 11);
    }
    if (q > 65504.0)
      q = std::numeric_limits<double>::infinity();
    return static_cast<float>(std::copysign(q, static_cast<double>(v)));
  }
  case precision::fp32:
    break;
  }
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

/// The activations of cuda_api.hpp in double.
inline double activate(activation act, double v) {
  switch (act) {
  case activation::none:
    return v;
  case activation::relu:
    return v < 0 ? 0 : v;
  case activation::gelu:
    return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
  case activation::sigmoid:
    return 1 / (1 + std::exp(-v));
  case activation::tanh:
    return std::tanh(v);
  }
  return v;
}

/// y[rows, N] = act(q(x)[rows, K] · q(w)[K, N] + bias) with q = quantize(., prec), summed in
/// double. w is row-major [K, N] (the layout prepare_linear takes); bias has N values or is
/// null. When `magnitude` is not null it receives, per output, sum_k |q(x) q(w)| + |bias|:
/// the scale of the rounding error of any fp32 summation order.
inline void linear(const float* x, const float* w, const float* bias, int rows, int K, int N,
                   activation act, precision prec, float* y, double* magnitude = nullptr) {
  for (int r = 0; r < rows; ++r)
    for (int n = 0; n < N; ++n) {
      double sum = bias ? bias[n] : 0.0;
      double mag = bias ? std::fabs(bias[n]) : 0.0;
      for (int k = 0; k < K; ++k) {
        const double term = static_cast<double>(quantize(x[static_cast<size_t>(r) * K + k], prec)) *
                            quantize(w[static_cast<size_t>(k) * N + n], prec);
        sum += term;
        mag += std::fabs(term);
      }
      y[static_cast<size_t>(r) * N + n] = static_cast<float>(activate(act, sum));
      if (magnitude)
        magnitude[static_cast<size_t>(r) * N + n] = mag;
    }
}

/// Softmax (or LogSoftmax) of each row of x [rows, cols], in double.
inline void softmax(const float* x, float* y, int rows, int cols, bool log_softmax) {
  for (int r = 0; r < rows; ++r) {
    const float* xr = x + static_cast<size_t>(r) * cols;
    float* yr = y + static_cast<size_t>(r) * cols;
    double max = -std::numeric_limits<double>::infinity();
    for (int c = 0; c < cols; ++c)
      max = std::fmax(max, xr[c]);
    double sum = 0;
    for (int c = 0; c < cols; ++c)
      sum += std::exp(xr[c] - max);
    for (int c = 0; c < cols; ++c)
      yr[c] = static_cast<float>(log_softmax ? (xr[c] - max) - std::log(sum)
                                             : std::exp(xr[c] - max) / sum);
  }
}

/// ArgMax of each row: the CPU executor's scan (first maximum; NaN never compares greater).
inline void argmax(const float* x, int64_t* y, int rows, int cols) {
  for (int r = 0; r < rows; ++r) {
    const float* xr = x + static_cast<size_t>(r) * cols;
    int64_t best = 0;
    float best_value = xr[0];
    for (int c = 1; c < cols; ++c)
      if (xr[c] > best_value) {
        best_value = xr[c];
        best = c;
      }
    y[r] = best;
  }
}

/// y = a (op) b with b broadcast as elementwise_binary does, in fp32 (as the GPU).
inline void binary(binary_op op, const float* a, const float* b, broadcast how, float* y,
                   int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t i = r * cols + c;
      const float bv = how == broadcast::full     ? b[i]
                       : how == broadcast::row    ? b[c]
                       : how == broadcast::column ? b[r]
                                                  : b[0];
      switch (op) {
      case binary_op::add:
        y[i] = a[i] + bv;
        break;
      case binary_op::sub:
        y[i] = a[i] - bv;
        break;
      case binary_op::mul:
        y[i] = a[i] * bv;
        break;
      case binary_op::div:
        y[i] = a[i] / bv;
        break;
      }
    }
}

/// y[i] = act(x[i]) in double, rounded to fp32.
inline void unary(activation act, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = static_cast<float>(activate(act, x[i]));
}

} // namespace serve::kernels::cuda::reference
