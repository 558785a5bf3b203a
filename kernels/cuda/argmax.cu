// Row-wise ArgMax (argmax.hpp). No CAF header may be included here.
//
// One warp per row, 8 rows per block. Each lane scans its columns (lane, lane + 32, ...) in
// increasing order keeping the first largest non-NaN value; the lanes' candidates are merged
// by shuffles, a larger value or an equal value at a smaller index winning. That is the first
// maximum, the answer of the CPU executor's scan `if (x[d] > best)` from column 0; its one
// NaN case (x[0] is NaN: nothing compares greater, the answer stays 0) is checked apart.
#include <cmath>

#include "kernels/cuda/argmax.hpp"
#include "kernels/cuda/cuda_common.cuh"

namespace serve::kernels::cuda {

using namespace detail;

namespace {

constexpr int rows_per_block = 8;

__global__ void __launch_bounds__(rows_per_block * 32)
    argmax_kernel(const float* __restrict__ x, int64_t* __restrict__ y, int rows, int cols) {
  const int row = blockIdx.x * rows_per_block + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) // the whole warp leaves together
    return;
  const float* xr = x + static_cast<size_t>(row) * cols;

  float best = 0.0f;
  int best_index = -1; // -1: no non-NaN value seen yet
  for (int c = lane; c < cols; c += 32) {
    const float v = xr[c];
    if (!isnan(v) && (best_index < 0 || v > best)) {
      best = v;
      best_index = c;
    }
  }
  for (int offset = 16; offset > 0; offset /= 2) {
    const float other = __shfl_down_sync(0xffffffffu, best, offset);
    const int other_index = __shfl_down_sync(0xffffffffu, best_index, offset);
    if (other_index >= 0 &&
        (best_index < 0 || other > best || (other == best && other_index < best_index))) {
      best = other;
      best_index = other_index;
    }
  }
  if (lane == 0)
    y[row] = (isnan(xr[0]) || best_index < 0) ? 0 : best_index;
}

} // namespace

status argmax_forward(const float* x_dev, int64_t* y_dev, int rows, int cols, const stream& s) {
  if (rows < 0 || cols < 1)
    return invalid_argument("argmax_forward: rows >= 0 and cols >= 1 required; were " +
                            std::to_string(rows) + ", " + std::to_string(cols));
  if (rows == 0)
    return {};
  if (!x_dev || !y_dev)
    return invalid_argument("argmax_forward: x and y must not be null");
  if (auto st = enter(s, "argmax_forward"); !st.ok())
    return st;
  argmax_kernel<<<ceil_div(rows, rows_per_block), rows_per_block * 32, 0, native(s)>>>(x_dev, y_dev,
                                                                                       rows, cols);
  return check_launch("argmax_kernel");
}

} // namespace serve::kernels::cuda
