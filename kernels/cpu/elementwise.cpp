// Elementwise kernels (see elementwise.hpp). Each public function picks its loop once; the loops
// are templates over a small inlined functor so that GCC emits one vectorised body per choice.
#include "kernels/cpu/elementwise.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace serve::kernels::cpu {

namespace {

// ---- elementwise maps ---------------------------------------------------------------------

// y[i] = f(x[i]), for operations the compiler vectorises from scalar code (compare, select,
// multiply-add). In place gets its own loop: with one pointer there is nothing to alias.
template <class T, class F> inline void map(const T* x, T* y, int64_t n, F f) {
  if (x == y) {
    for (int64_t i = 0; i < n; ++i)
      y[i] = f(y[i]);
    return;
  }
  for (int64_t i = 0; i < n; ++i)
    y[i] = f(x[i]);
}

// ---- vectorised float transcendentals ----------------------------------------------------
//
// Written on GCC/Clang vector types: without -ffast-math GCC keeps FP traps (-ftrapping-math),
// so it neither vectorises std::floor nor if-converts a clamp whose result feeds arithmetic,
// and scalar versions of these functions stay scalar. On vector types every `?:` is a blend.

typedef float f32x8 __attribute__((vector_size(32)));
typedef int32_t i32x8 __attribute__((vector_size(32)));

inline f32x8 splat(float s) {
  return f32x8{s, s, s, s, s, s, s, s};
}

// exp(x) after Cephes' expf: n = round(x / ln 2) (by the 1.5 * 2^23 trick), r = x - n ln 2 in
// two parts, a degree-6 polynomial for exp(r), times 2^n built in the exponent bits. Relative
// error ~2 ulp on [-88, 88]; inputs are clamped there (exp(-88) ~ 6e-39 becomes 0). NaN stays
// NaN (the clamps keep it; the int conversion sees -127 instead).
inline f32x8 exp8(f32x8 x) {
  x = x > 88.0f ? splat(88.0f) : x;
  x = x < -88.0f ? splat(-88.0f) : x;
  const float round_magic = 12582912.0f;
  f32x8 n = (x * 1.44269504088896341f + round_magic) - round_magic;
  f32x8 r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  f32x8 p = splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  f32x8 nc = n >= -127.0f ? n : splat(-127.0f);
  nc = nc <= 127.0f ? nc : splat(127.0f);
  i32x8 e = (__builtin_convertvector(nc, i32x8) + 127) << 23; // -127 -> 0.0f: exp -> 0
  f32x8 scale;
  std::memcpy(&scale, &e, sizeof scale);
  return p * scale;
}

// tanh as Eigen's rational approximation (odd degree 13 over even degree 6), clamped where
// float tanh is 1 to within rounding. Error a few ulp; near 0 it is x * (1 - 1.3e-7).
inline f32x8 tanh8(f32x8 x) {
  const float bound = 7.90531110763549805f;
  f32x8 c = x > bound ? splat(bound) : x;
  c = c < -bound ? splat(-bound) : c;
  f32x8 x2 = c * c;
  f32x8 p = splat(-2.76076847742355e-16f);
  p = p * x2 + 2.00018790482477e-13f;
  p = p * x2 - 8.60467152213735e-11f;
  p = p * x2 + 5.12229709037114e-08f;
  p = p * x2 + 1.48572235717979e-05f;
  p = p * x2 + 6.37261928875436e-04f;
  p = p * x2 + 4.89352455891786e-03f;
  p = p * c;
  f32x8 q = splat(1.19825839466702e-06f);
  q = q * x2 + 1.18534705686654e-04f;
  q = q * x2 + 2.26843463243900e-03f;
  q = q * x2 + 4.89352518554385e-03f;
  return p / q;
}

inline f32x8 sigmoid8(f32x8 x) {
  return 1.0f / (1.0f + exp8(-x));
}

// GELU with erf by Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7).
inline f32x8 gelu8(f32x8 x) {
  f32x8 z = x * 0.70710678118654752f;
  f32x8 a = z < 0.0f ? -z : z;
  f32x8 t = 1.0f / (1.0f + 0.3275911f * a);
  f32x8 p = splat(1.061405429f);
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  f32x8 erf_a = 1.0f - p * t * exp8(-a * a);
  f32x8 erf_z = z < 0.0f ? -erf_a : erf_a;
  return 0.5f * x * (1.0f + erf_z);
}

// y[i] = f(x[i]) eight at a time; the tail goes through a zero-padded vector.
template <class F> inline void map8(const float* x, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    f32x8 v;
    std::memcpy(&v, x + i, sizeof v);
    v = f(v);
    std::memcpy(y + i, &v, sizeof v);
  }
  if (i < n) {
    f32x8 v = {};
    const size_t bytes = static_cast<size_t>(n - i) * sizeof(float);
    std::memcpy(&v, x + i, bytes);
    v = f(v);
    std::memcpy(y + i, &v, bytes);
  }
}

