// mlflow_sqlite_store on a copy of the SQLite store that MLflow 3.17 wrote
// (test/fixtures/mlflow/sqlite/mlflow.db + mlruns/), edited with SQLite where a test needs
// another schema (no workspace column, no aliases table) or a broken database. The semantics
// shared with the file store are in local_store_test.cpp.
#include "libserve/registry/sqlite_store.hpp"

#include <string>

#include <doctest/doctest.h>
#include <sqlite3.h>

#include "mlflow_fixture.hpp"

using namespace serve;
using namespace serve::registry;
using namespace serve::registry::testing;

namespace {

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// Runs `sql` on the database at `db` with a connection of its own.
void exec(const fs::path& db, const std::string& sql) {
  sqlite3* handle = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &handle) == SQLITE_OK);
  char* error = nullptr;
  int rc = sqlite3_exec(handle, sql.c_str(), nullptr, nullptr, &error);
  std::string message = error ? error : "";
  sqlite3_free(error);
  sqlite3_close(handle);
  REQUIRE_MESSAGE(rc == SQLITE_OK, message);
}

// Rebuilds `table` without the columns in `drop`, as an older MLflow schema had it.
void drop_columns(const fs::path& db, const std::string& table,
                  const std::vector<std::string>& drop) {
  sqlite3* handle = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &handle) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(handle, ("PRAGMA table_info(" + table + ")").c_str(), -1, &stmt, nullptr);
  std::string keep;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    std::string column = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 1));
    if (std::find(drop.begin(), drop.end(), column) == drop.end())
      keep += (keep.empty() ? "" : ", ") + column;
  }
  sqlite3_finalize(stmt);
  sqlite3_close(handle);
  exec(db, "CREATE TABLE old_" + table + " AS SELECT " + keep + " FROM " + table + "; DROP TABLE " +
               table + "; ALTER TABLE old_" + table + " RENAME TO " + table);
}

struct sqlite_fixture {
  store_copy copy{"sqlite"};
  fs::path db = copy.dir / "mlflow.db";

  std::unique_ptr<mlflow_sqlite_store> open(sqlite_store_options options = {}) {
    return std::make_unique<mlflow_sqlite_store>(db.string(), "", options);
  }
  std::string model_dir(const std::string& model_id) const {
    return (copy.dir / "mlruns" / "1" / "models" / model_id / "artifacts").string();
  }
};

resolved_model resolve(registry_store& store, const std::string& uri) {
  return store.resolve(model_uri::parse(uri));
}

} // namespace

TEST_CASE("mlflow sqlite store: MLflow 3.17 has a workspace column; only 'default' is read") {
  sqlite_fixture t;
  exec(t.db, R"(
    INSERT INTO registered_models (name, workspace) VALUES ('other', 'team-a'), ('iris', 'team-a');
    INSERT INTO model_versions (name, version, current_stage, source, run_id, status,
                                storage_location, workspace)
      SELECT name, 9, 'Production', source, run_id, status, storage_location, 'team-a'
      FROM model_versions WHERE version = 2;
    INSERT INTO registered_model_aliases (alias, version, name, workspace)
      VALUES ('production', 9, 'iris', 'team-a'), ('team', 9, 'iris', 'team-a');
  )");
  auto store = t.open();
  CHECK(store->has_workspaces());
  CHECK(store->list_models() == std::vector<std::string>{"iris"});
  CHECK(resolve(*store, "models:/iris/latest").version == "2");
  CHECK(resolve(*store, "models:/iris@production").version == "1");
  CHECK(store->list_versions("iris").size() == 2);
  error_of([&] { resolve(*store, "models:/iris/9"); }, errc::not_found);
  error_of([&] { resolve(*store, "models:/iris/Production"); }, errc::not_found);
  error_of([&] { resolve(*store, "models:/iris@team"); }, errc::not_found);
  error_of([&] { resolve(*store, "models:/other/latest"); }, errc::not_found);
}

TEST_CASE("mlflow sqlite store: a schema without workspace or storage_location columns gives "
          "the same answers") {
  sqlite_fixture t;
  for (const char* table :
       {"registered_models", "model_versions", "registered_model_aliases", "experiments"})
    drop_columns(t.db, table, {"workspace", "storage_location"});
  auto store = t.open();
  CHECK_FALSE(store->has_workspaces());
  // Without storage_location the source, models:/m-<id>, leads to the logged model.
  auto v1 = resolve(*store, "models:/iris@production");
  CHECK(v1.version == "1");
  CHECK(v1.local_dir == t.model_dir(t.copy.ids.full_model));
  CHECK(v1.source_uri == "models:/" + t.copy.ids.full_model);
  CHECK(resolve(*store, "models:/iris/latest").local_dir == t.model_dir(t.copy.ids.small_model));
  CHECK(resolve(*store, "models:/iris/Staging").version == "2");
  error_of([&] { resolve(*store, "models:/iris/3"); }, errc::not_found);
}

