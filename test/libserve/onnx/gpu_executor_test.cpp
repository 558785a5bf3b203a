// The GPU executor (libserve/onnx/gpu_executor.hpp) against the CPU executor on the fixture MLPs
// and the ONNX backend node tests that compile to a plan, every precision, batches that take the
// fused whole-MLP kernel (<= 32 rows) and the per-layer kernels (more), and concurrent batches.
// Without a CUDA device each case prints "skipped: no CUDA device (<reason>)" and passes.
//
// Tolerances: float outputs by relative Frobenius error ||gpu - cpu|| / ||cpu|| over the whole
// output: fp32 1e-4, tf32 1e-2, fp16 2e-2, bf16 6e-2 (the kernel tests' per-layer limits 1e-5,
// 5e-3, 1e-2, 3e-2, doubled for the two to three layers an error passes through). Class indices
// and labels exactly, except for rows whose two best CPU scores are closer than that tolerance
// (a near tie that rounding may break either way).
#include "libserve/onnx/gpu_executor.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include "kernels/cuda/device_query.hpp"
#include "libserve/future.hpp"
#include "test/libserve/onnx/gpu_test_support.hpp"

using namespace serve;
using namespace serve::onnx_ir;

namespace {

bool have_device() {
  auto query = kernels::cuda::query_devices();
  if (query.device_count > 0)
    return true;
  std::printf("skipped: no CUDA device (%s)\n", query.reason.c_str());
  return false;
}

double relative_limit(const std::string& precision) {
  if (precision == "fp32")
    return 1e-4;
  if (precision == "tf32")
    return 1e-2;
  if (precision == "fp16")
    return 2e-2;
  return 6e-2; // bf16
}

double relative_error(const tensor& got, const tensor& want) {
  double diff = 0, norm = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double d = double(got.as<float>()[i]) - want.as<float>()[i];
    diff += d * d;
    norm += double(want.as<float>()[i]) * want.as<float>()[i];
  }
  return norm == 0 ? std::sqrt(diff) : std::sqrt(diff / norm);
}

/// Whether row r of `scores` [rows, width] has two best values closer than `gap`.
bool near_tie(const tensor& scores, int64_t r, double gap) {
  const int64_t width = scores.shape.back();
  std::vector<float> row(scores.as<float>() + r * width, scores.as<float>() + (r + 1) * width);
  std::sort(row.rbegin(), row.rend());
  return width > 1 && double(row[0]) - row[1] < gap;
}

/// GPU outputs vs CPU outputs with the tolerances of the file comment.
void check_against_cpu(const std::vector<value>& got, const std::vector<value>& want,
                       const std::string& precision, const std::string& what) {
  INFO(what << ", precision " << precision);
  REQUIRE(got.size() == want.size());
  const tensor* scores = nullptr; // the CPU's float output, for near ties of labels
  for (auto& v : want)
    if (v.t.type == dtype::float32 && v.t.rank() == 2)
      scores = &v.t;
  for (size_t k = 0; k < got.size(); ++k) {
    const tensor& g = got[k].t;
    const tensor& w = want[k].t;
    INFO("output " << k);
    REQUIRE(g.type == w.type);
    REQUIRE(g.shape == w.shape);
    if (w.type == dtype::float32) {
      CHECK(relative_error(g, w) <= relative_limit(precision));
      continue;
    }
    const size_t elem = dtype_size(w.type);
    for (int64_t r = 0; r < w.numel(); ++r) {
      const bool same = w.type == dtype::string
                          ? g.strings[size_t(r)] == w.strings[size_t(r)]
                          : std::memcmp(g.data.data() + r * elem, w.data.data() + r * elem, elem) == 0;
      if (!same && !(scores && near_tie(*scores, r, relative_limit(precision))))
        FAIL("row " << r << ": a different class");
    }
  }
}

} // namespace

