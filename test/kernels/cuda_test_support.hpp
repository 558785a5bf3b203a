// Shared by the CUDA kernel tests (test/kernels/cuda_*_test.cpp): the device check that prints
// the skip line, random data, uploads/downloads and the error measures with their tolerances.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include <doctest/doctest.h>

#include "kernels/cuda/cuda_api.hpp"
#include "kernels/cuda/device_query.hpp"

namespace cuda_test {

namespace cuda = serve::kernels::cuda;

/// REQUIREs that a status is ok and shows its message when it is not.
#define REQUIRE_CUDA_OK(expr)                                                                      \
  do {                                                                                             \
    const ::serve::kernels::cuda::status status_ = (expr);                                         \
    INFO(#expr << ": " << status_.message);                                                        \
    REQUIRE(status_.ok());                                                                         \
  } while (false)

/// True when device 0 is usable. Otherwise prints "skipped: no CUDA device (<reason>)" and
/// returns false: call it once at the top of a GPU test and return when false (no SUBCASEs in
/// GPU tests, so the line appears once per test).
inline bool have_device() {
  const auto query = cuda::query_devices();
  if (query.device_count > 0)
    return true;
  std::printf("skipped: no CUDA device (%s)\n", query.reason.c_str());
  return false;
}

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f,
                                        float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v)
    x = dist(rng);
  return v;
}

/// A device copy of `host` on the stream's device (synchronous).
template <class T> cuda::device_buffer upload(const std::vector<T>& host, const cuda::stream& s) {
  cuda::device_buffer buffer;
  REQUIRE_CUDA_OK(buffer.allocate(std::max<size_t>(1, host.size()) * sizeof(T), s.device()));
  REQUIRE_CUDA_OK(
      cuda::copy_to_device_async(buffer.data(), host.data(), host.size() * sizeof(T), s));
  REQUIRE_CUDA_OK(s.synchronize());
  return buffer;
}

/// An uninitialised device buffer of `count` T.
template <class T> cuda::device_buffer device_array(size_t count, const cuda::stream& s) {
  cuda::device_buffer buffer;
  REQUIRE_CUDA_OK(buffer.allocate(std::max<size_t>(1, count) * sizeof(T), s.device()));
  return buffer;
}

/// `count` T copied back from the device after the stream's work has finished.
template <class T>
std::vector<T> download(const cuda::device_buffer& buffer, size_t count, const cuda::stream& s) {
  std::vector<T> host(count);
  REQUIRE_CUDA_OK(s.synchronize());
  REQUIRE_CUDA_OK(cuda::copy_to_host_async(host.data(), buffer.data(), count * sizeof(T), s));
  REQUIRE_CUDA_OK(s.synchronize());
  return host;
}

/// ||got - want|| / ||want|| (Frobenius), 0 when both are 0.
inline double relative_error(const std::vector<float>& got, const std::vector<float>& want) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    diff += (static_cast<double>(got[i]) - want[i]) * (static_cast<double>(got[i]) - want[i]);
    norm += static_cast<double>(want[i]) * want[i];
  }
  return norm == 0 ? std::sqrt(diff) : std::sqrt(diff / norm);
}

} // namespace cuda_test
