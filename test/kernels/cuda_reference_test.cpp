// The CPU references of the CUDA ops (kernels/cuda/reference.hpp) against independent code, so
// that the GPU tests compare with something right. These run without a device:
// - reference::linear (fp32) vs kernels/cpu gemm_bias_act (OpenBLAS) with every activation;
// - reference::softmax vs kernels/cpu softmax / log_softmax;
// - reference::quantize(fp16) vs the compiler's _Float16 conversion (IEEE round to nearest
//   even), and tf32/bf16 against hand-worked values;
// - reference::binary / unary vs kernels/cpu binary / activate; argmax on hand-made rows.
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include <doctest/doctest.h>

#include "kernels/cpu/elementwise.hpp"
#include "kernels/cpu/gemm.hpp"
#include "kernels/cpu/softmax.hpp"
#include "kernels/cuda/reference.hpp"
#include "test/kernels/cuda_test_support.hpp"

namespace {

using namespace cuda_test;
namespace reference = serve::kernels::cuda::reference;
namespace cpu = serve::kernels::cpu;
using cuda::activation;
using cuda::precision;

cpu::activation cpu_activation(activation act) {
  switch (act) {
  case activation::none:
    return cpu::activation::none;
  case activation::relu:
    return cpu::activation::relu;
  case activation::gelu:
    return cpu::activation::gelu;
  case activation::sigmoid:
    return cpu::activation::sigmoid;
  case activation::tanh:
    return cpu::activation::tanh;
  }
  return cpu::activation::none;
}

float from_bits(uint32_t bits) {
  float v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

} // namespace

TEST_CASE("reference::linear agrees with the OpenBLAS gemm_bias_act for every activation") {
  struct shape {
    int rows, K, N;
  };
  for (shape sh : {shape{1, 1, 1}, shape{3, 17, 33}, shape{17, 100, 10}, shape{64, 257, 130}}) {
    const auto x = random_floats(static_cast<size_t>(sh.rows) * sh.K, 1);
    const auto w = random_floats(static_cast<size_t>(sh.K) * sh.N, 2);
    const auto bias = random_floats(sh.N, 3);
    for (activation act : {activation::none, activation::relu, activation::gelu,
                           activation::sigmoid, activation::tanh}) {
      CAPTURE(sh.rows);
      CAPTURE(sh.K);
      CAPTURE(sh.N);
      INFO("activation " << cuda::to_string(act));
      std::vector<float> want(static_cast<size_t>(sh.rows) * sh.N), got(want.size());
      std::vector<double> magnitude(want.size());
      cpu::gemm_bias_act(false, false, sh.rows, sh.N, sh.K, 1.0f, x.data(), w.data(), 1.0f,
                         bias.data(), cpu::bias_kind::row, want.data(), cpu_activation(act));
      reference::linear(x.data(), w.data(), bias.data(), sh.rows, sh.K, sh.N, act, precision::fp32,
                        got.data(), magnitude.data());
      size_t bad = 0;
      for (size_t i = 0; i < want.size(); ++i)
        bad += !(std::fabs(got[i] - want[i]) <= 1e-5 * (magnitude[i] + 1));
      CHECK(bad == 0);
    }
  }
}

TEST_CASE("reference::softmax agrees with the CPU softmax and log_softmax kernels") {
  const int rows = 7, cols = 301;
  const auto x = random_floats(rows * cols, 4, -30.0f, 30.0f);
  std::vector<float> want(x.size()), got(x.size());
  cpu::softmax(x.data(), want.data(), rows, cols, 1);
  reference::softmax(x.data(), got.data(), rows, cols, false);
  for (size_t i = 0; i < x.size(); ++i)
    REQUIRE(std::fabs(got[i] - want[i]) <= 1e-6 * std::fabs(want[i]) + 1e-9);
  cpu::log_softmax(x.data(), want.data(), rows, cols, 1);
  reference::softmax(x.data(), got.data(), rows, cols, true);
  for (size_t i = 0; i < x.size(); ++i)
    REQUIRE(std::fabs(got[i] - want[i]) <= 1e-5 * (1 + std::fabs(want[i])));
}

TEST_CASE("reference::quantize rounds to fp16 exactly as an IEEE half conversion does") {
  std::vector<float> values = {
      0.0f,    -0.0f, 1.0f,     65504.0f, 65519.0f,        65520.0f,
      1e-8f,   3e-8f, 5.96e-8f, 6.1e-5f,  1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f,
      -2.5e-5f};
  for (float scale : {1e-7f, 1e-4f, 1.0f, 1e3f, 7e4f})
    for (float v : random_floats(20000, 8, -scale, scale))
      values.push_back(v);
  for (float v : values) {
    CAPTURE(v);
    const float want = static_cast<float>(static_cast<_Float16>(v));
    const float got = reference::quantize(v, precision::fp16);
    REQUIRE(std::memcmp(&got, &want, sizeof got) == 0);
  }
}

TEST_CASE("reference::quantize rounds tf32 to nearest-away and bf16 to nearest-even") {
  // tf32 keeps 10 mantissa bits (the low 13 of fp32 are dropped).
  CHECK(reference::quantize(from_bits(0x3f800fffu), precision::tf32) == 1.0f); // below half
  CHECK(reference::quantize(from_bits(0x3f801000u), precision::tf32) ==
        from_bits(0x3f802000u)); // tie: away
  CHECK(reference::quantize(from_bits(0xbf801000u), precision::tf32) == from_bits(0xbf802000u));
  // bf16 keeps 7 mantissa bits (the low 16 are dropped); ties go to the even neighbour.
  CHECK(reference::quantize(from_bits(0x3f808000u), precision::bf16) == 1.0f); // tie -> even
  CHECK(reference::quantize(from_bits(0x3f818000u), precision::bf16) ==
        from_bits(0x3f820000u)); // tie -> even (up)
  CHECK(reference::quantize(from_bits(0x3f808001u), precision::bf16) == from_bits(0x3f810000u));
  CHECK(reference::quantize(1.5f, precision::fp32) == 1.5f);
  CHECK(std::isinf(reference::quantize(std::numeric_limits<float>::infinity(), precision::bf16)));
  CHECK(std::isnan(reference::quantize(std::numeric_limits<float>::quiet_NaN(), precision::tf32)));
  for (float v : random_floats(1000, 9, -100.0f, 100.0f))
    for (precision p : {precision::tf32, precision::fp16, precision::bf16}) {
      const float q = reference::quantize(v, p);
      CHECK(reference::quantize(q, p) == q); // idempotent
      const double u = p == precision::bf16 ? 0x1p-8 : 0x1p-11;
      CHECK(std::fabs(q - v) <= u * std::fabs(v));
    }
}

TEST_CASE("reference::binary and reference::unary agree with the CPU elementwise kernels") {
  const int64_t rows = 5, cols = 7;
  const auto a = random_floats(rows * cols, 10);
  const auto b = random_floats(rows * cols, 11, 0.5f, 2.0f);
  const std::pair<cuda::broadcast, std::vector<int64_t>> cases[] = {
      {cuda::broadcast::full, {rows, cols}},
      {cuda::broadcast::row, {cols}},
      {cuda::broadcast::column, {rows, 1}},
      {cuda::broadcast::scalar, {1}}};
  const std::pair<cuda::binary_op, cpu::binary_op> ops[] = {
      {cuda::binary_op::add, cpu::binary_op::add},
      {cuda::binary_op::sub, cpu::binary_op::sub},
      {cuda::binary_op::mul, cpu::binary_op::mul},
      {cuda::binary_op::div, cpu::binary_op::div}};
  for (const auto& [how, b_shape] : cases)
    for (const auto& [op, cpu_op] : ops) {
      std::vector<float> want(a.size()), got(a.size());
      cpu::binary(cpu_op, a.data(), {rows, cols}, b.data(), b_shape, want.data());
      reference::binary(op, a.data(), b.data(), how, got.data(), rows, cols);
      CHECK(got == want);
    }
  const auto x = random_floats(1000, 12, -8.0f, 8.0f);
  for (activation act : {activation::none, activation::relu, activation::gelu, activation::sigmoid,
                         activation::tanh}) {
    std::vector<float> want(x.size()), got(x.size());
    cpu::activate(cpu_activation(act), x.data(), want.data(), x.size());
    reference::unary(act, x.data(), got.data(), x.size());
    for (size_t i = 0; i < x.size(); ++i)
      REQUIRE(std::fabs(got[i] - want[i]) <= 2e-6 * (1 + std::fabs(want[i])));
  }
}

TEST_CASE("reference::argmax returns the first maximum and skips NaN after column 0") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> x = {1,   3,   3,  2, // first of two maxima
                                nan, 5,   6,  7, // NaN in column 0 wins, as the CPU executor does
                                0,   nan, -1, 0, // later NaN skipped; tie at 0 -> 0
                                -1,  -1,  -1, 4};
  std::vector<int64_t> y(4);
  reference::argmax(x.data(), y.data(), 4, 4);
  CHECK(y == std::vector<int64_t>{1, 0, 0, 3});
}
