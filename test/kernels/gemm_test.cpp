// gemm_bias_act and gemm_strided_batched against naive triple loops in double precision.
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include <doctest/doctest.h>

#include "kernels/cpu/gemm.hpp"

namespace {

using serve::kernels::cpu::activation;
using serve::kernels::cpu::bias_kind;

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
  std::vector<float> v(n);
  for (auto& x : v)
    x = dist(rng);
  return v;
}

double reference_activation(activation act, double v, double alpha) {
  switch (act) {
  case activation::none:
    return v;
  case activation::relu:
    return v < 0 ? 0 : v;
  case activation::leaky_relu:
    return v < 0 ? alpha * v : v;
  case activation::sigmoid:
    return 1 / (1 + std::exp(-v));
  case activation::tanh:
    return std::tanh(v);
  case activation::gelu:
    return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
  }
  return v;
}

struct gemm_case {
  bool ta, tb;
  int64_t M, N, K;
  float alpha, beta;
  bias_kind bias;
  activation act;
  /// > 0: B goes through pack_b_panels with this width and gemm_bias_act_panels (needs !ta).
  int64_t panel_width = 0;
};

// Runs the kernel and the reference; checks |y - ref| <= 1e-5 * (sum of |terms| + 1).
void check_gemm(const gemm_case& c) {
  const auto A = random_floats(c.M * c.K, 1);
  const auto B = random_floats(c.K * c.N, 2);
  const auto C = random_floats(c.M * c.N, 3); // long enough for every bias kind
  const float act_alpha = 0.2f;
  std::vector<float> Y(c.M * c.N, -777.0f);
  if (c.panel_width > 0) {
    REQUIRE_FALSE(c.ta);
    std::vector<float> panels(B.size(), 0.0f);
    serve::kernels::cpu::pack_b_panels(c.tb, c.K, c.N, B.data(), c.panel_width, panels.data());
    serve::kernels::cpu::gemm_bias_act_panels(c.M, c.N, c.K, c.alpha, A.data(), panels.data(),
                                              c.panel_width, c.beta, C.data(), c.bias, Y.data(),
                                              c.act, act_alpha);
  } else {
    serve::kernels::cpu::gemm_bias_act(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), B.data(),
                                       c.beta, C.data(), c.bias, Y.data(), c.act, act_alpha);
  }
  for (int64_t i = 0; i < c.M; ++i)
    for (int64_t j = 0; j < c.N; ++j) {
      double sum = 0, magnitude = 0;
      for (int64_t k = 0; k < c.K; ++k) {
        double a = c.ta ? A[k * c.M + i] : A[i * c.K + k];
        double b = c.tb ? B[j * c.K + k] : B[k * c.N + j];
        sum += a * b;
        magnitude += std::fabs(a * b);
      }
      double bias = 0;
      switch (c.bias) {
      case bias_kind::none:
        break;
      case bias_kind::scalar:
        bias = C[0];
        break;
      case bias_kind::row:
        bias = C[j];
        break;
      case bias_kind::column:
        bias = C[i];
        break;
      case bias_kind::full:
        bias = C[i * c.N + j];
        break;
      }
      const double expected = reference_activation(c.act, c.alpha * sum + c.beta * bias, act_alpha);
      const double tolerance = 1e-5 * (std::fabs(c.alpha) * magnitude + std::fabs(bias) + 1);
      if (std::fabs(Y[i * c.N + j] - expected) > tolerance) {
        INFO("ta=" << c.ta << " tb=" << c.tb << " panels=" << c.panel_width << " M=" << c.M
                   << " N=" << c.N << " K=" << c.K << " bias=" << int(c.bias)
                   << " act=" << int(c.act) << " at " << i << "," << j);
        CHECK(Y[i * c.N + j] == doctest::Approx(expected).epsilon(1e-5));
        return; // one report per case is enough
      }
    }
}

const int64_t shapes[][3] = {{1, 1, 1},  {7, 13, 5},  {64, 33, 17}, {1, 40, 9},
                             {9, 1, 40}, {3, 5, 300}, {130, 70, 3}};

} // namespace

TEST_CASE("gemm matches the reference for every transpose combination and shape") {
  for (auto& s : shapes)
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        check_gemm({ta, tb, s[0], s[1], s[2], 1.0f, 1.0f, bias_kind::none, activation::none});
}

TEST_CASE("few-row products issued as column blocks (OpenBLAS small-matrix path) stay exact") {
  // 8 x 784 x 520: split into blocks of 144 columns with a narrower last one; 64 rows: not split.
  for (int64_t M : {int64_t{8}, int64_t{20}, int64_t{64}})
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        check_gemm({ta, tb, M, 520, 784, 1.0f, 1.0f, bias_kind::row, activation::relu});
}

TEST_CASE("gemm adds every kind of bias scaled by beta, with alpha applied to the product") {
  for (auto& s : shapes)
    for (auto bias : {bias_kind::scalar, bias_kind::row, bias_kind::column, bias_kind::full})
      for (bool tb : {false, true})
        check_gemm({false, tb, s[0], s[1], s[2], 0.5f, -1.5f, bias, activation::none});
}

TEST_CASE("gemm applies each activation after the bias in the epilogue") {
  for (auto& s : shapes)
    for (auto act : {activation::relu, activation::leaky_relu, activation::sigmoid,
                     activation::tanh, activation::gelu})
      for (auto bias : {bias_kind::none, bias_kind::row, bias_kind::full})
        check_gemm({true, false, s[0], s[1], s[2], 1.0f, 1.0f, bias, act});
}

