// mlflow_file_store_writer: models registered into a fresh store and into a copy of the store
// MLflow 3.17 wrote (test/fixtures/mlflow/file), read back through open_registry. That MLflow
// itself reads what the writer writes is checked by test/e2e/test_registry_cli.py.
#include "libserve/registry/file_store_writer.hpp"

#include <set>
#include <string>

#include <doctest/doctest.h>

#include "libserve/registry/mlmodel.hpp"
#include "libserve/registry/registry_store.hpp"
#include "libserve/registry/yaml_file.hpp"
#include "mlflow_fixture.hpp"

using namespace serve;
using namespace serve::registry;
using namespace serve::registry::testing;

namespace {

constexpr int64_t fixed_ms = 1700000000123;

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

fs::path iris_folder() {
  return fixtures_dir().parent_path().parent_path().parent_path() / "apps" / "examples" / "models" /
         "iris";
}

register_options fixed_clock(bool relative = false) {
  register_options options;
  options.relative_locations = relative;
  options.now_ms = [] { return fixed_ms; };
  options.user = "tester";
  return options;
}

std::set<std::string> keys_of(const fs::path& yaml) {
  std::set<std::string> keys;
  for (const auto& entry : read_yaml_map(yaml.string()))
    keys.insert(entry.first.as<std::string>());
  return keys;
}

std::vector<std::string> leftovers(const fs::path& root) {
  std::vector<std::string> out;
  for (const auto& entry : fs::recursive_directory_iterator(root))
    if (contains(entry.path().filename().string(), ".tmp-"))
      out.push_back(entry.path().string());
  return out;
}

// The experiment folder MLflow made for "iris" in a copy of the fixture (its id is random).
fs::path mlflow_experiment(const store_copy& copy) {
  for (const auto& entry : fs::directory_iterator(copy.dir / "mlruns"))
    if (fs::exists(entry.path() / copy.ids.full_run))
      return entry.path();
  FAIL("no experiment holds run " << copy.ids.full_run);
  return {};
}

resolved_model resolve(const fs::path& store, const std::string& uri) {
  return open_registry(store.string(), "")->resolve(model_uri::parse(uri));
}

} // namespace

TEST_CASE("a folder with just model.onnx registers as version 1 and reads back through "
          "open_registry") {
  temp_dir tmp;
  auto mlruns = tmp.path() / "mlruns"; // created by the writer
  mlflow_file_store_writer writer(mlruns.string(), fixed_clock());
  auto v = writer.register_folder(iris_folder().string(), "iris");
  CHECK(v.version == 1);
  CHECK(v.created_model);
  CHECK(v.wrote_mlmodel);
  CHECK(v.source == "models:/" + v.model_id);
  CHECK(v.model_id.size() == 34);
  CHECK(v.storage_location == "file://" + v.artifacts_dir);
  CHECK(v.artifacts_dir == (mlruns / "0" / "models" / v.model_id / "artifacts").string());

  auto store = open_registry(mlruns.string(), "");
  CHECK(store->list_models() == std::vector<std::string>{"iris"});
  auto versions = store->list_versions("iris");
  REQUIRE(versions.size() == 1);
  CHECK(versions[0].version == 1);
  CHECK(versions[0].stage == "None");
  CHECK(versions[0].status == "READY");
  CHECK(versions[0].source == v.source);
  CHECK(versions[0].storage_location == v.storage_location);

  auto model = store->resolve(model_uri::parse("models:/iris/latest"));
  CHECK(model.version == "1");
  CHECK(model.local_dir == v.artifacts_dir);
  CHECK(fs::exists(fs::path(model.local_dir) / "labels.json"));
  auto folder = read_model_folder(model.local_dir);
  CHECK(folder.has_mlmodel);
  CHECK(folder.model_id == v.model_id);
  REQUIRE(folder.has_signature);
  REQUIRE(folder.inputs.size() == 1);
  CHECK(folder.inputs[0].name == "float_input");
  CHECK(folder.inputs[0].dtype == "float32");
  CHECK(folder.inputs[0].shape == std::vector<int64_t>{-1, 4});
  CHECK(folder.outputs.size() == 2);
}