TEST_CASE("mlflow sqlite store: a database from before aliases has none") {
  sqlite_fixture t;
  exec(t.db, "DROP TABLE registered_model_aliases");
  auto store = t.open();
  CHECK(store->aliases("iris").empty());
  CHECK(error_of([&] { resolve(*store, "models:/iris@production"); }, errc::not_found) ==
        "models:/iris@production: registered model 'iris' has no alias 'production' (it has "
        "no aliases)");
}

TEST_CASE("mlflow sqlite store: a corrupt, truncated or foreign database is invalid_argument "
          "naming the file") {
  temp_dir tmp;
  auto db = tmp.path() / "mlflow.db";
  write_text(db, std::string(4096, 'x'));
  auto garbage = error_of([&] { mlflow_sqlite_store(db.string(), ""); }, errc::invalid_argument);
  CHECK(contains(garbage, "MLflow SQLite database " + db.string()));
  CHECK(contains(garbage, "not a database"));

  auto whole = read_text(fixtures_dir() / "sqlite" / "mlflow.db");
  write_text(db, whole.substr(0, 2048));
  CHECK(contains(
      error_of([&] { open_registry("sqlite:///" + db.string(), ""); }, errc::invalid_argument),
      db.string()));

  fs::remove(db);
  exec(db, "CREATE TABLE notes (text TEXT)");
  CHECK(contains(error_of([&] { mlflow_sqlite_store(db.string(), ""); }, errc::invalid_argument),
                 "not an MLflow tracking database"));

  CHECK(contains(error_of([&] { mlflow_sqlite_store((tmp.path() / "none.db").string(), ""); },
                          errc::not_found),
                 "does not exist"));
}

TEST_CASE("mlflow sqlite store: a database locked by a writer is unavailable (retry later)") {
  sqlite_fixture t;
  auto store = t.open({std::chrono::milliseconds(0)});
  sqlite3* writer = nullptr;
  REQUIRE(sqlite3_open(t.db.c_str(), &writer) == SQLITE_OK);
  REQUIRE(sqlite3_exec(writer, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);
  auto message = error_of([&] { store->list_models(); }, errc::unavailable);
  sqlite3_exec(writer, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(writer);
  CHECK(contains(message, "locked"));
  CHECK(store->list_models() == std::vector<std::string>{"iris"});
}

TEST_CASE("mlflow sqlite store: reading leaves the database untouched") {
  sqlite_fixture t;
  auto before = read_text(t.db);
  {
    auto store = t.open();
    resolve(*store, "models:/iris@production");
    store->list_versions("iris");
  }
  CHECK(read_text(t.db) == before);
  CHECK_FALSE(fs::exists(t.copy.dir / "mlflow.db-journal"));
}

TEST_CASE("mlflow sqlite store: a database moved without its artifacts says where it looked") {
  sqlite_fixture t;
  temp_dir alone;
  fs::copy_file(t.db, alone.path() / "mlflow.db");
  mlflow_sqlite_store store((alone.path() / "mlflow.db").string(), "");
  auto message = error_of([&] { resolve(store, "models:/iris/1"); }, errc::not_found);
  CHECK(contains(message, "artifacts not found at " + t.copy.ids.written_under));
  CHECK(contains(message, "nor at " + alone.path().string() + "/mlruns/1/models/" +
                              t.copy.ids.full_model + "/artifacts (where the store is now)"));
}

TEST_CASE("mlflow sqlite store: open_registry takes sqlite:/// relative or absolute, a plain "
          "path, and odd characters in it") {
  sqlite_fixture t;
  auto base = t.copy.dir.string();
  for (const auto& [uri, base_dir] :
       std::vector<std::pair<std::string, std::string>>{{"sqlite:///mlflow.db", base},
                                                        {"sqlite:///" + t.db.string(), ""},
                                                        {"mlflow.db", base}}) {
    INFO(uri);
    auto store = open_registry(uri, base_dir);
    CHECK(store->describe() == "MLflow SQLite store " + t.db.string());
    CHECK(resolve(*store, "models:/iris@production").version == "1");
  }
  CHECK(contains(error_of([] { open_registry("sqlite://", ""); }, errc::invalid_argument),
                 "in-memory"));
  CHECK(contains(
      error_of([&] { open_registry("sqlite:///mlflow.db?mode=rw", base); }, errc::invalid_argument),
      "query parameters"));

  // '?', '#' and '%' must not end the SQLite URI filename.
  auto odd = t.copy.tmp.path() / "a?b#c%d";
  fs::copy(t.copy.dir, odd, fs::copy_options::recursive);
  mlflow_sqlite_store store((odd / "mlflow.db").string(), "");
  CHECK(resolve(store, "models:/iris/1").local_dir ==
        (odd / "mlruns" / "1" / "models" / t.copy.ids.full_model / "artifacts").string());
}
