// Writes into an MLflow file store (mlruns/) what MLflow 3.x writes when a model is logged and
// registered, so that MLflow itself - and mlflow_file_store - read it back:
//
//   mlflow_file_store_writer store("apps/examples/registry/mlruns", {});   // created if missing
//   auto v = store.register_folder("apps/examples/models/iris", "iris");    // v.version == 1
//   store.set_alias("iris", "production", v.version);
//
// register_folder() logs the folder as an MLflow 3 logged model without a run, in the Default
// experiment (0), and registers it as the next version of the registered model:
//   mlruns/0/meta.yaml                              the experiment, when missing
//   mlruns/0/models/m-<id>/meta.yaml, tags/, params/, metrics/
//   mlruns/0/models/m-<id>/artifacts/               a copy of every file in the folder; an
//                                                   MLmodel (onnx flavor, signature from the
//                                                   ONNX graph) when the folder has none
//   mlruns/models/<name>/meta.yaml                  the registered model, when new
//   mlruns/models/<name>/version-<n>/meta.yaml      source models:/m-<id>, storage_location
//                                                   the artifacts folder, model_id, READY
// set_alias() writes mlruns/models/<name>/aliases/<alias> (the version number), as MLflow does.
// Every key is the one MLflow 3.17 writes (compare test/fixtures/mlflow/file/mlruns).
//
// Locations: MLflow records absolute file:// URIs (register_options::relative_locations =
// false); mlflow_file_store finds them again after the store moves. With relative_locations
// they are recorded relative to the folder holding the store (mlruns/0/models/m-<id>/artifacts):
// a store committed to a repository then holds no machine's paths, ActorServe reads it from any
// clone, and MLflow reads it when run from the folder holding mlruns/ (its own ./mlruns default).
//
// Crash safety (atomic_files.hpp): every file is written to a temporary name and renamed into
// place; a logged model and a version folder are assembled under a hidden name and renamed
// whole, so readers never see a version without its meta.yaml or a logged model without its
// artifacts. A crash leaves at most a hidden ".*.tmp-*" entry, which MLflow and ActorServe
// ignore.
//
// Not thread-safe; two processes registering into one store at once get distinct versions (the
// version folder is claimed with an exclusive rename) but may each rewrite the registered
// model's last_updated_timestamp.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace serve::registry {

struct register_options {
  /// Record artifact locations relative to the folder holding the store instead of as absolute
  /// file:// URIs (see the file comment).
  bool relative_locations = false;
  /// Milliseconds since the epoch for creation/last-updated timestamps. Empty = the system clock.
  std::function<int64_t()> now_ms;
  /// Recorded as the logged model's mlflow.user tag. "" = $USER (no tag when that is unset).
  std::string user;
};

/// What register_folder() wrote.
struct registered_version {
  std::string name;
  int64_t version = 0;
  /// The logged model created for it: "m-<32 hex digits>".
  std::string model_id;
  /// "models:/m-<id>", as MLflow 3 records it.
  std::string source;
  /// As recorded: file:///abs/.../artifacts, or mlruns/0/models/m-<id>/artifacts.
  std::string storage_location;
  /// Absolute local folder holding the copied artifacts.
  std::string artifacts_dir;
  /// True when the registered model did not exist before.
  bool created_model = false;
  /// True when the folder had no MLmodel and one was written.
  bool wrote_mlmodel = false;
};

/// Writes to one MLflow file store folder. Not thread-safe.
class mlflow_file_store_writer {
public:
  /// `root`: the store folder (mlruns), absolute or relative to the current directory. It is
  /// created when missing (as MLflow does) if `create` is true; else serve_exception(not_found).
  /// An existing folder that holds files but no models/ folder, experiment or .trash is refused
  /// (invalid_argument: "not an MLflow file store"), so that a mistyped path does not get
  /// mlruns folders written into it.
  mlflow_file_store_writer(const std::string& root, register_options options, bool create = true);

  /// Copies `folder` (MLmodel + its ONNX file, or just model.onnx; extra files such as
  /// labels.json come along) into a new logged model and registers it as the next version of
  /// `name`, creating the registered model when needed. Throws serve_exception:
  /// invalid_argument for a bad name (check_model_name, and '%' as MLflow's file store refuses)
  /// or a folder that is not a model ActorServe loads (naming the problem); not_found when the
  /// folder does not exist.
  registered_version register_folder(const std::string& folder, const std::string& name);

  /// Points `alias` of `name` at `version` (creating or moving it). Throws serve_exception:
  /// invalid_argument for a name or alias MLflow refuses ('latest', v<digits>, characters other
  /// than letters, digits, '_' and '-'); not_found for an unknown model or a version that does
  /// not exist or was deleted. Returns the version the alias pointed to before, or 0.
  int64_t set_alias(const std::string& name, const std::string& alias, int64_t version);

  /// Removes `alias` of `name`; returns the version it pointed to. Throws
  /// serve_exception(not_found) naming the aliases there are when there is no such alias.
  int64_t delete_alias(const std::string& name, const std::string& alias);

  /// The store folder, absolute.
  const std::string& root() const { return root_; }

private:
  int64_t now() const;
  std::string model_dir(const std::string& name) const;
  void ensure_default_experiment();
  void require_model(const std::string& name) const;
  void rewrite_model_meta(const std::string& name, int64_t updated_ms);
  std::string location_of(const std::string& path) const;

  std::string root_;
  register_options options_;
};

/// The folder of the MLflow file store that `registry_uri` names, for writing: a plain path or a
/// file: URI (relative to `base_dir`, "" = the current directory). Throws
/// serve_exception(invalid_argument) "writing needs an MLflow file store folder; URI is ..." for
/// SQLite stores, tracking servers, other schemes and existing files.
std::string file_store_folder_for_writing(const std::string& registry_uri,
                                          const std::string& base_dir);

/// Checks an alias name by MLflow's rules (letters, digits, '_' and '-'; at most 255; not
/// 'latest' in any case, not v<digits>). Throws serve_exception(invalid_argument) naming it.
void check_alias_name(const std::string& alias);

} // namespace serve::registry