// The transcendental activations and exp per element type: float vectorised, double by libm.
void exp_shifted(const float* x, float* y, int64_t n, float shift) {
  map8(x, y, n, [s = splat(shift)](f32x8 v) { return exp8(v - s); });
}
void exp_shifted(const double* x, double* y, int64_t n, double shift) {
  map(x, y, n, [shift](double v) { return std::exp(v - shift); });
}
void sigmoid_map(const float* x, float* y, int64_t n) {
  map8(x, y, n, sigmoid8);
}
void sigmoid_map(const double* x, double* y, int64_t n) {
  map(x, y, n, [](double v) { return 1.0 / (1.0 + std::exp(-v)); });
}
void tanh_map(const float* x, float* y, int64_t n) {
  map8(x, y, n, tanh8);
}
void tanh_map(const double* x, double* y, int64_t n) {
  map(x, y, n, [](double v) { return std::tanh(v); });
}
void gelu_map(const float* x, float* y, int64_t n) {
  map8(x, y, n, gelu8);
}
void gelu_map(const double* x, double* y, int64_t n) {
  map(x, y, n, [](double v) { return 0.5 * v * (1.0 + std::erf(v * 0.70710678118654752)); });
}

template <class T> void activate_impl(activation act, const T* x, T* y, int64_t n, T alpha) {
  switch (act) {
  case activation::none:
    if (x != y)
      std::memmove(y, x, static_cast<size_t>(n) * sizeof(T));
    return;
  case activation::relu: // NaN passes through, as numpy.maximum(x, 0)
    return map(x, y, n, [](T v) { return v < T(0) ? T(0) : v; });
  case activation::leaky_relu: // the select picks a factor: no arithmetic inside the ?:
    return map(x, y, n, [alpha](T v) { return v * (v < T(0) ? alpha : T(1)); });
  case activation::sigmoid:
    return sigmoid_map(x, y, n);
  case activation::tanh:
    return tanh_map(x, y, n);
  case activation::gelu:
    return gelu_map(x, y, n);
  }
}

template <class T> void clip_impl(const T* x, T* y, int64_t n, T lo, T hi) {
  map(x, y, n, [lo, hi](T v) {
    T t = v < lo ? lo : v;
    return t > hi ? hi : t;
  });
}

template <class T> T exp_sum_impl(const T* x, T* y, int64_t n, T shift) {
  exp_shifted(x, y, n, shift);
  // Eight partial sums: a float sum only vectorises when the additions are reassociated by
  // hand. The exponentials are still in L1.
  constexpr int lanes = 8;
  T partial[lanes] = {};
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes)
    for (int l = 0; l < lanes; ++l)
      partial[l] += y[i + l];
  T sum = 0;
  for (; i < n; ++i)
    sum += y[i];
  for (int l = 0; l < lanes; ++l)
    sum += partial[l];
  return sum;
}

// ---- broadcasting binary ops --------------------------------------------------------------

// Integer add/sub/mul wrap (two's complement) instead of overflowing into undefined behaviour.
template <class T, bool = std::is_integral_v<T>> struct wrap { using type = T; };
template <class T> struct wrap<T, true> { using type = std::make_unsigned_t<T>; };
template <class T> using wrap_t = typename wrap<T>::type;

struct add_fn {
  template <class T> T operator()(T a, T b) const {
    return static_cast<T>(static_cast<wrap_t<T>>(a) + static_cast<wrap_t<T>>(b));
  }
};
struct sub_fn {
  template <class T> T operator()(T a, T b) const {
    return static_cast<T>(static_cast<wrap_t<T>>(a) - static_cast<wrap_t<T>>(b));
  }
};
struct mul_fn {
  template <class T> T operator()(T a, T b) const {
    return static_cast<T>(static_cast<wrap_t<T>>(a) * static_cast<wrap_t<T>>(b));
  }
};
struct div_fn {
  template <class T> T operator()(T a, T b) const { return a / b; }
};

// The innermost merged dim: each operand either advances (stride 1) or repeats (stride 0).
template <class T, class Op>
void binary_run(const T* a, bool a_moves, const T* b, bool b_moves, T* y, int64_t n, Op op) {
  if (a_moves && b_moves) {
    for (int64_t i = 0; i < n; ++i)
      y[i] = op(a[i], b[i]);
  } else if (b_moves) {
    const T s = a[0];
    for (int64_t i = 0; i < n; ++i)
      y[i] = op(s, b[i]);
  } else {
    const T s = b[0];
    for (int64_t i = 0; i < n; ++i)
      y[i] = op(a[i], s);
  }
}

