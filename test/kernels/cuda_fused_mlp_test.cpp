// fused_mlp_forward (all layers in one cooperative launch) against the reference layer chain
// and against linear_forward layer by layer, for rows 1..32 and the tensor-core precisions.
// Tolerances as in cuda_linear_test.cpp, applied to the last layer with the reference run on
// the GPU's own quantization points (each layer's fp32 output is quantized again by the next).
#include <algorithm>
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

struct host_layer {
  std::vector<float> w, bias;
  int K, N;
  activation act;
};

std::vector<host_layer> make_mlp(const std::vector<int>& widths,
                                 const std::vector<activation>& acts) {
  std::vector<host_layer> layers;
  for (size_t i = 0; i + 1 < widths.size(); ++i) {
    const int K = widths[i], N = widths[i + 1];
    const float scale = 1.0f / std::sqrt(static_cast<float>(K));
    layers.push_back({random_floats(static_cast<size_t>(K) * N, 100 + i, -scale, scale),
                      random_floats(N, 200 + i, -0.5f, 0.5f), K, N, acts[i]});
  }
  return layers;
}

void check_mlp(const std::vector<int>& widths, const std::vector<activation>& acts, int rows,
               precision prec, const cuda::stream& s) {
  CAPTURE(rows);
  INFO("precision " << cuda::to_string(prec) << ", " << widths.size() - 1 << " layers, first "
                    << widths.front() << " wide");
  const auto host = make_mlp(widths, acts);
  std::vector<cuda::linear_weights> layers(host.size());
  for (size_t i = 0; i < host.size(); ++i)
    REQUIRE_CUDA_OK(cuda::prepare_linear(host[i].w.data(), host[i].bias.data(), host[i].K,
                                         host[i].N, host[i].act, prec, s, layers[i]));
  const int n = static_cast<int>(layers.size());
  REQUIRE(cuda::fused_mlp_supported(layers.data(), n, rows));

  const auto x = random_floats(static_cast<size_t>(rows) * widths.front(), 7 + rows);
  auto x_dev = upload(x, s);
  const size_t outputs = static_cast<size_t>(rows) * widths.back();
  auto y_dev = device_array<float>(outputs, s);
  cuda::device_buffer workspace; // grown by the call
  REQUIRE_CUDA_OK(cuda::fused_mlp_forward(static_cast<const float*>(x_dev.data()), layers.data(), n,
                                          static_cast<float*>(y_dev.data()), rows, workspace, s));
  const auto got = download<float>(y_dev, outputs, s);
  CHECK(workspace.bytes() >= cuda::fused_mlp_workspace_bytes(layers.data(), n, rows));

  // Reference chains: quantized (as the GPU rounds each layer's input) and exact.
  std::vector<float> in_q = x, in_exact = x, out_q, out_exact;
  std::vector<double> magnitude;
  for (const host_layer& l : host) {
    out_q.assign(static_cast<size_t>(rows) * l.N, 0);
    out_exact.assign(out_q.size(), 0);
    magnitude.assign(out_q.size(), 0);
    reference::linear(in_q.data(), l.w.data(), l.bias.data(), rows, l.K, l.N, l.act, prec,
                      out_q.data(), magnitude.data());
    reference::linear(in_exact.data(), l.w.data(), l.bias.data(), rows, l.K, l.N, l.act,
                      precision::fp32, out_exact.data());
    in_q = out_q;
    in_exact = out_exact;
  }
  const int K_last = host.back().K;
  size_t bad = 0, first_bad = 0;
  for (size_t i = 0; i < outputs; ++i) {
    // One quantization flip of an input (1 ulp of the operand) is allowed on top of the
    // accumulation bound: the GPU's fp32 hidden values differ from the reference's in the last
    // bit, which can round the next layer's operand the other way.
    const double u = prec == precision::bf16 ? 0x1p-8 : 0x1p-11;
    const double bound = 1.2 * 2.0 * (K_last + 2) * 0x1p-24 * magnitude[i] +
                         4 * u * magnitude[i] / K_last + 8 * 0x1p-24 * std::fabs(out_q[i]) + 1e-6;
    if (!(std::fabs(static_cast<double>(got[i]) - out_q[i]) <= bound) && bad++ == 0)
      first_bad = i;
  }
  INFO("first bad output " << first_bad << ": got " << got[first_bad] << ", want "
                           << out_q[first_bad]);
  CHECK(bad == 0);
  const double limit = prec == precision::bf16 ? 3e-2 : prec == precision::fp16 ? 1e-2 : 5e-3;
  const double rel = relative_error(got, out_exact);
  INFO("relative error vs exact fp32: " << rel);
  CHECK(rel <= limit);

  // The same layers one launch each must agree to accumulation order.
  const int widest = *std::max_element(widths.begin(), widths.end());
  auto a = device_array<float>(static_cast<size_t>(rows) * widest, s);
  auto b = device_array<float>(static_cast<size_t>(rows) * widest, s);
  const float* in = static_cast<const float*>(x_dev.data());
  for (int i = 0; i < n; ++i) {
    float* out = static_cast<float*>(i % 2 ? b.data() : a.data());
    REQUIRE_CUDA_OK(cuda::linear_forward(in, layers[i], out, rows, s));
    in = out;
  }
  const auto chained = download<float>((n - 1) % 2 ? b : a, outputs, s);
  const double chain_rel = relative_error(got, chained);
  INFO("fused vs layer-by-layer relative error: " << chain_rel);
  CHECK(chain_rel <= limit / 10);
}

} // namespace

