// An MLflow file store (the `mlruns/` folder of MLFLOW_TRACKING_URI=file:...) read as a model
// registry, MLflow 2.x and 3.x layouts. Nothing is cached: every call reads the files again, so
// versions and aliases that MLflow adds are seen at once.
//
//   mlruns/models/<name>/meta.yaml                 a registered model
//   mlruns/models/<name>/version-<n>/meta.yaml     version, current_stage, source,
//                                                  storage_location (3.x), run_id (old: run_uuid),
//                                                  status; Deleted_Internal = deleted
//   mlruns/models/<name>/aliases/<alias>           holds the version number
//   mlruns/<exp>/meta.yaml                         experiment: artifact_location
//   mlruns/<exp>/<run>/meta.yaml                   run: artifact_uri
//   mlruns/<exp>/models/m-<id>/meta.yaml           logged model (3.x): artifact_location, name,
//                                                  source_run_id
//
// A store moved or copied after MLflow wrote it is read where it is now (artifact_locator.hpp):
// its experiments say where the root was.
#pragma once

#include <string>

#include "libserve/registry/local_store.hpp"

namespace serve::registry {

/// Not thread-safe (see registry_store).
class mlflow_file_store : public local_store {
public:
  /// `root`: the mlruns folder (absolute, or relative to `base_dir`). Throws
  /// serve_exception(not_found) when it is not a folder, invalid_argument when an experiment's
  /// meta.yaml is corrupt.
  mlflow_file_store(const std::string& root, const std::string& base_dir);

  std::vector<std::string> list_models() override;
  std::string describe() const override;

  const std::string& root() const { return root_; }

protected:
  bool has_model(const std::string& name) override;
  std::vector<version_record> version_records(const std::string& name) override;
  std::map<std::string, int64_t> alias_records(const std::string& name) override;
  std::optional<std::string> run_artifact_uri(const std::string& run_id) override;
  std::optional<logged_model_record> logged_model(const std::string& model_id) override;
  std::optional<logged_model_record> run_logged_model(const std::string& run_id,
                                                      const std::string& name) override;

private:
  /// Experiment folders: those holding a meta.yaml, except models/ and .trash/.
  std::vector<std::string> experiment_dirs() const;
  std::string model_dir(const std::string& name) const;

  std::string root_;
};

} // namespace serve::registry
