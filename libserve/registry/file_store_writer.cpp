#include "libserve/registry/file_store_writer.hpp"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <system_error>
#include <vector>

#include "libserve/future.hpp"
#include "libserve/onnx/model.hpp"
#include "libserve/registry/atomic_files.hpp"
#include "libserve/registry/file_store.hpp"
#include "libserve/registry/local_store.hpp"
#include "libserve/registry/mlmodel.hpp"
#include "libserve/registry/model_uri.hpp"
#include "libserve/registry/yaml_file.hpp"
#include "libserve/registry/yaml_writer.hpp"

namespace serve::registry {
namespace fs = std::filesystem;
namespace {

constexpr const char* default_experiment = "0";
constexpr int claim_attempts = 5;

bool is_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

std::string random_hex(size_t digits) {
  static const char* hex = "0123456789abcdef";
  std::random_device device;
  std::mt19937_64 gen(
      (static_cast<uint64_t>(device()) << 32) ^ device() ^
      static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
  std::string out;
  for (size_t i = 0; i < digits; ++i)
    out += hex[gen() % 16];
  return out;
}

// Python's pathlib.Path.as_uri(): file:// and the path with everything but letters, digits,
// "_.-~" and "/" percent-encoded.
std::string path_to_file_uri(const std::string& path) {
  std::string out = "file://";
  for (unsigned char c : path) {
    if (std::isalnum(c) || c == '_' || c == '.' || c == '-' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

std::string user_name(const std::string& given) {
  if (!given.empty())
    return given;
  for (const char* var : {"LOGNAME", "USER", "LNAME", "USERNAME"})
    if (const char* v = std::getenv(var); v && *v)
      return v;
  if (auto* pw = ::getpwuid(::geteuid()))
    return pw->pw_name;
  return "";
}

// MLflow's utc_time_created: '2026-11-25 03:15:27.945102'.
std::string utc_time(int64_t ms) {
  std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  char frac[16];
  std::snprintf(frac, sizeof frac, ".%06lld", static_cast<long long>(ms % 1000) * 1000);
  return std::string(buf) + frac;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// numpy's name for a dtype as MLflow's TensorSpec records it; "" when MLflow has none.
std::string numpy_dtype(dtype t) {
  switch (t) {
  case dtype::undefined:
  case dtype::bfloat16:
    return "";
  case dtype::string:
    return "object";
  default:
    return dtype_name(t);
  }
}

// An MLflow tensor signature schema (JSON) for ONNX values; "" when one has no shape or a type
// MLflow's tensor specs cannot name (then the MLmodel gets no signature, as without one).
std::string tensor_schema(const std::vector<onnx_ir::value_info>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    const auto& v = values[i];
    auto np_dtype = numpy_dtype(v.type);
    if (!v.has_shape || np_dtype.empty() || !v.non_tensor_type.empty())
      return "";
    std::string shape;
    for (size_t d = 0; d < v.dims.size(); ++d)
      shape += (d ? ", " : "") + std::to_string(v.dims[d] < 0 ? -1 : v.dims[d]);
    out += (i ? ", " : "") + std::string("{\"name\": ") + json_string(v.name) +
           ", \"type\": \"tensor\", \"tensor-spec\": {\"dtype\": \"" + np_dtype +
           "\", \"shape\": [" + shape + "]}}";
  }
  return out + "]";
}

// The MLmodel MLflow's onnx flavor writes, trimmed to what loading needs: no conda/virtualenv
// files (the folder has none), providers limited to the CPU.
std::string minimal_mlmodel(const std::string& artifact_location, const std::string& model_id,
                            const std::string& model_file, uint64_t size_bytes, int64_t now_ms,
                            const onnx_ir::model_info& info) {
  auto onnx = yaml_value::map();
  onnx.set("code", yaml_value::null());
  onnx.set("data", yaml_value::text(model_file));
  onnx.set("onnx_session_options", yaml_value::null());
  onnx.set("providers", yaml_value::list().push(yaml_value::text("CPUExecutionProvider")));
  auto pyfunc = yaml_value::map();
  pyfunc.set("data", yaml_value::text(model_file));
  pyfunc.set("loader_module", yaml_value::text("mlflow.onnx"));
  auto flavors = yaml_value::map();
  flavors.set("onnx", std::move(onnx));
  flavors.set("python_function", std::move(pyfunc));

  auto doc = yaml_value::map();
  doc.set("artifact_path", yaml_value::text(artifact_location));
  doc.set("flavors", std::move(flavors));
  doc.set("model_id", yaml_value::text(model_id));
  doc.set("model_size_bytes", yaml_value::integer(static_cast<int64_t>(size_bytes)));
  doc.set("model_uuid", yaml_value::text(model_id));
  auto inputs = tensor_schema(info.inputs);
  auto outputs = tensor_schema(info.outputs);
  if (!inputs.empty() && !outputs.empty()) {
    auto signature = yaml_value::map();
    signature.set("inputs", yaml_value::text(inputs));
    signature.set("outputs", yaml_value::text(outputs));
    signature.set("params", yaml_value::null());
    doc.set("signature", std::move(signature));
  }
  doc.set("utc_time_created", yaml_value::text(utc_time(now_ms)));
  return to_yaml(doc);
}

// What register_folder() found in a model folder.
struct model_check {
  bool has_mlmodel = false;
  /// The ONNX file, relative to the folder.
  std::string model_file;
  onnx_ir::model_info info;
};

// `folder` checked: a folder holding MLmodel (with an onnx flavor whose data file exists) or
// model.onnx, whose ONNX file ActorServe loads.
model_check check_model_folder(const fs::path& folder) {
  std::error_code ec;
  if (!fs::exists(folder, ec))
    throw serve_exception(errc::not_found, "model folder " + folder.string() + " does not exist");
  if (!is_dir(folder))
    throw serve_exception(errc::invalid_argument,
                          folder.string() + " is a file; give the folder that holds MLmodel or "
                                            "model.onnx (and extra files such as labels.json)");
  model_check out;
  out.has_mlmodel = is_file(folder / "MLmodel");
  if (!out.has_mlmodel && !is_file(folder / "model.onnx"))
    throw serve_exception(errc::invalid_argument, "model folder " + folder.string() +
                                                      " holds neither MLmodel nor model.onnx");
  auto read = read_model_folder(folder.string()); // checks MLmodel's onnx flavor and data file
  out.model_file = read.model_file;
  try {
    out.info = onnx_ir::onnx_model::load(read.model_path)->info();
  } catch (const serve_exception& e) {
    throw serve_exception(errc::invalid_argument, "model folder " + folder.string() +
                                                      ": ActorServe cannot load " +
                                                      read.model_file + ": " + e.what());
  }
  return out;
}

std::string read_small_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.pop_back();
  return text;
}

// Alias -> version text, as the files in aliases/ hold them.
std::map<std::string, std::string> alias_files(const fs::path& model_dir) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(model_dir / "aliases", ec), end; !ec && it != end;
       it.increment(ec))
    if (is_file(it->path()) && it->path().filename().string()[0] != '.')
      out[it->path().filename().string()] = read_small_file(it->path());
  return out;
}

// The highest N of the version-N folders (deleted versions included, as MLflow counts them).
int64_t highest_version(const fs::path& model_dir) {
  int64_t highest = 0;
  std::error_code ec;
  for (fs::directory_iterator it(model_dir, ec), end; !ec && it != end; it.increment(ec)) {
    auto name = it->path().filename().string();
    if (!is_dir(it->path()) || name.rfind("version-", 0) != 0)
      continue;
    char* stop = nullptr;
    auto n = std::strtoll(name.c_str() + 8, &stop, 10);
    if (stop && *stop == '\0' && n > highest)
      highest = n;
  }
  return highest;
}

void check_writable_name(const std::string& name) {
  check_model_name(name);
  if (name.find('%') != std::string::npos)
    throw serve_exception(errc::invalid_argument,
                          "registered model '" + name +
                              "': MLflow's file store refuses names containing '%'");
}

// Writes the logged model out.model_id into the experiment folder `models` (its models/): the
// copied artifacts, MLmodel when the folder has none, tags and meta.yaml, renamed in whole.
void write_logged_model(const std::string& models, const std::string& folder,
                        const model_check& checked, int64_t created, const std::string& user,
                        registered_version& out) {
  make_dirs(models);
  staging_dir stage(models, out.model_id);
  auto artifacts = stage.path() + "/artifacts";
  for (const char* sub : {"artifacts", "tags", "params", "metrics"})
    make_dirs(stage.path() + "/" + sub);
  auto bytes = copy_tree_synced(folder, artifacts);
  if (!checked.has_mlmodel) {
    write_file_atomically(artifacts + "/MLmodel",
                          minimal_mlmodel(out.storage_location, out.model_id, checked.model_file,
                                          bytes, created, checked.info));
    out.wrote_mlmodel = true;
  }
  // Tag files go through temporary files in the model folder: MLflow reads all of tags/.
  auto tags = stage.path() + "/tags/";
  write_file_atomically(tags + "mlflow.source.type", "LOCAL", stage.path());
  write_file_atomically(tags + "mlflow.source.name", "actorserve registry register", stage.path());
  if (!user.empty())
    write_file_atomically(tags + "mlflow.user", user, stage.path());
  auto meta = yaml_value::map();
  meta.set("artifact_location", yaml_value::text(out.storage_location));
  meta.set("creation_timestamp", yaml_value::integer(created));
  meta.set("experiment_id", yaml_value::text(default_experiment));
  meta.set("last_updated_timestamp", yaml_value::integer(created));
  meta.set("model_id", yaml_value::text(out.model_id));
  meta.set("model_type", yaml_value::null());
  meta.set("name", yaml_value::text("model"));
  meta.set("source_run_id", yaml_value::null());
  meta.set("status", yaml_value::integer(2)); // LoggedModelStatus.READY
  meta.set("status_message", yaml_value::null());
  write_file_atomically(stage.path() + "/meta.yaml", to_yaml(meta));
  if (!stage.move_to(models + "/" + out.model_id))
    throw serve_exception(errc::internal,
                          "logged model folder " + models + "/" + out.model_id + " exists");
}

// Writes the registered model's meta.yaml in `model` unless it exists (a folder left without
// meta.yaml by a crash is completed); true when it wrote it.
bool ensure_registered_model(const std::string& model, const std::string& name, int64_t created) {
  if (is_file(model + "/meta.yaml"))
    return false;
  make_dirs(model);
  auto meta = yaml_value::map();
  meta.set("aliases", yaml_value::map());
  meta.set("creation_timestamp", yaml_value::integer(created));
  meta.set("deployment_job_id", yaml_value::null());
  meta.set("deployment_job_state", yaml_value::null());
  meta.set("description", yaml_value::null());
  meta.set("last_updated_timestamp", yaml_value::integer(created));
  meta.set("name", yaml_value::text(name));
  meta.set("workspace", yaml_value::text("default"));
  write_file_atomically(model + "/meta.yaml", to_yaml(meta));
  return true;
}

// Writes version-N for `v` in the registered model folder `model`, N the next number: the folder
// is claimed by an exclusive rename, so concurrent writers get distinct numbers.
int64_t claim_version(const std::string& model, const registered_version& v, int64_t created) {
  for (int attempt = 0; attempt < claim_attempts; ++attempt) {
    auto version = highest_version(model) + 1;
    auto meta = yaml_value::map();
    meta.set("creation_timestamp", yaml_value::integer(created));
    meta.set("current_stage", yaml_value::text("None"));
    meta.set("deployment_job_state", yaml_value::null());
    meta.set("description", yaml_value::null());
    meta.set("last_updated_timestamp", yaml_value::integer(created));
    meta.set("model_id", yaml_value::text(v.model_id));
    meta.set("name", yaml_value::text(v.name));
    meta.set("run_id", yaml_value::null());
    meta.set("run_link", yaml_value::null());
    meta.set("source", yaml_value::text(v.source));
    meta.set("status", yaml_value::text("READY"));
    meta.set("status_message", yaml_value::null());
    meta.set("storage_location", yaml_value::text(v.storage_location));
    meta.set("user_id", yaml_value::null());
    meta.set("version", yaml_value::integer(version));
    meta.set("workspace", yaml_value::text("default"));
    staging_dir stage(model, "version-" + std::to_string(version));
    write_file_atomically(stage.path() + "/meta.yaml", to_yaml(meta));
    if (stage.move_to(model + "/version-" + std::to_string(version)))
      return version;
  }
  throw serve_exception(errc::unavailable, "registered model '" + v.name +
                                               "': other writers kept taking the next version "
                                               "number; try again");
}

} // namespace

void check_alias_name(const std::string& alias) {
  auto refuse = [&](const std::string& why) {
    throw serve_exception(errc::invalid_argument, "alias '" + alias + "': " + why);
  };
  if (alias.empty())
    refuse("an alias name cannot be empty");
  if (alias.size() > 255)
    refuse("longer than MLflow's 255 characters");
  for (unsigned char c : alias)
    if (!(std::isalnum(c) || c == '_' || c == '-' || c >= 0x80))
      refuse("MLflow's alias names hold letters, digits, '_' and '-' only");
  std::string lower;
  for (unsigned char c : alias)
    lower += static_cast<char>(std::tolower(c));
  if (lower == "latest")
    refuse("'latest' is reserved (models:/NAME@latest is the highest version)");
  if ((alias[0] == 'v' || alias[0] == 'V') && alias.size() > 1 &&
      std::all_of(alias.begin() + 1, alias.end(), [](unsigned char c) { return std::isdigit(c); }))
    refuse("version aliases (v<digits>) are reserved by MLflow");
}

std::string file_store_folder_for_writing(const std::string& registry_uri,
                                          const std::string& base_dir) {
  auto refuse = [&](const std::string& what) {
    throw serve_exception(errc::invalid_argument, "writing needs an MLflow file store folder; " +
                                                      registry_uri + " is " + what);
  };
  if (registry_uri.empty())
    throw serve_exception(errc::invalid_argument,
                          "writing needs an MLflow file store folder; the registry URI is empty");
  auto scheme = uri_scheme(registry_uri);
  if (scheme == "http" || scheme == "https")
    refuse("an MLflow tracking server (register there with MLflow's client, or write to its "
           "file store folder)");
  if (scheme == "sqlite")
    refuse("an MLflow SQLite store (ActorServe reads it but writes only file stores)");
  std::string path = registry_uri;
  if (scheme == "file")
    path = file_uri_to_path(registry_uri);
  else if (!scheme.empty())
    refuse("a '" + scheme + ":' URI");
  fs::path p(path);
  if (p.is_relative() && !base_dir.empty())
    p = fs::path(base_dir) / p;
  std::error_code ec;
  if (fs::exists(p, ec) && !fs::is_directory(p, ec)) {
    char header[16] = {};
    std::ifstream in(p, std::ios::binary);
    in.read(header, sizeof header);
    bool sqlite = in.gcount() == sizeof header && std::memcmp(header, "SQLite format 3", 16) == 0;
    refuse(sqlite ? "a SQLite database (an MLflow SQLite store)" : "a file, not a folder");
  }
  return p.string();
}

mlflow_file_store_writer::mlflow_file_store_writer(const std::string& root,
                                                   register_options options, bool create)
    : root_(join_path(fs::absolute(root).string(), "")), options_(std::move(options)) {
  std::error_code ec;
  if (!fs::exists(root_, ec)) {
    if (!create)
      throw serve_exception(errc::not_found, "MLflow file store " + root_ + " does not exist");
    make_dirs(root_);
    return;
  }
  if (!is_dir(root_))
    throw serve_exception(errc::invalid_argument,
                          "writing needs an MLflow file store folder; " + root_ + " is a file");
  bool empty = true, store_like = false;
  for (fs::directory_iterator it(root_, ec), end; !ec && it != end; it.increment(ec)) {
    empty = false;
    auto name = it->path().filename().string();
    if (name == "models" || name == ".trash" ||
        (is_dir(it->path()) && is_file(it->path() / "meta.yaml")))
      store_like = true;
  }
  if (!empty && !store_like)
    throw serve_exception(errc::invalid_argument,
                          root_ + " is not an MLflow file store (no models/ folder, no "
                                  "experiment folders); give an mlruns folder or a new one");
}

int64_t mlflow_file_store_writer::now() const {
  if (options_.now_ms)
    return options_.now_ms();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string mlflow_file_store_writer::model_dir(const std::string& name) const {
  return root_ + "/models/" + name;
}

std::string mlflow_file_store_writer::location_of(const std::string& path) const {
  if (!options_.relative_locations)
    return path_to_file_uri(path);
  return fs::path(path).lexically_relative(fs::path(root_).parent_path()).string();
}

void mlflow_file_store_writer::ensure_default_experiment() {
  make_dirs(root_ + "/models");
  make_dirs(root_ + "/.trash");
  auto dir = root_ + "/" + default_experiment;
  if (is_file(dir + "/meta.yaml"))
    return;
  if (is_dir(root_ + "/.trash/" + default_experiment))
    throw serve_exception(errc::invalid_argument, "MLflow file store " + root_ +
                                                      ": the Default experiment (0) is deleted "
                                                      "(.trash/0); restore it with MLflow first");
  make_dirs(dir);
  auto t = now();
  auto meta = yaml_value::map();
  meta.set("artifact_location", yaml_value::text(location_of(dir)));
  meta.set("creation_time", yaml_value::integer(t));
  meta.set("effective_trace_archival_retention", yaml_value::null());
  meta.set("experiment_id", yaml_value::text(default_experiment));
  meta.set("last_update_time", yaml_value::integer(t));
  meta.set("lifecycle_stage", yaml_value::text("active"));
  meta.set("name", yaml_value::text("Default"));
  meta.set("trace_location", yaml_value::null());
  meta.set("workspace", yaml_value::text("default"));
  write_file_atomically(dir + "/meta.yaml", to_yaml(meta));
}

void mlflow_file_store_writer::rewrite_model_meta(const std::string& name, int64_t updated_ms) {
  auto path = model_dir(name) + "/meta.yaml";
  auto meta = yaml_value::from_node(read_yaml_map(path));
  meta.set("last_updated_timestamp", yaml_value::integer(updated_ms));
  // MLflow 3 rewrites the registered model with the aliases it read from aliases/.
  auto aliases = yaml_value::map();
  for (const auto& [alias, version] : alias_files(model_dir(name)))
    aliases.set(alias, yaml_value::text(version));
  meta.set("aliases", std::move(aliases));
  write_file_atomically(path, to_yaml(meta));
}

registered_version mlflow_file_store_writer::register_folder(const std::string& folder,
                                                             const std::string& name) {
  check_writable_name(name);
  auto checked = check_model_folder(folder);
  ensure_default_experiment();

  registered_version out;
  out.name = name;
  out.model_id = "m-" + random_hex(32);
  out.source = "models:/" + out.model_id;
  auto logged = root_ + "/" + default_experiment + "/models/" + out.model_id;
  out.artifacts_dir = logged + "/artifacts";
  out.storage_location = location_of(out.artifacts_dir);
  const auto created = now();

  // In this order, each step complete before the next: a version never names missing artifacts.
  write_logged_model(root_ + "/" + default_experiment + "/models", folder, checked, created,
                     user_name(options_.user), out);
  out.created_model = ensure_registered_model(model_dir(name), name, created);
  out.version = claim_version(model_dir(name), out, created);
  write_file_atomically(logged + "/tags/mlflow.modelVersions",
                        "[{\"name\": " + json_string(name) +
                            ", \"version\": " + std::to_string(out.version) + "}]",
                        logged);
  rewrite_model_meta(name, now());
  return out;
}

void mlflow_file_store_writer::require_model(const std::string& name) const {
  // The reader's errors: unknown model (listing the models there are).
  mlflow_file_store(root_, "").aliases(name);
}

int64_t mlflow_file_store_writer::set_alias(const std::string& name, const std::string& alias,
                                            int64_t version) {
  check_writable_name(name);
  check_alias_name(alias);
  mlflow_file_store reader(root_, "");
  auto versions = reader.list_versions(name); // throws not_found for an unknown model
  bool live = std::any_of(versions.begin(), versions.end(),
                          [&](const auto& v) { return v.version == version; });
  if (!live) {
    std::string listing;
    for (const auto& v : versions)
      listing += (listing.empty() ? "" : ", ") + std::to_string(v.version);
    bool deleted = is_dir(model_dir(name) + "/version-" + std::to_string(version));
    throw serve_exception(errc::not_found,
                          "registered model '" + name + "' has no version " +
                              std::to_string(version) + " (" + (deleted ? "it was deleted; " : "") +
                              (listing.empty() ? "it has no versions" : "versions: " + listing) +
                              ")");
  }
  auto before = reader.aliases(name);
  auto it = before.find(alias);
  int64_t previous = it == before.end() ? 0 : it->second;
  make_dirs(model_dir(name) + "/aliases");
  write_file_atomically(model_dir(name) + "/aliases/" + alias, std::to_string(version),
                        model_dir(name));
  rewrite_model_meta(name, now());
  return previous;
}

int64_t mlflow_file_store_writer::delete_alias(const std::string& name, const std::string& alias) {
  check_writable_name(name);
  if (alias.empty() || alias.find('/') != std::string::npos || alias == "." || alias == "..")
    throw serve_exception(errc::invalid_argument, "alias '" + alias + "' is not an alias name");
  require_model(name);
  auto all = mlflow_file_store(root_, "").aliases(name);
  auto it = all.find(alias);
  if (it == all.end()) {
    std::string listing;
    for (const auto& entry : all)
      listing += (listing.empty() ? "" : ", ") + entry.first;
    throw serve_exception(
        errc::not_found, "registered model '" + name + "' has no alias '" + alias + "' (" +
                             (listing.empty() ? "it has no aliases" : "aliases: " + listing) + ")");
  }
  auto path = model_dir(name) + "/aliases/" + alias;
  if (std::remove(path.c_str()) != 0)
    throw serve_exception(errc::internal, "cannot remove " + path + ": " + std::strerror(errno));
  rewrite_model_meta(name, now());
  return it->second;
}

} // namespace serve::registry
