// Turns the artifact locations an MLflow store records into local paths, and finds the
// artifacts of a store that was moved or copied after MLflow wrote it.
//
// MLflow records absolute locations: file:///home/ann/proj/mlruns/1/models/m-<id>/artifacts in
// a file store, plain /home/ann/proj/mlruns/1/... in a SQL store. A store committed to a
// repository, copied to a server or mounted elsewhere keeps them. Every experiment's default
// artifact location is `<artifact root>/<experiment id>`, so each store derives from its
// experiments where its artifact root was when MLflow wrote it (recorded_root) and says where
// that root is now (an artifact_root_move). A recorded path that does not exist but lies under
// a moved root is looked up under the new one. A recorded path that exists is used as it is:
// relocation never overrides a location that works.
//
// Constant after construction; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace serve::registry {

/// An artifact root that MLflow wrote at `recorded` and that is now at `current`.
struct artifact_root_move {
  std::string recorded;
  std::string current;
};

class artifact_locator {
public:
  /// `store_dir`: absolute folder against which relative recorded locations are taken (MLflow
  /// records them relative to the directory it ran in: the folder holding mlruns/ or mlflow.db).
  artifact_locator(std::string store_dir, std::vector<artifact_root_move> moves);

  /// The existing local path of `location` joined with `relative` ('/'-separated, already free
  /// of '..' segments; "" = the location itself): as recorded, else under a moved root. nullopt
  /// when neither exists. Throws serve_exception(invalid_argument), naming `context` and the
  /// location, when the location is not local (mlflow-artifacts:/ is on a tracking server; s3://
  /// and other remote stores are not read).
  std::optional<std::string> find(const std::string& location, const std::string& relative,
                                  const std::string& context) const;

  /// find(), throwing serve_exception(not_found) "CONTEXT: artifacts not found at PATH (...)"
  /// when nothing exists.
  std::string require(const std::string& location, const std::string& relative,
                      const std::string& context) const;

  /// The local path `location` records (file: URIs decoded, relative paths made absolute),
  /// before relocation. Throws like find() for a location that is not local.
  std::string recorded_path(const std::string& location, const std::string& context) const;

  /// The artifact root an experiment's location shows: its parent when it ends in
  /// "/<experiment_id>", else nullopt (the experiment was given a location of its own).
  static std::optional<std::string> recorded_root(const std::string& experiment_location,
                                                  const std::string& experiment_id);

  const std::string& store_dir() const { return store_dir_; }
  const std::vector<artifact_root_move>& moves() const { return moves_; }

private:
  std::string store_dir_;
  std::vector<artifact_root_move> moves_;
};

/// `dir` + "/" + `relative` ('/'-separated), lexically normalized; `relative` may be "".
std::string join_path(const std::string& dir, const std::string& relative);

} // namespace serve::registry
