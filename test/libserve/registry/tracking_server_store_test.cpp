// The MLflow tracking-server store against an in-process fake server (httplib::Server on
// 127.0.0.1, port 0) that answers with MLflow's own replies. The JSON below was captured from a
// real `mlflow server` (MLflow 3.17.2, --backend-store-uri sqlite, --artifacts-destination) after
// scripts/check-mlflow-server's setup: the iris model logged with mlflow.onnx.log_model plus
// labels.json, registered twice as "iris" (version 1: alias production, stage Staging;
// version 2: stage None). No Python is needed to run these tests.
#include "libserve/registry/tracking_server_store.hpp"

#include <doctest/doctest.h>
#include <httplib.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "libserve/future.hpp"
#include "libserve/registry/mlmodel.hpp"

using namespace serve;
using namespace serve::registry;
namespace fs = std::filesystem;

namespace {

// ---- Replies captured from MLflow 3.17.2 -------------------------------------------------------

const std::string version_1 = R"({
    "name": "iris",
    "version": "1",
    "creation_timestamp": 1795574991011,
    "last_updated_timestamp": 1795574992301,
    "current_stage": "Staging",
    "description": "",
    "source": "models:/m-20ad012425de4c389e1d4b05c440391f",
    "run_id": "8ece9c36f29642eba06c2ba98a60248a",
    "status": "READY",
    "run_link": "",
    "aliases": [
      "production"
    ]
  })";

const std::string version_2 = R"({
      "name": "iris",
      "version": "2",
      "creation_timestamp": 1795574992365,
      "last_updated_timestamp": 1795574992365,
      "current_stage": "None",
      "description": "",
      "source": "models:/m-20ad012425de4c389e1d4b05c440391f",
      "run_id": "8ece9c36f29642eba06c2ba98a60248a",
      "status": "READY",
      "run_link": ""
    })";

const std::string registered_iris = R"({
  "registered_model": {
    "name": "iris",
    "creation_timestamp": 1795574990765,
    "last_updated_timestamp": 1795574992365,
    "latest_versions": [)" + version_1 +
                                    "," + version_2 + R"(],
    "aliases": [
      {
        "alias": "production",
        "version": "1"
      }
    ]
  }
})";

const std::string search_registered = R"({
  "registered_models": [
    {
      "name": "iris",
      "creation_timestamp": 1795574990765,
      "last_updated_timestamp": 1795574992365,
      "aliases": [ { "alias": "production", "version": "1" } ]
    }
  ]
})";

const std::string download_uri = R"({
  "artifact_uri": "mlflow-artifacts:/1/models/m-20ad012425de4c389e1d4b05c440391f/artifacts"
})";

const std::string run_reply = R"({
  "run": {
    "info": {
      "run_uuid": "8ece9c36f29642eba06c2ba98a60248a",
      "experiment_id": "1",
      "run_name": "iris",
      "user_id": "root",
      "status": "FINISHED",
      "start_time": 1795574987486,
      "end_time": 1795574990687,
      "artifact_uri": "mlflow-artifacts:/1/8ece9c36f29642eba06c2ba98a60248a/artifacts",
      "lifecycle_stage": "active",
      "run_id": "8ece9c36f29642eba06c2ba98a60248a"
    },
    "data": {},
    "inputs": {},
    "outputs": { "model_outputs": [ { "model_id": "m-20ad012425de4c389e1d4b05c440391f", "step": 0 } ] }
  }
})";

const std::string logged_model_info = R"({
        "model_id": "m-20ad012425de4c389e1d4b05c440391f",
        "experiment_id": "1",
        "name": "model",
        "creation_timestamp_ms": 1795574987687,
        "last_updated_timestamp_ms": 1795574990613,
        "artifact_uri": "mlflow-artifacts:/1/models/m-20ad012425de4c389e1d4b05c440391f/artifacts",
        "status": "LOGGED_MODEL_READY",
        "model_type": "",
        "source_run_id": "8ece9c36f29642eba06c2ba98a60248a",
        "tags": []
      })";

const std::string mlmodel =
    R"(artifact_path: mlflow-artifacts:/1/models/m-20ad012425de4c389e1d4b05c440391f/artifacts
