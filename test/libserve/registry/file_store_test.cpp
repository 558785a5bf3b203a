// mlflow_file_store and open_registry on a copy of the file store that MLflow 3.17 wrote
// (test/fixtures/mlflow/file/mlruns), edited where a test needs another MLflow version's files
// or a broken store. The semantics shared with the SQLite store are in local_store_test.cpp.
#include "libserve/registry/file_store.hpp"

#include <string>

#include <doctest/doctest.h>

#include "mlflow_fixture.hpp"

using namespace serve;
using namespace serve::registry;
using namespace serve::registry::testing;

namespace {

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

struct file_fixture {
  store_copy copy{"file"};
  fs::path mlruns = copy.dir / "mlruns";
  mlflow_file_store store{mlruns.string(), ""};

  fs::path version_meta(int version) const {
    return mlruns / "models" / "iris" / ("version-" + std::to_string(version)) / "meta.yaml";
  }
  // The experiment folder MLflow made for "iris" (its id is random).
  fs::path experiment() const {
    for (const auto& entry : fs::directory_iterator(mlruns))
      if (fs::exists(entry.path() / copy.ids.full_run))
        return entry.path();
    FAIL("no experiment holds run " << copy.ids.full_run);
    return {};
  }
  resolved_model resolve(const std::string& uri) { return store.resolve(model_uri::parse(uri)); }
};

// A version meta.yaml as MLflow 2.x wrote it: run_uuid, no storage_location, no model_id.
std::string mlflow2_version_meta(const std::string& run_id, const std::string& source) {
  return "creation_timestamp: 1700000000000\ncurrent_stage: Production\ndescription: ''\n"
         "last_updated_timestamp: 1700000000000\nname: iris\nrun_link: ''\nrun_uuid: " +
         run_id + "\nsource: " + source +
         "\nstatus: READY\nstatus_message: null\nuser_id: null\nversion: 1\n";
}

} // namespace

TEST_CASE("mlflow file store: MLflow 2.x version files (run_uuid, source in the run's "
          "artifacts) resolve where the store is now") {
  file_fixture t;
  const auto& ids = t.copy.ids;
  // MLflow 2.x kept the model in the run's artifacts and recorded that folder as the source.
  auto run_model = t.experiment() / ids.full_run / "artifacts" / "model";
  fs::copy(t.experiment() / "models" / ids.full_model / "artifacts", run_model,
           fs::copy_options::recursive);
  auto recorded = "file://" + ids.written_under + "/file/mlruns/" +
                  t.experiment().filename().string() + "/" + ids.full_run + "/artifacts/model";
  write_text(t.version_meta(1), mlflow2_version_meta(ids.full_run, recorded));

  auto model = t.resolve("models:/iris/Production");
  CHECK(model.version == "1");
  CHECK(model.local_dir == run_model.string());
  CHECK(model.source_uri == recorded);
  CHECK(t.store.list_versions("iris").at(0).run_id == ids.full_run);
}

TEST_CASE("mlflow file store: a runs:/ source resolves through the run's logged model") {
  file_fixture t;
  const auto& ids = t.copy.ids;
  write_text(t.version_meta(1),
             mlflow2_version_meta(ids.full_run, "runs:/" + ids.full_run + "/model"));
  auto model = t.resolve("models:/iris/1");
  CHECK(model.local_dir == (t.experiment() / "models" / ids.full_model / "artifacts").string());
  CHECK(model.source_uri == "runs:/" + ids.full_run + "/model");
}

TEST_CASE("mlflow file store: artifacts on a tracking server or in s3 are refused as not "
          "local") {
  file_fixture t;
  auto meta = read_text(t.version_meta(2));
  auto at = meta.find("storage_location: ");
  auto end = meta.find('\n', at);
  write_text(t.version_meta(2), meta.substr(0, at) +
                                    "storage_location: mlflow-artifacts:/1/models/m-1/artifacts" +
                                    meta.substr(end));
  auto message = error_of([&] { t.resolve("models:/iris/Staging"); }, errc::invalid_argument);
  CHECK(message == "models:/iris/Staging (version 2): the artifacts are on a tracking server "
                   "(mlflow-artifacts:/1/models/m-1/artifacts); open the registry through the "
                   "server's http(s):// URI");
  write_text(t.version_meta(2),
             meta.substr(0, at) + "storage_location: s3://bucket/iris/2" + meta.substr(end));
  CHECK(contains(error_of([&] { t.resolve("models:/iris/2"); }, errc::invalid_argument),
                 "the artifacts at s3://bucket/iris/2 are not local"));
}

