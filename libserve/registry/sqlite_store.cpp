#include "libserve/registry/sqlite_store.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include <sqlite3.h>

#include "libserve/future.hpp"

namespace serve::registry {
namespace fs = std::filesystem;

// One read-only connection and the statements run on it.
class mlflow_sqlite_store::connection {
public:
  class statement {
  public:
    statement(connection& c, const std::string& sql) : c_(c) {
      if (sqlite3_prepare_v2(c_.db_, sql.c_str(), -1, &stmt_, nullptr) != SQLITE_OK)
        c_.fail(sqlite3_errcode(c_.db_), "cannot prepare \"" + sql + "\"");
    }
    ~statement() { sqlite3_finalize(stmt_); }
    statement(const statement&) = delete;
    statement& operator=(const statement&) = delete;

    statement& bind(int index, const std::string& value) {
      sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()),
                        SQLITE_TRANSIENT);
      return *this;
    }
    /// True while there is a row.
    bool step() {
      int rc = sqlite3_step(stmt_);
      if (rc == SQLITE_ROW)
        return true;
      if (rc != SQLITE_DONE)
        c_.fail(rc, "query failed");
      return false;
    }
    std::string text(int column) const {
      auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
      return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, column))) : "";
    }
    int64_t integer(int column) const { return sqlite3_column_int64(stmt_, column); }

  private:
    connection& c_;
    sqlite3_stmt* stmt_ = nullptr;
  };

  connection(const std::string& path, std::chrono::milliseconds busy_timeout) : path_(path) {
    // SQLite URI filename: '%', '?' and '#' in the path must be escaped.
    std::string uri = "file:";
    for (unsigned char c : path) {
      if (c == '%' || c == '?' || c == '#' || c < 0x20) {
        char buf[4];
        std::snprintf(buf, sizeof buf, "%%%02X", c);
        uri += buf;
      } else {
        uri += static_cast<char>(c);
      }
    }
    uri += "?mode=ro";
    int rc = sqlite3_open_v2(uri.c_str(), &db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr);
    if (rc != SQLITE_OK) {
      std::string detail = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
      sqlite3_close(db_); // the destructor does not run for a constructor that throws
      throw serve_exception(errc::invalid_argument,
                            "MLflow SQLite database " + path_ + ": cannot open: " + detail);
    }
    sqlite3_busy_timeout(db_, static_cast<int>(busy_timeout.count()));
  }
  ~connection() { sqlite3_close(db_); }

  [[noreturn]] void fail(int rc, const std::string& what) const {
    std::string detail = sqlite3_errmsg(db_);
    int primary = rc & 0xff;
    auto code = primary == SQLITE_BUSY || primary == SQLITE_LOCKED ? errc::unavailable
                                                                   : errc::invalid_argument;
    throw serve_exception(code, "MLflow SQLite database " + path_ + ": " + what + ": " + detail);
  }

private:
  std::string path_;
  sqlite3* db_ = nullptr;
};

namespace {

std::string absolute_under(const std::string& path, const std::string& base_dir) {
  fs::path p(path);
  if (p.is_relative() && !base_dir.empty())
    p = fs::path(base_dir) / p;
  return join_path(fs::absolute(p).string(), "");
}

} // namespace

mlflow_sqlite_store::mlflow_sqlite_store(const std::string& db_path, const std::string& base_dir,
                                         sqlite_store_options options)
    : local_store(base_dir, artifact_locator("/", {})), path_(absolute_under(db_path, base_dir)) {
  std::error_code ec;
  if (!fs::is_regular_file(path_, ec))
    throw serve_exception(errc::not_found, "MLflow SQLite database " + path_ + " does not exist");
  db_ = std::make_unique<connection>(path_, options.busy_timeout);
  for (const char* table : {"registered_models", "model_versions", "registered_model_aliases",
                            "runs", "logged_models", "experiments"}) {
    connection::statement info(*db_, std::string("PRAGMA table_info(") + table + ")");
    while (info.step())
      columns_.insert(std::string(table) + "." + info.text(1));
  }
  for (const char* required : {"registered_models.name", "model_versions.version",
                               "model_versions.current_stage", "model_versions.source"})
    if (!columns_.count(required))
      throw serve_exception(errc::invalid_argument,
                            "MLflow SQLite database " + path_ +
                                ": not an MLflow tracking database (no column " + required + ")");
  set_locator(artifact_locator(fs::path(path_).parent_path().string(), artifact_root_moves()));
}

mlflow_sqlite_store::~mlflow_sqlite_store() = default;

std::string mlflow_sqlite_store::describe() const {
  return "MLflow SQLite store " + path_;
}