flavors:
  onnx:
    code: null
    data: model.onnx
    onnx_session_options: null
    onnx_version: 1.17.0
    providers:
    - CUDAExecutionProvider
    - CPUExecutionProvider
  python_function:
    data: model.onnx
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.onnx
    python_version: 3.11.2
mlflow_version: 3.17.2
model_id: m-20ad012425de4c389e1d4b05c440391f
model_size_bytes: 142617
model_uuid: m-20ad012425de4c389e1d4b05c440391f
prompts: null
run_id: 8ece9c36f29642eba06c2ba98a60248a
utc_time_created: '2026-11-25 02:49:47.885122'
)";

std::string error_reply(const std::string& code, const std::string& message) {
  return R"({"error_code": ")" + code + R"(", "message": ")" + message +
         R"(", "sqlstate": "KAM00", "error_class": "RESOURCE_NOT_FOUND"})";
}

const std::string model_dir = "1/models/m-20ad012425de4c389e1d4b05c440391f/artifacts";
const std::string run_dir = "1/8ece9c36f29642eba06c2ba98a60248a/artifacts";

/// Bytes that differ along the file, so a truncated or shifted copy does not compare equal.
std::string onnx_bytes() {
  std::string out(142617, '\0');
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<char>((i * 131 + i / 977) & 0xff);
  return out;
}

// ---- The fake server ----------------------------------------------------------------------------

/// An MLflow tracking server that serves the registry above and an artifact store (path ->
/// bytes), on 127.0.0.1 at a free port, until stop() or destruction.
class fake_mlflow_server {
public:
  /// Artifact path (as under mlflow-artifacts:/) -> content.
  std::map<std::string, std::string> artifacts{
      {model_dir + "/MLmodel", mlmodel},
      {model_dir + "/model.onnx", onnx_bytes()},
      {model_dir + "/labels.json", R"(["setosa", "versicolor", "virginica"])"
                                   "\n"},
      {model_dir + "/extra_files/notes.txt", "external files and subfolders come along\n"},
      {run_dir + "/labels.json", R"(["setosa", "versicolor", "virginica"])"
                                 "\n"},
  };
  /// Artifact listings replaced by hand (path -> JSON reply), for hostile servers.
  std::map<std::string, std::string> listings;
  /// How many model.onnx downloads are cut off half-way (the connection is closed).
  std::atomic<int> cut_downloads{0};
  /// Calls seen, "GET /api/2.0/mlflow/model-versions/get" etc.
  std::atomic<int> calls{0};

