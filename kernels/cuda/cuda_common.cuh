// What every .cu file of kernels/cuda shares: cudaError_t -> status (with the sticky
// classification), the current-device guard, launch checking and the fused activations.
// Internal to kernels/cuda (included by .cu files only; nvcc only).
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <string>

#include "kernels/cuda/runtime.hpp"

namespace serve::kernels::cuda::detail {

/// Errors after which the CUDA context of the device is unusable: every later call fails the
/// same way, so the replica must be replaced. The list follows the CUDA runtime documentation
/// ("the process is left in an inconsistent state ... must be terminated and relaunched"),
/// plus the "no usable driver/device" errors, which no retry can fix either.
inline bool is_sticky(cudaError_t e) {
  switch (e) {
  case cudaErrorIllegalAddress:
  case cudaErrorLaunchFailure:
  case cudaErrorLaunchTimeout:
  case cudaErrorHardwareStackError:
  case cudaErrorIllegalInstruction:
  case cudaErrorMisalignedAddress:
  case cudaErrorInvalidAddressSpace:
  case cudaErrorInvalidPc:
  case cudaErrorAssert:
  case cudaErrorECCUncorrectable:
  case cudaErrorContextIsDestroyed:
  case cudaErrorCudartUnloading:
  case cudaErrorInitializationError:
  case cudaErrorInsufficientDriver:
  case cudaErrorNoDevice:
  case cudaErrorDevicesUnavailable:
  case cudaErrorUnknown:
    return true;
  default:
    return false;
  }
}

/// `what` failed with `e`, as a status ("what: cudaErrorX (message)").
inline status to_status(cudaError_t e, const char* what) {
  status s;
  if (e == cudaSuccess)
    return s;
  s.code = static_cast<int>(e);
  s.sticky = is_sticky(e);
  s.message = std::string(what) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
  return s;
}

/// A refused argument (code -1, never sticky).
inline status invalid_argument(const std::string& message) {
  status s;
  s.code = -1;
  s.message = message;
  return s;
}

/// Checks the launch just made: cudaGetLastError reports a bad configuration (non-sticky, and
/// cleared by the call) or an earlier sticky fault of the context.
inline status check_launch(const char* kernel) {
  return to_status(cudaGetLastError(), kernel);
}

/// Makes `device` current on this thread when it is not (cudaSetDevice is per thread).
inline status use_device(int device) {
  int current = -1;
  cudaError_t e = cudaGetDevice(&current);
  if (e != cudaSuccess)
    return to_status(e, "cudaGetDevice");
  if (current == device)
    return {};
  return to_status(cudaSetDevice(device), "cudaSetDevice");
}

inline cudaStream_t native(const stream& s) {
  return static_cast<cudaStream_t>(s.native());
}

/// Checks that `s` is a live stream and makes its device current.
inline status enter(const stream& s, const char* what) {
  if (!s.valid())
    return invalid_argument(std::string(what) + ": the stream is empty");
  return use_device(s.device());
}

__host__ __device__ inline unsigned ceil_div(long long a, long long b) {
  return static_cast<unsigned>((a + b - 1) / b);
}

/// The epilogue activation, in fp32 (matching kernels/cuda/reference.hpp).
__device__ __forceinline__ float apply_activation(activation act, float v) {
  switch (act) {
  case activation::none:
    return v;
  case activation::relu:
    return v < 0.0f ? 0.0f : v;
  case activation::gelu:
    return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
  case activation::sigmoid:
    return 1.0f / (1.0f + expf(-v));
  case activation::tanh:
    return tanhf(v);
  }
  return v;
}

} // namespace serve::kernels::cuda::detail
