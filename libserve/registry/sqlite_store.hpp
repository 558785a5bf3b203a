// An MLflow SQL store kept in SQLite (MLFLOW_TRACKING_URI=sqlite:///mlflow.db, the default of
// MLflow 3.7+) read as a model registry with libsqlite3, read-only. Nothing is cached: every call
// queries the database, so versions and aliases that MLflow adds are seen at once.
//
// Tables read: registered_models, model_versions (version, current_stage, source,
// storage_location, run_id, status), registered_model_aliases (MLflow 2.3+), runs
// (artifact_uri), logged_models (MLflow 3), experiments (artifact_location, for relocation).
// Newer schemas (MLflow 3.17 already) add a `workspace` column; where a table has it, only rows
// of workspace 'default' are read. Columns are detected with PRAGMA table_info, so older schemas
// (no storage_location, no aliases table, no logged_models) work too.
//
// Artifact locations are usually plain absolute paths. A database moved together with its
// artifact root (MLflow's default layout: mlflow.db and mlruns/ side by side) is read where it
// is now: a recorded root X is looked for as <folder of the database>/<last part of X>.
#pragma once

#include <chrono>
#include <memory>
#include <set>
#include <string>

#include "libserve/registry/local_store.hpp"

namespace serve::registry {

struct sqlite_store_options {
  /// How long a query waits for a writer (MLflow) that holds the database lock before the call
  /// fails with errc::unavailable. 0 = fail at once.
  std::chrono::milliseconds busy_timeout{5'000};
};

/// Not thread-safe (see registry_store): one connection, used by one owner.
class mlflow_sqlite_store : public local_store {
public:
  /// Opens `db_path` (absolute, or relative to `base_dir`) read-only. Throws serve_exception:
  /// not_found when the file does not exist, invalid_argument naming the file when it is not a
  /// SQLite database or has no MLflow registry tables.
  mlflow_sqlite_store(const std::string& db_path, const std::string& base_dir,
                      sqlite_store_options options = {});
  ~mlflow_sqlite_store() override;

  std::vector<std::string> list_models() override;
  std::string describe() const override;

  const std::string& path() const { return path_; }
  /// True when registry rows are filtered by workspace = 'default'.
  bool has_workspaces() const;

protected:
  bool has_model(const std::string& name) override;
  std::vector<version_record> version_records(const std::string& name) override;
  std::map<std::string, int64_t> alias_records(const std::string& name) override;
  std::optional<std::string> run_artifact_uri(const std::string& run_id) override;
  std::optional<logged_model_record> logged_model(const std::string& model_id) override;
  std::optional<logged_model_record> run_logged_model(const std::string& run_id,
                                                      const std::string& name) override;

private:
  class connection;
  bool has_table(const std::string& table) const;
  bool has_column(const std::string& table, const std::string& column) const;
  /// " AND workspace = 'default'" when `table` has that column, else "".
  std::string workspace_filter(const std::string& table) const;
  std::vector<artifact_root_move> artifact_root_moves();

  std::string path_;
  std::unique_ptr<connection> db_;
  /// "table.column" for every column of the tables read; constant after construction.
  std::set<std::string> columns_;
};

} // namespace serve::registry
