// linear_forward (fused GEMM + bias + activation) against reference::linear, every precision and
// activation, over shapes that hit every kernel (split-K for rows <= 32, 64x64 and 128x128
// tiles, the fp32 tile) and their edges (rows 1, 3, 17, 33, 1000; K and N not multiples of 16).
//
// Two checks per output, per precision:
// 1. Against the reference on the same quantized operands (reference::quantize): the GPU may
//    differ only by fp32 accumulation, |err| <= 1.2 * 2 (K + 2) 2^-24 * sum|x w| + 8 * 2^-24 |y|
//    + 1e-6 (any summation order; the factor 2 allows tensor cores that truncate; 1.2 covers
//    gelu's slope; the last terms cover fp32 expf/erff/tanhf). A dropped, doubled or misplaced
//    term is far above this bound.
// 2. Against the exact fp32 product, relative Frobenius error: fp32 1e-5, tf32 5e-3, fp16 1e-2,
//    bf16 3e-2. Operand rounding is u = 2^-11 for tf32 and fp16 and 2^-8 for bf16, so a
//    product is off by <= 2u and random-signed sums by about u: the limits leave ~10x margin.
#include <cmath>
#include <vector>

#include <doctest/doctest.h>

#include "kernels/cuda/reference.hpp"
#include "test/kernels/cuda_test_support.hpp"

namespace {

using namespace cuda_test;
using cuda::activation;
using cuda::precision;
namespace reference = serve::kernels::cuda::reference;

constexpr activation all_activations[] = {activation::none, activation::relu, activation::gelu,
                                          activation::sigmoid, activation::tanh};
constexpr precision all_precisions[] = {precision::fp32, precision::tf32, precision::fp16,
                                        precision::bf16};

double relative_limit(precision prec) {
  switch (prec) {
  case precision::fp32:
    return 1e-5;
  case precision::tf32:
    return 5e-3;
  case precision::fp16:
    return 1e-2;
  case precision::bf16:
    return 3e-2;
  }
  return 0;
}

struct shape {
  int rows, K, N;
};

// Weights ~ U(-1/sqrt(K), 1/sqrt(K)) as PyTorch initialises them: pre-activations stay O(1).
void check_shape(const shape& sh, const cuda::stream& s) {
  const auto x = random_floats(static_cast<size_t>(sh.rows) * sh.K, 11 + sh.rows);
  const float scale = 1.0f / std::sqrt(static_cast<float>(sh.K));
  const auto w = random_floats(static_cast<size_t>(sh.K) * sh.N, 12 + sh.K, -scale, scale);
  const auto bias = random_floats(sh.N, 13 + sh.N, -0.5f, 0.5f);
  const size_t outputs = static_cast<size_t>(sh.rows) * sh.N;
  auto x_dev = upload(x, s);
  auto y_dev = device_array<float>(outputs, s);

  std::vector<float> exact(outputs), quantized(outputs), got;
  std::vector<double> magnitude(outputs);
  for (precision prec : all_precisions) {
    for (activation act : all_activations) {
      CAPTURE(sh.rows);
      CAPTURE(sh.K);
      CAPTURE(sh.N);
      INFO("precision " << cuda::to_string(prec) << ", activation " << cuda::to_string(act));
      reference::linear(x.data(), w.data(), bias.data(), sh.rows, sh.K, sh.N, act, precision::fp32,
                        exact.data());
      reference::linear(x.data(), w.data(), bias.data(), sh.rows, sh.K, sh.N, act, prec,
                        quantized.data(), magnitude.data());
      cuda::linear_weights layer;
      REQUIRE_CUDA_OK(cuda::prepare_linear(w.data(), bias.data(), sh.K, sh.N, act, prec, s, layer));
      REQUIRE_CUDA_OK(cuda::linear_forward(static_cast<const float*>(x_dev.data()), layer,
                                           static_cast<float*>(y_dev.data()), sh.rows, s));
      got = download<float>(y_dev, outputs, s);

      size_t bad = 0, first_bad = 0;
      for (size_t i = 0; i < outputs; ++i) {
        const double bound = 1.2 * 2.0 * (sh.K + 2) * 0x1p-24 * magnitude[i] +
                             8 * 0x1p-24 * std::fabs(quantized[i]) + 1e-6;
        if (!(std::fabs(static_cast<double>(got[i]) - quantized[i]) <= bound) && bad++ == 0)
          first_bad = i;
      }
      INFO("first bad output " << first_bad << " (row " << first_bad / sh.N << ", column "
                               << first_bad % sh.N << "): got " << got[first_bad] << ", want "
                               << quantized[first_bad]);
      CHECK(bad == 0);
      const double rel = relative_error(got, exact);
      INFO("relative error vs exact fp32: " << rel);
      CHECK(rel <= relative_limit(prec));
    }
  }
}

} // namespace

TEST_CASE("linear_forward matches the reference for every precision, activation and edge shape") {
  if (!have_device())
    return;
  cuda::stream s;
  REQUIRE_CUDA_OK(cuda::stream::create(0, s));
  const shape shapes[] = {
      {1, 1, 1},        {1, 5, 7},        {3, 17, 33},      {17, 100, 10}, {32, 64, 48},
      {1, 784, 512},    {17, 784, 512},   {5, 4100, 40},    // split-K: K over several 1 KB chunks
      {33, 31, 17},     {128, 784, 512},  {129, 257, 129},  // 64x64 tiles, ragged edges
      {1000, 300, 257}, {1000, 13, 1000}, {2176, 70, 1040}, // 17 x 9 = 153 tiles of 128x128: the
                                                            // big tile on A100 and H100
  };
  for (const shape& sh : shapes)
    check_shape(sh, s);
}

TEST_CASE("linear_forward leaves the rows past `rows` and the columns past N untouched") {
  if (!have_device())
    return;
  cuda::stream s;
  REQUIRE_CUDA_OK(cuda::stream::create(0, s));
  const int rows = 3, K = 20, N = 9, capacity = 40; // y has room for 40 x 9 values
  const auto x = random_floats(rows * K, 1);
  const auto w = random_floats(K * N, 2);
  auto x_dev = upload(x, s);
  for (precision prec : all_precisions) {
    INFO("precision " << cuda::to_string(prec));
    auto y_dev = upload(std::vector<float>(capacity * N, -777.0f), s);
    cuda::linear_weights layer;
    REQUIRE_CUDA_OK(
        cuda::prepare_linear(w.data(), nullptr, K, N, activation::none, prec, s, layer));
    REQUIRE_CUDA_OK(cuda::linear_forward(static_cast<const float*>(x_dev.data()), layer,
                                         static_cast<float*>(y_dev.data()), rows, s));
    const auto y = download<float>(y_dev, capacity * N, s);
    for (int i = rows * N; i < capacity * N; ++i)
      REQUIRE(y[i] == -777.0f);
  }
}

TEST_CASE("linear_forward refuses an empty stream or an unprepared layer without touching CUDA") {
  cuda::stream empty;
  cuda::linear_weights unprepared;
  float x = 0, y = 0;
  auto st = cuda::linear_forward(&x, unprepared, &y, 1, empty);
  CHECK_FALSE(st.ok());
  CHECK_FALSE(st.sticky);
  CHECK(st.code == -1);
  st = cuda::prepare_linear(nullptr, nullptr, 0, 3, activation::none, precision::tf32, empty,
                            unprepared);
  CHECK(st.code == -1);
  CHECK_FALSE(st.sticky);
}
