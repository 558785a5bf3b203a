// Small scikit-learn models exported by skl2onnx (test/fixtures/ml, made by
// make_ml_fixtures.py there) load and give onnxruntime's outputs: floats within 1e-5 (absolute
// or relative), labels exactly, ZipMap maps key by key. They cover what the hand-built node
// tests cannot: real exporters' attribute layouts (binary gradient boosting with one base value,
// forests with probability leaves, labels 3/7, string labels, double input with *_as_tensor
// attributes, NaN rows) through the loader and executor.
#include "libserve/onnx/model.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <rapidjson/document.h>

using namespace serve;
using namespace serve::onnx_ir;
namespace fs = std::filesystem;

namespace {

// ACTORSERVE_SOURCE_DIR/test/fixtures/ml when the build defines it, else the folder beside
// this file's (__FILE__ is absolute in CMake builds).
fs::path fixtures_dir() {
#ifdef ACTORSERVE_SOURCE_DIR
  return fs::path(ACTORSERVE_SOURCE_DIR) / "test" / "fixtures" / "ml";
#else
  return fs::path(__FILE__).parent_path().parent_path().parent_path() / "fixtures" / "ml";
#endif
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::vector<int64_t> shape_of(const rapidjson::Value& json) {
  std::vector<int64_t> shape;
  for (const auto& d : json["shape"].GetArray())
    shape.push_back(d.GetInt64());
  return shape;
}

// JSON null stands for NaN.
double number(const rapidjson::Value& v) {
  return v.IsNull() ? std::numeric_limits<double>::quiet_NaN() : v.GetDouble();
}

tensor input_from_json(const rapidjson::Value& json) {
  const std::string type = json["dtype"].GetString();
  REQUIRE((type == "float32" || type == "float64"));
  tensor t = tensor::zeros(type == "float32" ? dtype::float32 : dtype::float64, shape_of(json));
  const auto& data = json["data"].GetArray();
  REQUIRE(static_cast<int64_t>(data.Size()) == t.numel());
  for (rapidjson::SizeType i = 0; i < data.Size(); ++i) {
    if (t.type == dtype::float32)
      t.as<float>()[i] = static_cast<float>(number(data[i]));
    else
      t.as<double>()[i] = number(data[i]);
  }
  return t;
}

bool close(double actual, double expected) {
  if (std::isnan(expected))
    return std::isnan(actual);
  const double diff = std::fabs(actual - expected);
  return diff <= 1e-5 || diff <= 1e-5 * std::fabs(expected);
}

void compare_tensor(const tensor& got, const rapidjson::Value& want) {
  const std::string type = want["dtype"].GetString();
  REQUIRE(type == dtype_name(got.type));
  REQUIRE(got.shape == shape_of(want));
  const auto& data = want["data"].GetArray();
  for (rapidjson::SizeType i = 0; i < data.Size(); ++i) {
    CAPTURE(i);
    if (got.type == dtype::float32)
      CHECK_MESSAGE(close(got.as<float>()[i], number(data[i])),
                    got.as<float>()[i] << " vs onnxruntime " << number(data[i]));
    else if (got.type == dtype::int64)
      CHECK(got.as<int64_t>()[i] == data[i].GetInt64());
    else if (got.type == dtype::string)
      CHECK(got.strings.at(i) == data[i].GetString());
    else
      FAIL("unexpected output dtype " << type);
  }
}

void compare_maps(const value& got, const rapidjson::Value& want) {
  REQUIRE(static_cast<bool>(got.maps));
  const map_sequence& maps = *got.maps;
  std::vector<std::string> keys = maps.string_keys;
  for (int64_t k : maps.int_keys)
    keys.push_back(std::to_string(k));
  CHECK(std::string(want["key_type"].GetString()) == (maps.int_keys.empty() ? "string" : "int64"));
  const auto& rows = want["data"].GetArray();
  REQUIRE(maps.values.size() == rows.Size());
  for (rapidjson::SizeType r = 0; r < rows.Size(); ++r) {
    CAPTURE(r);
    REQUIRE(rows[r].MemberCount() == keys.size());
    REQUIRE(maps.values[r].size() == keys.size());
    for (size_t k = 0; k < keys.size(); ++k) {
      auto m = rows[r].FindMember(keys[k].c_str());
      REQUIRE_MESSAGE(m != rows[r].MemberEnd(), "key " << keys[k]);
      CHECK_MESSAGE(close(maps.values[r][k], m->value.GetDouble()),
                    keys[k] << ": " << maps.values[r][k] << " vs " << m->value.GetDouble());
    }
  }
}

void check_model(const std::string& name) {
  const fs::path dir = fixtures_dir() / name;
  INFO("fixture ", dir.string());
  REQUIRE(fs::exists(dir / "model.onnx"));
  rapidjson::Document cases;
  cases.Parse(read_file(dir / "cases.json").c_str());
  REQUIRE(!cases.HasParseError());
  std::map<std::string, tensor> inputs;
  for (const auto& in : cases["inputs"].GetObject())
    inputs.emplace(in.name.GetString(), input_from_json(in.value));

  auto model = onnx_model::load((dir / "model.onnx").string());
  const auto outputs = model->run(inputs);
  const auto& expected = cases["outputs"].GetArray();
  REQUIRE(outputs.size() == expected.Size());
  for (rapidjson::SizeType i = 0; i < expected.Size(); ++i) {
    INFO("output ", expected[i]["name"].GetString());
    if (std::string(expected[i]["dtype"].GetString()) == "map")
      compare_maps(outputs[i], expected[i]);
    else
      compare_tensor(outputs[i].t, expected[i]);
  }
}

} // namespace

TEST_CASE("ml model: binary gradient boosting (one base value, LOGISTIC) matches onnxruntime") {
  check_model("gb_binary");
}

TEST_CASE("ml model: 3-class gradient boosting with ZipMap matches onnxruntime") {
  check_model("gb_3class_zipmap");
}

TEST_CASE("ml model: 3-class random forest matches onnxruntime") {
  check_model("rf_3class");
}

TEST_CASE("ml model: binary random forest with labels 3 and 7 matches onnxruntime") {
  check_model("rf_binary_labels_3_7");
}

TEST_CASE("ml model: random forest trained with NaNs, scored on NaN rows, matches onnxruntime") {
  check_model("rf_3class_nan");
}

TEST_CASE(
    "ml model: binary logistic regression with string labels and ZipMap matches onnxruntime") {
  check_model("logreg_binary_strings_zipmap");
}

TEST_CASE(
    "ml model: 3-class logistic regression (LinearClassifier + Normalizer) matches onnxruntime") {
  check_model("logreg_3class");
}

TEST_CASE("ml model: gradient boosting regressor matches onnxruntime") {
  check_model("gb_regressor");
}

TEST_CASE("ml model: 2-target forest regressor on double rows (v3 tensors) matches onnxruntime") {
  check_model("rf_regressor_2targets_double");
}

TEST_CASE("ml model: Normalizer + Binarizer pipeline matches onnxruntime") {
  check_model("normalizer_binarizer");
}
