// Row-wise ArgMax on the GPU. Implemented in argmax.cu; CPU reference in reference.hpp
// (reference_argmax). Conventions in cuda_api.hpp.
#pragma once

#include <cstdint>

#include "kernels/cuda/runtime.hpp"

namespace serve::kernels::cuda {

/// y[r] = index of the largest x[r, c] (int64), the first one on ties (ONNX ArgMax with
/// select_last_index = 0, keepdims only changes the shape). NaN as the CPU executor's scan from
/// column 0 treats it: a NaN in column 0 gives 0, other NaNs are never the maximum. cols >= 1.
status argmax_forward(const float* x_dev, int64_t* y_dev, int rows, int cols, const stream& s);

} // namespace serve::kernels::cuda
