// model_device (libserve/model_device.hpp) and the model deployment's device choice: the CPU
// fallbacks with their reasons, explicit GPU requests that fail the replica, and describe().
// The device query is injected where a case needs a GPU to be "there"; the executor set-up that
// follows then fails on a machine without one, which is itself a case (auto falls back).
#include "libserve/model_device.hpp"

#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include "kernels/cuda/device_query.hpp"
#include "libserve/future.hpp"
#include "libserve/model_deployment.hpp"
#include "test/libserve/onnx/gpu_test_support.hpp"

using namespace serve;

namespace {

deployment_context context(const std::string& device, uint64_t replica = 0) {
  deployment_context ctx;
  ctx.application = "app";
  ctx.deployment = "Mlp";
  ctx.replica_id = "app#Mlp#" + std::to_string(replica);
  ctx.device = device;
  ctx.replica_index = replica;
  return ctx;
}

kernels::cuda::device_query_result fake_gpus(int count) {
  kernels::cuda::device_query_result r;
  r.device_count = count;
  return r;
}

kernels::cuda::device_query_result no_gpu() {
  kernels::cuda::device_query_result r;
  r.reason = "no CUDA device";
  return r;
}

std::shared_ptr<const onnx_ir::onnx_model> fixture(const std::string& name) {
  return onnx_ir::onnx_model::load(gpu_test::fixture_model(name));
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (...) {
    return current_exception_info().message;
  }
  return "<no error>";
}

} // namespace

TEST_CASE("cpu runs the CPU executor and never asks the CUDA runtime") {
  auto model = fixture("torch_mlp");
  model_device device(context("cpu"), model, fake_gpus(2));
  CHECK(device.device() == "cpu");
  CHECK(device.reason() == "requested");
  CHECK_FALSE(device.on_gpu());
  tensor input = gpu_test::sample_input(*model, 4);
  gpu_test::check_close(device.run({{"input", input}}), model->run({{"input", input}}), 0, 0,
                        "cpu");
}

TEST_CASE("auto without a GPU, or with a graph the GPU cannot run, uses the CPU and says why") {
  model_device none(context("auto"), fixture("torch_mlp"), no_gpu());
  CHECK(none.device() == "cpu");
  CHECK(none.reason() == "no CUDA device: using CPU");

  model_device trees(context("auto"), fixture("sk_rf_3class"), fake_gpus(1));
  CHECK(trees.device() == "cpu");
  CHECK(trees.reason() ==
        "graph has TreeEnsembleClassifier (ai.onnx.ml) which has no GPU kernel: using CPU");
}

TEST_CASE("an explicit GPU request that cannot be honoured fails the replica's start") {
  CHECK(error_of([] { model_device(context("cuda:0"), fixture("torch_mlp"), no_gpu()); }) ==
        "device \"cuda:0\" requested, but no CUDA device is usable: no CUDA device");
  CHECK(error_of([] { model_device(context("cuda:3"), fixture("torch_mlp"), fake_gpus(2)); }) ==
        "device \"cuda:3\" requested, but this machine has 2 CUDA devices (cuda:0..cuda:1)");
  CHECK(error_of([] { model_device(context("cuda"), fixture("sk_logreg_3class"), fake_gpus(1)); })
        == "device \"cuda\" requested, but the model cannot run on the GPU: graph has "
           "LinearClassifier (ai.onnx.ml) which has no GPU kernel");
}

TEST_CASE("a GPU that auto picked but cannot be set up leaves the replica on the CPU") {
  if (kernels::cuda::query_devices().device_count > 0)
    return; // a real GPU would be set up; the executor tests cover that
  // The (injected) device is not really there: making its stream fails.
  model_device fallback(context("auto"), fixture("torch_mlp"), fake_gpus(1));
  CHECK(fallback.device() == "cpu");
  CHECK(fallback.reason().rfind("setting up cuda:0 failed (", 0) == 0);
  CHECK(fallback.reason().find("): using CPU") != std::string::npos);
  // Asked for explicitly, the same failure stops the replica.
  CHECK(error_of([] { model_device(context("cuda:0"), fixture("torch_mlp"), fake_gpus(1)); })
          .rfind("device \"cuda:0\": setting up cuda:0 failed: ", 0) == 0);
}