// Integer division: truncates toward zero; x / -1 negates with wrap (INT_MIN / -1 traps in
// hardware); a zero divisor is reported after the run. Nothing here vectorises anyway.
template <class T>
void int_div_run(const T* a, bool a_moves, const T* b, bool b_moves, T* y, int64_t n, bool& zero) {
  for (int64_t i = 0; i < n; ++i) {
    T u = a[a_moves ? i : 0];
    T v = b[b_moves ? i : 0];
    if (v == 0) {
      zero = true;
      y[i] = 0;
    } else if constexpr (std::is_signed_v<T>) {
      y[i] = v == T(-1) ? static_cast<T>(wrap_t<T>(0) - static_cast<wrap_t<T>>(u)) : u / v;
    } else {
      y[i] = u / v;
    }
  }
}

// Output dims merged where both operands behave alike (both advance, or one repeats), with
// each operand's element stride per merged dim (0 where it repeats). Outermost first.
struct broadcast_plan {
  int rank = 0;
  int64_t dims[max_broadcast_rank];
  int64_t a_stride[max_broadcast_rank];
  int64_t b_stride[max_broadcast_rank];
  bool empty = false;
};

broadcast_plan make_plan(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  const size_t rank = std::max(a.size(), b.size());
  broadcast_plan plan;
  bool a_rep[64], b_rep[64];
  int64_t merged[64];
  int count = 0;
  if (rank > 64)
    throw std::invalid_argument("binary: rank " + std::to_string(rank) + " is too large");
  for (size_t d = 0; d < rank; ++d) {
    int64_t ad = d + a.size() >= rank ? a[d + a.size() - rank] : 1;
    int64_t bd = d + b.size() >= rank ? b[d + b.size() - rank] : 1;
    int64_t od = ad == 1 ? bd : ad;
    if (od == 0)
      plan.empty = true;
    if (od == 1)
      continue; // contributes nothing to either operand's strides
    bool ar = ad == 1, br = bd == 1;
    if (count > 0 && a_rep[count - 1] == ar && b_rep[count - 1] == br) {
      merged[count - 1] *= od;
    } else {
      a_rep[count] = ar;
      b_rep[count] = br;
      merged[count] = od;
      ++count;
    }
  }
  if (count == 0) { // scalar op scalar, or all dims 1
    a_rep[0] = b_rep[0] = false;
    merged[0] = 1;
    count = 1;
  }
  if (count > max_broadcast_rank)
    throw std::invalid_argument("binary: broadcast needs " + std::to_string(count) +
                                " merged dims; at most " + std::to_string(max_broadcast_rank) +
                                " are supported");
  plan.rank = count;
  int64_t as = 1, bs = 1;
  for (int d = count - 1; d >= 0; --d) {
    plan.dims[d] = merged[d];
    plan.a_stride[d] = a_rep[d] ? 0 : as;
    plan.b_stride[d] = b_rep[d] ? 0 : bs;
    as *= a_rep[d] ? 1 : merged[d];
    bs *= b_rep[d] ? 1 : merged[d];
  }
  return plan;
}

// Walks the outer merged dims (odometer) and runs `inner` on each innermost stretch.
template <class T, class Inner>
void walk(const broadcast_plan& plan, const T* a, const T* b, T* y, Inner inner) {
  const int last = plan.rank - 1;
  const int64_t n = plan.dims[last];
  const bool a_moves = plan.a_stride[last] != 0, b_moves = plan.b_stride[last] != 0;
  int64_t outer = 1;
  for (int d = 0; d < last; ++d)
    outer *= plan.dims[d];
  int64_t index[max_broadcast_rank] = {};
  int64_t a_off = 0, b_off = 0;
  for (int64_t o = 0; o < outer; ++o) {
    inner(a + a_off, a_moves, b + b_off, b_moves, y + o * n, n);
    for (int d = last - 1; d >= 0; --d) { // advance the odometer
      a_off += plan.a_stride[d];
      b_off += plan.b_stride[d];
      if (++index[d] < plan.dims[d])
        break;
      a_off -= plan.a_stride[d] * plan.dims[d];
      b_off -= plan.b_stride[d] * plan.dims[d];
      index[d] = 0;
    }
  }
}

