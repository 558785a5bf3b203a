// What a deployment's `model.uri` names: a local path or an MLflow registry URI, parsed and
// checked before any store is opened.
//
//   auto uri = model_uri::parse("models:/iris@production");   // throws serve_exception
//   uri.kind == model_uri_kind::alias; uri.name == "iris"; uri.alias == "production"
//
// The forms are MLflow's (mlflow/store/artifact/utils/models.py, runs_artifact_repo.py):
//   models:/NAME/N        a version number
//   models:/NAME/latest   the highest version that is not deleted ("latest" in any case; so is
//                         models:/NAME@latest, as in MLflow)
//   models:/NAME/STAGE    the highest version in None, Staging, Production or Archived (any case)
//   models:/NAME@ALIAS    the version an alias points to
//   models:/m-<hex>       an MLflow 3 logged model
//   runs:/RUN_ID/PATH     PATH inside a run's artifacts (or the run's logged model named PATH)
//   anything else         a local path (file:// URIs are decoded to one); other schemes
//                         (s3://, mlflow-artifacts:/, ...) are refused
// Names and paths that could leave a store are refused here: `.` or `..` as a model name or as
// a path segment, absolute or empty segments in a runs:/ path, '/' or ':' in a model name.
#pragma once

#include <cstdint>
#include <string>

namespace serve::registry {

enum class model_uri_kind {
  local_path,
  version,
  latest,
  stage,
  alias,
  logged_model,
  run,
};

/// "version", "latest", ... as used in messages.
const char* to_string(model_uri_kind kind);

struct model_uri {
  model_uri_kind kind = model_uri_kind::local_path;
  /// The URI as written.
  std::string text;
  /// Registered model name (version, latest, stage, alias).
  std::string name;
  /// kind == version: >= 0 (MLflow's versions start at 1; 0 is simply not found).
  int64_t version = 0;
  /// kind == stage: canonical spelling, "None", "Staging", "Production" or "Archived".
  std::string stage;
  /// kind == alias.
  std::string alias;
  /// kind == logged_model: "m-<hex>".
  std::string model_id;
  /// kind == run.
  std::string run_id;
  /// kind == run: '/'-separated path inside the run's artifacts; "" = the artifact root.
  std::string artifact_path;
  /// kind == local_path: the path (a file:// URI already decoded); may be relative.
  std::string path;

  /// Parses `text`. Throws serve_exception(invalid_argument) naming the URI, the problem and
  /// the accepted forms.
  static model_uri parse(const std::string& text);

  /// True for every kind but local_path: a registry is needed to resolve it.
  bool needs_registry() const { return kind != model_uri_kind::local_path; }
};

/// Checks a registered model name given on its own (list_versions, aliases) by the rules that
/// models:/ URIs follow. Throws serve_exception(invalid_argument) naming it.
void check_model_name(const std::string& name);

/// The canonical stage for `stage` compared case-insensitively ("staging" -> "Staging"), or ""
/// when it is none of None, Staging, Production, Archived.
std::string canonical_stage(const std::string& stage);

/// Decodes a file: URI (file:///abs, file:/abs, file://localhost/abs, file:relative) into a
/// path, undoing %XX escapes. Throws serve_exception(invalid_argument) for another host or a
/// malformed escape.
std::string file_uri_to_path(const std::string& uri);

/// The scheme of `text` ("models", "s3", ...), or "" when it has none (a plain path).
std::string uri_scheme(const std::string& text);

/// `s` with ASCII letters lower-cased.
std::string ascii_lower(std::string s);
/// True when `s` holds a control character (below 0x20, or 0x7f).
bool has_control_char(const std::string& s);

} // namespace serve::registry