TEST_CASE("the GPU executor computes the fixture MLPs as the CPU executor does") {
  if (!have_device())
    return;
  for (const char* name : {"torch_mlp", "torch_mlp_784", "torch_mlp_view", "sk_mlp_3class"}) {
    auto model = onnx_model::load(gpu_test::fixture_model(name));
    auto compiled = compile_gpu_plan(*model);
    REQUIRE(compiled.plan);
    auto plan = std::make_shared<const gpu_plan>(*compiled.plan);
    for (const char* precision : {"fp32", "tf32", "fp16", "bf16"}) {
      auto gpu = make_gpu_executor(plan, {0, precision});
      for (int64_t rows : {1, 3, 32, 33, 128, 1000}) {
        tensor input = gpu_test::sample_input(*model, rows, uint32_t(rows));
        check_against_cpu(gpu->run(input), model->run({{plan->input_name, input}}), precision,
                          std::string(name) + ", " + std::to_string(rows) + " rows");
      }
    }
  }
}

TEST_CASE("concurrent batches on one GPU executor each get their own results") {
  if (!have_device())
    return;
  auto model = onnx_model::load(gpu_test::fixture_model("torch_mlp_784"));
  auto plan = std::make_shared<const gpu_plan>(*compile_gpu_plan(*model).plan);
  auto gpu = make_gpu_executor(plan, {0, "tf32"});
  std::vector<std::thread> threads;
  std::vector<std::string> failures(4);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        const int64_t rows = 1 + (t * 37 + i * 11) % 200; // sizes change: buffers grow meanwhile
        tensor input = gpu_test::sample_input(*model, rows, uint32_t(t * 100 + i));
        auto got = gpu->run(input);
        auto want = model->run({{plan->input_name, input}});
        if (relative_error(got[0].t, want[0].t) > relative_limit("tf32"))
          failures[size_t(t)] = "thread " + std::to_string(t) + ", batch " + std::to_string(i);
      }
    });
  for (auto& th : threads)
    th.join();
  for (auto& f : failures)
    CHECK(f.empty());
}

TEST_CASE("the GPU executor gives the ONNX node tests' outputs where they compile to a plan") {
  const std::string dir = gpu_test::node_tests_dir();
  if (dir.empty() || !have_device())
    return;
  int run = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    for (const char* op : {"test_gemm", "test_matmul", "test_softmax", "test_logsoftmax",
                           "test_argmax", "test_flatten"}) {
      if (name.rfind(op, 0) != 0 || !std::filesystem::exists(entry.path() / "model.onnx"))
        continue;
      std::shared_ptr<const onnx_model> model;
      try {
        model = onnx_model::load((entry.path() / "model.onnx").string());
      } catch (const serve_exception&) {
        continue; // not an operator form the CPU executor takes either
      }
      auto compiled = compile_gpu_plan(*model);
      if (!compiled.plan)
        continue;
      auto gpu = make_gpu_executor(std::make_shared<const gpu_plan>(*compiled.plan), {0, "fp32"});
      tensor input =
        load_tensor_proto_file((entry.path() / "test_data_set_0" / "input_0.pb").string());
      std::vector<value> want(1);
      want[0].t =
        load_tensor_proto_file((entry.path() / "test_data_set_0" / "output_0.pb").string());
      check_against_cpu(gpu->run(input), want, "fp32", name);
      ++run;
    }
  }
  std::printf("GPU executor: %d ONNX node tests compiled to a plan and matched\n", run);
  CHECK(run > 0);
}

TEST_CASE("without a usable device the GPU executor cannot be made, and says why") {
  auto query = kernels::cuda::query_devices();
  if (query.device_count > 0)
    return; // the cases above cover a machine with a GPU
  auto model = onnx_model::load(gpu_test::fixture_model("torch_mlp"));
  auto plan = std::make_shared<const gpu_plan>(*compile_gpu_plan(*model).plan);
  try {
    make_gpu_executor(plan, {0, "tf32"});
    FAIL("made a GPU executor without a device");
  } catch (...) {
    auto err = current_exception_info();
    INFO(err.message);
    CHECK_FALSE(err.message.empty());
  }
}
