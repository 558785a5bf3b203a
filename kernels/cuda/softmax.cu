// Row-wise Softmax / LogSoftmax (softmax.hpp). No CAF header may be included here.
//
// One warp per row, 8 rows per block: the rows of a classifier head are short (10..1000
// columns), so a warp strides over a row three times (max, sum of exponentials, write) with
// shuffles for the two reductions; no shared memory and no block barrier.
#include <cmath>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/softmax.hpp"

namespace serve::kernels::cuda {

using namespace detail;

namespace {

constexpr int rows_per_block = 8;

__device__ float warp_max(float v) {
  for (int offset = 16; offset > 0; offset /= 2)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

__device__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset /= 2)
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// x may equal y: every element is read by the lane that writes it, before it writes it.
__global__ void __launch_bounds__(rows_per_block * 32)
    softmax_kernel(const float* x, float* y, int rows, int cols, bool log_softmax) {
  const int row = blockIdx.x * rows_per_block + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) // the whole warp leaves together; there is no block barrier
    return;
  const float* xr = x + static_cast<size_t>(row) * cols;
  float* yr = y + static_cast<size_t>(row) * cols;

  float max = -INFINITY;
  for (int c = lane; c < cols; c += 32)
    max = fmaxf(max, xr[c]);
  max = warp_max(max);
  float sum = 0.0f;
  for (int c = lane; c < cols; c += 32)
    sum += expf(xr[c] - max);
  sum = warp_sum(sum);

  if (log_softmax) {
    const float log_sum = logf(sum);
    for (int c = lane; c < cols; c += 32)
      yr[c] = (xr[c] - max) - log_sum;
  } else {
    for (int c = lane; c < cols; c += 32)
      yr[c] = expf(xr[c] - max) / sum;
  }
}

} // namespace

status softmax_forward(const float* x_dev, float* y_dev, int rows, int cols, bool log_softmax,
                       const stream& s) {
  if (rows < 0 || cols < 1)
    return invalid_argument("softmax_forward: rows >= 0 and cols >= 1 required; were " +
                            std::to_string(rows) + ", " + std::to_string(cols));
  if (rows == 0)
    return {};
  if (!x_dev || !y_dev)
    return invalid_argument("softmax_forward: x and y must not be null");
  if (auto st = enter(s, "softmax_forward"); !st.ok())
    return st;
  softmax_kernel<<<ceil_div(rows, rows_per_block), rows_per_block * 32, 0, native(s)>>>(
      x_dev, y_dev, rows, cols, log_softmax);
  return check_launch("softmax_kernel");
}

} // namespace serve::kernels::cuda