TEST_CASE("the files carry the keys MLflow 3.17 writes, and the injected clock's timestamps") {
  temp_dir tmp;
  auto mlruns = tmp.path() / "mlruns";
  mlflow_file_store_writer writer(mlruns.string(), fixed_clock());
  auto v = writer.register_folder(iris_folder().string(), "iris");
  writer.set_alias("iris", "production", 1);

  store_copy mlflow("file");
  auto theirs = mlflow.dir / "mlruns";
  auto their_model = mlflow_experiment(mlflow) / "models" / mlflow.ids.full_model;
  CHECK(keys_of(mlruns / "models/iris/meta.yaml") == keys_of(theirs / "models/iris/meta.yaml"));
  CHECK(keys_of(mlruns / "models/iris/version-1/meta.yaml") ==
        keys_of(theirs / "models/iris/version-1/meta.yaml"));
  CHECK(keys_of(mlruns / "0/meta.yaml") == keys_of(theirs / "0/meta.yaml"));
  CHECK(keys_of(mlruns / "0/models" / v.model_id / "meta.yaml") ==
        keys_of(their_model / "meta.yaml"));
  CHECK(read_text(mlruns / "models/iris/aliases/production") == "1");
  CHECK(read_text(mlruns / "0/models" / v.model_id / "tags/mlflow.modelVersions") ==
        R"([{"name": "iris", "version": 1}])");
  CHECK(read_text(mlruns / "0/models" / v.model_id / "tags/mlflow.user") == "tester");

  auto meta = read_text(mlruns / "models/iris/version-1/meta.yaml");
  CHECK(contains(meta, "creation_timestamp: 1700000000123\n"));
  CHECK(contains(meta, "version: 1\n"));
  CHECK(contains(meta, "current_stage: None\n"));
  CHECK(contains(meta, "run_id: null\n"));
  auto model_meta = read_text(mlruns / "models/iris/meta.yaml");
  CHECK(contains(model_meta, "aliases:\n  production: '1'\n"));
  CHECK(contains(read_text(mlruns / "0/meta.yaml"), "experiment_id: '0'\n"));
  CHECK(leftovers(mlruns).empty());
}

TEST_CASE("versions count up, latest follows, and an alias can be set, moved and deleted") {
  temp_dir tmp;
  auto mlruns = tmp.path() / "mlruns";
  mlflow_file_store_writer writer(mlruns.string(), fixed_clock());
  auto v1 = writer.register_folder(iris_folder().string(), "iris");
  auto v2 = writer.register_folder(iris_folder().string(), "iris");
  CHECK(v2.version == 2);
  CHECK_FALSE(v2.created_model);
  CHECK(v2.model_id != v1.model_id);
  CHECK(resolve(mlruns, "models:/iris/latest").local_dir == v2.artifacts_dir);

  CHECK(writer.set_alias("iris", "production", 1) == 0);
  CHECK(resolve(mlruns, "models:/iris@production").version == "1");
  CHECK(writer.set_alias("iris", "production", 2) == 1);
  auto model = resolve(mlruns, "models:/iris@production");
  CHECK(model.version == "2");
  CHECK(model.local_dir == v2.artifacts_dir);
  CHECK(open_registry(mlruns.string(), "")->aliases("iris") ==
        std::map<std::string, int64_t>{{"production", 2}});

  CHECK(writer.delete_alias("iris", "production") == 2);
  CHECK(open_registry(mlruns.string(), "")->aliases("iris").empty());
  CHECK(contains(read_text(mlruns / "models/iris/meta.yaml"), "aliases: {}\n"));
  CHECK(leftovers(mlruns).empty());
}

TEST_CASE("registering into a store MLflow wrote continues after its deleted version") {
  store_copy copy("file");
  auto mlruns = copy.dir / "mlruns";
  mlflow_file_store_writer writer(mlruns.string(), fixed_clock());
  auto v = writer.register_folder(iris_folder().string(), "iris");
  CHECK(v.version == 4); // version 3 was deleted; MLflow never reuses its number
  CHECK_FALSE(v.created_model);
  writer.set_alias("iris", "production", 4);
  auto model = resolve(mlruns, "models:/iris@production");
  CHECK(model.version == "4");
  CHECK(model.local_dir == v.artifacts_dir);
  // MLflow's own versions still resolve where the store is now.
  CHECK(resolve(mlruns, "models:/iris/Staging").version == "2");
  std::vector<int64_t> live;
  for (const auto& info : open_registry(mlruns.string(), "")->list_versions("iris"))
    live.push_back(info.version);
  CHECK(live == std::vector<int64_t>{1, 2, 4});
}

TEST_CASE("a store written with relative locations resolves after it is copied elsewhere") {
  temp_dir tmp;
  auto mlruns = tmp.path() / "a" / "mlruns";
  mlflow_file_store_writer writer(mlruns.string(), fixed_clock(/*relative=*/true));
  auto v = writer.register_folder(iris_folder().string(), "iris");
  writer.set_alias("iris", "production", v.version);
  CHECK(v.storage_location == "mlruns/0/models/" + v.model_id + "/artifacts");
  CHECK_FALSE(contains(read_text(mlruns / "0/meta.yaml"), tmp.path().string()));

  fs::copy(tmp.path() / "a", tmp.path() / "b", fs::copy_options::recursive);
  fs::remove_all(tmp.path() / "a");
  auto model = resolve(tmp.path() / "b" / "mlruns", "models:/iris@production");
  CHECK(model.local_dir ==
        (tmp.path() / "b" / "mlruns" / "0" / "models" / v.model_id / "artifacts").string());
}