  fake_mlflow_server() {
    route_registry();
    route_artifacts();
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~fake_mlflow_server() { stop(); }

  void stop() {
    if (!thread_.joinable())
      return;
    server_.stop();
    thread_.join();
  }

  std::string uri() const { return "http://127.0.0.1:" + std::to_string(port_); }

private:
  using request = httplib::Request;
  using response = httplib::Response;

  static void json(response& res, const std::string& body, int status = 200) {
    res.status = status;
    res.set_content(body, "application/json");
  }

  void get(const std::string& method, std::function<void(const request&, response&)> handler) {
    server_.Get("/api/2.0/mlflow/" + method, [this, handler](const request& req, response& res) {
      ++calls;
      handler(req, res);
    });
  }

  static void model_missing(const std::string& name, response& res) {
    json(
        res,
        error_reply("RESOURCE_DOES_NOT_EXIST", "Registered Model with name=" + name + " not found"),
        404);
  }

  void route_registry() {
    get("model-versions/get", [](const request& req, response& res) {
      auto name = req.get_param_value("name"), version = req.get_param_value("version");
      if (name == "iris" && (version == "1" || version == "2"))
        return json(res, R"({"model_version": )" + (version == "1" ? version_1 : version_2) + "}");
      if (name == "evil" && version == "1")
        return json(res, R"({"model_version": {"name": "evil", "version": "1", "status": "READY",
                             "current_stage": "None", "source": "mlflow-artifacts:/evil"}})");
      json(res,
           error_reply("RESOURCE_DOES_NOT_EXIST",
                       "Model Version (name=" + name + ", version=" + version + ") not found"),
           404);
    });
    get("registered-models/alias", [](const request& req, response& res) {
      auto name = req.get_param_value("name"), alias = req.get_param_value("alias");
      if (name != "iris")
        return model_missing(name, res);
      if (alias == "production")
        return json(res, R"({"model_version": )" + version_1 + "}");
      json(
          res,
          error_reply("INVALID_PARAMETER_VALUE", "Registered model alias " + alias + " not found."),
          400);
    });
    get("registered-models/get-latest-versions", [](const request& req, response& res) {
      auto name = req.get_param_value("name");
      if (name != "iris")
        return model_missing(name, res);
      if (!req.has_param("stages"))
        return json(res, R"({"model_versions": [)" + version_1 + "," + version_2 + "]}");
      auto stage = req.get_param_value("stages");
      if (stage == "Staging")
        return json(res, R"({"model_versions": [)" + version_1 + "]}");
      if (stage == "None")
        return json(res, R"({"model_versions": [)" + version_2 + "]}");
      json(res, "{}");
    });
    get("model-versions/get-download-uri", [](const request& req, response& res) {
      if (req.get_param_value("name") == "evil")
        return json(res, R"({"artifact_uri": "mlflow-artifacts:/evil"})");
      json(res, download_uri);
    });
    get("registered-models/get", [](const request& req, response& res) {
      auto name = req.get_param_value("name");
      if (name != "iris")
        return model_missing(name, res);
      json(res, registered_iris);
    });
    get("registered-models/search",
        [](const request&, response& res) { json(res, search_registered); });
    get("model-versions/search", [](const request& req, response& res) {
      if (req.get_param_value("filter") != "name='iris'")
        return json(res, "{}");
      json(res, R"({"model_versions": [)" + version_2 + "," + version_1 + "]}");
    });
    get("runs/get", [](const request& req, response& res) {
      if (req.get_param_value("run_id") == "8ece9c36f29642eba06c2ba98a60248a")
        return json(res, run_reply);
      json(res,
           error_reply("RESOURCE_DOES_NOT_EXIST",
                       "Run with id=" + req.get_param_value("run_id") + " not found"),
           404);
    });
    get("logged-models/(m-[0-9a-f]+)", [](const request& req, response& res) {
      if (req.matches[1] == "m-20ad012425de4c389e1d4b05c440391f")
        return json(res, R"({"model": {"info": )" + logged_model_info + R"(, "data": {}}})");
      json(res,
           error_reply("RESOURCE_DOES_NOT_EXIST",
                       "Logged model with ID '" + std::string(req.matches[1]) + "' not found."),
           404);
    });
    server_.Post("/api/2.0/mlflow/logged-models/search", [](const request& req, response& res) {
      if (req.body.find("name = 'model'") != std::string::npos)
        return json(res, R"({"models": [{"info": )" + logged_model_info + R"(, "data": {}}]})");
      json(res, "{}");
    });
    server_.Get("/api/2.0/mlflow/boom", [](const request&, response& res) {
      json(res, error_reply("INTERNAL_ERROR", "database is locked"), 500);
    });
  }

  // MLflow's listing: base names, folders with is_dir and no size, `{}` when empty.
  std::string listing(const std::string& dir) const {
    if (auto it = listings.find(dir); it != listings.end())
      return it->second;
    std::map<std::string, int64_t> entries; // name -> size, -1 = folder
    for (const auto& [path, content] : artifacts) {
      if (path.compare(0, dir.size() + 1, dir + "/") != 0)
        continue;
      auto rest = path.substr(dir.size() + 1);
      auto slash = rest.find('/');
      if (slash == std::string::npos)
        entries[rest] = static_cast<int64_t>(content.size());
      else
        entries[rest.substr(0, slash)] = -1;
    }
    if (entries.empty())
      return "{}";
    std::string out = R"({"files": [)";
    for (const auto& [name, size] : entries)
      out += (out.back() == '[' ? "" : ",") +
             (size < 0 ? R"({"path": ")" + name + R"(", "is_dir": true})"
                       : R"({"path": ")" + name + R"(", "is_dir": false, "file_size": )" +
                             std::to_string(size) + "}");
    return out + "]}";
  }

  void route_artifacts() {
    server_.Get("/api/2.0/mlflow-artifacts/artifacts", [this](const request& req, response& res) {
      json(res, listing(req.get_param_value("path")));
    });
    server_.Get("/api/2.0/mlflow-artifacts/artifacts/(.+)", [this](const request& req,
                                                                   response& res) {
      std::string path = req.matches[1];
      auto it = artifacts.find(path);
      if (it == artifacts.end())
        return json(res, error_reply("RESOURCE_DOES_NOT_EXIST", "No such artifact: '" + path + "'"),
                    404);
      const std::string content = it->second;
      if (path.size() > 10 && path.compare(path.size() - 10, 10, "model.onnx") == 0 &&
          cut_downloads.fetch_sub(1) > 0) {
        res.set_content_provider(content.size(), "application/octet-stream",
                                 [content](size_t offset, size_t, httplib::DataSink& sink) {
                                   if (offset > 0)
                                     return false; // close the connection mid-body
                                   sink.write(content.data(), content.size() / 2);
                                   return true;
                                 });
        return;
      }
      res.set_content(content, "text/plain");
    });
  }

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

