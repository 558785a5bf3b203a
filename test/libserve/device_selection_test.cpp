// Device selection (libserve/device_selection.hpp): every row of the table in the header, with
// the device query's answer injected, so it runs the same with and without a GPU.
#include "libserve/device_selection.hpp"

#include <doctest/doctest.h>

using namespace serve;

namespace {

kernels::cuda::device_query_result gpus(int count) {
  kernels::cuda::device_query_result r;
  r.device_count = count;
  r.first_device_name = count > 0 ? "NVIDIA H100 80GB HBM3" : "";
  return r;
}

kernels::cuda::device_query_result no_gpu(const std::string& reason) {
  kernels::cuda::device_query_result r;
  r.reason = reason;
  return r;
}

device_choice choose(const std::string& request, kernels::cuda::device_query_result devices,
                     const std::string& graph_unsupported = "", size_t replica = 0) {
  device_selection_input in;
  auto parsed = parse_device_request(request);
  REQUIRE(parsed);
  in.request = *parsed;
  in.request_text = request;
  in.devices = std::move(devices);
  in.graph_unsupported = graph_unsupported;
  in.replica_index = replica;
  return select_device(in);
}

const std::string tree_graph = "graph has TreeEnsembleClassifier (ai.onnx.ml) which has no GPU "
                               "kernel";

} // namespace

TEST_CASE("device requests parse cpu, auto, cuda and cuda:N and nothing else") {
  CHECK(parse_device_request("cpu")->type == device_request::kind::cpu);
  CHECK(parse_device_request("auto")->type == device_request::kind::auto_select);
  CHECK(parse_device_request("cuda")->type == device_request::kind::cuda_any);
  CHECK(parse_device_request("cuda:3")->index == 3);
  CHECK(parse_device_request("cuda:0")->type == device_request::kind::cuda_index);
  for (const char* bad : {"", "gpu", "CUDA", "cuda:", "cuda:-1", "cuda:+1", "cuda: 1", "cuda:1x",
                          "cuda:10000", "cuda0", "auto "})
    CHECK_FALSE(parse_device_request(bad));
}

TEST_CASE("cpu is used when asked for, whatever the machine has") {
  auto c = choose("cpu", gpus(2));
  CHECK(c.device == "cpu");
  CHECK(c.reason == "requested");
  CHECK(c.error.empty());
  CHECK_FALSE(c.on_gpu());
}

TEST_CASE("auto falls back to the CPU and says why") {
  auto no_driver = choose("auto", no_gpu("no usable CUDA driver or device: CUDA driver version "
                                         "is insufficient for CUDA runtime version"));
  CHECK(no_driver.device == "cpu");
  CHECK(no_driver.reason == "no usable CUDA driver or device: CUDA driver version is "
                            "insufficient for CUDA runtime version: using CPU");
  CHECK(no_driver.error.empty());

  auto no_build = choose("auto", no_gpu("built without CUDA (nvcc was not found at configure time)"));
  CHECK(no_build.reason == "built without CUDA (nvcc was not found at configure time): using CPU");

  auto trees = choose("auto", gpus(1), tree_graph);
  CHECK(trees.device == "cpu");
  CHECK(trees.reason == tree_graph + ": using CPU");
}

TEST_CASE("auto and cuda spread a deployment's replicas over the GPUs round-robin") {
  for (const char* request : {"auto", "cuda"}) {
    CHECK(choose(request, gpus(2), "", 0).device == "cuda:0");
    CHECK(choose(request, gpus(2), "", 1).device == "cuda:1");
    CHECK(choose(request, gpus(2), "", 2).device == "cuda:0");
    CHECK(choose(request, gpus(1), "", 5).device == "cuda:0");
  }
  auto c = choose("auto", gpus(2), "", 3);
  CHECK(c.cuda_index == 1);
  CHECK(c.reason == "auto: 2 CUDA devices usable; replicas spread round-robin");
}

TEST_CASE("cuda:N picks that GPU for every replica") {
  auto c = choose("cuda:1", gpus(2), "", 0);
  CHECK(c.device == "cuda:1");
  CHECK(c.cuda_index == 1);
  CHECK(choose("cuda:1", gpus(2), "", 1).device == "cuda:1");
}

TEST_CASE("an explicit GPU request that cannot be honoured is an error naming the reason") {
  auto none = choose("cuda:0", no_gpu("no CUDA device"));
  CHECK(none.device.empty());
  CHECK(none.error == "device \"cuda:0\" requested, but no CUDA device is usable: no CUDA device");

  CHECK(choose("cuda", no_gpu("built without CUDA (nvcc was not found at configure time)")).error ==
        "device \"cuda\" requested, but no CUDA device is usable: built without CUDA (nvcc was "
        "not found at configure time)");

  CHECK(choose("cuda:2", gpus(2)).error ==
        "device \"cuda:2\" requested, but this machine has 2 CUDA devices (cuda:0..cuda:1)");
  CHECK(choose("cuda:1", gpus(1)).error ==
        "device \"cuda:1\" requested, but this machine has 1 CUDA device (cuda:0)");

  CHECK(choose("cuda:0", gpus(1), tree_graph).error ==
        "device \"cuda:0\" requested, but the model cannot run on the GPU: " + tree_graph);
}

TEST_CASE("precision names are checked") {
  for (const char* p : {"tf32", "fp32", "fp16", "bf16"})
    CHECK(is_known_precision(p));
  for (const char* p : {"", "int8", "FP16", "fp64"})
    CHECK_FALSE(is_known_precision(p));
}
