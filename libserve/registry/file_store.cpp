#include "libserve/registry/file_store.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "libserve/future.hpp"
#include "libserve/registry/yaml_file.hpp"

namespace serve::registry {
namespace fs = std::filesystem;
namespace {

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

bool is_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

// Sub-folders of `dir`, sorted by name; none when it is not a folder.
std::vector<fs::path> subdirs(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (is_dir(it->path()))
      out.push_back(it->path());
  std::sort(out.begin(), out.end());
  return out;
}

std::string absolute_under(const std::string& path, const std::string& base_dir) {
  fs::path p(path);
  if (p.is_relative() && !base_dir.empty())
    p = fs::path(base_dir) / p;
  return join_path(fs::absolute(p).string(), "");
}

logged_model_record read_logged_model(const fs::path& meta) {
  auto node = read_yaml_map(meta.string());
  return {yaml_scalar(node, "model_id", meta.string()),
          yaml_scalar(node, "artifact_location", meta.string())};
}

} // namespace

mlflow_file_store::mlflow_file_store(const std::string& root, const std::string& base_dir)
    : local_store(base_dir, artifact_locator("/", {})), root_(absolute_under(root, base_dir)) {
  if (!is_dir(root_))
    throw serve_exception(errc::not_found, "MLflow file store " + root_ + " is not a folder");
  std::vector<artifact_root_move> moves;
  for (const auto& dir : experiment_dirs()) {
    auto meta = dir + "/meta.yaml";
    auto node = read_yaml_map(meta);
    auto recorded = artifact_locator::recorded_root(yaml_scalar(node, "artifact_location", meta),
                                                    fs::path(dir).filename().string());
    if (!recorded || *recorded == root_)
      continue;
    if (std::none_of(moves.begin(), moves.end(),
                     [&](const auto& m) { return m.recorded == *recorded; }))
      moves.push_back({*recorded, root_});
  }
  set_locator(artifact_locator(fs::path(root_).parent_path().string(), std::move(moves)));
}

std::string mlflow_file_store::describe() const {
  return "MLflow file store " + root_;
}

std::string mlflow_file_store::model_dir(const std::string& name) const {
  return root_ + "/models/" + name;
}

std::vector<std::string> mlflow_file_store::experiment_dirs() const {
  std::vector<std::string> out;
  for (const auto& dir : subdirs(root_)) {
    auto name = dir.filename().string();
    if (name != "models" && name != ".trash" && is_file(dir / "meta.yaml"))
      out.push_back(dir.string());
  }
  return out;
}

std::vector<std::string> mlflow_file_store::list_models() {
  std::vector<std::string> out;
  for (const auto& dir : subdirs(root_ + "/models"))
    if (is_file(dir / "meta.yaml"))
      out.push_back(dir.filename().string());
  return out;
}

bool mlflow_file_store::has_model(const std::string& name) {
  return is_file(model_dir(name) + "/meta.yaml");
}

std::vector<version_record> mlflow_file_store::version_records(const std::string& name) {
  std::vector<version_record> out;
  for (const auto& dir : subdirs(model_dir(name))) {
    auto folder = dir.filename().string();
    if (folder.rfind("version-", 0) != 0)
      continue;
    auto meta = (dir / "meta.yaml").string();
    if (!is_file(meta))
      throw serve_exception(errc::invalid_argument, "MLflow file store: version folder " +
                                                        dir.string() + " has no meta.yaml");
    auto node = read_yaml_map(meta);
    version_record r;
    auto version = yaml_scalar(node, "version", meta);
    r.version = parse_version_number(version.empty() ? folder.substr(8) : version, meta);
    r.stage = yaml_scalar(node, "current_stage", meta);
    r.status = yaml_scalar(node, "status", meta);
    r.source = yaml_scalar(node, "source", meta);
    r.storage_location = yaml_scalar(node, "storage_location", meta);
    r.run_id = yaml_scalar(node, "run_id", meta);
    if (r.run_id.empty())
      r.run_id = yaml_scalar(node, "run_uuid", meta); // MLflow 2.x and older
    out.push_back(std::move(r));
  }
  return out;
}

std::map<std::string, int64_t> mlflow_file_store::alias_records(const std::string& name) {
  std::map<std::string, int64_t> out;
  std::error_code ec;
  for (fs::directory_iterator it(model_dir(name) + "/aliases", ec), end; !ec && it != end;
       it.increment(ec)) {
    if (!is_file(it->path()))
      continue;
    std::string text;
    if (auto* f = std::fopen(it->path().c_str(), "rb")) {
      char buf[64];
      size_t n = std::fread(buf, 1, sizeof buf, f);
      std::fclose(f);
      text.assign(buf, n);
    }
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
      text.pop_back();
    out[it->path().filename().string()] =
        parse_version_number(text, "MLflow alias file " + it->path().string());
  }
  return out;
}

std::optional<std::string> mlflow_file_store::run_artifact_uri(const std::string& run_id) {
  for (const auto& dir : experiment_dirs()) {
    auto meta = dir + "/" + run_id + "/meta.yaml";
    if (is_file(meta))
      return yaml_scalar(read_yaml_map(meta), "artifact_uri", meta);
  }
  return std::nullopt;
}

std::optional<logged_model_record> mlflow_file_store::logged_model(const std::string& model_id) {
  for (const auto& dir : experiment_dirs()) {
    auto meta = fs::path(dir) / "models" / model_id / "meta.yaml";
    if (is_file(meta))
      return read_logged_model(meta);
  }
  return std::nullopt;
}

std::optional<logged_model_record> mlflow_file_store::run_logged_model(const std::string& run_id,
                                                                       const std::string& name) {
  // MLflow looks in the run's experiment for a logged model of that name from that run.
  std::optional<logged_model_record> best;
  int64_t best_time = -1;
  for (const auto& dir : experiment_dirs()) {
    if (!is_dir(dir + "/" + run_id))
      continue;
    for (const auto& model : subdirs(fs::path(dir) / "models")) {
      auto meta = (model / "meta.yaml").string();
      if (!is_file(meta))
        continue;
      auto node = read_yaml_map(meta);
      if (yaml_scalar(node, "source_run_id", meta) != run_id ||
          yaml_scalar(node, "name", meta) != name)
        continue;
      auto created = yaml_scalar(node, "creation_timestamp", meta);
      int64_t time = std::strtoll(created.c_str(), nullptr, 10); // 0 when absent or odd
      if (time > best_time) {
        best_time = time;
        best = read_logged_model(model / "meta.yaml");
      }
    }
  }
  return best;
}

} // namespace serve::registry
