// Resolves one model URI against one registry and prints where its artifacts are, as JSON: the
// registry code on its own, for scripts/check-mlflow-server and for trying a registry by hand.
//
//   registry_resolve [--cache-dir DIR] REGISTRY_URI MODEL_URI
//   ./build/apps/registry_resolve http://127.0.0.1:5000 models:/iris@production
//   -> {"local_dir":"/root/.cache/actorserve/registry/127.0.0.1_5000/iris/1","name":"iris",
//       "version":"1","source_uri":"models:/m-...",
//       "description":"models:/iris@production -> version 1"}
//
// REGISTRY_URI: http://host:port (an MLflow tracking server; artifacts are downloaded into the
// cache, ~/.cache/actorserve/registry unless --cache-dir), a file store folder or a sqlite:///
// database. Exit 0 with the JSON above; exit 1 with {"error": CODE, "message": ...} on stdout;
// exit 2 for bad arguments.
#include <cstdio>
#include <cstring>
#include <string>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "libserve/error.hpp"
#include "libserve/future.hpp"
#include "libserve/registry/registry_store.hpp"
#include "libserve/registry/tracking_server_store.hpp"

namespace {

using namespace serve;
using namespace serve::registry;

void print_json(const std::vector<std::pair<const char*, std::string>>& fields) {
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> w(out);
  w.StartObject();
  for (const auto& [key, value] : fields) {
    w.Key(key);
    w.String(value);
  }
  w.EndObject();
  std::printf("%s\n", out.GetString());
}

std::unique_ptr<registry_store> open(const std::string& registry_uri,
                                     const std::string& cache_dir) {
  auto scheme = uri_scheme(registry_uri);
  if (scheme == "http" || scheme == "https") {
    tracking_server_options options;
    options.cache_dir = cache_dir;
    return open_tracking_server_store(registry_uri, "", options);
  }
  return open_registry(registry_uri, "");
}

} // namespace

int main(int argc, char** argv) {
  std::string cache_dir;
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--cache-dir") == 0 && i + 1 < argc)
      cache_dir = argv[++i];
    else
      args.emplace_back(argv[i]);
  }
  if (args.size() != 2) {
    std::fprintf(stderr, "usage: %s [--cache-dir DIR] REGISTRY_URI MODEL_URI\n", argv[0]);
    return 2;
  }
  try {
    auto store = open(args[0], cache_dir);
    auto model = store->resolve(model_uri::parse(args[1]));
    print_json({{"local_dir", model.local_dir},
                {"name", model.name},
                {"version", model.version},
                {"source_uri", model.source_uri},
                {"description", model.description}});
    return 0;
  } catch (...) {
    auto err = current_exception_info();
    print_json({{"error", to_string(err.code)}, {"message", err.message}});
    return 1;
  }
}
