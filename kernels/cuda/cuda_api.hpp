// The CUDA kernels' plain C++ API: streams, device and pinned buffers, events, copies, and the
// compute ops a GPU replica runs (fused dense layers, a fused whole-MLP path, softmax,
// argmax, elementwise).
//
// No CUDA header is included here: native handles (cudaStream_t, cudaEvent_t) travel as opaque
// `void*`, so libserve/ and actors/ include this file with the ordinary C++ compiler and no CAF
// header ever reaches nvcc. This header only gathers the per-op headers; each op is a
// .hpp/.cu pair with a host entry point (runtime, linear, fused_mlp, softmax, argmax,
// elementwise) and has a CPU reference in kernels/cuda/reference.hpp that the tests compare it
// with. Include this file, or just the op headers you need.
//
// Conventions for every function below:
// - Nothing throws. Every call that can fail returns a `status`; functions returning `bool`
//   cannot fail.
// - Tensors are dense, row-major, fp32 in global (device) memory unless stated otherwise; the
//   caller owns every pointer it passes and keeps it alive until the stream has finished the
//   work (synchronize, or an event recorded after the work has completed).
// - Work is enqueued on the given stream and runs asynchronously; a returned ok status means
//   "enqueued without a launch error", not "finished". Errors of the kernel itself (an illegal
//   address, ...) surface at a later call on the stream or at synchronize(), always sticky.
// - Each call makes the stream's device current on the calling thread (cudaSetDevice) when it
//   is not already.
// - Thread-safety: the functions are thread-safe; one `stream` (and the buffers used on it)
//   must be driven by one thread at a time. Different streams may be used from different
//   threads at once, on the same device or not.
// - A sticky status (status::sticky) means the CUDA context of that device is corrupted
//   (illegal address, launch failure, ECC error, assert, no driver, ...): every later call on
//   that device fails too. The caller must fail the affected requests and take the replica
//   down; freeing its objects afterwards is still safe. A non-sticky error (out of memory, an
//   unsupported shape, a bad argument) leaves the device usable.
#pragma once

#include "kernels/cuda/argmax.hpp"
#include "kernels/cuda/elementwise.hpp"
#include "kernels/cuda/fused_mlp.hpp"
#include "kernels/cuda/linear.hpp"
#include "kernels/cuda/runtime.hpp"
#include "kernels/cuda/softmax.hpp"