TEST_CASE("mlflow file store: corrupt or missing meta.yaml is invalid_argument naming the "
          "file") {
  file_fixture t;
  write_text(t.version_meta(2), "version: [2,\n  current_stage: {\n");
  auto message = error_of([&] { t.resolve("models:/iris/latest"); }, errc::invalid_argument);
  CHECK(contains(message, "corrupt YAML in " + t.version_meta(2).string()));

  write_text(t.version_meta(2), "- a list\n- not a mapping\n");
  CHECK(contains(error_of([&] { t.resolve("models:/iris/1"); }, errc::invalid_argument),
                 t.version_meta(2).string() + ": expected a mapping"));

  fs::remove(t.version_meta(2));
  CHECK(contains(error_of([&] { t.resolve("models:/iris/1"); }, errc::invalid_argument),
                 "has no meta.yaml"));
}

TEST_CASE("mlflow file store: an alias naming a deleted version is not_found, saying so") {
  file_fixture t;
  write_text(t.mlruns / "models" / "iris" / "aliases" / "old", "3");
  CHECK(error_of([&] { t.resolve("models:/iris@old"); }, errc::not_found) ==
        "models:/iris@old: alias 'old' of registered model 'iris' names version 3, which was "
        "deleted (versions: 1, 2)");
  write_text(t.mlruns / "models" / "iris" / "aliases" / "bad", "three");
  CHECK(contains(error_of([&] { t.resolve("models:/iris@bad"); }, errc::invalid_argument),
                 "'three' is not a version number"));
}

TEST_CASE("mlflow file store: a version still being registered is unavailable (retry later)") {
  file_fixture t;
  auto meta = read_text(t.version_meta(2));
  meta.replace(meta.find("status: READY"), 13, "status: PENDING_REGISTRATION");
  write_text(t.version_meta(2), meta);
  CHECK(contains(error_of([&] { t.resolve("models:/iris/2"); }, errc::unavailable),
                 "PENDING_REGISTRATION"));
}

TEST_CASE("mlflow file store: missing artifacts are not_found, naming both places looked at") {
  file_fixture t;
  auto artifacts = t.experiment() / "models" / t.copy.ids.full_model / "artifacts";
  fs::remove_all(artifacts);
  auto message = error_of([&] { t.resolve("models:/iris@production"); }, errc::not_found);
  CHECK(contains(message, "models:/iris@production (version 1): artifacts not found at " +
                              t.copy.ids.written_under + "/file/mlruns/"));
  CHECK(contains(message, "nor at " + artifacts.string() + " (where the store is now)"));
}

TEST_CASE("mlflow file store: open_registry takes a folder, a file: URI or a relative path") {
  file_fixture t;
  for (const auto& uri : {t.mlruns.string(), "file://" + t.mlruns.string()}) {
    INFO(uri);
    auto store = open_registry(uri, "");
    CHECK(store->describe() == "MLflow file store " + t.mlruns.string());
    CHECK(store->resolve(model_uri::parse("models:/iris/1")).version == "1");
  }
  auto relative = open_registry("file/mlruns", t.copy.tmp.path().string());
  CHECK(relative->list_models() == std::vector<std::string>{"iris"});
  // A local path URI is taken relative to the same base_dir.
  auto local = relative->resolve(model_uri::parse("file/mlruns/models"));
  CHECK(local.local_dir == (t.mlruns / "models").string());
}

TEST_CASE("mlflow registry: open_registry refuses what it cannot read") {
  temp_dir tmp;
  CHECK(contains(
      error_of([&] { open_registry((tmp.path() / "nope").string(), ""); }, errc::not_found),
      "is not a folder"));
  CHECK(
      contains(error_of([] { open_registry("https://127.0.0.1:5000", ""); }, errc::invalid_argument),
               "https is not supported"));
  CHECK(contains(
      error_of([] { open_registry("postgresql://db/mlflow", ""); }, errc::invalid_argument),
      "scheme 'postgresql:' is not supported"));
  CHECK(contains(error_of([] { open_registry("", ""); }, errc::invalid_argument),
                 "registry_uri is empty"));
  write_text(tmp.path() / "notes.txt", "not a database, not a folder");
  CHECK(contains(error_of([&] { open_registry((tmp.path() / "notes.txt").string(), ""); },
                          errc::invalid_argument),
                 "is a file but not a SQLite database"));
}
