// Elementwise kernels against scalar reference loops: activations, clip, scale_shift,
// exp_sum and broadcasting binary ops for every element type.
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

#include <doctest/doctest.h>

#include "kernels/cpu/elementwise.hpp"

namespace {

namespace cpu = serve::kernels::cpu;
using cpu::activation;
using cpu::binary_op;
using shape = std::vector<int64_t>;

// Values from -12 to 12 plus the edges the approximations clamp at, 37 of them (not a multiple
// of the vector width, so the tail path runs too).
std::vector<float> sample_inputs() {
  std::vector<float> v;
  for (int i = 0; i < 31; ++i)
    v.push_back(-12.0f + 0.8f * i);
  for (float x : {0.0f, -0.0f, 1e-6f, -3e-5f, 95.0f, -95.0f})
    v.push_back(x);
  return v;
}

// Index of element `flat` of `out` in an operand of shape `in` broadcast to it (numpy rules).
int64_t broadcast_index(const shape& out, const shape& in, int64_t flat) {
  int64_t index = 0, stride = 1;
  for (int64_t d = int64_t(out.size()) - 1; d >= 0; --d) {
    int64_t coord = flat % out[d];
    flat /= out[d];
    int64_t in_d = d - int64_t(out.size() - in.size());
    if (in_d >= 0) {
      if (in[in_d] != 1)
        index += coord * stride;
      stride *= in[in_d];
    }
  }
  return index;
}

template <class T> T reference_binary(binary_op op, T a, T b) {
  switch (op) {
  case binary_op::add:
    return T(a + b);
  case binary_op::sub:
    return T(a - b);
  case binary_op::mul:
    return T(a * b);
  case binary_op::div:
    return T(a / b);
  }
  return 0;
}

// Runs binary() for a pair of shapes and compares with the index-by-index reference.
template <class T> void check_binary(binary_op op, const shape& sa, const shape& sb) {
  shape out;
  REQUIRE(cpu::broadcast_shapes(sa, sb, out));
  int64_t na = 1, nb = 1, ny = 1;
  for (auto d : sa)
    na *= d;
  for (auto d : sb)
    nb *= d;
  for (auto d : out)
    ny *= d;
  std::vector<T> a(na), b(nb), y(ny);
  for (int64_t i = 0; i < na; ++i)
    a[i] = T((i * 7) % 23 + 1);
  for (int64_t i = 0; i < nb; ++i)
    b[i] = T((i * 5) % 11 + 1); // never 0: integer division is tested too
  cpu::binary(op, a.data(), sa, b.data(), sb, y.data());
  for (int64_t i = 0; i < ny; ++i) {
    T expected =
        reference_binary(op, a[broadcast_index(out, sa, i)], b[broadcast_index(out, sb, i)]);
    if (y[i] != expected) {
      INFO("op " << int(op) << " at " << i);
      CHECK(y[i] == expected);
      return;
    }
  }
}

const std::pair<shape, shape> broadcast_cases[] = {
    {{3, 4, 5}, {3, 4, 5}}, // equal shapes
    {{3, 4, 5}, {}},        // scalar right
    {{}, {3, 4, 5}},        // scalar left
    {{3, 4, 5}, {5}},       // trailing vector (the bias case)
    {{7, 33}, {1, 33}},
    {{3, 4, 5}, {4, 1}},
    {{4, 1}, {3, 1, 6}},
    {{2, 1, 3, 1}, {1, 4, 1, 5}}, // alternating: no merging possible
    {{1}, {1}},
    {{0, 3}, {3}},
    {{}, {}},
};

} // namespace

TEST_CASE("activations match libm within float tolerance, in place and out of place") {
  const auto x = sample_inputs();
  const float alpha = 0.1f;
  for (auto act : {activation::none, activation::relu, activation::leaky_relu, activation::sigmoid,
                   activation::tanh, activation::gelu}) {
    std::vector<float> y(x.size()), inplace = x;
    cpu::activate(act, x.data(), y.data(), int64_t(x.size()), alpha);
    cpu::activate(act, inplace.data(), inplace.data(), int64_t(x.size()), alpha);
    for (size_t i = 0; i < x.size(); ++i) {
      double v = x[i], expected = v;
      if (act == activation::relu)
        expected = v < 0 ? 0 : v;
      if (act == activation::leaky_relu)
        expected = v < 0 ? alpha * v : v;
      if (act == activation::sigmoid)
        expected = 1 / (1 + std::exp(-v));
      if (act == activation::tanh)
        expected = std::tanh(v);
      if (act == activation::gelu)
        expected = 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
      INFO("activation " << int(act) << " x=" << v);
      CHECK(std::fabs(y[i] - expected) <= 1e-6 * std::fabs(expected) + 3e-7);
      CHECK(inplace[i] == y[i]);
    }
  }
}