TEST_CASE("fused_mlp_forward matches the layer chain for rows 1 to 32") {
  if (!have_device())
    return;
  cuda::stream s;
  REQUIRE_CUDA_OK(cuda::stream::create(0, s));
  const std::vector<int> mnist = {784, 512, 512, 10};
  const std::vector<activation> mnist_acts = {activation::relu, activation::relu, activation::none};
  const std::vector<int> odd = {37, 100, 3, 250, 17}; // K and N not multiples of 16
  const std::vector<activation> odd_acts = {activation::gelu, activation::tanh, activation::sigmoid,
                                            activation::none};
  for (precision prec : {precision::tf32, precision::fp16, precision::bf16})
    for (int rows : {1, 3, 16, 17, 32}) {
      check_mlp(mnist, mnist_acts, rows, prec, s);
      check_mlp(odd, odd_acts, rows, prec, s);
    }
  check_mlp({4096, 4096, 4096}, {activation::relu, activation::none}, 8, precision::tf32, s);
}

TEST_CASE("fused_mlp_supported refuses what the fused kernel cannot run") {
  cuda::linear_weights unprepared[2];
  CHECK_FALSE(cuda::fused_mlp_supported(nullptr, 1, 1));
  CHECK_FALSE(cuda::fused_mlp_supported(unprepared, 0, 1));
  CHECK_FALSE(cuda::fused_mlp_supported(unprepared, 2, 1)); // no weights
  float x = 0, y = 0;
  cuda::device_buffer workspace;
  cuda::stream empty;
  const auto st = cuda::fused_mlp_forward(&x, unprepared, 2, &y, 1, workspace, empty);
  CHECK(st.code == -1);
  CHECK_FALSE(st.sticky);
  if (!have_device())
    return;
  cuda::stream s;
  REQUIRE_CUDA_OK(cuda::stream::create(0, s));
  const auto w = random_floats(8 * 8, 3);
  cuda::linear_weights layers[2];
  REQUIRE_CUDA_OK(cuda::prepare_linear(w.data(), nullptr, 8, 8, activation::relu, precision::tf32,
                                       s, layers[0]));
  REQUIRE_CUDA_OK(cuda::prepare_linear(w.data(), nullptr, 8, 8, activation::none, precision::fp16,
                                       s, layers[1]));
  CHECK(cuda::fused_mlp_supported(layers, 1, 32));
  CHECK_FALSE(cuda::fused_mlp_supported(layers, 1, 33)); // too many rows
  CHECK_FALSE(cuda::fused_mlp_supported(layers, 2, 1));  // mixed precisions
  cuda::linear_weights fp32;
  REQUIRE_CUDA_OK(
      cuda::prepare_linear(w.data(), nullptr, 8, 8, activation::none, precision::fp32, s, fp32));
  CHECK_FALSE(cuda::fused_mlp_supported(&fp32, 1, 1)); // fp32 has no fused path
}
