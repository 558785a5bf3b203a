// Elementwise ops on the GPU: binary arithmetic with a broadcast second operand, and the
// activations as unary ops. Implemented in elementwise.cu; CPU reference in reference.hpp.
// Conventions in cuda_api.hpp.
#pragma once

#include <cstdint>

#include "kernels/cuda/runtime.hpp"

namespace serve::kernels::cuda {

enum class binary_op : uint8_t { add, sub, mul, div };

/// How the second operand `b` of elementwise_binary broadcasts to a [rows, cols].
enum class broadcast : uint8_t {
  full,   // b is [rows, cols]
  row,    // b is [cols], repeated for every row (a bias row)
  column, // b is [rows], repeated along each row
  scalar, // b is [1]
};

/// y[r, c] = a[r, c] (op) b[...] with b broadcast as `how`. y may equal a (or b when full).
/// Division follows IEEE (x / 0 = inf or NaN).
status elementwise_binary(binary_op op, const float* a_dev, const float* b_dev, broadcast how,
                          float* y_dev, int64_t rows, int64_t cols, const stream& s);

/// y[i] = act(x[i]) for i < n; act == none copies. y may equal x.
status elementwise_unary(activation act, const float* x_dev, float* y_dev, int64_t n,
                         const stream& s);

} // namespace serve::kernels::cuda
