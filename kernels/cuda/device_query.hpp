// Which CUDA devices this process can use, and why not when it cannot.
//
// Plain C++ API over the CUDA runtime so that no CUDA header reaches the rest of the code and
// no CAF header reaches nvcc. Thread-safe (the CUDA runtime call is thread-safe).
#pragma once

#include <string>

namespace serve::kernels::cuda {

/// Result of asking the CUDA runtime for devices.
struct device_query_result {
  /// Usable devices; 0 when there is no driver, no device or no CUDA build.
  int device_count = 0;
  /// Why device_count is 0 ("no CUDA driver", "built without CUDA", ...); empty otherwise.
  std::string reason;
  /// Name of device 0 when device_count > 0.
  std::string first_device_name;
};

/// Asks the CUDA runtime how many devices it sees. Never throws.
device_query_result query_devices();

} // namespace serve::kernels::cuda