// ---- Helpers --------------------------------------------------------------------------------

/// A fresh folder under /tmp, deleted at the end of the test.
struct temp_folder {
  std::string path;
  temp_folder() {
    char pattern[] = "/tmp/actorserve-tracking-test-XXXXXX";
    REQUIRE(::mkdtemp(pattern) != nullptr);
    path = pattern;
  }
  ~temp_folder() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

mlflow_tracking_server_store store_for(const std::string& uri, const temp_folder& cache) {
  tracking_server_options options;
  options.cache_dir = cache.path;
  options.http.connect_timeout = std::chrono::milliseconds(2'000);
  options.http.read_timeout = std::chrono::milliseconds(5'000);
  return mlflow_tracking_server_store(uri, "", options);
}

/// The code and message of the serve_exception that resolving `uri` throws.
std::pair<errc, std::string> resolve_error(registry_store& store, const std::string& uri) {
  try {
    store.resolve(model_uri::parse(uri));
  } catch (const serve_exception& e) {
    return {e.code(), e.what()};
  }
  return {errc::internal, "<resolved>"};
}

/// The folder names directly inside `dir`, sorted.
std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    out.push_back(entry.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace

// ---- The store ----------------------------------------------------------------------------------

TEST_CASE("models:/NAME/N downloads every artifact of the version into CACHE/HOST_PORT/NAME/N") {
  fake_mlflow_server server;
  temp_folder cache;
  auto store = store_for(server.uri(), cache);
  auto model = store.resolve(model_uri::parse("models:/iris/1"));
  auto port = server.uri().substr(server.uri().rfind(':') + 1);
  CHECK(model.local_dir == cache.path + "/127.0.0.1_" + port + "/iris/1");
  CHECK(model.name == "iris");
  CHECK(model.version == "1");
  CHECK(model.source_uri == "models:/m-20ad012425de4c389e1d4b05c440391f");
  CHECK(model.description == "models:/iris/1 -> version 1");
  for (const auto& [path, content] : server.artifacts)
    if (path.compare(0, model_dir.size(), model_dir) == 0)
      CHECK(read_file(model.local_dir + path.substr(model_dir.size())) == content);
  CHECK(names_in(model.local_dir) ==
        std::vector<std::string>{"MLmodel", "extra_files", "labels.json", "model.onnx"});
  CHECK(store.describe() == "MLflow tracking server " + server.uri());
  auto folder = read_model_folder(model.local_dir);
  CHECK(folder.model_file == "model.onnx");
  CHECK(folder.model_id == "m-20ad012425de4c389e1d4b05c440391f");
}

TEST_CASE("latest is the highest version, a stage its newest version, an alias its version") {
  fake_mlflow_server server;
  temp_folder cache;
  auto store = store_for(server.uri(), cache);
  CHECK(store.resolve(model_uri::parse("models:/iris/latest")).version == "2");
  CHECK(store.resolve(model_uri::parse("models:/iris@latest")).version == "2");
  CHECK(store.resolve(model_uri::parse("models:/iris/staging")).version == "1");
  CHECK(store.resolve(model_uri::parse("models:/iris/None")).version == "2");
  auto aliased = store.resolve(model_uri::parse("models:/iris@production"));
  CHECK(aliased.version == "1");
  CHECK(aliased.description == "models:/iris@production -> version 1");
  CHECK(fs::exists(aliased.local_dir + "/model.onnx"));
}

TEST_CASE("an unknown model, version, stage or alias is not_found naming what is missing") {
  fake_mlflow_server server;
  temp_folder cache;
  auto store = store_for(server.uri(), cache);
  auto where = "MLflow tracking server " + server.uri();
  CHECK(resolve_error(store, "models:/nope/1") ==
        std::pair{errc::not_found,
                  "models:/nope/1: no registered model 'nope' in " + where + " (models: iris)"});
  CHECK(resolve_error(store, "models:/iris/7") ==
        std::pair{errc::not_found,
                  std::string("models:/iris/7: registered model 'iris' has no version 7 "
                              "(versions: 1, 2)")});
  CHECK(resolve_error(store, "models:/iris/Production") ==
        std::pair{errc::not_found,
                  std::string("models:/iris/Production: registered model 'iris' has no version "
                              "in stage 'Production' (versions: 1 Staging, 2 None)")});
  CHECK(resolve_error(store, "models:/iris@prod") ==
        std::pair{errc::not_found,
                  std::string("models:/iris@prod: registered model 'iris' has no alias 'prod' "
                              "(aliases: production)")});
  CHECK(resolve_error(store, "models:/nope@prod").second ==
        "models:/nope@prod: no registered model 'nope' in " + where + " (models: iris)");
  CHECK(resolve_error(store, "models:/nope/latest").first == errc::not_found);
  CHECK(resolve_error(store, "models:/m-0123").second ==
        "models:/m-0123: no logged model 'm-0123' in " + where);
  CHECK(resolve_error(store, "runs:/deadbeef/model").second ==
        "runs:/deadbeef/model: no run 'deadbeef' in " + where);
}

TEST_CASE("a download cut off mid-way leaves no complete folder, and the next resolve succeeds") {
  fake_mlflow_server server;
  temp_folder cache;
  server.cut_downloads = 1;
  auto store = store_for(server.uri(), cache);
  auto [code, message] = resolve_error(store, "models:/iris/1");
  CHECK(code == errc::unavailable);
  CHECK(message.find("models:/iris/1 (version 1): MLflow tracking server " + server.uri()) == 0);
  CHECK(message.find("model.onnx: the connection closed") != std::string::npos);
  auto model_folder = store.cache_root() + "/iris";
  // Only the lock file is left: no "1", no temp folder.
  CHECK(names_in(model_folder) == std::vector<std::string>{".1.lock"});

  auto model = store.resolve(model_uri::parse("models:/iris/1"));
  CHECK(read_file(model.local_dir + "/model.onnx") == onnx_bytes());
}

TEST_CASE("a cached version is used with the server down; an alias then is unavailable") {
  temp_folder cache;
  std::string uri;
  {
    fake_mlflow_server server;
    uri = server.uri();
    auto store = store_for(uri, cache);
    store.resolve(model_uri::parse("models:/iris@production"));
    store.resolve(model_uri::parse("models:/m-20ad012425de4c389e1d4b05c440391f"));
    int calls = server.calls;
    // Pinned and cached: no call at all.
    store.resolve(model_uri::parse("models:/iris/1"));
    CHECK(server.calls == calls);
  }
  auto store = store_for(uri, cache);
  auto model = store.resolve(model_uri::parse("models:/iris/1"));
  CHECK(model.version == "1");
  CHECK(read_file(model.local_dir + "/labels.json").find("versicolor") != std::string::npos);
  CHECK(fs::exists(
      store.resolve(model_uri::parse("models:/m-20ad012425de4c389e1d4b05c440391f")).local_dir +
      "/MLmodel"));
  CHECK(resolve_error(store, "models:/iris@production") ==
        std::pair{errc::unavailable,
                  "models:/iris@production: MLflow tracking server " + uri +
                      " is unreachable (GET /api/2.0/mlflow/registered-models/alias: cannot "
                      "connect)"});
  CHECK(resolve_error(store, "models:/iris/2").first == errc::unavailable);
}

TEST_CASE("artifact names from the server that would leave the folder are refused") {
  for (const char* name : {"..", "../escape.txt", "/etc/passwd", "a/../../b"}) {
    CAPTURE(name);
    fake_mlflow_server server;
    temp_folder cache;
    server.artifacts["evil/ok.txt"] = "fine";
    server.listings["evil"] = std::string(R"({"files": [{"path": "ok.txt", "is_dir": false,
                                          "file_size": 4}, {"path": ")") +
                              name + R"(", "is_dir": false, "file_size": 4}]})";
    auto store = store_for(server.uri(), cache);
    auto [code, message] = resolve_error(store, "models:/evil/1");
    CHECK(code == errc::invalid_argument);
    CHECK(message.find("listed artifact '" + std::string(name) + "' in 'evil'") !=
          std::string::npos);
    CHECK(names_in(store.cache_root() + "/evil") == std::vector<std::string>{".1.lock"});
    CHECK(!fs::exists(store.cache_root() + "/escape.txt"));
  }
  CHECK_THROWS_WITH_AS(check_artifact_path("1/../../etc", "models:/x/1"),
                       "models:/x/1: artifact path '1/../../etc' has a '..' segment (it must "
                       "stay inside the artifact store); refused",
                       serve_exception);
  CHECK_THROWS_AS(check_artifact_path("/etc", "x"), serve_exception);
}

