// Every exported model in test/fixtures/models (made by scripts/make-models) runs through our
// loader and executor and gives onnxruntime's answers: floats within 1e-5 absolute or relative,
// integer and string labels exactly, ZipMap outputs key by key. Each folder holds model.onnx
// and cases.json (inputs, and onnxruntime's outputs in the model's output order).
//
// The fixture folder: ACTORSERVE_SOURCE_DIR/test/fixtures/models when the build defines it,
// else $ACTORSERVE_ROOT/test/fixtures/models, else test/fixtures/models found from the working
// directory or one of its parents (ctest runs unit tests inside the build tree).
#include "libserve/onnx/model.hpp"

#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using namespace serve;
using namespace serve::onnx_ir;
namespace fs = std::filesystem;

namespace {

/// Every folder scripts/make-models writes; a folder not listed here fails a test below.
const std::vector<std::string> known_fixtures = {
    "helper_int64_scale",      "helper_string_echo", "sk_gb_3class",     "sk_gb_binary",
    "sk_gb_synthetic",         "sk_linreg",          "sk_logreg_3class", "sk_logreg_binary",
    "sk_logreg_3class_zipmap", "sk_mlp_3class",      "sk_rf_3class",     "sk_rf_binary",
    "sk_scaler_pipeline",      "torch_mlp",          "torch_mlp_784",    "torch_mlp_view",
};

constexpr double tolerance = 1e-5;
/// Mismatches reported per output before the rest are only counted.
constexpr int max_reported = 8;

std::string source_root() {
#ifdef ACTORSERVE_SOURCE_DIR
  return ACTORSERVE_SOURCE_DIR;
#else
  if (const char* env = std::getenv("ACTORSERVE_ROOT"); env && *env)
    return env;
  std::error_code ec;
  for (fs::path dir = fs::current_path(ec); !ec && !dir.empty(); dir = dir.parent_path()) {
    if (fs::is_directory(dir / "test" / "fixtures" / "models"))
      return dir.string();
    if (dir == dir.parent_path())
      break;
  }
  return ".";
#endif
}

std::string fixtures_dir() {
  return (fs::path(source_root()) / "test" / "fixtures" / "models").string();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw std::runtime_error("cannot read " + path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::vector<std::string> fixture_folders() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(fixtures_dir(), ec))
    if (entry.is_directory() && fs::exists(entry.path() / "model.onnx"))
      names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

dtype dtype_from_name(const std::string& name) {
  static const std::map<std::string, dtype> names = {
      {"float32", dtype::float32}, {"float64", dtype::float64}, {"int64", dtype::int64},
      {"int32", dtype::int32},     {"bool", dtype::boolean},    {"string", dtype::string},
  };
  auto i = names.find(name);
  if (i == names.end())
    throw std::runtime_error("cases.json: unsupported dtype \"" + name + "\"");
  return i->second;
}

std::vector<int64_t> shape_of(const rapidjson::Value& json) {
  std::vector<int64_t> shape;
  for (const auto& d : json["shape"].GetArray())
    shape.push_back(d.GetInt64());
  return shape;
}

/// A tensor from {"dtype", "shape", "data"}.
tensor tensor_from_json(const rapidjson::Value& json) {
  dtype type = dtype_from_name(json["dtype"].GetString());
  tensor t = tensor::zeros(type, shape_of(json));
  const auto& data = json["data"].GetArray();
  if (static_cast<int64_t>(data.Size()) != t.numel())
    throw std::runtime_error("cases.json: data size does not match the shape");
  for (rapidjson::SizeType i = 0; i < data.Size(); ++i) {
    switch (type) {
    case dtype::float32:
      t.as<float>()[i] = static_cast<float>(data[i].GetDouble());
      break;
    case dtype::float64:
      t.as<double>()[i] = data[i].GetDouble();
      break;
    case dtype::int64:
      t.as<int64_t>()[i] = data[i].GetInt64();
      break;
    case dtype::int32:
      t.as<int32_t>()[i] = data[i].GetInt();
      break;
    case dtype::boolean:
      t.as<uint8_t>()[i] = data[i].GetBool() ? 1 : 0;
      break;
    case dtype::string:
      t.strings[i] = data[i].GetString();
      break;
    default:
      break;
    }
  }
  return t;
}

bool close_enough(double actual, double expected) {
  if (std::isnan(expected))
    return std::isnan(actual);
  double diff = std::fabs(actual - expected);
  return diff <= tolerance || diff <= tolerance * std::fabs(expected);
}

/// Collects the mismatches of one output; reports the first few.
struct mismatch_log {
  explicit mismatch_log(std::string output_name) : output(std::move(output_name)) {}

  std::string output;
  int count = 0;
  std::string first;

  void add(const std::string& what) {
    if (++count <= max_reported)
      first += "\n  " + output + what;
  }
};

std::string at(int64_t i) {
  return "[" + std::to_string(i) + "]";
}

/// A number with the digits that matter (std::to_string shows 6 decimals).
std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

void compare_tensor(const tensor& actual, const rapidjson::Value& expected, mismatch_log& log) {
  std::string want_type = expected["dtype"].GetString();
  if (want_type != dtype_name(actual.type)) {
    log.add(": dtype " + std::string(dtype_name(actual.type)) + ", expected " + want_type);
    return;
  }
  if (actual.shape != shape_of(expected)) {
    log.add(": shape " + shape_to_string(actual.shape) + ", expected " +
            shape_to_string(shape_of(expected)));
    return;
  }
  const auto& data = expected["data"].GetArray();
  for (rapidjson::SizeType i = 0; i < data.Size(); ++i) {
    switch (actual.type) {
    case dtype::float32:
    case dtype::float64: {
      double got = actual.type == dtype::float32 ? actual.as<float>()[i] : actual.as<double>()[i];
      double want = data[i].GetDouble();
      if (!close_enough(got, want))
        log.add(at(i) + ": " + num(got) + ", expected " + num(want));
      break;
    }
    case dtype::int64:
    case dtype::int32: {
      int64_t got = actual.type == dtype::int64 ? actual.as<int64_t>()[i] : actual.as<int32_t>()[i];
      if (got != data[i].GetInt64())
        log.add(at(i) + ": " + std::to_string(got) + ", expected " +
                std::to_string(data[i].GetInt64()));
      break;
    }
    case dtype::boolean:
      if ((actual.as<uint8_t>()[i] != 0) != data[i].GetBool())
        log.add(at(i) + ": bool differs");
      break;
    case dtype::string:
      if (actual.strings.at(i) != data[i].GetString())
        log.add(at(i) + ": \"" + actual.strings[i] + "\", expected \"" + data[i].GetString() +
                "\"");
      break;
    default:
      log.add(": unexpected dtype");
      return;
    }
  }
}

/// ZipMap: one {label: probability} object per row; keys compared as strings.
void compare_maps(const value& actual, const rapidjson::Value& expected, mismatch_log& log) {
  if (!actual.maps) {
    log.add(": expected a ZipMap output (map_sequence), got a tensor");
    return;
  }
  const map_sequence& maps = *actual.maps;
  bool int_keys = std::string(expected["key_type"].GetString()) == "int64";
  std::vector<std::string> keys;
  if (int_keys)
    for (int64_t k : maps.int_keys)
      keys.push_back(std::to_string(k));
  else
    keys = maps.string_keys;
  const auto& rows = expected["data"].GetArray();
  if (maps.values.size() != rows.Size()) {
    log.add(": " + std::to_string(maps.values.size()) + " rows, expected " +
            std::to_string(rows.Size()));
    return;
  }
  for (rapidjson::SizeType r = 0; r < rows.Size(); ++r) {
    const auto& row = rows[r];
    if (maps.values[r].size() != keys.size() || keys.size() != row.MemberCount()) {
      log.add(at(r) + ": " + std::to_string(maps.values[r].size()) + " values for " +
              std::to_string(keys.size()) + " keys, expected " + std::to_string(row.MemberCount()) +
              " keys");
      continue;
    }
    for (size_t k = 0; k < keys.size(); ++k) {
      auto m = row.FindMember(keys[k].c_str());
      if (m == row.MemberEnd()) {
        log.add(at(r) + ": unexpected key " + keys[k]);
        continue;
      }
      double got = maps.values[r][k], want = m->value.GetDouble();
      if (!close_enough(got, want))
        log.add(at(r) + "[" + keys[k] + "]: " + num(got) + ", expected " + num(want));
    }
  }
}

/// Loads fixture `name`, runs it on its cases and compares every output.
void check_fixture(const std::string& name) {
  const std::string dir = fixtures_dir() + "/" + name;
  INFO("fixture ", dir);
  REQUIRE_MESSAGE(fs::exists(dir + "/model.onnx"),
                  "missing fixture; run scripts/make-models (looked in " << dir << ")");

  rapidjson::Document cases;
  cases.Parse(read_file(dir + "/cases.json").c_str());
  REQUIRE_MESSAGE(!cases.HasParseError(), "cases.json is not valid JSON");

  std::map<std::string, tensor> inputs;
  for (const auto& in : cases["inputs"].GetObject())
    inputs.emplace(in.name.GetString(), tensor_from_json(in.value));

  std::shared_ptr<const onnx_model> model;
  try {
    model = onnx_model::load(dir + "/model.onnx");
  } catch (const std::exception& e) {
    FAIL("load failed: " << std::string(e.what()));
  }
  std::vector<value> outputs;
  try {
    outputs = model->run(inputs);
  } catch (const std::exception& e) {
    FAIL("run failed: " << std::string(e.what()));
  }

  const auto& expected = cases["outputs"].GetArray();
  REQUIRE(outputs.size() == expected.Size());
  REQUIRE(model->info().outputs.size() == expected.Size());
  for (rapidjson::SizeType i = 0; i < expected.Size(); ++i) {
    const auto& want = expected[i];
    std::string out_name = want["name"].GetString();
    CHECK(model->info().outputs[i].name == out_name);
    mismatch_log log{out_name};
    if (std::string(want["dtype"].GetString()) == "map")
      compare_maps(outputs[i], want, log);
    else if (outputs[i].maps)
      log.add(": got a ZipMap output, expected a tensor");
    else
      compare_tensor(outputs[i].t, want, log);
    CHECK_MESSAGE(log.count == 0, log.count
                                      << " mismatches against onnxruntime:" << log.first
                                      << std::string(log.count > max_reported ? "\n  ..." : ""));
  }
}

} // namespace

TEST_CASE("the fixture folder holds exactly the fixtures this test knows") {
  INFO("fixtures in ", fixtures_dir(), " (regenerate with scripts/make-models)");
  std::vector<std::string> expected = known_fixtures;
  std::sort(expected.begin(), expected.end());
  CHECK(fixture_folders() == expected);
}

#define FIXTURE_TEST(name)                                                                         \
  TEST_CASE("onnx fixture " #name " gives onnxruntime's outputs") {                                \
    check_fixture(#name);                                                                          \
  }

// PyTorch exports.
FIXTURE_TEST(torch_mlp)
FIXTURE_TEST(torch_mlp_view)
FIXTURE_TEST(torch_mlp_784)
// scikit-learn through skl2onnx.
FIXTURE_TEST(sk_logreg_binary)
FIXTURE_TEST(sk_logreg_3class)
FIXTURE_TEST(sk_logreg_3class_zipmap)
FIXTURE_TEST(sk_mlp_3class)
FIXTURE_TEST(sk_gb_binary)
FIXTURE_TEST(sk_gb_3class)
FIXTURE_TEST(sk_gb_synthetic)
FIXTURE_TEST(sk_rf_binary)
FIXTURE_TEST(sk_rf_3class)
FIXTURE_TEST(sk_linreg)
FIXTURE_TEST(sk_scaler_pipeline)
// Hand-built with onnx.helper: INT64 and STRING tensors.
FIXTURE_TEST(helper_int64_scale)
FIXTURE_TEST(helper_string_echo)

TEST_CASE("the iris example model answers the guide's requests with the expected classes") {
  const std::string dir = source_root() + "/apps/examples/models/iris";
  INFO("example model in ", dir);
  rapidjson::Document labels, features, samples;
  labels.Parse(read_file(dir + "/labels.json").c_str());
  features.Parse(read_file(dir + "/features.json").c_str());
  samples.Parse(read_file(dir + "/samples.json").c_str());
  REQUIRE(!labels.HasParseError());
  REQUIRE(!features.HasParseError());
  REQUIRE(!samples.HasParseError());

  const rapidjson::SizeType rows = samples.GetArray().Size();
  const rapidjson::SizeType cols = features.GetArray().Size();
  tensor batch = tensor::zeros(dtype::float32, {int64_t{rows}, int64_t{cols}});
  for (rapidjson::SizeType r = 0; r < rows; ++r)
    for (rapidjson::SizeType c = 0; c < cols; ++c)
      batch.as<float>()[r * cols + c] =
          static_cast<float>(samples[r]["request"][features[c].GetString()].GetDouble());

  std::shared_ptr<const onnx_model> model;
  std::vector<value> outputs;
  try {
    model = onnx_model::load(dir + "/model.onnx");
    REQUIRE(model->info().inputs.size() == 1);
    outputs = model->run({{model->info().inputs[0].name, batch}});
  } catch (const std::exception& e) {
    FAIL("iris example: " << std::string(e.what()));
  }
  REQUIRE(!outputs.empty());
  const tensor& label = outputs[0].t; // skl2onnx: "label" first, then "probabilities"
  REQUIRE(label.type == dtype::int64);
  REQUIRE(label.numel() == int64_t{rows});
  for (rapidjson::SizeType r = 0; r < rows; ++r) {
    int64_t index = label.as<int64_t>()[r];
    REQUIRE(index >= 0);
    REQUIRE(index < static_cast<int64_t>(labels.GetArray().Size()));
    CHECK(std::string(labels[static_cast<rapidjson::SizeType>(index)].GetString()) ==
          samples[r]["expected"].GetString());
  }
}
