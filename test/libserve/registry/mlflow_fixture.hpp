// The MLflow stores in test/fixtures/mlflow (written by real MLflow through
// scripts/make_mlflow_fixtures.py), copied into a fresh temporary folder per test so that a
// test may edit them, and the ids MLflow gave their runs and logged models (ids.json).
//
// What both stores hold: registered model "iris" with version 1 (the guide's iris model, alias
// production), version 2 (a 10-tree iris model, stage Staging), version 3 (deleted); run
// "full" logged labels.json as a run artifact and the model of version 1 as logged model
// "model"; run "small" logged the model of version 2.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include "libserve/future.hpp"

namespace serve::registry::testing {

namespace fs = std::filesystem;

inline fs::path fixtures_dir() {
#ifdef ACTORSERVE_SOURCE_DIR
  return fs::path(ACTORSERVE_SOURCE_DIR) / "test" / "fixtures" / "mlflow";
#else
  return fs::path(__FILE__).parent_path().parent_path().parent_path() / "fixtures" / "mlflow";
#endif
}

inline std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline void write_text(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

/// A temporary folder, removed with everything in it at the end of the test.
class temp_dir {
public:
  temp_dir() {
    std::string pattern = (fs::temp_directory_path() / "actorserve-registry-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const fs::path& path() const { return path_; }

private:
  fs::path path_;
};

/// The ids MLflow gave one store's runs and logged models.
struct store_ids {
  std::string full_run, full_model, small_run, small_model;
  /// The temporary folder MLflow wrote the stores under (gone since).
  std::string written_under;
};

inline store_ids read_ids(const std::string& store) {
  rapidjson::Document doc;
  doc.Parse(read_text(fixtures_dir() / "ids.json").c_str());
  REQUIRE(doc.IsObject());
  const auto& s = doc[store.c_str()];
  return {s["full_run"].GetString(), s["full_model"].GetString(), s["small_run"].GetString(),
          s["small_model"].GetString(), doc["written_under"].GetString()};
}

/// A copy of test/fixtures/mlflow/<store> (file or sqlite) in a temporary folder.
struct store_copy {
  temp_dir tmp;
  fs::path dir;
  store_ids ids;

  explicit store_copy(const std::string& store) : dir(tmp.path() / store), ids(read_ids(store)) {
    fs::copy(fixtures_dir() / store, dir, fs::copy_options::recursive);
  }
};

/// Runs `f`, which must throw serve_exception with `code`; returns the message.
template <class F> std::string error_of(F&& f, errc code) {
  try {
    f();
  } catch (const serve_exception& e) {
    CHECK_MESSAGE(e.code() == code, "wrong code for: ", e.what());
    return e.what();
  }
  FAIL("no serve_exception thrown");
  return "";
}

} // namespace serve::registry::testing
