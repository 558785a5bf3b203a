// What MLflow's model URIs mean against a registry whose records and artifacts are local:
// the resolution rules and their error messages, written once for the file store and the
// SQLite store, which only supply records (version_records, alias_records, ...).
//
// Rules (MLflow's: mlflow/store/model_registry/, mlflow/store/artifact/):
//   - a version whose current_stage is Deleted_Internal does not exist;
//   - models:/NAME/latest (and @latest) = the highest remaining version;
//   - models:/NAME/STAGE = the highest remaining version in that stage;
//   - models:/NAME@ALIAS = the version the alias names (aliases are case-sensitive);
//   - a version's artifacts are at its storage_location when recorded, else at its source;
//     a source of models:/m-<id> or runs:/RUN/PATH is resolved like those URIs;
//   - runs:/RUN/NAME[/REST]: the logged model NAME that the run produced (MLflow 3; its
//     artifacts win over the run's in MLflow's own download), else NAME[/REST] in the run's
//     artifacts;
//   - a version still PENDING_REGISTRATION -> unavailable; FAILED_REGISTRATION -> invalid_argument.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "libserve/registry/artifact_locator.hpp"
#include "libserve/registry/registry_store.hpp"

namespace serve::registry {

/// The stage MLflow gives a deleted version that it keeps on disk.
inline constexpr const char* deleted_stage = "Deleted_Internal";

/// A model version as a store records it; deleted versions are included.
struct version_record {
  int64_t version = 0;
  /// current_stage as recorded: None, Staging, Production, Archived or Deleted_Internal.
  std::string stage;
  std::string status;
  std::string source;
  std::string storage_location;
  std::string run_id;
};

/// A logged model (MLflow 3) as a store records it.
struct logged_model_record {
  std::string model_id;
  std::string artifact_location;
};

/// Not thread-safe (see registry_store).
class local_store : public registry_store {
public:
  resolved_model resolve(const model_uri& uri) override;
  std::vector<model_version_info> list_versions(const std::string& name) override;
  std::map<std::string, int64_t> aliases(const std::string& name) override;

protected:
  /// `base_dir`: local_path URIs are taken relative to it. `locator`: how the store's recorded
  /// artifact locations map to local paths.
  local_store(std::string base_dir, artifact_locator locator);

  /// True when a registered model `name` exists.
  virtual bool has_model(const std::string& name) = 0;
  /// Every version of `name`, deleted ones included, in any order.
  virtual std::vector<version_record> version_records(const std::string& name) = 0;
  /// Alias -> version of `name`.
  virtual std::map<std::string, int64_t> alias_records(const std::string& name) = 0;
  /// The artifact_uri of run `run_id`, nullopt when there is no such run.
  virtual std::optional<std::string> run_artifact_uri(const std::string& run_id) = 0;
  /// The logged model `model_id`, nullopt when there is none.
  virtual std::optional<logged_model_record> logged_model(const std::string& model_id) = 0;
  /// The newest logged model named `name` whose source run is `run_id`.
  virtual std::optional<logged_model_record> run_logged_model(const std::string& run_id,
                                                              const std::string& name) = 0;

  const artifact_locator& locator() const { return locator_; }
  void set_locator(artifact_locator locator) { locator_ = std::move(locator); }

private:
  resolved_model resolve_version(const model_uri& uri);
  version_record pick_version(const model_uri& uri);
  std::string version_artifacts(const model_uri& uri, const version_record& record,
                                std::string& source_uri);
  std::string run_artifacts(const std::string& run_id, const std::string& path,
                            const std::string& context, std::string& how);
  std::string logged_model_artifacts(const std::string& model_id, const std::string& context,
                                     std::string& location);
  void require_model(const std::string& name, const std::string& context);

  std::string base_dir_;
  artifact_locator locator_;
};

} // namespace serve::registry
