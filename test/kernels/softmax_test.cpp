// softmax / log_softmax against a double-precision reference, on rows and on a middle axis.
#include <cmath>
#include <cstdint>
#include <vector>

#include <doctest/doctest.h>

#include "kernels/cpu/softmax.hpp"

namespace {

namespace cpu = serve::kernels::cpu;

std::vector<float> ramp(int64_t n, float scale) {
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i)
    v[i] = scale * std::sin(0.37f * float(i)) + 0.01f * float(i % 7);
  return v;
}

// Reference over the middle axis of [outer, len, inner].
std::vector<double> reference(const std::vector<float>& x, int64_t outer, int64_t len,
                              int64_t inner, bool log) {
  std::vector<double> y(x.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t d) { return o * len * inner + d * inner + i; };
      double m = x[at(0)];
      for (int64_t d = 1; d < len; ++d)
        m = std::max(m, double(x[at(d)]));
      double sum = 0;
      for (int64_t d = 0; d < len; ++d)
        sum += std::exp(x[at(d)] - m);
      for (int64_t d = 0; d < len; ++d)
        y[at(d)] = log ? x[at(d)] - m - std::log(sum) : std::exp(x[at(d)] - m) / sum;
    }
  return y;
}

void check(int64_t outer, int64_t len, int64_t inner, float scale, bool log) {
  const auto x = ramp(outer * len * inner, scale);
  std::vector<float> y(x.size()), inplace = x;
  if (log) {
    cpu::log_softmax(x.data(), y.data(), outer, len, inner);
    cpu::log_softmax(inplace.data(), inplace.data(), outer, len, inner);
  } else {
    cpu::softmax(x.data(), y.data(), outer, len, inner);
    cpu::softmax(inplace.data(), inplace.data(), outer, len, inner);
  }
  const auto expected = reference(x, outer, len, inner, log);
  for (size_t i = 0; i < y.size(); ++i) {
    INFO("outer=" << outer << " len=" << len << " inner=" << inner << " log=" << log << " at "
                  << i);
    CHECK(std::fabs(y[i] - expected[i]) <= 1e-5 * std::fabs(expected[i]) + 1e-7);
    CHECK(inplace[i] == y[i]);
  }
}

} // namespace

TEST_CASE("softmax over the last axis matches the reference for odd row lengths") {
  for (bool log : {false, true})
    for (int64_t cols : {1, 3, 8, 10, 33, 1000}) {
      check(1, cols, 1, 3.0f, log);
      check(7, cols, 1, 3.0f, log);
    }
}

TEST_CASE("softmax over a middle axis matches the reference, including wide inner blocks") {
  for (bool log : {false, true}) {
    check(3, 4, 5, 2.0f, log);
    check(2, 7, 300, 2.0f, log); // more inner columns than one block
    check(1, 1, 9, 2.0f, log);
  }
}

TEST_CASE("softmax is stable for large inputs") {
  std::vector<float> x = {1000.0f, 1001.0f, 1002.0f, 1003.0f}, y(4);
  cpu::softmax(x.data(), y.data(), 1, 4, 1);
  CHECK(y[3] == doctest::Approx(0.6439142598879722));
  CHECK(y[0] == doctest::Approx(0.03205860328008499));
  cpu::log_softmax(x.data(), y.data(), 1, 4, 1);
  CHECK(y[3] == doctest::Approx(-0.4401896985611953));
}

TEST_CASE("softmax in double precision matches the reference") {
  std::vector<double> x = {1, 2, 3, 4, 5, 6}, y(6);
  cpu::softmax(x.data(), y.data(), 2, 3, 1);
  double s = std::exp(-2.0) + std::exp(-1.0) + 1;
  CHECK(y[2] == doctest::Approx(1 / s).epsilon(1e-12));
  CHECK(y[3] == doctest::Approx(std::exp(-2.0) / s).epsilon(1e-12));
}