TEST_CASE("runs:/RUN/NAME is the run's logged model NAME; runs:/RUN the run's own artifacts") {
  fake_mlflow_server server;
  temp_folder cache;
  auto store = store_for(server.uri(), cache);
  auto model = store.resolve(model_uri::parse("runs:/8ece9c36f29642eba06c2ba98a60248a/model"));
  CHECK(model.description == "runs:/8ece9c36f29642eba06c2ba98a60248a/model -> logged model "
                             "m-20ad012425de4c389e1d4b05c440391f of run "
                             "8ece9c36f29642eba06c2ba98a60248a");
  CHECK(read_file(model.local_dir + "/MLmodel") == mlmodel);
  auto run = store.resolve(model_uri::parse("runs:/8ece9c36f29642eba06c2ba98a60248a"));
  CHECK(names_in(run.local_dir) == std::vector<std::string>{"labels.json"});
  CHECK(resolve_error(store, "runs:/8ece9c36f29642eba06c2ba98a60248a/nothing").second ==
        "runs:/8ece9c36f29642eba06c2ba98a60248a/nothing: run '8ece9c36f29642eba06c2ba98a60248a' "
        "has no artifact folder 'nothing' and no logged model named 'nothing' (artifacts "
        "recorded at mlflow-artifacts:/1/8ece9c36f29642eba06c2ba98a60248a/artifacts)");
}

