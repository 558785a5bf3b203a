// The model files a head ships to a node, and how the node writes them.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <doctest/doctest.h>

#include "libserve/future.hpp"
#include "libserve/model_location.hpp"

using namespace serve;
namespace fs = std::filesystem;

namespace {

std::string fixture(const std::string& rel) {
  return std::string(ACTORSERVE_SOURCE_DIR) + "/" + rel;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

} // namespace

TEST_CASE("a single .onnx file ships with the external data files it names") {
  model_spec spec;
  spec.uri = fixture("test/fixtures/models/torch_mlp_784/model.onnx");
  auto bundle = read_model_bundle(spec);
  CHECK(bundle.model_file == "model.onnx");
  CHECK(bundle.files.count("model.onnx") == 1);
  CHECK(bundle.files.count("weights.bin") == 1);
  CHECK(bundle.files.count("cases.json") == 0); // a sibling the model does not name
  CHECK(bundle.labels_file.empty());
}

TEST_CASE("a registry model ships its folder, labels and the version it resolved to") {
  model_spec spec;
  spec.uri = "models:/iris@production";
  spec.registry_uri = fixture("apps/examples/registry/mlruns");
  spec.labels = "labels.json";
  auto bundle = read_model_bundle(spec);
  CHECK(bundle.files.count("MLmodel") == 1);
  CHECK(bundle.files.count(bundle.model_file) == 1);
  CHECK(bundle.labels_file == "labels.json");
  CHECK(bundle.version == "1");
  CHECK(bundle.resolved.find("models:/iris@production -> version 1") == 0);

  auto shipped = shipped_model_spec(bundle, spec);
  CHECK(shipped.uri == bundle.model_file);
  CHECK(shipped.registry_uri.empty());
  CHECK(shipped.resolved_version == "1");
  auto dir = fs::temp_directory_path() / "actorserve_bundle_test";
  fs::remove_all(dir);
  write_model_bundle(bundle, dir.string());
  CHECK(slurp(dir / bundle.model_file) == bundle.files.at(bundle.model_file));
  auto json = relocate_model_json(model_spec_json(shipped), dir.string());
  CHECK(json.find((dir / bundle.model_file).string()) != std::string::npos);
  CHECK(json.find((dir / "labels.json").string()) != std::string::npos);
  CHECK(json.find(R"("resolved_version":"1")") != std::string::npos);
  // The written copy loads as a model of its own.
  auto again = locate_model((dir / bundle.model_file).string(), "");
  CHECK(again.model_path == (dir / bundle.model_file).string());
  fs::remove_all(dir);
}

TEST_CASE("bundle paths that escape their folder are refused") {
  model_bundle bundle;
  bundle.model_file = "model.onnx";
  bundle.files["model.onnx"] = "x";
  bundle.files["../evil"] = "y";
  auto dir = fs::temp_directory_path() / "actorserve_bundle_escape";
  CHECK_THROWS_AS(write_model_bundle(bundle, dir.string()), serve_exception);
  CHECK_FALSE(fs::exists(dir.parent_path() / "evil"));
  CHECK_THROWS_AS(relocate_model_json(R"({"uri":"/etc/passwd"})", dir.string()), serve_exception);
  CHECK_THROWS_AS(relocate_model_json(R"({"uri":"a/../../b"})", dir.string()), serve_exception);
  fs::remove_all(dir);
}

TEST_CASE("a model that cannot be located is refused when the bundle is read") {
  model_spec spec;
  spec.uri = "/nonexistent/model.onnx";
  CHECK_THROWS_AS(read_model_bundle(spec), serve_exception);
}
