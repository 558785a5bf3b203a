// Row-wise Softmax and LogSoftmax on the GPU. Implemented in softmax.cu; CPU reference in
// reference.hpp (reference_softmax). Conventions in cuda_api.hpp.
#pragma once

#include "kernels/cuda/runtime.hpp"

namespace serve::kernels::cuda {

/// Softmax (or LogSoftmax) of every row of x [rows, cols] into y [rows, cols]: max-subtracted,
/// fp32. x may equal y. A row of all -inf gives NaN, as the CPU kernel does.
status softmax_forward(const float* x_dev, float* y_dev, int rows, int cols, bool log_softmax,
                       const stream& s);

} // namespace serve::kernels::cuda
