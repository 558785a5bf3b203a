#include "libserve/registry/local_store.hpp"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "libserve/future.hpp"

namespace serve::registry {
namespace fs = std::filesystem;
namespace {


std::vector<version_record> live_versions(std::vector<version_record> records) {
  records.erase(std::remove_if(records.begin(), records.end(),
                               [](const auto& r) { return r.stage == deleted_stage; }),
                records.end());
  std::sort(records.begin(), records.end(),
            [](const auto& a, const auto& b) { return a.version < b.version; });
  return records;
}

std::string version_listing(const std::vector<version_record>& live, bool with_stage) {
  std::vector<std::string> items;
  for (const auto& r : live)
    items.push_back(std::to_string(r.version) + (with_stage ? " " + r.stage : ""));
  return items.empty() ? "it has no versions" : "versions: " + listing(items);
}

[[noreturn]] void missing(const std::string& message) {
  throw serve_exception(errc::not_found, message);
}

} // namespace

local_store::local_store(std::string base_dir, artifact_locator locator)
    : base_dir_(std::move(base_dir)), locator_(std::move(locator)) {}

void local_store::require_model(const std::string& name, const std::string& context) {
  if (has_model(name))
    return;
  auto models = list_models();
  missing(context + ": no registered model '" + name + "' in " + describe() + " (" +
          (models.empty() ? std::string("it has none") : "models: " + listing(models)) + ")");
}

std::vector<model_version_info> local_store::list_versions(const std::string& name) {
  check_model_name(name);
  require_model(name, "registered model '" + name + "'");
  auto by_version = std::map<int64_t, std::vector<std::string>>{};
  for (const auto& [alias, version] : alias_records(name))
    by_version[version].push_back(alias);
  std::vector<model_version_info> out;
  for (const auto& r : live_versions(version_records(name)))
    out.push_back({name, r.version, r.stage, r.status, r.source, r.storage_location, r.run_id,
                   by_version[r.version]});
  return out;
}

std::map<std::string, int64_t> local_store::aliases(const std::string& name) {
  check_model_name(name);
  require_model(name, "registered model '" + name + "'");
  return alias_records(name);
}

version_record local_store::pick_version(const model_uri& uri) {
  require_model(uri.name, uri.text);
  const std::string model = "registered model '" + uri.name + "'";
  auto records = version_records(uri.name);
  auto live = live_versions(records);
  auto find = [&](int64_t version) -> const version_record* {
    for (const auto& r : live)
      if (r.version == version)
        return &r;
    return nullptr;
  };
  auto deleted = [&](int64_t version) {
    return std::any_of(records.begin(), records.end(),
                       [&](const auto& r) { return r.version == version; });
  };
  switch (uri.kind) {
  case model_uri_kind::version:
    if (auto* r = find(uri.version))
      return *r;
    missing(uri.text + ": " + model + " has no version " + std::to_string(uri.version) + " (" +
            (deleted(uri.version) ? "it was deleted; " : "") + version_listing(live, false) + ")");
  case model_uri_kind::latest:
    if (live.empty())
      missing(uri.text + ": " + model + " has no versions" +
              (records.empty() ? "" : " (all were deleted)"));
    return live.back();
  case model_uri_kind::stage:
    for (auto it = live.rbegin(); it != live.rend(); ++it)
      if (it->stage == uri.stage)
        return *it;
    missing(uri.text + ": " + model + " has no version in stage '" + uri.stage + "' (" +
            version_listing(live, true) + ")");
  case model_uri_kind::alias: {
    auto all = alias_records(uri.name);
    auto it = all.find(uri.alias);
    if (it == all.end()) {
      std::vector<std::string> names;
      for (const auto& entry : all)
        names.push_back(entry.first);
      missing(uri.text + ": " + model + " has no alias '" + uri.alias + "' (" +
              (names.empty() ? std::string("it has no aliases") : "aliases: " + listing(names)) +
              ")");
    }
    if (auto* r = find(it->second))
      return *r;
    missing(uri.text + ": alias '" + uri.alias + "' of " + model + " names version " +
            std::to_string(it->second) + ", which " +
            (deleted(it->second) ? "was deleted" : "does not exist") + " (" +
            version_listing(live, false) + ")");
  }
  default:
    throw serve_exception(errc::internal, uri.text + ": not a registered-version URI");
  }
}

resolved_model local_store::resolve(const model_uri& uri) {
  resolved_model out;
  switch (uri.kind) {
  case model_uri_kind::local_path:
    return resolve_local_folder(uri, base_dir_);
  case model_uri_kind::logged_model:
    out.local_dir = logged_model_artifacts(uri.model_id, uri.text, out.source_uri);
    out.description = uri.text + " -> logged model " + uri.model_id;
    return out;
  case model_uri_kind::run: {
    std::string how;
    out.local_dir = run_artifacts(uri.run_id, uri.artifact_path, uri.text, how);
    out.source_uri = uri.text;
    out.description = uri.text + " -> " + how;
    return out;
  }
  default:
    return resolve_version(uri);
  }
}

resolved_model local_store::resolve_version(const model_uri& uri) {
  auto record = pick_version(uri);
  auto version = std::to_string(record.version);
  auto context = uri.text + " (version " + version + ")";
  if (record.status == "PENDING_REGISTRATION")
    throw serve_exception(errc::unavailable, context + ": the version is still being registered "
                                                       "(PENDING_REGISTRATION); try again later");
  if (record.status == "FAILED_REGISTRATION")
    throw serve_exception(errc::invalid_argument,
                          context + ": the version failed to register (FAILED_REGISTRATION)");
  resolved_model out;
  out.name = uri.name;
  out.version = version;
  out.local_dir = version_artifacts(uri, record, out.source_uri);
  out.description = uri.text + " -> version " + version;
  return out;
}

std::string local_store::version_artifacts(const model_uri& uri, const version_record& record,
                                           std::string& source_uri) {
  auto context = uri.text + " (version " + std::to_string(record.version) + ")";
  source_uri = record.storage_location.empty() ? record.source : record.storage_location;
  if (source_uri.empty())
    throw serve_exception(errc::invalid_argument,
                          context + ": the registry records no source for this version");
  auto scheme = uri_scheme(source_uri);
  if (scheme != "models" && scheme != "runs")
    return locator_.require(source_uri, "", context);
  model_uri source;
  try {
    source = model_uri::parse(source_uri);
  } catch (const serve_exception& e) {
    throw serve_exception(errc::invalid_argument, context + ": its source " + e.what());
  }
  if (source.kind == model_uri_kind::logged_model) {
    std::string location;
    return logged_model_artifacts(source.model_id, context, location);
  }
  if (source.kind == model_uri_kind::run) {
    std::string how;
    return run_artifacts(source.run_id, source.artifact_path, context, how);
  }
  throw serve_exception(errc::invalid_argument,
                        context + ": its source " + source_uri +
                            " names another registered model; only logged models, runs and "
                            "paths are followed");
}

std::string local_store::logged_model_artifacts(const std::string& model_id,
                                                const std::string& context, std::string& location) {
  auto model = logged_model(model_id);
  if (!model)
    missing(context + ": no logged model '" + model_id + "' in " + describe());
  location = model->artifact_location;
  return locator_.require(model->artifact_location, "",
                          context + " (logged model " + model_id + ")");
}

std::string local_store::run_artifacts(const std::string& run_id, const std::string& path,
                                       const std::string& context, std::string& how) {
  auto artifact_uri = run_artifact_uri(run_id);
  if (!artifact_uri)
    missing(context + ": no run '" + run_id + "' in " + describe());
  auto slash = path.find('/');
  auto first = path.substr(0, slash);
  if (!first.empty()) {
    if (auto model = run_logged_model(run_id, first)) {
      how = "logged model " + model->model_id + " of run " + run_id;
      auto rest = slash == std::string::npos ? "" : path.substr(slash + 1);
      return locator_.require(model->artifact_location, rest,
                              context + " (logged model " + model->model_id + ")");
    }
  }
  how = "artifacts of run " + run_id;
  if (auto found = locator_.find(*artifact_uri, path, context))
    return *found;
  missing(context + ": run '" + run_id + "' has " +
          (path.empty() ? std::string("no artifacts")
                        : "no artifact '" + path + "' and no logged model named '" + first + "'") +
          " (artifacts recorded at " + *artifact_uri + ")");
}

} // namespace serve::registry
