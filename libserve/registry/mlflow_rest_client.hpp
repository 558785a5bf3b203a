// The MLflow tracking server's REST API as the registry needs it: JSON calls under
// /api/2.0/mlflow/ and the artifact proxy under /api/2.0/mlflow-artifacts/, over plain HTTP
// with cpp-httplib. Blocking: call it off the actor scheduler threads.
//
//   mlflow_rest_client client("http://127.0.0.1:5000", {});
//   auto reply = client.get("registered-models/alias", {{"name", "iris"}, {"alias", "prod"}},
//                           "models:/iris@prod");
//   client.download_folder("1/models/m-1f/artifacts", temp_dir, "models:/iris@prod");
//
// What the server says, as MLflow 3.x sends it: replies are JSON objects (empty repeated fields
// are left out: a search with no hits is `{}`); errors are {"error_code", "message"} with a 4xx
// or 5xx status. They map onto errc:
//   - no reply (connection refused, timeout, connection closed mid-body), HTTP 5xx, 429
//       -> unavailable, naming the server and the call ("retry later")
//   - error_code RESOURCE_DOES_NOT_EXIST -> not_found; other 4xx -> invalid_argument
//   - a reply that is not MLflow's JSON (an HTML 404 from another server) -> invalid_argument
// Errors with an MLflow error_code are thrown as mlflow_api_error, so that callers can tell
// RESOURCE_DOES_NOT_EXIST from INVALID_PARAMETER_VALUE (MLflow answers an unknown alias so).
//
// Not thread-safe: one client per store.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <rapidjson/document.h>

#include "libserve/future.hpp"

namespace httplib {
class Client;
}

namespace serve::registry {

struct mlflow_rest_options {
  /// Time to establish a TCP connection. Past it, the call fails as unavailable.
  std::chrono::milliseconds connect_timeout{5'000};
  /// Longest wait for the next bytes of a reply (not for the whole reply: a large artifact
  /// may take longer). Past it, the call fails as unavailable.
  std::chrono::milliseconds read_timeout{30'000};
  /// Most files one download_folder() fetches (a guard against a runaway listing); more is
  /// invalid_argument. Must be >= 1.
  size_t max_files = 10'000;
  /// HTTP basic auth (MLflow's basic-auth app) when username is not empty.
  std::string username;
  std::string password;
  /// Bearer token auth when not empty (and username is empty).
  std::string token;
};

/// An error reply that carried an MLflow error_code.
class mlflow_api_error : public serve_exception {
public:
  mlflow_api_error(errc code, const std::string& message, std::string error_code, int status)
      : serve_exception(code, message), error_code_(std::move(error_code)), status_(status) {}
  /// "RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", ...
  const std::string& error_code() const { return error_code_; }
  /// The HTTP status.
  int status() const { return status_; }

private:
  std::string error_code_;
  int status_;
};

/// One entry of an artifact folder listing.
struct artifact_entry {
  /// A single path component (MLflow's mlflow-artifacts listing gives base names).
  std::string name;
  bool is_dir = false;
  /// -1 when the server gave none (folders).
  int64_t size = -1;
};

class mlflow_rest_client {
public:
  /// `server_uri`: http://host[:port][/prefix]. Throws serve_exception(invalid_argument) for
  /// another scheme (https is not supported), a missing host, a query or fragment, or bad
  /// options.
  mlflow_rest_client(const std::string& server_uri, mlflow_rest_options options);
  ~mlflow_rest_client();
  mlflow_rest_client(const mlflow_rest_client&) = delete;
  mlflow_rest_client& operator=(const mlflow_rest_client&) = delete;

  /// GET /api/2.0/mlflow/<method>?<params>, the reply parsed. `context` starts every error
  /// message (the model URI being resolved). Throws as the file comment says.
  rapidjson::Document get(const std::string& method,
                          const std::vector<std::pair<std::string, std::string>>& params,
                          const std::string& context);

  /// POST /api/2.0/mlflow/<method> with a JSON body.
  rapidjson::Document post(const std::string& method, const std::string& json_body,
                           const std::string& context);

  /// The entries of the artifact folder `path` (relative to the server's artifact root, as in
  /// mlflow-artifacts:/<path>). A missing folder and a file both list as empty (MLflow's
  /// answer). Throws serve_exception(invalid_argument) for an entry whose name is not a single
  /// path component ("..", "a/b", "/etc"): it would leave the folder.
  std::vector<artifact_entry> list_artifacts(const std::string& path, const std::string& context);

  /// Downloads the artifact folder `path` with its subfolders into the existing folder
  /// `local_dir`; returns the number of files. A file shorter or longer than the listing said
  /// (a connection closed mid-body) fails as unavailable. Partial files stay in `local_dir`:
  /// artifact_cache discards it.
  size_t download_folder(const std::string& path, const std::string& local_dir,
                         const std::string& context);

  /// "MLflow tracking server http://127.0.0.1:5000".
  std::string describe() const;
  /// "127.0.0.1_5000" (+ "_" + escaped prefix): the server's folder name in the cache.
  const std::string& cache_name() const { return cache_name_; }
  /// "http://127.0.0.1:5000[/prefix]".
  const std::string& server() const { return server_; }

private:
  rapidjson::Document parse_reply(int status, const std::string& body, const std::string& call,
                                  const std::string& context) const;
  void download_file(const std::string& path, const std::string& local_file, int64_t size,
                     const std::string& context);
  size_t download_into(const std::string& path, const std::string& local_dir, size_t depth,
                       size_t files, const std::string& context);
  [[noreturn]] void unreachable(const std::string& call, const std::string& why,
                                const std::string& context) const;

  mlflow_rest_options options_;
  std::string server_;
  std::string base_path_;
  std::string cache_name_;
  std::unique_ptr<httplib::Client> http_;
};

/// Percent-encodes `text` for a URL query value or (keep_slash) a path: everything but
/// RFC 3986's unreserved characters becomes %XX.
std::string url_encode(const std::string& text, bool keep_slash);

/// Checks a '/'-separated artifact path: no empty, "." or ".." segment, no control character.
/// Throws serve_exception(invalid_argument) "CONTEXT: artifact path 'P' ...".
void check_artifact_path(const std::string& path, const std::string& context);

} // namespace serve::registry
