// `actorserve registry`: list the models, versions and aliases of any registry ActorServe reads
// (MLflow file store, SQLite store, tracking server), and register a model folder or set an
// alias in an MLflow file store, writing what MLflow writes (libserve/registry/
// file_store_writer.hpp) so that MLflow reads it back.
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "apps/actorserve/commands.hpp"
#include "libserve/future.hpp"
#include "libserve/registry/file_store_writer.hpp"
#include "libserve/registry/registry_store.hpp"

namespace serve::cli {

namespace {

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

const char* registry_usage = R"(Usage: actorserve registry SUBCOMMAND ... --registry URI [--json]

Reads any registry ActorServe serves from; writes MLflow file stores the way MLflow 3 does.
  models                        registered models: versions, latest, aliases
  versions NAME                 versions of NAME: stage, status, aliases, source
  aliases NAME                  aliases of NAME and the versions they name
  register FOLDER NAME          copy FOLDER (MLmodel + model.onnx, or just model.onnx, plus
                                extra files such as labels.json) into the store as a logged
                                model and register it as the next version of NAME
  alias NAME ALIAS VERSION      point ALIAS of NAME at VERSION (creates or moves it)
  alias NAME ALIAS --delete     remove ALIAS

Options:
  --registry URI   an MLflow file store folder (mlruns) or file: URI; for reading also
                   sqlite:///relative.db, sqlite:////absolute.db and http://host:port.
                   Relative paths are taken from the current directory.
  --json           machine-readable output (one JSON object)
  --relative       register: record artifact locations relative to the folder holding the
                   store (a store committed to a repository works from any clone; MLflow reads
                   it when run from that folder). Default: absolute file:// URIs, as MLflow.

register creates the store folder when it does not exist, and checks that ActorServe loads the
model. Exit status: 0 done, 1 not found or failed, 2 bad arguments, names or input.

  actorserve registry register apps/examples/models/iris iris --registry /tmp/mlruns
  actorserve registry alias iris production 1 --registry /tmp/mlruns
  actorserve registry versions iris --registry /tmp/mlruns
)";

struct registry_args {
  std::string subcommand;
  std::vector<std::string> positional;
  std::string registry;
  bool json = false;
  bool relative = false;
  bool delete_alias = false;
};

/// Parses the arguments; an exit code on help or error.
std::optional<int> parse_args(const std::vector<std::string>& args, registry_args& out) {
  arg_reader r{args};
  while (!r.done()) {
    auto a = r.next();
    if (a == "-h" || a == "--help") {
      std::fputs(registry_usage, stdout);
      return 0;
    }
    if (a == "--registry") {
      if (r.done()) {
        std::fprintf(stderr, "actorserve registry: --registry needs a URI\n");
        return 2;
      }
      out.registry = r.next();
    } else if (a == "--json") {
      out.json = true;
    } else if (a == "--relative") {
      out.relative = true;
    } else if (a == "--delete") {
      out.delete_alias = true;
    } else if (a.size() > 1 && a[0] == '-') {
      std::fprintf(stderr, "actorserve registry: unknown option %s\n\n%s", a.c_str(),
                   registry_usage);
      return 2;
    } else if (out.subcommand.empty()) {
      out.subcommand = a;
    } else {
      out.positional.push_back(a);
    }
  }
  if (out.subcommand.empty()) {
    std::fputs(registry_usage, stderr);
    return 2;
  }
  if (out.registry.empty()) {
    std::fprintf(stderr, "actorserve registry %s: --registry URI is required\n",
                 out.subcommand.c_str());
    return 2;
  }
  return std::nullopt;
}

std::optional<int> expect_arguments(const registry_args& a, size_t count, const char* form) {
  if (a.positional.size() == count)
    return std::nullopt;
  std::fprintf(stderr, "actorserve registry %s: expected %s\n\n%s", a.subcommand.c_str(), form,
               registry_usage);
  return 2;
}

void print_json(const rapidjson::StringBuffer& buffer) {
  std::fwrite(buffer.GetString(), 1, buffer.GetSize(), stdout);
  std::fputc('\n', stdout);
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items)
    out += (out.empty() ? "" : ",") + item;
  return out.empty() ? "-" : out;
}

