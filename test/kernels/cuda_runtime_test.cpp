// The RAII runtime objects of kernels/cuda/runtime.hpp: streams, events, buffers, copies and
// host callbacks; and the argument checks that answer without a device.
#include <atomic>
#include <vector>

#include <doctest/doctest.h>

#include "test/kernels/cuda_test_support.hpp"

using namespace cuda_test;

TEST_CASE("empty runtime objects refuse work with a non-sticky status") {
  cuda::stream empty;
  CHECK_FALSE(empty.valid());
  CHECK(empty.native() == nullptr);
  CHECK(empty.device() == -1);
  auto st = empty.synchronize();
  CHECK(st.code == -1);
  CHECK_FALSE(st.sticky);
  float host = 0;
  st = cuda::copy_to_device_async(&host, &host, sizeof host, empty);
  CHECK(st.code == -1);
  CHECK(cuda::copy_to_device_async(&host, &host, 0, empty).ok()); // 0 bytes: nothing to do
  cuda::event e;
  CHECK(e.synchronize().code == -1);
  cuda::device_buffer buffer;
  CHECK(buffer.data() == nullptr);
  CHECK(buffer.bytes() == 0);
  CHECK(cuda::softmax_forward(&host, &host, 1, 1, false, empty).code == -1);
  CHECK(cuda::argmax_forward(&host, nullptr, 1, 0, empty).code == -1); // cols 0
  CHECK(cuda::elementwise_unary(cuda::activation::relu, &host, &host, 1, empty).code == -1);
}

TEST_CASE("data survives a round trip through pinned and device memory on a stream") {
  if (!have_device())
    return;
  cuda::stream s;
  REQUIRE_CUDA_OK(cuda::stream::create(0, s));
  CHECK(s.valid());
  CHECK(s.device() == 0);
  const size_t n = 1 << 20;
  cuda::pinned_buffer in, out;
  REQUIRE_CUDA_OK(in.allocate(n * sizeof(float)));
  REQUIRE_CUDA_OK(out.allocate(n * sizeof(float)));
  auto* src = static_cast<float*>(in.data());
  for (size_t i = 0; i < n; ++i)
    src[i] = static_cast<float>(i);
  cuda::device_buffer a, b;
  REQUIRE_CUDA_OK(a.allocate(n * sizeof(float), 0));
  REQUIRE_CUDA_OK(b.allocate(n * sizeof(float), 0));
  CHECK(reinterpret_cast<uintptr_t>(a.data()) % 256 == 0);
  cuda::event start, end;
  REQUIRE_CUDA_OK(cuda::event::create(0, start, true));
  REQUIRE_CUDA_OK(cuda::event::create(0, end, true));
  REQUIRE_CUDA_OK(start.record(s));
  REQUIRE_CUDA_OK(cuda::copy_to_device_async(a.data(), in.data(), n * sizeof(float), s));
  REQUIRE_CUDA_OK(cuda::copy_device_to_device_async(b.data(), a.data(), n * sizeof(float), s));
  REQUIRE_CUDA_OK(cuda::copy_to_host_async(out.data(), b.data(), n * sizeof(float), s));
  REQUIRE_CUDA_OK(end.record(s));
  std::atomic<int> called{0};
  REQUIRE_CUDA_OK(s.enqueue_host_callback(
      [](void* user) { static_cast<std::atomic<int>*>(user)->fetch_add(1); }, &called));
  REQUIRE_CUDA_OK(s.synchronize());
  bool done = false;
  REQUIRE_CUDA_OK(end.query(done));
  CHECK(done);
  REQUIRE_CUDA_OK(s.query(done));
  CHECK(done);
  CHECK(called.load() == 1);
  float ms = -1;
  REQUIRE_CUDA_OK(cuda::event::elapsed_ms(start, end, ms));
  CHECK(ms >= 0);
  const auto* dst = static_cast<const float*>(out.data());
  size_t bad = 0;
  for (size_t i = 0; i < n; ++i)
    bad += dst[i] != static_cast<float>(i);
  CHECK(bad == 0);

  REQUIRE_CUDA_OK(cuda::zero_async(b.data(), n * sizeof(float), s));
  const auto zeros = download<float>(b, 16, s);
  CHECK(zeros == std::vector<float>(16, 0.0f));

  cuda::device_buffer moved = std::move(a); // ownership moves; `a` is empty
  CHECK(a.data() == nullptr);
  CHECK(moved.bytes() == n * sizeof(float));
  CHECK(cuda::multiprocessor_count(0) > 0);
}
