// The CUDA device query: works with and without a GPU, a driver, or a CUDA build.
#include <cstdio>

#include <doctest/doctest.h>

#include "kernels/cuda/device_query.hpp"

TEST_CASE("the device query answers a count or the reason there is none") {
  auto result = serve::kernels::cuda::query_devices();
  CHECK(result.device_count >= 0);
  if (result.device_count == 0) {
    CHECK_FALSE(result.reason.empty());
    std::printf("skipped: no CUDA device (%s)\n", result.reason.c_str());
  } else {
    CHECK(result.reason.empty());
    CHECK_FALSE(result.first_device_name.empty());
  }
}