int list_models(registry::registry_store& store, bool json) {
  rapidjson::StringBuffer buffer;
  json_writer w(buffer);
  w.StartObject();
  w.Key("registry");
  w.String(store.describe());
  w.Key("models");
  w.StartArray();
  if (!json)
    std::printf("%-24s %8s %8s  %s\n", "NAME", "VERSIONS", "LATEST", "ALIASES");
  for (const auto& name : store.list_models()) {
    auto versions = store.list_versions(name);
    auto aliases = store.aliases(name);
    int64_t latest = versions.empty() ? 0 : versions.back().version;
    w.StartObject();
    w.Key("name");
    w.String(name);
    w.Key("versions");
    w.Uint64(versions.size());
    w.Key("latest");
    if (latest)
      w.Int64(latest);
    else
      w.Null();
    w.Key("aliases");
    w.StartObject();
    std::vector<std::string> pairs;
    for (const auto& [alias, version] : aliases) {
      w.Key(alias.c_str());
      w.Int64(version);
      pairs.push_back(alias + "=" + std::to_string(version));
    }
    w.EndObject();
    w.EndObject();
    if (!json)
      std::printf("%-24s %8zu %8s  %s\n", name.c_str(), versions.size(),
                  latest ? std::to_string(latest).c_str() : "-", joined(pairs).c_str());
  }
  w.EndArray();
  w.EndObject();
  if (json)
    print_json(buffer);
  return 0;
}