bool mlflow_sqlite_store::has_table(const std::string& table) const {
  auto it = columns_.lower_bound(table + ".");
  return it != columns_.end() && it->compare(0, table.size() + 1, table + ".") == 0;
}

bool mlflow_sqlite_store::has_column(const std::string& table, const std::string& column) const {
  return columns_.count(table + "." + column) != 0;
}

bool mlflow_sqlite_store::has_workspaces() const {
  return has_column("model_versions", "workspace");
}

std::string mlflow_sqlite_store::workspace_filter(const std::string& table) const {
  return has_column(table, "workspace") ? " AND workspace = 'default'" : "";
}

std::vector<artifact_root_move> mlflow_sqlite_store::artifact_root_moves() {
  std::vector<artifact_root_move> moves;
  if (!has_column("experiments", "artifact_location"))
    return moves;
  connection::statement q(*db_, "SELECT experiment_id, artifact_location FROM experiments");
  auto db_dir = fs::path(path_).parent_path();
  while (q.step()) {
    auto root = artifact_locator::recorded_root(q.text(1), q.text(0));
    if (!root || *root == "/")
      continue;
    auto current = (db_dir / fs::path(*root).filename()).string();
    if (*root != current && std::none_of(moves.begin(), moves.end(),
                                         [&](const auto& m) { return m.recorded == *root; }))
      moves.push_back({*root, current});
  }
  return moves;
}

std::vector<std::string> mlflow_sqlite_store::list_models() {
  connection::statement q(*db_, "SELECT name FROM registered_models WHERE 1" +
                                    workspace_filter("registered_models") + " ORDER BY name");
  std::vector<std::string> out;
  while (q.step())
    out.push_back(q.text(0));
  return out;
}

bool mlflow_sqlite_store::has_model(const std::string& name) {
  connection::statement q(*db_, "SELECT 1 FROM registered_models WHERE name = ?1" +
                                    workspace_filter("registered_models"));
  return q.bind(1, name).step();
}

std::vector<version_record> mlflow_sqlite_store::version_records(const std::string& name) {
  auto column = [&](const char* c) {
    return has_column("model_versions", c) ? std::string(c) : "''";
  };
  connection::statement q(*db_, "SELECT version, current_stage, " + column("status") +
                                    ", source, " + column("storage_location") + ", " +
                                    column("run_id") + " FROM model_versions WHERE name = ?1" +
                                    workspace_filter("model_versions"));
  q.bind(1, name);
  std::vector<version_record> out;
  while (q.step())
    out.push_back({q.integer(0), q.text(1), q.text(2), q.text(3), q.text(4), q.text(5)});
  return out;
}

std::map<std::string, int64_t> mlflow_sqlite_store::alias_records(const std::string& name) {
  std::map<std::string, int64_t> out;
  if (!has_table("registered_model_aliases"))
    return out; // MLflow before 2.3
  connection::statement q(*db_, "SELECT alias, version FROM registered_model_aliases "
                                "WHERE name = ?1" +
                                    workspace_filter("registered_model_aliases"));
  q.bind(1, name);
  while (q.step())
    out[q.text(0)] = q.integer(1);
  return out;
}

std::optional<std::string> mlflow_sqlite_store::run_artifact_uri(const std::string& run_id) {
  if (!has_column("runs", "artifact_uri"))
    return std::nullopt;
  connection::statement q(*db_, "SELECT artifact_uri FROM runs WHERE run_uuid = ?1");
  if (!q.bind(1, run_id).step())
    return std::nullopt;
  return q.text(0);
}

std::optional<logged_model_record> mlflow_sqlite_store::logged_model(const std::string& model_id) {
  if (!has_column("logged_models", "artifact_location"))
    return std::nullopt; // MLflow 2.x
  connection::statement q(*db_, "SELECT model_id, artifact_location FROM logged_models "
                                "WHERE model_id = ?1");
  if (!q.bind(1, model_id).step())
    return std::nullopt;
  return logged_model_record{q.text(0), q.text(1)};
}

std::optional<logged_model_record> mlflow_sqlite_store::run_logged_model(const std::string& run_id,
                                                                         const std::string& name) {
  if (!has_column("logged_models", "source_run_id"))
    return std::nullopt;
  auto order = has_column("logged_models", "creation_timestamp_ms")
                   ? " ORDER BY creation_timestamp_ms DESC"
                   : "";
  connection::statement q(*db_, std::string("SELECT model_id, artifact_location FROM "
                                            "logged_models WHERE source_run_id = ?1 AND "
                                            "name = ?2") +
                                    order + " LIMIT 1");
  if (!q.bind(1, run_id).bind(2, name).step())
    return std::nullopt;
  return logged_model_record{q.text(0), q.text(1)};
}

} // namespace serve::registry
