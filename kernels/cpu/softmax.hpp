// Softmax and log-softmax on the CPU over raw buffers.
//
// The data is viewed as [outer, axis_len, inner] (row-major) and normalised along the middle
// axis; inner == 1 is the common "last axis of [rows, cols]" case and takes the row path. Both
// ONNX semantics reduce to this view: opset < 13 coerces to 2-D around `axis` (outer = product
// of the dims before it, axis_len = product of the rest, inner = 1); opset >= 13 normalises one
// axis (axis_len = that dim, inner = product of the dims after it).
// Max-subtracted (no overflow for large inputs); float exp is the vectorised approximation of
// elementwise.hpp. x may equal y. Stateless and thread-safe.
#pragma once

#include <cstdint>

namespace serve::kernels::cpu {

/// y = exp(x - max) / sum(exp(x - max)) along the middle axis of [outer, axis_len, inner].
void softmax(const float* x, float* y, int64_t outer, int64_t axis_len, int64_t inner);
void softmax(const double* x, double* y, int64_t outer, int64_t axis_len, int64_t inner);

/// y = x - max - log(sum(exp(x - max))) along the middle axis of [outer, axis_len, inner].
void log_softmax(const float* x, float* y, int64_t outer, int64_t axis_len, int64_t inner);
void log_softmax(const double* x, double* y, int64_t outer, int64_t axis_len, int64_t inner);

} // namespace serve::kernels::cpu