TEST_CASE("a model deployment's describe() shows its device and why") {
  rapidjson::Document model_config;
  model_config.Parse(("{\"uri\": \"" + gpu_test::fixture_model("torch_mlp") + "\"}").c_str());
  auto ctx = context("auto");
  ctx.model_config = &model_config;
  auto dep = make_model_deployment(ctx);
  rapidjson::Document described;
  described.Parse(dep->describe().c_str());
  REQUIRE(described.IsObject());
  const auto query = kernels::cuda::query_devices();
  if (query.device_count > 0) {
    CHECK(std::string(described["device"].GetString()) == "cuda:0");
    CHECK(std::string(described["gpu_plan"].GetString()) ==
          "3 layers 4-16-16-3 (relu, relu, none), softmax");
  } else {
    CHECK(std::string(described["device"].GetString()) == "cpu");
    CHECK(std::string(described["device_reason"].GetString()) == query.reason + ": using CPU");
  }
  // One request through parsing, the chosen executor and reply formatting.
  request req;
  req.body = R"({"inputs": [[0.5, -1.0, 2.0, 0.25]]})";
  std::string body;
  dep->handle(req).subscribe([&](response* r, const error_info*) { body = r ? r->body : ""; });
  CHECK(body.rfind(R"({"outputs":{"output":[)", 0) == 0);
}

namespace {

/// A v2 infer request for the 4-input MLP with `rows` rows as a binary tensor.
request v2_binary_request(const std::vector<float>& values) {
  auto rows = values.size() / 4;
  std::string header = R"({"inputs":[{"name":"input","datatype":"FP32","shape":[)"
                       + std::to_string(rows) + R"(,4],"parameters":{"binary_data_size":)"
                       + std::to_string(values.size() * 4) + "}}]}";
  request req;
  req.method = "POST";
  req.path = "/v2/models/Mlp/infer";
  req.headers["inference-header-content-length"] = std::to_string(header.size());
  req.body = header + std::string(reinterpret_cast<const char*>(values.data()), values.size() * 4);
  return req;
}

std::vector<double> output_data(const std::string& body) {
  rapidjson::Document doc;
  doc.Parse(body.c_str());
  std::vector<double> out;
  if (!doc.IsObject() || !doc.HasMember("outputs"))
    return out;
  for (auto& v : doc["outputs"][0]["data"].GetArray())
    out.push_back(v.GetDouble());
  return out;
}

} // namespace

TEST_CASE("a batch of v2 binary requests computes what each request computes alone") {
  rapidjson::Document model_config;
  model_config.Parse(("{\"uri\": \"" + gpu_test::fixture_model("torch_mlp") + "\"}").c_str());
  auto ctx = context("cpu");
  ctx.model_config = &model_config;
  auto dep = make_model_deployment(ctx);
  std::vector<std::vector<float>> inputs{{0.5f, -1.0f, 2.0f, 0.25f},
                                         {1, 2, 3, 4, -1, -2, -3, -4},
                                         {0.1f, 0.2f, 0.3f, 0.4f}};
  std::vector<request> batch;
  for (auto& values : inputs)
    batch.push_back(v2_binary_request(values));
  std::vector<std::string> batched;
  dep->handle_batch(batch).subscribe([&](std::vector<response>* rs, const error_info*) {
    if (rs)
      for (auto& r : *rs)
        batched.push_back(r.error ? "error: " + r.error->message : r.body);
  });
  REQUIRE(batched.size() == inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::string alone;
    dep->handle(v2_binary_request(inputs[i])).subscribe([&](response* r, const error_info*) {
      alone = r && !r->error ? r->body : "";
    });
    auto want = output_data(alone);
    auto got = output_data(batched[i]);
    REQUIRE_MESSAGE(want.size() == 3 * inputs[i].size() / 4, alone);
    REQUIRE_MESSAGE(got.size() == want.size(), batched[i]);
    for (size_t k = 0; k < want.size(); ++k)
      CHECK(got[k] == doctest::Approx(want[k]).epsilon(1e-5));
  }
}
