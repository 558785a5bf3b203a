// MLflow's registry semantics (libserve/registry/local_store.cpp), checked the same way against
// the file store and the SQLite store that real MLflow wrote (test/fixtures/mlflow): versions,
// latest, stages, aliases, deleted versions, logged models, runs, and the messages for what is
// missing. Each test works on its own copy of the store in a temporary folder, which also
// checks that a store moved after MLflow wrote it is read where it is now.
#include "libserve/registry/local_store.hpp"

#include <string>

#include <doctest/doctest.h>

#include "libserve/onnx/model.hpp"
#include "libserve/registry/mlmodel.hpp"
#include "mlflow_fixture.hpp"

using namespace serve;
using namespace serve::registry;
using namespace serve::registry::testing;

namespace {

struct file_store_kind {
  static constexpr const char* fixture = "file";
  static std::string registry_uri(const store_copy& c) { return (c.dir / "mlruns").string(); }
};

struct sqlite_store_kind {
  static constexpr const char* fixture = "sqlite";
  // An absolute path after sqlite:/// makes SQLAlchemy's four slashes.
  static std::string registry_uri(const store_copy& c) {
    return "sqlite:///" + (c.dir / "mlflow.db").string();
  }
};

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

template <class Kind> struct opened {
  store_copy copy{Kind::fixture};
  std::unique_ptr<registry_store> store = open_registry(Kind::registry_uri(copy), "");

  resolved_model resolve(const std::string& uri) { return store->resolve(model_uri::parse(uri)); }
  std::string error(const std::string& uri, errc code) {
    return error_of([&] { resolve(uri); }, code);
  }
  std::string model_dir(const std::string& model_id) const {
    return "/models/" + model_id + "/artifacts";
  }
};

} // namespace

TYPE_TO_STRING(file_store_kind);
TYPE_TO_STRING(sqlite_store_kind);

TEST_CASE_TEMPLATE("mlflow registry: a version number resolves to that version's artifacts, "
                   "found where the store is now",
                   Kind, file_store_kind, sqlite_store_kind) {
  opened<Kind> t;
  auto model = t.resolve("models:/iris/1");
  CHECK(model.name == "iris");
  CHECK(model.version == "1");
  CHECK(model.description == "models:/iris/1 -> version 1");
  CHECK(ends_with(model.local_dir, t.model_dir(t.copy.ids.full_model)));
  CHECK(starts_with(model.local_dir, t.copy.dir.string() + "/"));
  // MLflow recorded the folder it wrote the store in, which is gone.
  CHECK(model.source_uri.find(t.copy.ids.written_under) != std::string::npos);
  CHECK(fs::is_regular_file(model.local_dir + "/MLmodel"));
}

TEST_CASE_TEMPLATE("mlflow registry: latest is the highest version that is not deleted", Kind,
                   file_store_kind, sqlite_store_kind) {
  opened<Kind> t;
  for (const char* uri : {"models:/iris/latest", "models:/iris/LATEST", "models:/iris@latest"}) {
    INFO(uri);
    auto model = t.resolve(uri);
    CHECK(model.version == "2"); // version 3 was deleted
    CHECK(ends_with(model.local_dir, t.model_dir(t.copy.ids.small_model)));
  }
}

TEST_CASE_TEMPLATE("mlflow registry: a stage resolves to the highest version in it, any case", Kind,
                   file_store_kind, sqlite_store_kind) {
  opened<Kind> t;
  CHECK(t.resolve("models:/iris/Staging").version == "2");
  CHECK(t.resolve("models:/iris/staging").version == "2");
  CHECK(t.resolve("models:/iris/None").version == "1");
  CHECK(t.error("models:/iris/Production", errc::not_found) ==
        "models:/iris/Production: registered model 'iris' has no version in stage 'Production' "
        "(versions: 1 None, 2 Staging)");
}

TEST_CASE_TEMPLATE("mlflow registry: an alias resolves to the version it names", Kind,
                   file_store_kind, sqlite_store_kind) {
  opened<Kind> t;
  auto model = t.resolve("models:/iris@production");
  CHECK(model.version == "1");
  CHECK(model.description == "models:/iris@production -> version 1");
  CHECK(ends_with(model.local_dir, t.model_dir(t.copy.ids.full_model)));
  CHECK(t.error("models:/iris@prod", errc::not_found) ==
        "models:/iris@prod: registered model 'iris' has no alias 'prod' (aliases: production)");
  // Aliases are case-sensitive in MLflow.
  CHECK(t.error("models:/iris@Production", errc::not_found).find("no alias 'Production'") !=
        std::string::npos);
}

TEST_CASE_TEMPLATE("mlflow registry: a deleted version is absent", Kind, file_store_kind,
                   sqlite_store_kind) {
  opened<Kind> t;
  CHECK(t.error("models:/iris/3", errc::not_found) ==
        "models:/iris/3: registered model 'iris' has no version 3 (it was deleted; versions: 1, "
        "2)");
  auto versions = t.store->list_versions("iris");
  REQUIRE(versions.size() == 2);
  CHECK(versions[0].version == 1);
  CHECK(versions[0].stage == "None");
  CHECK(versions[0].status == "READY");
  CHECK(versions[0].aliases == std::vector<std::string>{"production"});
  CHECK(versions[0].source == "models:/" + t.copy.ids.full_model);
  CHECK(versions[0].run_id == t.copy.ids.full_run);
  CHECK(versions[1].version == 2);
  CHECK(versions[1].stage == "Staging");
  CHECK(versions[1].aliases.empty());
}

