// The registry of an MLflow tracking server (`mlflow server`), read through its REST API, with
// the model's artifacts downloaded through the server's artifact proxy into a local cache.
//
//   auto store = open_tracking_server_store("http://127.0.0.1:5000", config_dir, {});
//   auto model = store->resolve(model_uri::parse("models:/iris@production"));
//   // model.local_dir = ~/.cache/actorserve/registry/127.0.0.1_5000/iris/1, holding MLmodel,
//   // model.onnx, its external-data files and every other artifact of the version
//
// Resolution (the REST calls of MLflow 3.x; see mlflow_rest_client.hpp for errors):
//   models:/NAME/N      GET model-versions/get?name&version
//   models:/NAME/latest GET registered-models/get-latest-versions?name  (the highest of them)
//   models:/NAME/STAGE  GET registered-models/get-latest-versions?name&stages=STAGE
//   models:/NAME@ALIAS  GET registered-models/alias?name&alias
//     then GET model-versions/get-download-uri?name&version -> {"artifact_uri"}
//   models:/m-<id>      GET logged-models/<id> -> model.info.artifact_uri
//   runs:/RUN/PATH      GET runs/get?run_id; the run's logged model named PATH's first segment
//                       (POST logged-models/search) wins, else PATH in the run's artifact_uri
// An artifact_uri mlflow-artifacts:/P is listed and downloaded through
// /api/2.0/mlflow-artifacts/artifacts (a folder with subfolders); an absolute local path or
// file: URI that exists here (a server on this machine without the proxy) is used in place.
//
// Cache (artifact_cache.hpp): <cache_dir>/<host>_<port>/ holds NAME/VERSION for registered
// versions, :logged-models/ID and :runs/RUN/PATH (':' cannot occur in a model name), each
// component escaped with cache_component(). A folder under its final name is complete; it is
// used without asking the server again, so models:/NAME/N and models:/m-<id> resolve with the
// server down once cached. Aliases, stages and latest always ask the server (they move).
//
// resolved_model.source_uri: a version's source as the server records it (models:/m-<id> for
// MLflow 3; "" for a pinned version served from the cache), a logged model's artifact_uri (""
// from the cache), or the runs:/ URI itself.
//
// Errors: an unknown model, version, stage, alias, run or logged model -> not_found naming the
// URI and what is missing (with what exists, as the local stores do); a server that does not
// answer or answers 5xx -> unavailable naming the server; an artifact listing that would leave
// the folder (`..`, absolute, nested names) -> invalid_argument.
//
// Not thread-safe (see registry_store); several stores, in one process or several, may share
// one cache folder.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "libserve/registry/artifact_cache.hpp"
#include "libserve/registry/mlflow_rest_client.hpp"
#include "libserve/registry/registry_store.hpp"

namespace serve::registry {

struct tracking_server_options {
  /// Root of the artifact cache; the server's folder goes below it. "" = the default,
  /// default_registry_cache_dir() (~/.cache/actorserve/registry).
  std::string cache_dir;
  /// HTTP settings: timeouts, file-count guard, credentials.
  mlflow_rest_options http;
};

/// `options.http` with credentials from MLflow's own variables when it has none:
/// MLFLOW_TRACKING_USERNAME + MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN.
mlflow_rest_options with_mlflow_credentials(mlflow_rest_options options);

class mlflow_tracking_server_store : public registry_store {
public:
  /// `server_uri`: http://host:port[/prefix]. `base_dir`: local_path URIs are taken relative to
  /// it ("" = the current directory). Creates the cache folder and removes temp folders left
  /// there by crashed downloads; contacts no server. Throws serve_exception(invalid_argument)
  /// for a URI or options it cannot use.
  mlflow_tracking_server_store(const std::string& server_uri, std::string base_dir,
                               tracking_server_options options = {});

  resolved_model resolve(const model_uri& uri) override;
  std::vector<std::string> list_models() override;
  std::vector<model_version_info> list_versions(const std::string& name) override;
  std::map<std::string, int64_t> aliases(const std::string& name) override;
  std::string describe() const override;

  /// <cache_dir>/<host>_<port>: where this server's downloads go.
  const std::string& cache_root() const { return cache_.root(); }

private:
  struct version_reply;

  resolved_model resolve_local(const model_uri& uri);
  resolved_model resolve_version(const model_uri& uri);
  resolved_model resolve_logged_model(const model_uri& uri);
  resolved_model resolve_run(const model_uri& uri);
  version_reply pick_version(const model_uri& uri);
  version_reply latest_in(const model_uri& uri, const std::string& stage);
  [[noreturn]] void explain_missing(const model_uri& uri, const mlflow_api_error& error);
  std::optional<std::string> run_logged_model_uri(const std::string& run_id,
                                                  const std::string& experiment_id,
                                                  const std::string& name,
                                                  const std::string& context, std::string& id);
  std::string fetch(const std::string& key, const std::string& artifact_uri,
                    const std::string& context);
  std::vector<model_version_info> search_versions(const std::string& name,
                                                  const std::string& context);
  /// " (models: a, b)", " (it has none)", or "" when the server cannot say.
  std::string model_listing();
  std::string version_listing(const std::string& name, bool with_stage, const std::string& context);

  std::string base_dir_;
  mlflow_rest_client client_;
  artifact_cache cache_;
};

/// The store for `server_uri` (http://host:port), with credentials from MLflow's variables
/// (with_mlflow_credentials). What open_registry() returns for http:// registry URIs.
std::unique_ptr<registry_store> open_tracking_server_store(const std::string& server_uri,
                                                           const std::string& base_dir,
                                                           tracking_server_options options = {});

} // namespace serve::registry