TEST_CASE("a store written with absolute locations resolves after it is moved") {
  temp_dir tmp;
  auto mlruns = tmp.path() / "a" / "mlruns";
  mlflow_file_store_writer writer(mlruns.string(), fixed_clock());
  auto v = writer.register_folder(iris_folder().string(), "iris");
  fs::rename(tmp.path() / "a", tmp.path() / "b");
  auto model = resolve(tmp.path() / "b" / "mlruns", "models:/iris/1");
  CHECK(model.local_dir ==
        (tmp.path() / "b" / "mlruns" / "0" / "models" / v.model_id / "artifacts").string());
}

TEST_CASE("a folder that already has MLmodel is copied as it is") {
  store_copy copy("file");
  auto logged = mlflow_experiment(copy) / "models" / copy.ids.full_model / "artifacts";
  temp_dir tmp;
  mlflow_file_store_writer writer((tmp.path() / "mlruns").string(), fixed_clock());
  auto v = writer.register_folder(logged.string(), "from-mlflow");
  CHECK_FALSE(v.wrote_mlmodel);
  CHECK(read_text(fs::path(v.artifacts_dir) / "MLmodel") == read_text(logged / "MLmodel"));
  CHECK(read_model_folder(v.artifacts_dir).has_signature);
}

TEST_CASE("bad model names, aliases and versions are refused naming them") {
  temp_dir tmp;
  auto mlruns = tmp.path() / "mlruns";
  mlflow_file_store_writer writer(mlruns.string(), fixed_clock());
  for (const char* name : {"a/b", "..", ".", "a:b", "50%", " "}) {
    auto message = error_of([&] { writer.register_folder(iris_folder().string(), name); },
                            errc::invalid_argument);
    CHECK_MESSAGE(contains(message, name), message);
  }
  CHECK_FALSE(fs::exists(mlruns / "models" / "a"));
  writer.register_folder(iris_folder().string(), "iris");
  for (const char* alias : {"latest", "Latest", "v1", "V12", "a b", "", "x/y"})
    error_of([&] { writer.set_alias("iris", alias, 1); }, errc::invalid_argument);
  CHECK(contains(error_of([&] { writer.set_alias("iris", "prod", 7); }, errc::not_found),
                 "has no version 7 (versions: 1)"));
  CHECK(contains(error_of([&] { writer.set_alias("nope", "prod", 1); }, errc::not_found),
                 "no registered model 'nope'"));
  CHECK(contains(error_of([&] { writer.delete_alias("iris", "prod"); }, errc::not_found),
                 "has no alias 'prod' (it has no aliases)"));
  CHECK(leftovers(mlruns).empty());
}

TEST_CASE("folders that are not models ActorServe loads are refused before anything is written") {
  temp_dir tmp;
  auto mlruns = tmp.path() / "mlruns";
  mlflow_file_store_writer writer(mlruns.string(), fixed_clock());
  error_of([&] { writer.register_folder((tmp.path() / "missing").string(), "m"); },
           errc::not_found);
  write_text(tmp.path() / "empty" / "README", "no model here");
  CHECK(contains(error_of([&] { writer.register_folder((tmp.path() / "empty").string(), "m"); },
                          errc::invalid_argument),
                 "neither MLmodel nor model.onnx"));
  write_text(tmp.path() / "corrupt" / "model.onnx", "not a protobuf");
  CHECK(contains(error_of([&] { writer.register_folder((tmp.path() / "corrupt").string(), "m"); },
                          errc::invalid_argument),
                 "ActorServe cannot load model.onnx"));
  error_of([&] { writer.register_folder((iris_folder() / "model.onnx").string(), "m"); },
           errc::invalid_argument);
  CHECK_FALSE(fs::exists(mlruns / "models" / "m"));
  CHECK_FALSE(fs::exists(mlruns / "0"));
}

TEST_CASE("writing needs a file store folder: SQLite stores, servers and other folders are "
          "refused") {
  auto message = error_of([] { file_store_folder_for_writing("sqlite:///mlflow.db", ""); },
                          errc::invalid_argument);
  CHECK(contains(message, "writing needs an MLflow file store folder; sqlite:///mlflow.db is an "
                          "MLflow SQLite store"));
  CHECK(contains(error_of([] { file_store_folder_for_writing("http://127.0.0.1:5000", ""); },
                          errc::invalid_argument),
                 "is an MLflow tracking server"));
  auto db = (fixtures_dir() / "sqlite" / "mlflow.db").string();
  CHECK(contains(error_of([&] { file_store_folder_for_writing(db, ""); }, errc::invalid_argument),
                 "is a SQLite database"));
  CHECK(file_store_folder_for_writing("file:///tmp/x/mlruns", "") == "/tmp/x/mlruns");
  CHECK(file_store_folder_for_writing("mlruns", "/srv") == "/srv/mlruns");
  CHECK(contains(error_of([] { mlflow_file_store_writer(iris_folder().string(), {}); },
                          errc::invalid_argument),
                 "is not an MLflow file store"));
  temp_dir tmp;
  error_of([&] { mlflow_file_store_writer((tmp.path() / "none").string(), {}, false); },
           errc::not_found);
}
