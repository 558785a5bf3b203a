// CUDA runtime query behind kernels/cuda/device_query.hpp. No CAF header may be included here.
#include "kernels/cuda/device_query.hpp"

#include <cuda_runtime.h>

namespace serve::kernels::cuda {

device_query_result query_devices() {
  device_query_result result;
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    // Without a driver the runtime loads and reports cudaErrorInsufficientDriver (35) or
    // cudaErrorNoDevice / stub-driver errors (34, 100): all mean "use the CPU".
    result.reason = std::string("no usable CUDA driver or device: ") + cudaGetErrorString(status);
    cudaGetLastError(); // clear the error so later calls start clean
    return result;
  }
  if (count == 0) {
    result.reason = "no CUDA device";
    return result;
  }
  result.device_count = count;
  cudaDeviceProp props{};
  if (cudaGetDeviceProperties(&props, 0) == cudaSuccess)
    result.first_device_name = props.name;
  return result;
}

} // namespace serve::kernels::cuda
