#include "libserve/registry/tracking_server_store.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "libserve/future.hpp"
#include "libserve/registry/artifact_locator.hpp"

namespace serve::registry {
namespace fs = std::filesystem;
namespace {

using json = rapidjson::Value;

constexpr const char* page_size = "1000";

[[noreturn]] void missing(const std::string& message) {
  throw serve_exception(errc::not_found, message);
}

std::string string_field(const json& object, const char* key) {
  if (!object.IsObject())
    return "";
  auto it = object.FindMember(key);
  return it != object.MemberEnd() && it->value.IsString() ? it->value.GetString() : "";
}

const json* object_field(const json& object, const char* key) {
  if (!object.IsObject())
    return nullptr;
  auto it = object.FindMember(key);
  return it != object.MemberEnd() && it->value.IsObject() ? &it->value : nullptr;
}

const json* array_field(const json& object, const char* key) {
  if (!object.IsObject())
    return nullptr;
  auto it = object.FindMember(key);
  return it != object.MemberEnd() && it->value.IsArray() ? &it->value : nullptr;
}

/// MLflow sends versions as strings ("3"); older replies and other fields may use numbers.
int64_t number_field(const json& object, const char* key) {
  if (!object.IsObject())
    return -1;
  auto it = object.FindMember(key);
  if (it == object.MemberEnd())
    return -1;
  if (it->value.IsInt64())
    return it->value.GetInt64();
  if (!it->value.IsString())
    return -1;
  std::string text = it->value.GetString();
  if (text.empty() || text.size() > 18 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return -1;
  return std::stoll(text);
}

bool is_directory(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

// MLflow's search filter quotes a value with ' or ".
std::string quoted(const std::string& value, const std::string& context) {
  if (value.find('\'') == std::string::npos)
    return "'" + value + "'";
  if (value.find('"') == std::string::npos)
    return "\"" + value + "\"";
  throw serve_exception(errc::invalid_argument,
                        context + ": a name holding both ' and \" cannot be searched for");
}

} // namespace

struct mlflow_tracking_server_store::version_reply {
  std::string version;
  int64_t number = -1;
  std::string stage;
  std::string status;
  std::string source;

  static version_reply from(const json& model_version, const std::string& context,
                            const std::string& server) {
    version_reply out;
    out.number = number_field(model_version, "version");
    if (out.number < 0)
      throw serve_exception(errc::invalid_argument, context + ": " + server +
                                                        " sent a model version without a valid "
                                                        "\"version\"");
    out.version = std::to_string(out.number);
    out.stage = string_field(model_version, "current_stage");
    out.status = string_field(model_version, "status");
    out.source = string_field(model_version, "source");
    return out;
  }
};

mlflow_rest_options with_mlflow_credentials(mlflow_rest_options options) {
  auto env = [](const char* name) {
    const char* value = std::getenv(name);
    return std::string(value ? value : "");
  };
  if (options.username.empty() && options.token.empty()) {
    options.username = env("MLFLOW_TRACKING_USERNAME");
    options.password = env("MLFLOW_TRACKING_PASSWORD");
    if (options.username.empty())
      options.token = env("MLFLOW_TRACKING_TOKEN");
  }
  return options;
}

mlflow_tracking_server_store::mlflow_tracking_server_store(const std::string& server_uri,
                                                           std::string base_dir,
                                                           tracking_server_options options)
    : base_dir_(std::move(base_dir)), client_(server_uri, options.http),
      cache_((options.cache_dir.empty() ? default_registry_cache_dir() : options.cache_dir) + "/" +
             client_.cache_name()) {}

std::string mlflow_tracking_server_store::describe() const {
  return client_.describe();
}

resolved_model mlflow_tracking_server_store::resolve(const model_uri& uri) {
  switch (uri.kind) {
  case model_uri_kind::local_path:
    return resolve_local(uri);
  case model_uri_kind::logged_model:
    return resolve_logged_model(uri);
  case model_uri_kind::run:
    return resolve_run(uri);
  default:
    return resolve_version(uri);
  }
}

resolved_model mlflow_tracking_server_store::resolve_local(const model_uri& uri) {
  return resolve_local_folder(uri, base_dir_);
}

resolved_model mlflow_tracking_server_store::resolve_version(const model_uri& uri) {
  resolved_model out;
  out.name = uri.name;
  auto folder = cache_component(uri.name) + "/";
  if (uri.kind == model_uri_kind::version) {
    out.version = std::to_string(uri.version);
    out.description = uri.text + " -> version " + out.version;
    if (auto dir = cache_.find(folder + out.version)) { // pinned and complete: no network
      out.local_dir = *dir;
      return out;
    }
  }
  auto reply = pick_version(uri);
  out.version = reply.version;
  out.description = uri.text + " -> version " + reply.version;
  auto context = uri.text + " (version " + reply.version + ")";
  if (reply.status == "PENDING_REGISTRATION")
    throw serve_exception(errc::unavailable, context + ": the version is still being registered "
                                                       "(PENDING_REGISTRATION); try again later");
  if (reply.status == "FAILED_REGISTRATION")
    throw serve_exception(errc::invalid_argument,
                          context + ": the version failed to register (FAILED_REGISTRATION)");
  out.source_uri = reply.source;
  if (auto dir = cache_.find(folder + reply.version)) {
    out.local_dir = *dir;
    return out;
  }
  auto download = client_.get("model-versions/get-download-uri",
                              {{"name", uri.name}, {"version", reply.version}}, context);
  auto artifact_uri = string_field(download, "artifact_uri");
  if (artifact_uri.empty())
    throw serve_exception(errc::invalid_argument,
                          context + ": " + describe() + " gave no artifact_uri for the version");
  out.local_dir = fetch(folder + reply.version, artifact_uri, context);
  return out;
}

mlflow_tracking_server_store::version_reply
mlflow_tracking_server_store::pick_version(const model_uri& uri) {
  try {
    switch (uri.kind) {
    case model_uri_kind::version: {
      auto doc =
          client_.get("model-versions/get",
                      {{"name", uri.name}, {"version", std::to_string(uri.version)}}, uri.text);
      const json* mv = object_field(doc, "model_version");
      if (!mv)
        throw serve_exception(errc::invalid_argument,
                              uri.text + ": " + describe() + " sent no model_version");
      return version_reply::from(*mv, uri.text, describe());
    }
    case model_uri_kind::alias: {
      auto doc = client_.get("registered-models/alias", {{"name", uri.name}, {"alias", uri.alias}},
                             uri.text);
      const json* mv = object_field(doc, "model_version");
      if (!mv)
        throw serve_exception(errc::invalid_argument,
                              uri.text + ": " + describe() + " sent no model_version");
      return version_reply::from(*mv, uri.text, describe());
    }
    case model_uri_kind::latest:
      return latest_in(uri, "");
    case model_uri_kind::stage:
      return latest_in(uri, uri.stage);
    default:
      throw serve_exception(errc::internal, uri.text + ": not a registered-version URI");
    }
  } catch (const mlflow_api_error& error) {
    // MLflow answers an unknown alias with INVALID_PARAMETER_VALUE, the rest with
    // RESOURCE_DOES_NOT_EXIST.
    if (error.code() == errc::not_found ||
        (uri.kind == model_uri_kind::alias && error.code() == errc::invalid_argument))
      explain_missing(uri, error);
    throw;
  }
}

mlflow_tracking_server_store::version_reply
mlflow_tracking_server_store::latest_in(const model_uri& uri, const std::string& stage) {
  std::vector<std::pair<std::string, std::string>> params{{"name", uri.name}};
  if (!stage.empty())
    params.emplace_back("stages", stage);
  auto doc = client_.get("registered-models/get-latest-versions", params, uri.text);
  std::optional<version_reply> best;
  if (const json* versions = array_field(doc, "model_versions"))
    for (const auto& mv : versions->GetArray()) {
      auto reply = version_reply::from(mv, uri.text, describe());
      if (!best || reply.number > best->number)
        best = reply;
    }
  if (best)
    return *best;
  const std::string model = "registered model '" + uri.name + "'";
  if (stage.empty())
    missing(uri.text + ": " + model + " has no versions");
  missing(uri.text + ": " + model + " has no version in stage '" + stage + "' (" +
          version_listing(uri.name, true, uri.text) + ")");
}

void mlflow_tracking_server_store::explain_missing(const model_uri& uri,
                                                   const mlflow_api_error& error) {
  const std::string model = "registered model '" + uri.name + "'";
  rapidjson::Document registered;
  try {
    registered = client_.get("registered-models/get", {{"name", uri.name}}, uri.text);
  } catch (const mlflow_api_error& e) {
    if (e.code() == errc::not_found)
      missing(uri.text + ": no registered model '" + uri.name + "' in " + describe() +
              model_listing());
    throw;
  }
  if (uri.kind == model_uri_kind::version)
    missing(uri.text + ": " + model + " has no version " + std::to_string(uri.version) + " (" +
            version_listing(uri.name, false, uri.text) + ")");
  if (uri.kind == model_uri_kind::alias) {
    std::vector<std::string> names;
    if (const json* rm = object_field(registered, "registered_model"))
      if (const json* aliases = array_field(*rm, "aliases"))
        for (const auto& entry : aliases->GetArray())
          names.push_back(string_field(entry, "alias"));
    std::sort(names.begin(), names.end());
    if (std::find(names.begin(), names.end(), uri.alias) == names.end())
      missing(uri.text + ": " + model + " has no alias '" + uri.alias + "' (" +
              (names.empty() ? std::string("it has no aliases") : "aliases: " + listing(names)) +
              ")");
  }
  throw serve_exception(errc::not_found, error.what());
}

resolved_model mlflow_tracking_server_store::resolve_logged_model(const model_uri& uri) {
  resolved_model out;
  out.description = uri.text + " -> logged model " + uri.model_id;
  auto key = ":logged-models/" + cache_component(uri.model_id);
  if (auto dir = cache_.find(key)) {
    out.local_dir = *dir;
    return out;
  }
  rapidjson::Document doc;
  try {
    doc = client_.get("logged-models/" + url_encode(uri.model_id, false), {}, uri.text);
  } catch (const mlflow_api_error& e) {
    if (e.code() == errc::not_found)
      missing(uri.text + ": no logged model '" + uri.model_id + "' in " + describe());
    throw;
  }
  const json* info =
      object_field(doc, "model") ? object_field(*object_field(doc, "model"), "info") : nullptr;
  auto status = info ? string_field(*info, "status") : "";
  if (status == "LOGGED_MODEL_PENDING")
    throw serve_exception(errc::unavailable, uri.text + ": the logged model is still being "
                                                        "uploaded (LOGGED_MODEL_PENDING); try "
                                                        "again later");
  if (status == "LOGGED_MODEL_UPLOAD_FAILED")
    throw serve_exception(errc::invalid_argument, uri.text + ": the logged model failed to upload "
                                                             "(LOGGED_MODEL_UPLOAD_FAILED)");
  out.source_uri = info ? string_field(*info, "artifact_uri") : "";
  if (out.source_uri.empty())
    throw serve_exception(errc::invalid_argument,
                          uri.text + ": " + describe() + " gave no artifact_uri for the model");
  out.local_dir = fetch(key, out.source_uri, uri.text);
  return out;
}

resolved_model mlflow_tracking_server_store::resolve_run(const model_uri& uri) {
  resolved_model out;
  out.source_uri = uri.text;
  auto key = ":runs/" + cache_component(uri.run_id) + "/" + cache_component(uri.artifact_path);
  if (auto dir = cache_.find(key)) {
    out.local_dir = *dir;
    out.description = uri.text + " -> run " + uri.run_id;
    return out;
  }
  rapidjson::Document doc;
  try {
    doc = client_.get("runs/get", {{"run_id", uri.run_id}}, uri.text);
  } catch (const mlflow_api_error& e) {
    if (e.code() == errc::not_found)
      missing(uri.text + ": no run '" + uri.run_id + "' in " + describe());
    throw;
  }
  const json* run = object_field(doc, "run");
  const json* info = run ? object_field(*run, "info") : nullptr;
  auto run_artifacts = info ? string_field(*info, "artifact_uri") : "";
  if (run_artifacts.empty())
    throw serve_exception(errc::invalid_argument,
                          uri.text + ": " + describe() + " gave no artifact_uri for the run");
  const auto& path = uri.artifact_path;
  auto slash = path.find('/');
  auto first = path.substr(0, slash);
  std::string model_id;
  if (!first.empty())
    if (auto location = run_logged_model_uri(uri.run_id, string_field(*info, "experiment_id"),
                                             first, uri.text, model_id)) {
      auto rest = slash == std::string::npos ? "" : path.substr(slash);
      out.description = uri.text + " -> logged model " + model_id + " of run " + uri.run_id;
      out.local_dir = fetch(key, *location + rest, uri.text + " (logged model " + model_id + ")");
      return out;
    }
  out.description = uri.text + " -> artifacts of run " + uri.run_id;
  try {
    out.local_dir = fetch(key, run_artifacts + (path.empty() ? "" : "/" + path), uri.text);
  } catch (const serve_exception& e) {
    if (e.code() != errc::not_found)
      throw;
    missing(uri.text + ": run '" + uri.run_id + "' has " +
            (path.empty()
                 ? std::string("no artifacts")
                 : "no artifact folder '" + path + "' and no logged model named '" + first + "'") +
            " (artifacts recorded at " + run_artifacts + ")");
  }
  return out;
}

std::optional<std::string> mlflow_tracking_server_store::run_logged_model_uri(
    const std::string& run_id, const std::string& experiment_id, const std::string& name,
    const std::string& context, std::string& id) {
  if (experiment_id.empty() || name.find_first_of("'\\") != std::string::npos)
    return std::nullopt;
  rapidjson::StringBuffer body;
  rapidjson::Writer<rapidjson::StringBuffer> w(body);
  auto filter = "name = '" + name + "' AND source_run_id = '" + run_id + "'";
  w.StartObject();
  w.Key("experiment_ids");
  w.StartArray();
  w.String(experiment_id);
  w.EndArray();
  w.Key("filter");
  w.String(filter);
  w.Key("max_results");
  w.Int(1);
  w.Key("order_by");
  w.StartArray();
  w.StartObject();
  w.Key("field_name");
  w.String("creation_timestamp");
  w.Key("ascending");
  w.Bool(false);
  w.EndObject();
  w.EndArray();
  w.EndObject();
  rapidjson::Document doc;
  try {
    doc = client_.post("logged-models/search", body.GetString(), context);
  } catch (const serve_exception& e) {
    if (e.code() == errc::unavailable)
      throw;
    return std::nullopt; // a server without logged models (MLflow 2.x): plain run artifacts
  }
  const json* models = array_field(doc, "models");
  if (!models || models->Empty())
    return std::nullopt;
  const json* info = object_field((*models)[0], "info");
  auto location = info ? string_field(*info, "artifact_uri") : "";
  if (location.empty())
    return std::nullopt;
  id = string_field(*info, "model_id");
  return location;
}

std::string mlflow_tracking_server_store::fetch(const std::string& key,
                                                const std::string& artifact_uri,
                                                const std::string& context) {
  auto scheme = uri_scheme(artifact_uri);
  if (scheme == "mlflow-artifacts") {
    // mlflow-artifacts:/P or mlflow-artifacts://host:port/P; always fetched from this server.
    auto path = artifact_uri.substr(std::string("mlflow-artifacts:").size());
    if (path.compare(0, 2, "//") == 0) {
      auto slash = path.find('/', 2);
      path = slash == std::string::npos ? "" : path.substr(slash);
    }
    path.erase(0, path.find_first_not_of('/'));
    while (!path.empty() && path.back() == '/')
      path.pop_back();
    check_artifact_path(path, context);
    return cache_.fill(key, [&](const std::string& temp_dir) {
      if (client_.download_folder(path, temp_dir, context) == 0)
        missing(context + ": no artifacts at " + artifact_uri + " on " + describe());
    });
  }
  if (scheme == "file" || (scheme.empty() && fs::path(artifact_uri).is_absolute())) {
    auto local = scheme == "file" ? file_uri_to_path(artifact_uri) : artifact_uri;
    if (is_directory(local))
      return local;
    throw serve_exception(errc::invalid_argument,
                          context + ": the artifacts are at " + artifact_uri +
                              ", which is not a folder on this machine, and " + describe() +
                              " does not proxy them (start it with --serve-artifacts and "
                              "--artifacts-destination)");
  }
  throw serve_exception(errc::invalid_argument,
                        context + ": the artifacts are at " + artifact_uri +
                            "; only the server's artifact proxy (mlflow-artifacts:/) and local "
                            "folders are read");
}

std::vector<std::string> mlflow_tracking_server_store::list_models() {
  std::vector<std::string> names;
  std::string token;
  do {
    std::vector<std::pair<std::string, std::string>> params{{"max_results", page_size}};
    if (!token.empty())
      params.emplace_back("page_token", token);
    auto doc = client_.get("registered-models/search", params, describe());
    if (const json* models = array_field(doc, "registered_models"))
      for (const auto& model : models->GetArray())
        names.push_back(string_field(model, "name"));
    token = string_field(doc, "next_page_token");
  } while (!token.empty());
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<model_version_info>
mlflow_tracking_server_store::search_versions(const std::string& name, const std::string& context) {
  std::vector<model_version_info> out;
  std::string token;
  do {
    std::vector<std::pair<std::string, std::string>> params{
        {"filter", "name=" + quoted(name, context)}, {"max_results", page_size}};
    if (!token.empty())
      params.emplace_back("page_token", token);
    auto doc = client_.get("model-versions/search", params, context);
    if (const json* versions = array_field(doc, "model_versions"))
      for (const auto& mv : versions->GetArray()) {
        model_version_info info;
        info.name = string_field(mv, "name");
        info.version = number_field(mv, "version");
        info.stage = string_field(mv, "current_stage");
        info.status = string_field(mv, "status");
        info.source = string_field(mv, "source");
        info.storage_location = string_field(mv, "storage_location");
        info.run_id = string_field(mv, "run_id");
        if (info.name == name && info.version >= 0)
          out.push_back(std::move(info));
      }
    token = string_field(doc, "next_page_token");
  } while (!token.empty());
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.version < b.version; });
  return out;
}

std::vector<model_version_info>
mlflow_tracking_server_store::list_versions(const std::string& name) {
  check_model_name(name);
  auto by_version = std::map<int64_t, std::vector<std::string>>{};
  for (const auto& [alias, version] : aliases(name))
    by_version[version].push_back(alias);
  auto versions = search_versions(name, "registered model '" + name + "'");
  for (auto& info : versions)
    info.aliases = by_version[info.version];
  return versions;
}

std::map<std::string, int64_t> mlflow_tracking_server_store::aliases(const std::string& name) {
  check_model_name(name);
  auto context = "registered model '" + name + "'";
  rapidjson::Document doc;
  try {
    doc = client_.get("registered-models/get", {{"name", name}}, context);
  } catch (const mlflow_api_error& e) {
    if (e.code() == errc::not_found)
      missing(context + ": no registered model '" + name + "' in " + describe() + model_listing());
    throw;
  }
  std::map<std::string, int64_t> out;
  if (const json* rm = object_field(doc, "registered_model"))
    if (const json* aliases = array_field(*rm, "aliases"))
      for (const auto& entry : aliases->GetArray())
        out[string_field(entry, "alias")] = number_field(entry, "version");
  return out;
}

std::string mlflow_tracking_server_store::model_listing() {
  try {
    auto models = list_models();
    return models.empty() ? " (it has none)" : " (models: " + listing(models) + ")";
  } catch (const serve_exception&) {
    return "";
  }
}

std::string mlflow_tracking_server_store::version_listing(const std::string& name, bool with_stage,
                                                          const std::string& context) {
  try {
    std::vector<std::string> items;
    for (const auto& v : search_versions(name, context))
      items.push_back(std::to_string(v.version) + (with_stage ? " " + v.stage : ""));
    return items.empty() ? "it has no versions" : "versions: " + listing(items);
  } catch (const serve_exception&) {
    return "versions unknown";
  }
}

std::unique_ptr<registry_store> open_tracking_server_store(const std::string& server_uri,
                                                           const std::string& base_dir,
                                                           tracking_server_options options) {
  options.http = with_mlflow_credentials(std::move(options.http));
  return std::make_unique<mlflow_tracking_server_store>(server_uri, base_dir, std::move(options));
}

} // namespace serve::registry