TEST_CASE("models, versions and aliases are listed from the server") {
  fake_mlflow_server server;
  temp_folder cache;
  auto store = store_for(server.uri(), cache);
  CHECK(store.list_models() == std::vector<std::string>{"iris"});
  auto versions = store.list_versions("iris");
  REQUIRE(versions.size() == 2);
  CHECK(versions[0].version == 1);
  CHECK(versions[0].stage == "Staging");
  CHECK(versions[0].status == "READY");
  CHECK(versions[0].source == "models:/m-20ad012425de4c389e1d4b05c440391f");
  CHECK(versions[0].aliases == std::vector<std::string>{"production"});
  CHECK(versions[1].version == 2);
  CHECK(versions[1].aliases.empty());
  CHECK(store.aliases("iris") == std::map<std::string, int64_t>{{"production", 1}});
  CHECK_THROWS_AS(store.list_versions("nope"), serve_exception);
}

TEST_CASE("a server error is unavailable; a server that is not MLflow is invalid_argument") {
  fake_mlflow_server server;
  mlflow_rest_client client(server.uri(), {});
  try {
    client.get("boom", {}, "ctx");
    FAIL("no error");
  } catch (const mlflow_api_error& e) {
    CHECK(e.code() == errc::unavailable);
    CHECK(e.status() == 500);
    CHECK(std::string(e.what()) == "ctx: MLflow tracking server " + server.uri() +
                                       " answered GET /api/2.0/mlflow/boom with HTTP 500 "
                                       "INTERNAL_ERROR: database is locked");
  }
  try {
    client.get("no-such-call", {}, "ctx");
    FAIL("no error");
  } catch (const serve_exception& e) {
    CHECK(e.code() == errc::invalid_argument);
    CHECK(std::string(e.what()).find("HTTP 404 (not an MLflow tracking server") !=
          std::string::npos);
  }
}