TEST_CASE_TEMPLATE("mlflow registry: unknown models and versions are not_found, naming what "
                   "exists",
                   Kind, file_store_kind, sqlite_store_kind) {
  opened<Kind> t;
  CHECK(t.error("models:/iris/7", errc::not_found) ==
        "models:/iris/7: registered model 'iris' has no version 7 (versions: 1, 2)");
  auto unknown = t.error("models:/irs/1", errc::not_found);
  CHECK(starts_with(unknown, "models:/irs/1: no registered model 'irs' in MLflow "));
  CHECK(ends_with(unknown, " (models: iris)"));
  CHECK(t.error("models:/m-0123abcd", errc::not_found).find("no logged model 'm-0123abcd'") !=
        std::string::npos);
  CHECK(t.error("runs:/0123abcd/model", errc::not_found).find("no run '0123abcd'") !=
        std::string::npos);
  error_of([&] { t.store->list_versions("irs"); }, errc::not_found);
  error_of([&] { t.store->aliases("irs"); }, errc::not_found);
}

TEST_CASE_TEMPLATE("mlflow registry: names that would leave the store are refused", Kind,
                   file_store_kind, sqlite_store_kind) {
  opened<Kind> t;
  for (const char* name : {"..", ".", "a/b", "../iris", ""}) {
    INFO(name);
    error_of([&] { t.store->list_versions(name); }, errc::invalid_argument);
    error_of([&] { t.store->aliases(name); }, errc::invalid_argument);
  }
  error_of([&] { model_uri::parse("models:/../1"); }, errc::invalid_argument);
  error_of([&] { model_uri::parse("runs:/" + t.copy.ids.full_run + "/../../models"); },
           errc::invalid_argument);
}

TEST_CASE_TEMPLATE("mlflow registry: lists models, versions and aliases", Kind, file_store_kind,
                   sqlite_store_kind) {
  opened<Kind> t;
  CHECK(t.store->list_models() == std::vector<std::string>{"iris"});
  CHECK(t.store->aliases("iris") == std::map<std::string, int64_t>{{"production", 1}});
  CHECK(t.store->describe().find(t.copy.dir.string()) != std::string::npos);
}

TEST_CASE_TEMPLATE("mlflow registry: models:/m-<id> resolves to a logged model's artifacts", Kind,
                   file_store_kind, sqlite_store_kind) {
  opened<Kind> t;
  auto model = t.resolve("models:/" + t.copy.ids.small_model);
  CHECK(model.version.empty());
  CHECK(ends_with(model.local_dir, t.model_dir(t.copy.ids.small_model)));
  CHECK(model.description ==
        "models:/" + t.copy.ids.small_model + " -> logged model " + t.copy.ids.small_model);
}

TEST_CASE_TEMPLATE("mlflow registry: runs:/ finds the run's logged model, else its artifacts", Kind,
                   file_store_kind, sqlite_store_kind) {
  opened<Kind> t;
  const auto& ids = t.copy.ids;
  auto model = t.resolve("runs:/" + ids.full_run + "/model");
  CHECK(ends_with(model.local_dir, t.model_dir(ids.full_model)));
  CHECK(model.description.find("logged model " + ids.full_model + " of run " + ids.full_run) !=
        std::string::npos);
  CHECK(ends_with(t.resolve("runs:/" + ids.full_run + "/model/MLmodel").local_dir,
                  t.model_dir(ids.full_model) + "/MLmodel"));

  auto labels = t.resolve("runs:/" + ids.full_run + "/labels.json");
  CHECK(ends_with(labels.local_dir, "/" + ids.full_run + "/artifacts/labels.json"));
  CHECK(starts_with(labels.local_dir, t.copy.dir.string() + "/"));
  CHECK(ends_with(t.resolve("runs:/" + ids.full_run).local_dir, "/artifacts"));

  CHECK(t.error("runs:/" + ids.small_run + "/labels.json", errc::not_found)
            .find("run '" + ids.small_run +
                  "' has no artifact 'labels.json' and no logged model named 'labels.json'") !=
        std::string::npos);
}

TEST_CASE_TEMPLATE("mlflow registry: the resolved folder loads as the iris model with 4 FP32 "
                   "input columns",
                   Kind, file_store_kind, sqlite_store_kind) {
  opened<Kind> t;
  for (const char* uri : {"models:/iris@production", "models:/iris/Staging"}) {
    INFO(uri);
    auto resolved = t.resolve(uri);
    auto folder = read_model_folder(resolved.local_dir);
    CHECK(folder.model_file == "model.onnx");
    auto model = onnx_ir::onnx_model::load(resolved.local_dir + "/" + folder.model_file);
    const auto& inputs = model->info().inputs;
    REQUIRE(inputs.size() == 1);
    CHECK(inputs[0].name == "float_input");
    CHECK(inputs[0].type == dtype::float32);
    REQUIRE(inputs[0].dims.size() == 2);
    CHECK(inputs[0].dims[1] == 4);
    // The guide's request is virginica (class 2) for both models.
    auto outputs =
        model->run({{"float_input", tensor::from(dtype::float32, {1, 4},
                                                 std::vector<float>{6.3f, 3.3f, 6.0f, 2.5f})}});
    CHECK(outputs.at(0).t.template as<int64_t>()[0] == 2);
  }
}