TEST_CASE("gemm with K = 0 yields the activated bias and M = 0 writes nothing") {
  std::vector<float> C = {1.0f, -2.0f, 3.0f};
  std::vector<float> Y(6, 42.0f);
  serve::kernels::cpu::gemm_bias_act(false, false, 2, 3, 0, 1.0f, nullptr, nullptr, 2.0f, C.data(),
                                     bias_kind::row, Y.data(), activation::relu);
  CHECK(Y == std::vector<float>{2, 0, 6, 2, 0, 6});
  std::vector<float> untouched(3, 5.0f);
  serve::kernels::cpu::gemm_bias_act(false, false, 0, 3, 4, 1.0f, nullptr, nullptr, 1.0f, nullptr,
                                     bias_kind::none, untouched.data());
  CHECK(untouched == std::vector<float>{5, 5, 5});
}

TEST_CASE("gemm in double precision matches the reference") {
  const int64_t M = 5, N = 7, K = 11;
  std::vector<double> A(M * K), B(K * N), C(N), Y(M * N);
  for (size_t i = 0; i < A.size(); ++i)
    A[i] = std::sin(double(i));
  for (size_t i = 0; i < B.size(); ++i)
    B[i] = std::cos(double(i));
  for (size_t i = 0; i < C.size(); ++i)
    C[i] = double(i) - 3;
  serve::kernels::cpu::gemm_bias_act(false, false, M, N, K, 1.0, A.data(), B.data(), 1.0, C.data(),
                                     bias_kind::row, Y.data(), activation::tanh);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double sum = C[j];
      for (int64_t k = 0; k < K; ++k)
        sum += A[i * K + k] * B[k * N + j];
      CHECK(Y[i * N + j] == doctest::Approx(std::tanh(sum)).epsilon(1e-12));
    }
}

TEST_CASE("strided batched gemm repeats an operand with stride 0 and folds a shared B") {
  const int64_t batch = 3, M = 4, N = 5, K = 6;
  const auto A = random_floats(batch * M * K, 4);
  const auto B = random_floats(batch * K * N, 5);
  for (int64_t stride_b : {int64_t(0), K * N})
    for (int64_t stride_a : {int64_t(0), M * K}) {
      std::vector<float> Y(batch * M * N);
      serve::kernels::cpu::gemm_strided_batched(false, false, M, N, K, 2.0f, A.data(), stride_a,
                                                B.data(), stride_b, Y.data(), M * N, batch);
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = 0; j < N; ++j) {
            double sum = 0;
            for (int64_t k = 0; k < K; ++k)
              sum += double(A[b * stride_a + i * K + k]) * B[b * stride_b + k * N + j];
            CHECK(Y[b * M * N + i * N + j] == doctest::Approx(2 * sum).epsilon(1e-5));
          }
    }
}

TEST_CASE("panel widths keep blocks of 16 rows on OpenBLAS's direct kernels") {
  using serve::kernels::cpu::gemm_panel_width;
  CHECK(gemm_panel_width(784, 512) == 64); // 16 x 64 x 784 <= 100^3 < 16 x 128 x 784
  CHECK(gemm_panel_width(512, 512) == 64);
  CHECK(gemm_panel_width(100, 1000) == 512);
  CHECK(gemm_panel_width(784, 64) == 0); // one panel: the plain layout already is one
  CHECK(gemm_panel_width(784, 10) == 0);
  CHECK(gemm_panel_width(4000, 512) == 0); // even 32 columns would leave the direct kernels
  CHECK(gemm_panel_width(0, 512) == 0);
}

TEST_CASE("pack_b_panels puts each element where panel_offset says, from B or B transposed") {
  const int64_t K = 7, N = 100, width = 32; // panels of 32, 32, 32 and 4 columns
  const auto B = random_floats(K * N, 6);
  for (bool tb : {false, true}) {
    std::vector<float> packed(B.size(), 0.0f);
    serve::kernels::cpu::pack_b_panels(tb, K, N, B.data(), width, packed.data());
    std::vector<bool> written(B.size(), false);
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < N; ++j) {
        const int64_t at = serve::kernels::cpu::panel_offset(K, N, width, k, j);
        REQUIRE(at >= 0);
        REQUIRE(at < K * N);
        CHECK_FALSE(written[at]);
        written[at] = true;
        CHECK(packed[at] == (tb ? B[j * K + k] : B[k * N + j]));
      }
  }
  CHECK(serve::kernels::cpu::panel_offset(K, N, width, 1, 97) == 96 * K + 1 * 4 + 1);
}

TEST_CASE("gemm over packed panels matches the reference at every row count, bias and activation") {
  // 784 x 100 in panels of 64 and 36 columns; 1 row goes to GEMV; 16-row blocks with a tail.
  for (int64_t M : {1, 2, 15, 16, 17, 40, 128})
    for (bool tb : {false, true})
      check_gemm({false, tb, M, 100, 784, 1.0f, 1.0f, bias_kind::row, activation::relu, 64});
  for (auto bias :
       {bias_kind::none, bias_kind::scalar, bias_kind::row, bias_kind::column, bias_kind::full})
    for (auto act : {activation::none, activation::leaky_relu, activation::tanh})
      check_gemm({false, false, 33, 130, 9, 0.5f, -1.5f, bias, act, 32});
}

TEST_CASE("gemm over packed panels with K = 0 or alpha = 0 yields the activated bias") {
  std::vector<float> C = {1.0f, -2.0f, 3.0f};
  std::vector<float> Y(6, 42.0f);
  serve::kernels::cpu::gemm_bias_act_panels(2, 3, 0, 1.0f, nullptr, nullptr, 2, 2.0f, C.data(),
                                            bias_kind::row, Y.data(), activation::relu);
  CHECK(Y == std::vector<float>{2, 0, 6, 2, 0, 6});
}
