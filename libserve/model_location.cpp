#include "libserve/model_location.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "libserve/future.hpp"
#include "libserve/registry/mlmodel.hpp"
#include "libserve/registry/model_uri.hpp"
#include "libserve/registry/registry_store.hpp"
#include "libserve/json.hpp"

namespace serve {

namespace fs = std::filesystem;

std::string read_whole_file(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw serve_exception(errc::not_found, "cannot read " + what + " \"" + path + "\"");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// A local .onnx file, a model folder (MLmodel or model.onnx), or a registry URI resolved
/// against `registry_uri` (an MLflow file store, SQLite store or tracking server).
located_model locate_model(const std::string& uri, const std::string& registry_uri) {
  auto parsed = registry::model_uri::parse(uri);
  if (!parsed.needs_registry()) {
    std::error_code ec;
    if (!fs::is_directory(parsed.path, ec))
      return {parsed.path, fs::path(parsed.path).parent_path().string(), "", parsed.path};
    auto folder = registry::read_model_folder(parsed.path);
    return {folder.model_path, folder.dir, "", parsed.path};
  }
  if (registry_uri.empty())
    throw serve_exception(errc::invalid_argument,
                          "model uri \"" + uri + "\" names a registry entry: set \"registry_uri\" "
                          "(on the model, its application or the config's top level) to an MLflow "
                          "file store folder, sqlite:///path/to/mlflow.db or http://host:port");
  auto store = registry::open_registry(registry_uri, "");
  auto found = store->resolve(parsed);
  auto folder = registry::read_model_folder(found.local_dir);
  return {folder.model_path, folder.dir, found.version,
          found.description + " (" + store->describe() + ")"};
}

/// The labels file: as given, or, for a relative path that does not exist, inside the model's
/// folder (registry models carry it as an artifact).
std::string labels_path(const std::string& labels, const std::string& model_dir) {
  std::error_code ec;
  if (labels.empty() || fs::path(labels).is_absolute() || fs::exists(labels, ec)
      || model_dir.empty())
    return labels;
  auto inside = fs::path(model_dir) / labels;
  return fs::exists(inside, ec) ? inside.string() : labels;
}


namespace {

/// A bundle path is relative, '/'-separated and free of "." and ".." segments.
bool safe_relative(const std::string& rel) {
  if (rel.empty() || rel.front() == '/' || rel.find('\\') != std::string::npos
      || rel.find('\0') != std::string::npos)
    return false;
  size_t start = 0;
  while (start <= rel.size()) {
    auto end = rel.find('/', start);
    auto part = rel.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (part.empty() || part == "." || part == "..")
      return false;
    if (end == std::string::npos)
      break;
    start = end + 1;
  }
  return true;
}

void add_file(model_bundle& bundle, const std::string& rel, const fs::path& path,
              uint64_t& total) {
  auto bytes = read_whole_file(path.string(), "model file");
  total += bytes.size();
  if (total > max_bundle_bytes)
    throw serve_exception(errc::invalid_argument,
                          "the model's files are over 1 GiB: too large to send to a node; use "
                          "\"placement\": {\"model_source\": \"node\"} with a URI the node can reach");
  bundle.files[rel] = std::move(bytes);
}

} // namespace

model_bundle read_model_bundle(const model_spec& spec) {
  auto located = locate_model(spec.uri, spec.registry_uri);
  model_bundle bundle;
  bundle.version = located.version;
  bundle.resolved = located.resolved;
  uint64_t total = 0;
  std::error_code ec;
  fs::path model_path(located.model_path);
  auto parsed = registry::model_uri::parse(spec.uri);
  if (parsed.needs_registry() || fs::is_directory(parsed.path, ec)) {
    // A model folder: every regular file (MLmodel, external data, artifacts such as labels).
    fs::path dir(located.dir);
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      if (!it->is_regular_file(ec))
        continue;
      auto rel = fs::relative(it->path(), dir, ec).generic_string();
      if (!ec && safe_relative(rel))
        add_file(bundle, rel, it->path(), total);
    }
    bundle.model_file = fs::relative(model_path, dir, ec).generic_string();
  } else {
    // One .onnx file. Its external data files sit beside it and are named in it verbatim
    // (TensorProto.external_data "location"): take the siblings whose names the model holds.
    bundle.model_file = model_path.filename().string();
    add_file(bundle, bundle.model_file, model_path, total);
    const auto& model_bytes = bundle.files[bundle.model_file];
    auto parent = model_path.parent_path().empty() ? fs::path(".") : model_path.parent_path();
    for (auto& entry : fs::directory_iterator(parent, ec)) {
      auto name = entry.path().filename().string();
      if (entry.path() != model_path && entry.is_regular_file(ec) && name.size() >= 3
          && model_bytes.find(name) != std::string::npos)
        add_file(bundle, name, entry.path(), total);
    }
  }
  auto labels = labels_path(spec.labels, located.dir);
  if (!labels.empty()) {
    add_file(bundle, "labels.json", labels, total);
    bundle.labels_file = "labels.json";
  }
  return bundle;
}

model_spec shipped_model_spec(const model_bundle& bundle, const model_spec& original) {
  model_spec spec = original;
  spec.uri = bundle.model_file;
  spec.labels = bundle.labels_file;
  spec.registry_uri.clear();
  spec.resolved_version = bundle.version;
  spec.resolved_from = bundle.resolved;
  return spec;
}

void write_model_bundle(const model_bundle& bundle, const std::string& folder) {
  fs::path root(folder);
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec)
    throw serve_exception(errc::internal, "cannot create \"" + folder + "\": " + ec.message());
  if (!safe_relative(bundle.model_file) || bundle.files.count(bundle.model_file) == 0)
    throw serve_exception(errc::invalid_argument, "the model bundle lacks its model file");
  for (auto& [rel, bytes] : bundle.files) {
    if (!safe_relative(rel))
      throw serve_exception(errc::invalid_argument,
                            "unsafe path in a model bundle: \"" + rel + "\"");
    auto path = root / rel;
    fs::create_directories(path.parent_path(), ec);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out)
      throw serve_exception(errc::internal, "cannot write \"" + path.string() + "\"");
  }
}

std::string relocate_model_json(const std::string& model_json, const std::string& folder) {
  rapidjson::Document doc;
  if (parse_json(doc, model_json) || !doc.IsObject())
    throw serve_exception(errc::invalid_argument, "the shipped model spec is not a JSON object");
  for (const char* key : {"uri", "labels"}) {
    auto m = doc.FindMember(key);
    if (m == doc.MemberEnd() || !m->value.IsString() || m->value.GetStringLength() == 0)
      continue;
    std::string rel = m->value.GetString();
    if (!safe_relative(rel))
      throw serve_exception(errc::invalid_argument,
                            std::string("unsafe ") + key + " in a shipped model spec: \"" + rel + "\"");
    m->value.SetString((fs::path(folder) / rel).string().c_str(), doc.GetAllocator());
  }
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  doc.Accept(w);
  return {buf.GetString(), buf.GetSize()};
}

} // namespace serve
