// softmax_forward, argmax_forward and the elementwise ops against their CPU references.
// Tolerances: softmax |err| <= 1e-5 |y| + 1e-7 (fp32 expf and one division, a few ulp);
// log-softmax |err| <= 1e-5 (1 + |y|); argmax and binary arithmetic exact (one correctly
// rounded fp32 operation, or a comparison); unary activations 1e-6 (1 + |y|) (fp32 libdevice
// functions, within 2 ulp, plus gelu's cancellation near 0 for large negative x).
#include <cmath>
#include <limits>
#include <vector>

#include <doctest/doctest.h>

#include "kernels/cuda/reference.hpp"
#include "test/kernels/cuda_test_support.hpp"

namespace {

using namespace cuda_test;
namespace reference = serve::kernels::cuda::reference;

void check_softmax(int rows, int cols, bool log_softmax, bool in_place, const cuda::stream& s) {
  CAPTURE(rows);
  CAPTURE(cols);
  CAPTURE(log_softmax);
  CAPTURE(in_place);
  auto x = random_floats(static_cast<size_t>(rows) * cols, 5 + rows + cols, -20.0f, 20.0f);
  x[0] = 1000.0f; // a large value: only max subtraction keeps exp finite
  const size_t n = x.size();
  auto x_dev = upload(x, s);
  auto y_dev = in_place ? cuda::device_buffer() : device_array<float>(n, s);
  float* y_ptr = static_cast<float*>(in_place ? x_dev.data() : y_dev.data());
  REQUIRE_CUDA_OK(cuda::softmax_forward(static_cast<const float*>(x_dev.data()), y_ptr, rows, cols,
                                        log_softmax, s));
  const auto got = download<float>(in_place ? x_dev : y_dev, n, s);
  std::vector<float> want(n);
  reference::softmax(x.data(), want.data(), rows, cols, log_softmax);
  size_t bad = 0, first_bad = 0;
  for (size_t i = 0; i < n; ++i) {
    const double bound =
        log_softmax ? 1e-5 * (1 + std::fabs(want[i])) : 1e-5 * std::fabs(want[i]) + 1e-7;
    if (!(std::fabs(static_cast<double>(got[i]) - want[i]) <= bound) && bad++ == 0)
      first_bad = i;
  }
  INFO("first bad " << first_bad << ": got " << got[first_bad] << ", want " << want[first_bad]);
  CHECK(bad == 0);
}

} // namespace

TEST_CASE("softmax_forward and log-softmax match the reference, in place or not") {
  if (!have_device())
    return;
  cuda::stream s;
  REQUIRE_CUDA_OK(cuda::stream::create(0, s));
  for (int rows : {1, 3, 17, 1000})
    for (int cols : {1, 10, 33, 1000, 5000})
      for (bool log_softmax : {false, true})
        check_softmax(rows, cols, log_softmax, rows == 17, s);
}

TEST_CASE("argmax_forward returns the first maximum and treats NaN as the CPU executor does") {
  if (!have_device())
    return;
  cuda::stream s;
  REQUIRE_CUDA_OK(cuda::stream::create(0, s));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int cols : {1, 5, 33, 1000}) {
    for (int rows : {1, 3, 17, 1000}) {
      CAPTURE(rows);
      CAPTURE(cols);
      // Small integers: many ties, so "first maximum" is exercised in every row.
      auto x = random_floats(static_cast<size_t>(rows) * cols, 9 + cols);
      for (auto& v : x)
        v = std::floor(v * 4);
      if (rows >= 3 && cols >= 5) {
        x[0] = nan;                    // row 0: NaN in column 0 -> 0
        x[cols + 3] = nan;             // row 1: a later NaN is skipped
        for (int c = 0; c < cols; ++c) // row 2: all equal -> 0
          x[2 * cols + c] = -std::numeric_limits<float>::infinity();
      }
      auto x_dev = upload(x, s);
      auto y_dev = device_array<int64_t>(rows, s);
      REQUIRE_CUDA_OK(cuda::argmax_forward(static_cast<const float*>(x_dev.data()),
                                           static_cast<int64_t*>(y_dev.data()), rows, cols, s));
      const auto got = download<int64_t>(y_dev, rows, s);
      std::vector<int64_t> want(rows);
      reference::argmax(x.data(), want.data(), rows, cols);
      CHECK(got == want);
    }
  }
}

TEST_CASE("elementwise_binary matches the reference for every op and broadcast") {
  if (!have_device())
    return;
  cuda::stream s;
  REQUIRE_CUDA_OK(cuda::stream::create(0, s));
  const int rows = 37, cols = 129;
  const auto a = random_floats(rows * cols, 1);
  const auto b = random_floats(rows * cols, 2, 0.5f, 2.0f); // no division by ~0
  auto a_dev = upload(a, s);
  auto b_dev = upload(b, s);
  auto y_dev = device_array<float>(rows * cols, s);
  for (auto op :
       {cuda::binary_op::add, cuda::binary_op::sub, cuda::binary_op::mul, cuda::binary_op::div})
    for (auto how : {cuda::broadcast::full, cuda::broadcast::row, cuda::broadcast::column,
                     cuda::broadcast::scalar}) {
      INFO("op " << int(op) << ", broadcast " << int(how));
      REQUIRE_CUDA_OK(cuda::elementwise_binary(op, static_cast<const float*>(a_dev.data()),
                                               static_cast<const float*>(b_dev.data()), how,
                                               static_cast<float*>(y_dev.data()), rows, cols, s));
      const auto got = download<float>(y_dev, rows * cols, s);
      std::vector<float> want(rows * cols);
      reference::binary(op, a.data(), b.data(), how, want.data(), rows, cols);
      CHECK(got == want);
    }
}

TEST_CASE("elementwise_unary matches the reference for every activation") {
  if (!have_device())
    return;
  cuda::stream s;
  REQUIRE_CUDA_OK(cuda::stream::create(0, s));
  const auto x = random_floats(100003, 4, -12.0f, 12.0f);
  auto x_dev = upload(x, s);
  auto y_dev = device_array<float>(x.size(), s);
  for (auto act : {cuda::activation::none, cuda::activation::relu, cuda::activation::gelu,
                   cuda::activation::sigmoid, cuda::activation::tanh}) {
    INFO("activation " << cuda::to_string(act));
    REQUIRE_CUDA_OK(cuda::elementwise_unary(act, static_cast<const float*>(x_dev.data()),
                                            static_cast<float*>(y_dev.data()), x.size(), s));
    const auto got = download<float>(y_dev, x.size(), s);
    std::vector<float> want(x.size());
    reference::unary(act, x.data(), want.data(), x.size());
    size_t bad = 0;
    for (size_t i = 0; i < x.size(); ++i)
      bad += !(std::fabs(static_cast<double>(got[i]) - want[i]) <= 1e-6 * (1 + std::fabs(want[i])));
    CHECK(bad == 0);
  }
}
