// A model registry as ActorServe reads it: resolves a model_uri to the local folder that holds
// the model's artifacts, and lists registered models, their versions and aliases.
//
//   auto store = open_registry("sqlite:///srv/mlflow.db", config_dir);   // throws
//   auto model = store->resolve(model_uri::parse("models:/iris@production"));
//   // model.local_dir holds MLmodel + model.onnx; model.description says which version
//
// Kinds of store (open_registry picks one from the registry URI):
//   - MLflow file store: a folder (mlruns/) or a file: URI           -> mlflow_file_store
//   - MLflow SQLite store: sqlite:///relative.db, sqlite:////abs.db   -> mlflow_sqlite_store
//     (also a plain path to an existing SQLite file)
//   - MLflow tracking server: http://host:port -> mlflow_tracking_server_store
//     (tracking_server_store.hpp): downloads artifacts into a local cache, atomically, and
//     resolve() returns the cache folder.
//
// Semantics follow MLflow's registry (see local_store.hpp): deleted versions are absent,
// `latest` is the highest version left, a stage picks the highest version in it.
// Errors: unknown model, version, stage, alias, run or logged model -> serve_exception
// (not_found) naming the URI and what is missing ("models:/iris@prod: registered model 'iris'
// has no alias 'prod' (aliases: production)"); a corrupt store -> invalid_argument naming the
// file; artifacts that are not local (mlflow-artifacts:/, s3://) -> invalid_argument.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "libserve/registry/model_uri.hpp"

namespace serve::registry {

/// Where a model_uri's artifacts are, and which registry entry it resolved to.
struct resolved_model {
  /// Absolute local folder holding MLmodel and/or model.onnx (read it with read_model_folder).
  /// A runs:/RUN/PATH whose PATH names one artifact file gives that file's path.
  std::string local_dir;
  /// Registered model name; "" for runs:/, logged models and local paths.
  std::string name;
  /// The version the URI resolved to ("3"); "" when it named no registered version.
  std::string version;
  /// The artifact location as the store records it (a version's storage_location, else its
  /// source; a run's artifact_uri + path; a logged model's artifact_location).
  std::string source_uri;
  /// For logs and status: "models:/iris@production -> version 1".
  std::string description;
};

/// One registered version, as list_versions() reports it.
struct model_version_info {
  std::string name;
  int64_t version = 0;
  /// "None", "Staging", "Production" or "Archived".
  std::string stage;
  /// "READY", "PENDING_REGISTRATION" or "FAILED_REGISTRATION".
  std::string status;
  /// As recorded: models:/m-<id>, runs:/..., file://..., an absolute path.
  std::string source;
  /// As recorded; "" when the store has none (MLflow 2.x).
  std::string storage_location;
  std::string run_id;
  /// Aliases pointing at this version, sorted.
  std::vector<std::string> aliases;
};

/// A registry of models. Not thread-safe: one store per owner (opening one is cheap).
class registry_store {
public:
  virtual ~registry_store() = default;

  /// Resolves `uri` to a local folder that exists. A local_path URI is taken relative to the
  /// base_dir the store was opened with. Throws serve_exception (see the file comment).
  virtual resolved_model resolve(const model_uri& uri) = 0;

  /// Names of the registered models, sorted.
  virtual std::vector<std::string> list_models() = 0;

  /// The versions of `name` that are not deleted, by ascending version. Throws
  /// serve_exception(not_found) when there is no such registered model.
  virtual std::vector<model_version_info> list_versions(const std::string& name) = 0;

  /// Alias -> version of `name`. Throws serve_exception(not_found) for an unknown model.
  virtual std::map<std::string, int64_t> aliases(const std::string& name) = 0;

  /// For logs and errors: "MLflow file store /srv/mlruns".
  virtual std::string describe() const = 0;
};

/// Opens the registry that `registry_uri` names. Relative paths (plain, file:relative,
/// sqlite:///relative.db) are taken relative to `base_dir` (the configuration file's folder;
/// "" = the current directory). Throws serve_exception: invalid_argument for a URI it cannot
/// use (https:// and other databases are not supported),
/// not_found when the folder or database file does not exist.
std::unique_ptr<registry_store> open_registry(const std::string& registry_uri,
                                              const std::string& base_dir);

/// Names joined with ", " for error messages; past 10, "... (N more)".
std::string listing(const std::vector<std::string>& items);

/// A local_path URI as every store resolves it: taken relative to `base_dir` (absolute when
/// `base_dir` is empty); it must be an existing folder. Throws serve_exception: not_found for
/// no such folder, invalid_argument for a file.
resolved_model resolve_local_folder(const model_uri& uri, const std::string& base_dir);

} // namespace serve::registry
