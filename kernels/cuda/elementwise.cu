// Elementwise binary arithmetic with a broadcast operand, and unary activations
// (elementwise.hpp). No CAF header may be included here.
//
// Grid-stride loops over the flat index, 256 threads per block, at most 32 blocks per SM (more
// only adds scheduling work). The operation is uniform across the launch, so its switch costs
// no divergence.
#include <algorithm>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/elementwise.hpp"

namespace serve::kernels::cuda {

using namespace detail;

namespace {

constexpr int threads = 256;

__device__ __forceinline__ float apply(binary_op op, float a, float b) {
  switch (op) {
  case binary_op::add:
    return a + b;
  case binary_op::sub:
    return a - b;
  case binary_op::mul:
    return a * b;
  case binary_op::div:
    return a / b;
  }
  return a;
}

// y may equal a (or b when full): each element is read before the same thread writes it.
__global__ void binary_kernel(binary_op op, const float* a, const float* b, broadcast how, float* y,
                              int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float bv;
    switch (how) {
    case broadcast::full:
      bv = b[i];
      break;
    case broadcast::row:
      bv = b[i % cols];
      break;
    case broadcast::column:
      bv = b[i / cols];
      break;
    default: // scalar
      bv = b[0];
      break;
    }
    y[i] = apply(op, a[i], bv);
  }
}

__global__ void unary_kernel(activation act, const float* x, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = apply_activation(act, x[i]);
}

unsigned blocks_for(int64_t n, int device) {
  const int64_t cap = std::max(1, multiprocessor_count(device)) * 32LL;
  return static_cast<unsigned>(std::min<int64_t>((n + threads - 1) / threads, cap));
}

} // namespace

status elementwise_binary(binary_op op, const float* a_dev, const float* b_dev, broadcast how,
                          float* y_dev, int64_t rows, int64_t cols, const stream& s) {
  if (rows < 0 || cols < 0)
    return invalid_argument("elementwise_binary: rows and cols must be >= 0");
  if (rows == 0 || cols == 0)
    return {};
  if (!a_dev || !b_dev || !y_dev)
    return invalid_argument("elementwise_binary: a, b and y must not be null");
  if (auto st = enter(s, "elementwise_binary"); !st.ok())
    return st;
  binary_kernel<<<blocks_for(rows * cols, s.device()), threads, 0, native(s)>>>(
      op, a_dev, b_dev, how, y_dev, rows, cols);
  return check_launch("binary_kernel");
}

status elementwise_unary(activation act, const float* x_dev, float* y_dev, int64_t n,
                         const stream& s) {
  if (n < 0)
    return invalid_argument("elementwise_unary: n must be >= 0");
  if (n == 0)
    return {};
  if (!x_dev || !y_dev)
    return invalid_argument("elementwise_unary: x and y must not be null");
  if (auto st = enter(s, "elementwise_unary"); !st.ok())
    return st;
  unary_kernel<<<blocks_for(n, s.device()), threads, 0, native(s)>>>(act, x_dev, y_dev, n);
  return check_launch("unary_kernel");
}

} // namespace serve::kernels::cuda