TEST_CASE("registry URIs other than http://host[:port][/prefix] are refused") {
  temp_folder cache;
  tracking_server_options options;
  options.cache_dir = cache.path;
  auto refused = [&](const std::string& uri) {
    try {
      mlflow_tracking_server_store store(uri, "", options);
    } catch (const serve_exception& e) {
      return e.code() == errc::invalid_argument;
    }
    return false;
  };
  CHECK(refused("https://mlflow.example.com"));
  CHECK(refused("http://"));
  CHECK(refused("http://host:99999"));
  CHECK(refused("http://user:pw@host:5000"));
  CHECK(refused("http://host:5000/?x=1"));
  mlflow_tracking_server_store prefixed("http://mlflow.internal/team/", "", options);
  CHECK(prefixed.cache_root() == cache.path + "/mlflow.internal_80_team");
  CHECK(prefixed.describe() == "MLflow tracking server http://mlflow.internal/team");
}

// ---- The cache ----------------------------------------------------------------------------------

TEST_CASE("a temp folder left by a crashed download is removed on the next start") {
  temp_folder root;
  fs::create_directories(root.path + "/iris/.1.tmp");
  std::ofstream(root.path + "/iris/.1.tmp/model.onnx") << "half a model";
  std::ofstream(root.path + "/iris/.1.lock");
  artifact_cache cache(root.path);
  CHECK(!fs::exists(root.path + "/iris/.1.tmp"));
  CHECK(!cache.find("iris/1"));
}

TEST_CASE("a temp folder whose download is still running is left alone") {
  temp_folder root;
  fs::create_directories(root.path + "/iris/.1.tmp");
  int fd = ::open((root.path + "/iris/.1.lock").c_str(), O_RDWR | O_CREAT, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX) == 0);
  artifact_cache cache(root.path);
  CHECK(fs::exists(root.path + "/iris/.1.tmp"));
  ::close(fd);
  CHECK(cache.remove_stale() == 1);
  CHECK(!fs::exists(root.path + "/iris/.1.tmp"));
}

TEST_CASE("a fill that throws leaves no folder; a complete folder is not filled again") {
  temp_folder root;
  artifact_cache cache(root.path);
  CHECK_THROWS_AS(cache.fill("m/1",
                             [](const std::string& temp) {
                               std::ofstream(temp + "/MLmodel") << "partial";
                               throw serve_exception(errc::unavailable, "cut off");
                             }),
                  serve_exception);
  CHECK(!cache.find("m/1"));
  CHECK(names_in(root.path + "/m") == std::vector<std::string>{".1.lock"});
  int calls = 0;
  auto dir = cache.fill("m/1", [&](const std::string& temp) {
    ++calls;
    std::ofstream(temp + "/MLmodel") << "complete";
  });
  cache.fill("m/1", [&](const std::string&) { ++calls; });
  CHECK(calls == 1);
  CHECK(cache.find("m/1") == dir);
  CHECK(read_file(dir + "/MLmodel") == "complete");
}

TEST_CASE("cache components escape '/', '%', a leading '.' and the empty string") {
  CHECK(cache_component("iris") == "iris");
  CHECK(cache_component("") == "%");
  CHECK(cache_component("a/b") == "a%2Fb");
  CHECK(cache_component("100%") == "100%25");
  CHECK(cache_component(".hidden") == "%2Ehidden");
  CHECK(cache_component("x.y") == "x.y");
}
