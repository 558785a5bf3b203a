#include "libserve/registry/registry_store.hpp"
#include "libserve/registry/tracking_server_store.hpp"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "libserve/future.hpp"
#include "libserve/registry/artifact_locator.hpp"
#include "libserve/registry/file_store.hpp"
#include "libserve/registry/sqlite_store.hpp"

namespace serve::registry {
namespace {

constexpr const char* accepted =
    "an MLflow file store folder (mlruns), a file: URI, sqlite:///relative/mlflow.db or "
    "sqlite:////absolute/mlflow.db";

[[noreturn]] void refuse(const std::string& uri, const std::string& problem) {
  throw serve_exception(errc::invalid_argument, "registry_uri \"" + uri + "\": " + problem);
}

bool is_sqlite_file(const std::string& path) {
  char header[16] = {};
  std::ifstream in(path, std::ios::binary);
  in.read(header, sizeof header);
  return in.gcount() == sizeof header && std::memcmp(header, "SQLite format 3", 16) == 0;
}

// SQLAlchemy's form, which MLflow uses: sqlite:///relative.db, sqlite:////absolute.db.
std::string sqlite_path(const std::string& uri) {
  auto rest = uri.substr(std::strlen("sqlite:"));
  if (rest.compare(0, 3, "///") != 0 || rest.size() == 3)
    refuse(uri, "expected sqlite:///relative/mlflow.db or sqlite:////absolute/mlflow.db (an "
                "in-memory database holds no registry)");
  auto path = rest.substr(3);
  if (path.find('?') != std::string::npos)
    refuse(uri, "query parameters after the database path are not supported");
  return path;
}

} // namespace

std::unique_ptr<registry_store> open_registry(const std::string& registry_uri,
                                              const std::string& base_dir) {
  if (registry_uri.empty())
    throw serve_exception(errc::invalid_argument,
                          "registry_uri is empty; give " + std::string(accepted));
  auto scheme = uri_scheme(registry_uri);
  if (scheme == "http" || scheme == "https")
    return open_tracking_server_store(registry_uri, base_dir); // https refused there, clearly
  if (scheme == "sqlite")
    return std::make_unique<mlflow_sqlite_store>(sqlite_path(registry_uri), base_dir);
  if (scheme == "file")
    return std::make_unique<mlflow_file_store>(file_uri_to_path(registry_uri), base_dir);
  if (!scheme.empty())
    refuse(registry_uri, "scheme '" + scheme + ":' is not supported; give " + accepted);

  namespace fs = std::filesystem;
  fs::path path(registry_uri);
  if (path.is_relative() && !base_dir.empty())
    path = fs::path(base_dir) / path;
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    if (!is_sqlite_file(path.string()))
      refuse(registry_uri,
             path.string() + " is a file but not a SQLite database; give " + accepted);
    return std::make_unique<mlflow_sqlite_store>(registry_uri, base_dir);
  }
  return std::make_unique<mlflow_file_store>(registry_uri, base_dir);
}

std::string listing(const std::vector<std::string>& items) {
  constexpr size_t max_listed = 10;
  std::string out;
  for (size_t i = 0; i < items.size() && i < max_listed; ++i)
    out += (i ? ", " : "") + items[i];
  if (items.size() > max_listed)
    out += ", ... (" + std::to_string(items.size() - max_listed) + " more)";
  return out;
}

resolved_model resolve_local_folder(const model_uri& uri, const std::string& base_dir) {
  namespace fs = std::filesystem;
  auto path = fs::path(uri.path).is_absolute() || base_dir.empty()
                  ? join_path(fs::absolute(uri.path).string(), "")
                  : join_path(base_dir, uri.path);
  std::error_code ec;
  if (!fs::exists(path, ec))
    throw serve_exception(errc::not_found, uri.text + ": no such folder " + path);
  if (!fs::is_directory(path, ec))
    throw serve_exception(errc::invalid_argument,
                          uri.text + ": " + path +
                            " is a file; a registry resolves to the folder holding MLmodel or "
                            "model.onnx");
  resolved_model out;
  out.local_dir = path;
  out.source_uri = uri.text;
  out.description = uri.text + " -> " + path;
  return out;
}

} // namespace serve::registry
