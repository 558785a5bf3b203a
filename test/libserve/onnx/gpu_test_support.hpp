// What the GPU plan and GPU executor tests share: where the fixture models and the ONNX backend
// node tests are, deterministic inputs, and comparing outputs with a tolerance.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "libserve/onnx/model.hpp"

namespace serve::gpu_test {

inline std::string fixture_model(const std::string& name) {
#ifdef ACTORSERVE_SOURCE_DIR
  std::string root = ACTORSERVE_SOURCE_DIR;
#else
  const char* env = std::getenv("ACTORSERVE_ROOT");
  std::string root = env && *env ? env : ".";
#endif
  return root + "/test/fixtures/models/" + name + "/model.onnx";
}

/// Debian's libonnx-testdata node tests (test_*/model.onnx), or "" when not installed.
inline std::string node_tests_dir() {
  const std::string dir = "/usr/share/libonnx-testdata/data/node";
  return std::filesystem::is_directory(dir) ? dir : "";
}

/// `rows` rows of the model's only input, values in [-2, 2) from a fixed linear congruential
/// sequence (the same inputs on every run).
inline tensor sample_input(const onnx_ir::onnx_model& model, int64_t rows, uint32_t seed = 7) {
  std::vector<int64_t> shape = model.info().inputs.at(0).dims;
  shape.at(0) = rows;
  tensor t = tensor::zeros(dtype::float32, shape);
  uint32_t state = seed;
  for (int64_t i = 0; i < t.numel(); ++i) {
    state = state * 1664525u + 1013904223u;
    t.as<float>()[i] = float(state >> 8) / float(1u << 24) * 4.0f - 2.0f;
  }
  return t;
}

/// Checks `got` against `want`: same dtypes and shapes, floats within atol + rtol * |want|,
/// everything else exactly. `what` names the case in failure messages.
inline void check_close(const std::vector<onnx_ir::value>& got,
                        const std::vector<onnx_ir::value>& want, double atol, double rtol,
                        const std::string& what) {
  INFO(what);
  REQUIRE(got.size() == want.size());
  for (size_t k = 0; k < got.size(); ++k) {
    const tensor& g = got[k].t;
    const tensor& w = want[k].t;
    INFO("output " << k);
    REQUIRE(dtype_name(g.type) == std::string(dtype_name(w.type)));
    REQUIRE(shape_to_string(g.shape) == shape_to_string(w.shape));
    if (w.type == dtype::float32) {
      double worst = 0;
      int64_t at = -1;
      for (int64_t i = 0; i < w.numel(); ++i) {
        const double a = g.as<float>()[i], b = w.as<float>()[i];
        const double excess = std::abs(a - b) - (atol + rtol * std::abs(b));
        if (excess > worst || (std::isnan(a) != std::isnan(b))) {
          worst = std::isnan(a) != std::isnan(b) ? INFINITY : excess;
          at = i;
        }
      }
      INFO("worst element " << at << ": got " << (at >= 0 ? g.as<float>()[at] : 0.0f)
                            << ", want " << (at >= 0 ? w.as<float>()[at] : 0.0f));
      CHECK(at == -1);
    } else if (w.type == dtype::string) {
      CHECK(g.strings == w.strings);
    } else {
      CHECK(g.data == w.data);
    }
  }
}

} // namespace serve::gpu_test
