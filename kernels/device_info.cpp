// Fallback for builds without nvcc: the same API, always "built without CUDA".
#include "kernels/cuda/device_query.hpp"

#ifndef ACTORSERVE_WITH_CUDA
namespace serve::kernels::cuda {

device_query_result query_devices() {
  device_query_result result;
  result.reason = "built without CUDA (nvcc was not found at configure time)";
  return result;
}

} // namespace serve::kernels::cuda
#endif
