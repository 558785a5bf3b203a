// Elementwise CPU kernels over raw buffers: activations, clip, a per-channel affine map and
// broadcasting binary arithmetic.
//
// Plain C++ (no ActorServe or ONNX types). Every loop is written so the compiler vectorises it
// (kernels/ builds with -O3 -march=x86-64-v3): the operation is chosen once per call, never per
// element. exp/tanh for float use polynomial approximations (relative error < 1e-6, see
// elementwise.cpp) because libm calls do not vectorise without -ffast-math; double uses libm.
// Output buffers may alias their first input (in-place) unless stated otherwise.
// Stateless and thread-safe.
#pragma once

#include <cstdint>
#include <vector>

namespace serve::kernels::cpu {

/// Activation functions; also the epilogue choices of gemm_bias_act().
enum class activation : uint8_t {
  none,
  relu,       // max(x, 0)
  leaky_relu, // x >= 0 ? x : alpha * x
  sigmoid,    // 1 / (1 + exp(-x))
  tanh,
  gelu, // 0.5 x (1 + erf(x / sqrt(2))), the exact (erf) form
};

/// y[i] = act(x[i]) for i < n. `alpha` is leaky_relu's slope (ignored by the others).
void activate(activation act, const float* x, float* y, int64_t n, float alpha = 0.01f);
void activate(activation act, const double* x, double* y, int64_t n, double alpha = 0.01);

/// y[i] = min(max(x[i], lo), hi). NaN stays NaN for floating types.
void clip(const float* x, float* y, int64_t n, float lo, float hi);
void clip(const double* x, double* y, int64_t n, double lo, double hi);
void clip(const int8_t* x, int8_t* y, int64_t n, int8_t lo, int8_t hi);
void clip(const uint8_t* x, uint8_t* y, int64_t n, uint8_t lo, uint8_t hi);
void clip(const int32_t* x, int32_t* y, int64_t n, int32_t lo, int32_t hi);
void clip(const int64_t* x, int64_t* y, int64_t n, int64_t lo, int64_t hi);

/// y[i] = exp(x[i] - shift); returns the sum of the y[i] (softmax's exponentials and their
/// denominator in one pass). Float: exp(v) for v in [-88, 88]; below -88 it is 0 and above 88
/// it saturates at exp(88), which softmax (v <= 0) and sigmoid never notice.
float exp_sum(const float* x, float* y, int64_t n, float shift);
double exp_sum(const double* x, double* y, int64_t n, double shift);

/// y[i] = x[i] * scale + shift (one FMA; BatchNormalization per channel).
void scale_shift(const float* x, float* y, int64_t n, float scale, float shift);
void scale_shift(const double* x, double* y, int64_t n, double scale, double shift);

enum class binary_op : uint8_t { add, sub, mul, div };

/// Largest rank the broadcasting binary kernels take (after merging adjacent dims that
/// broadcast alike, so only pathological shapes come near it).
constexpr int max_broadcast_rank = 16;

/// The numpy ("multidirectional") broadcast of two shapes into `out`; false when some pair of
/// dims differs and neither is 1.
bool broadcast_shapes(const std::vector<int64_t>& a, const std::vector<int64_t>& b,
                      std::vector<int64_t>& out);

/// y = a (op) b with numpy broadcasting; y has shape broadcast_shapes(a_shape, b_shape), which
/// the caller has checked. Fast paths: equal shapes, a scalar operand, and an operand that
/// repeats along leading dims (a bias row [N] against [M, N]); anything else walks the merged
/// dims. y may alias a or b only when that operand already has y's shape.
/// Integer ops wrap on overflow; integer division truncates toward zero and throws
/// std::domain_error on a zero divisor. Throws std::invalid_argument past max_broadcast_rank.
void binary(binary_op op, const float* a, const std::vector<int64_t>& a_shape, const float* b,
            const std::vector<int64_t>& b_shape, float* y);
void binary(binary_op op, const double* a, const std::vector<int64_t>& a_shape, const double* b,
            const std::vector<int64_t>& b_shape, double* y);
void binary(binary_op op, const int32_t* a, const std::vector<int64_t>& a_shape, const int32_t* b,
            const std::vector<int64_t>& b_shape, int32_t* y);
void binary(binary_op op, const int64_t* a, const std::vector<int64_t>& a_shape, const int64_t* b,
            const std::vector<int64_t>& b_shape, int64_t* y);
void binary(binary_op op, const uint8_t* a, const std::vector<int64_t>& a_shape, const uint8_t* b,
            const std::vector<int64_t>& b_shape, uint8_t* y);

} // namespace serve::kernels::cpu