int list_versions(registry::registry_store& store, const std::string& name, bool json) {
  auto versions = store.list_versions(name);
  if (!json) {
    std::printf("%-8s %-10s %-8s %-20s %s\n", "VERSION", "STAGE", "STATUS", "ALIASES", "SOURCE");
    for (const auto& v : versions)
      std::printf("%-8lld %-10s %-8s %-20s %s\n", static_cast<long long>(v.version),
                  v.stage.c_str(), v.status.c_str(), joined(v.aliases).c_str(), v.source.c_str());
    return 0;
  }
  rapidjson::StringBuffer buffer;
  json_writer w(buffer);
  w.StartObject();
  w.Key("name");
  w.String(name);
  w.Key("versions");
  w.StartArray();
  for (const auto& v : versions) {
    w.StartObject();
    w.Key("version");
    w.Int64(v.version);
    w.Key("stage");
    w.String(v.stage);
    w.Key("status");
    w.String(v.status);
    w.Key("aliases");
    w.StartArray();
    for (const auto& alias : v.aliases)
      w.String(alias);
    w.EndArray();
    w.Key("source");
    w.String(v.source);
    w.Key("storage_location");
    w.String(v.storage_location);
    w.Key("run_id");
    w.String(v.run_id);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  print_json(buffer);
  return 0;
}

int list_aliases(registry::registry_store& store, const std::string& name, bool json) {
  auto aliases = store.aliases(name);
  if (!json) {
    if (aliases.empty())
      std::printf("registered model '%s' has no aliases\n", name.c_str());
    for (const auto& [alias, version] : aliases)
      std::printf("%s@%s -> version %lld\n", name.c_str(), alias.c_str(),
                  static_cast<long long>(version));
    return 0;
  }
  rapidjson::StringBuffer buffer;
  json_writer w(buffer);
  w.StartObject();
  w.Key("name");
  w.String(name);
  w.Key("aliases");
  w.StartObject();
  for (const auto& [alias, version] : aliases) {
    w.Key(alias.c_str());
    w.Int64(version);
  }
  w.EndObject();
  w.EndObject();
  print_json(buffer);
  return 0;
}

int register_model(const registry_args& a) {
  const auto& folder = a.positional[0];
  const auto& name = a.positional[1];
  registry::register_options options;
  options.relative_locations = a.relative;
  registry::mlflow_file_store_writer store(registry::file_store_folder_for_writing(a.registry, ""),
                                           options);
  auto v = store.register_folder(folder, name);
  if (a.json) {
    rapidjson::StringBuffer buffer;
    json_writer w(buffer);
    w.StartObject();
    w.Key("name");
    w.String(v.name);
    w.Key("version");
    w.Int64(v.version);
    w.Key("model_id");
    w.String(v.model_id);
    w.Key("source");
    w.String(v.source);
    w.Key("storage_location");
    w.String(v.storage_location);
    w.Key("artifacts_dir");
    w.String(v.artifacts_dir);
    w.Key("created_model");
    w.Bool(v.created_model);
    w.Key("wrote_mlmodel");
    w.Bool(v.wrote_mlmodel);
    w.EndObject();
    print_json(buffer);
    return 0;
  }
  std::printf("registered %s as %s version %lld%s\n", folder.c_str(), v.name.c_str(),
              static_cast<long long>(v.version), v.created_model ? " (new registered model)" : "");
  std::printf("  logged model %s%s\n  artifacts    %s\n  storage      %s\n", v.model_id.c_str(),
              v.wrote_mlmodel ? " (MLmodel written: onnx flavor)" : "", v.artifacts_dir.c_str(),
              v.storage_location.c_str());
  std::printf("  serve it as  models:/%s/%lld\n", v.name.c_str(),
              static_cast<long long>(v.version));
  return 0;
}

void print_alias_json(const std::string& name, const std::string& alias, int64_t version,
                      int64_t was) {
  rapidjson::StringBuffer buffer;
  json_writer w(buffer);
  w.StartObject();
  w.Key("name");
  w.String(name);
  w.Key("alias");
  w.String(alias);
  w.Key("version"); // null once deleted
  if (version)
    w.Int64(version);
  else
    w.Null();
  w.Key("was"); // null when the alias is new
  if (was)
    w.Int64(was);
  else
    w.Null();
  w.EndObject();
  print_json(buffer);
}

int alias_model(const registry_args& a) {
  const auto& name = a.positional[0];
  const auto& alias = a.positional[1];
  registry::mlflow_file_store_writer store(registry::file_store_folder_for_writing(a.registry, ""),
                                           {}, /*create=*/false);
  if (a.delete_alias) {
    auto was = store.delete_alias(name, alias);
    if (a.json)
      print_alias_json(name, alias, 0, was);
    else
      std::printf("deleted %s@%s (was version %lld)\n", name.c_str(), alias.c_str(),
                  static_cast<long long>(was));
    return 0;
  }
  const auto& text = a.positional[2];
  int64_t version = 0;
  try {
    size_t used = 0;
    version = std::stoll(text, &used);
    if (used != text.size() || version < 1)
      throw std::invalid_argument(text);
  } catch (const std::exception&) {
    throw serve_exception(errc::invalid_argument,
                          "VERSION must be a version number (1, 2, ...); was '" + text + "'");
  }
  auto was = store.set_alias(name, alias, version);
  if (a.json) {
    print_alias_json(name, alias, version, was);
  } else if (was == 0 || was == version) {
    std::printf("%s@%s -> version %lld\n", name.c_str(), alias.c_str(),
                static_cast<long long>(version));
  } else {
    std::printf("%s@%s -> version %lld (moved from version %lld)\n", name.c_str(), alias.c_str(),
                static_cast<long long>(version), static_cast<long long>(was));
  }
  return 0;
}

int dispatch(const registry_args& a) {
  const auto& sub = a.subcommand;
  if (sub == "register") {
    if (auto code = expect_arguments(a, 2, "FOLDER NAME"))
      return *code;
    return register_model(a);
  }
  if (sub == "alias") {
    if (auto code = expect_arguments(a, a.delete_alias ? 2 : 3,
                                     a.delete_alias ? "NAME ALIAS --delete" : "NAME ALIAS VERSION"))
      return *code;
    return alias_model(a);
  }
  if (sub != "models" && sub != "versions" && sub != "aliases") {
    std::fprintf(stderr, "actorserve registry: unknown subcommand \"%s\"\n\n%s", sub.c_str(),
                 registry_usage);
    return 2;
  }
  if (auto code =
          expect_arguments(a, sub == "models" ? 0 : 1, sub == "models" ? "no arguments" : "NAME"))
    return *code;
  auto store = registry::open_registry(a.registry, "");
  if (sub == "models")
    return list_models(*store, a.json);
  registry::check_model_name(a.positional[0]);
  return sub == "versions" ? list_versions(*store, a.positional[0], a.json)
                           : list_aliases(*store, a.positional[0], a.json);
}

} // namespace

int registry_command(const std::vector<std::string>& args) {
  registry_args a;
  if (auto code = parse_args(args, a))
    return *code;
  try {
    return dispatch(a);
  } catch (const serve_exception& e) {
    std::fprintf(stderr, "actorserve registry %s: %s\n", a.subcommand.c_str(), e.what());
    return e.code() == errc::invalid_argument ? 2 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "actorserve registry %s: %s\n", a.subcommand.c_str(), e.what());
    return 1;
  }
}

} // namespace serve::cli