template <class T>
void binary_impl(binary_op op, const T* a, const std::vector<int64_t>& a_shape, const T* b,
                 const std::vector<int64_t>& b_shape, T* y) {
  const broadcast_plan plan = make_plan(a_shape, b_shape);
  if (plan.empty)
    return;
  auto run_with = [&](auto fn) {
    walk(plan, a, b, y, [fn](const T* pa, bool am, const T* pb, bool bm, T* py, int64_t n) {
      binary_run(pa, am, pb, bm, py, n, fn);
    });
  };
  switch (op) {
  case binary_op::add:
    return run_with(add_fn{});
  case binary_op::sub:
    return run_with(sub_fn{});
  case binary_op::mul:
    return run_with(mul_fn{});
  case binary_op::div:
    if constexpr (std::is_integral_v<T>) {
      bool zero = false;
      walk(plan, a, b, y, [&zero](const T* pa, bool am, const T* pb, bool bm, T* py, int64_t n) {
        int_div_run(pa, am, pb, bm, py, n, zero);
      });
      if (zero)
        throw std::domain_error("integer division by zero");
      return;
    } else {
      return run_with(div_fn{});
    }
  }
}

} // namespace

void activate(activation act, const float* x, float* y, int64_t n, float alpha) {
  activate_impl(act, x, y, n, alpha);
}
void activate(activation act, const double* x, double* y, int64_t n, double alpha) {
  activate_impl(act, x, y, n, alpha);
}

void clip(const float* x, float* y, int64_t n, float lo, float hi) {
  clip_impl(x, y, n, lo, hi);
}
void clip(const double* x, double* y, int64_t n, double lo, double hi) {
  clip_impl(x, y, n, lo, hi);
}
void clip(const int8_t* x, int8_t* y, int64_t n, int8_t lo, int8_t hi) {
  clip_impl(x, y, n, lo, hi);
}
void clip(const uint8_t* x, uint8_t* y, int64_t n, uint8_t lo, uint8_t hi) {
  clip_impl(x, y, n, lo, hi);
}
void clip(const int32_t* x, int32_t* y, int64_t n, int32_t lo, int32_t hi) {
  clip_impl(x, y, n, lo, hi);
}
void clip(const int64_t* x, int64_t* y, int64_t n, int64_t lo, int64_t hi) {
  clip_impl(x, y, n, lo, hi);
}

float exp_sum(const float* x, float* y, int64_t n, float shift) {
  return exp_sum_impl(x, y, n, shift);
}
double exp_sum(const double* x, double* y, int64_t n, double shift) {
  return exp_sum_impl(x, y, n, shift);
}

void scale_shift(const float* x, float* y, int64_t n, float scale, float shift) {
  map(x, y, n, [scale, shift](float v) { return v * scale + shift; });
}
void scale_shift(const double* x, double* y, int64_t n, double scale, double shift) {
  map(x, y, n, [scale, shift](double v) { return v * scale + shift; });
}

bool broadcast_shapes(const std::vector<int64_t>& a, const std::vector<int64_t>& b,
                      std::vector<int64_t>& out) {
  const size_t rank = std::max(a.size(), b.size());
  out.assign(rank, 1);
  for (size_t d = 0; d < rank; ++d) {
    int64_t ad = d + a.size() >= rank ? a[d + a.size() - rank] : 1;
    int64_t bd = d + b.size() >= rank ? b[d + b.size() - rank] : 1;
    if (ad != bd && ad != 1 && bd != 1)
      return false;
    out[d] = ad == 1 ? bd : ad;
  }
  return true;
}

void binary(binary_op op, const float* a, const std::vector<int64_t>& a_shape, const float* b,
            const std::vector<int64_t>& b_shape, float* y) {
  binary_impl(op, a, a_shape, b, b_shape, y);
}
void binary(binary_op op, const double* a, const std::vector<int64_t>& a_shape, const double* b,
            const std::vector<int64_t>& b_shape, double* y) {
  binary_impl(op, a, a_shape, b, b_shape, y);
}
void binary(binary_op op, const int32_t* a, const std::vector<int64_t>& a_shape, const int32_t* b,
            const std::vector<int64_t>& b_shape, int32_t* y) {
  binary_impl(op, a, a_shape, b, b_shape, y);
}
void binary(binary_op op, const int64_t* a, const std::vector<int64_t>& a_shape, const int64_t* b,
            const std::vector<int64_t>& b_shape, int64_t* y) {
  binary_impl(op, a, a_shape, b, b_shape, y);
}
void binary(binary_op op, const uint8_t* a, const std::vector<int64_t>& a_shape, const uint8_t* b,
            const std::vector<int64_t>& b_shape, uint8_t* y) {
  binary_impl(op, a, a_shape, b, b_shape, y);
}

} // namespace serve::kernels::cpu