TEST_CASE("float transcendentals keep NaN and saturate at large magnitudes") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x = {nan, inf, -inf, 1e30f, -1e30f};
  std::vector<float> y(x.size());
  cpu::activate(activation::sigmoid, x.data(), y.data(), 5);
  CHECK(std::isnan(y[0]));
  CHECK(y[1] == 1.0f);
  CHECK(y[2] < 1e-37f); // exp saturates at exp(88): 1 / (1 + 1.7e38)
  CHECK(y[3] == 1.0f);
  cpu::activate(activation::tanh, x.data(), y.data(), 5);
  CHECK(std::isnan(y[0]));
  CHECK(y[1] == doctest::Approx(1.0f));
  CHECK(y[2] == doctest::Approx(-1.0f));
}

TEST_CASE("exp_sum returns the sum of the shifted exponentials it writes") {
  const auto x = sample_inputs();
  std::vector<float> y(x.size());
  const float shift = 2.5f;
  float sum = cpu::exp_sum(x.data(), y.data(), int64_t(x.size()), shift);
  double expected_sum = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    double e = x[i] - shift > -88 ? std::exp(double(x[i]) - shift) : 0.0;
    e = std::min(e, std::exp(88.0));
    CHECK(y[i] == doctest::Approx(e).epsilon(1e-6));
    expected_sum += y[i];
  }
  CHECK(sum == doctest::Approx(expected_sum).epsilon(1e-6));
}

TEST_CASE("clip bounds every element type and keeps NaN") {
  std::vector<float> xf = {-3, -1, 0, 1, 3, std::numeric_limits<float>::quiet_NaN()}, yf(6);
  cpu::clip(xf.data(), yf.data(), 6, -1.5f, 2.0f);
  CHECK(yf[0] == -1.5f);
  CHECK(yf[1] == -1.0f);
  CHECK(yf[4] == 2.0f);
  CHECK(std::isnan(yf[5]));
  std::vector<int8_t> x8 = {-128, -5, 0, 5, 127}, y8(5);
  cpu::clip(x8.data(), y8.data(), 5, int8_t(-6), int8_t(6));
  CHECK(y8 == std::vector<int8_t>{-6, -5, 0, 5, 6});
  std::vector<int64_t> x64 = {-10, 10}, y64(2);
  cpu::clip(x64.data(), y64.data(), 2, int64_t(-1), int64_t(1));
  CHECK(y64 == std::vector<int64_t>{-1, 1});
}

TEST_CASE("scale_shift is one multiply-add per element") {
  std::vector<double> x = {1, 2, 3}, y(3);
  cpu::scale_shift(x.data(), y.data(), 3, 2.0, -1.0);
  CHECK(y == std::vector<double>{1, 3, 5});
}

TEST_CASE("broadcast_shapes follows numpy and refuses incompatible dims") {
  shape out;
  CHECK(cpu::broadcast_shapes({2, 1, 3}, {4, 1}, out));
  CHECK(out == shape{2, 4, 3});
  CHECK(cpu::broadcast_shapes({}, {5}, out));
  CHECK(out == shape{5});
  CHECK_FALSE(cpu::broadcast_shapes({2, 3}, {4}, out));
}

TEST_CASE("broadcasting binary ops match the reference for every shape pair and type") {
  for (auto& [sa, sb] : broadcast_cases)
    for (auto op : {binary_op::add, binary_op::sub, binary_op::mul, binary_op::div}) {
      check_binary<float>(op, sa, sb);
      check_binary<double>(op, sa, sb);
      check_binary<int32_t>(op, sa, sb);
      check_binary<int64_t>(op, sa, sb);
      check_binary<uint8_t>(op, sa, sb);
    }
}

TEST_CASE("integer division truncates toward zero, wraps INT_MIN / -1 and refuses zero") {
  std::vector<int32_t> a = {7, -7, std::numeric_limits<int32_t>::min()}, b = {2, 2, -1}, y(3);
  cpu::binary(binary_op::div, a.data(), {3}, b.data(), {3}, y.data());
  CHECK(y == std::vector<int32_t>{3, -3, std::numeric_limits<int32_t>::min()});
  std::vector<int64_t> a64 = {1, 2}, zero = {0}, y64(2);
  CHECK_THROWS_AS(cpu::binary(binary_op::div, a64.data(), {2}, zero.data(), {}, y64.data()),
                  std::domain_error);
}

TEST_CASE("integer add wraps around instead of overflowing") {
  std::vector<int32_t> a = {std::numeric_limits<int32_t>::max()}, b = {1}, y(1);
  cpu::binary(binary_op::add, a.data(), {1}, b.data(), {1}, y.data());
  CHECK(y[0] == std::numeric_limits<int32_t>::min());
  std::vector<uint8_t> a8 = {250}, b8 = {10}, y8(1);
  cpu::binary(binary_op::add, a8.data(), {1}, b8.data(), {1}, y8.data());
  CHECK(y8[0] == 4);
}
