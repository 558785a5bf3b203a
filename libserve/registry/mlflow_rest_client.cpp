#include "libserve/registry/mlflow_rest_client.hpp"

#include <cctype>
#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <httplib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libserve/registry/artifact_cache.hpp"
#include "libserve/registry/model_uri.hpp"
#include "libserve/json.hpp"

namespace serve::registry {
namespace {

constexpr const char* api_prefix = "/api/2.0/mlflow/";
constexpr const char* artifacts_prefix = "/api/2.0/mlflow-artifacts/artifacts";
/// Deepest folder nesting download_folder() follows.
constexpr size_t max_depth = 32;
/// Most bytes of an error reply kept for the message.
constexpr size_t max_error_body = 64 * 1024;

[[noreturn]] void refuse_uri(const std::string& uri, const std::string& problem) {
  throw serve_exception(errc::invalid_argument, "registry_uri \"" + uri + "\": " + problem);
}


std::string millis(std::chrono::milliseconds d) {
  return std::to_string(d.count()) + " ms";
}

std::string shorten(std::string text) {
  constexpr size_t limit = 300;
  if (text.size() > limit)
    text = text.substr(0, limit) + "...";
  for (auto& c : text)
    if (c == '\n' || c == '\r')
      c = ' ';
  return text;
}

std::string query_string(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out;
  for (const auto& [key, value] : params)
    out += (out.empty() ? "?" : "&") + url_encode(key, false) + "=" + url_encode(value, false);
  return out;
}

/// Writes all of `data` to `fd`; false on error (errno set).
bool write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    auto n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

} // namespace

std::string url_encode(const std::string& text, bool keep_slash) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/'))
      out += static_cast<char>(c);
    else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

void check_artifact_path(const std::string& path, const std::string& context) {
  auto refuse = [&](const std::string& why) {
    throw serve_exception(errc::invalid_argument,
                          context + ": artifact path '" + path + "' " + why + "; refused");
  };
  if (path.empty())
    refuse("is empty");
  if (path.front() == '/')
    refuse("is absolute");
  if (has_control_char(path))
    refuse("contains a control character");
  size_t start = 0;
  for (;;) {
    auto end = path.find('/', start);
    auto segment = path.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (segment.empty() || segment == "." || segment == "..")
      refuse("has a '" + segment + "' segment (it must stay inside the artifact store)");
    if (end == std::string::npos)
      return;
    start = end + 1;
  }
}

mlflow_rest_client::mlflow_rest_client(const std::string& server_uri, mlflow_rest_options options)
    : options_(std::move(options)) {
  if (options_.max_files < 1)
    throw serve_exception(errc::invalid_argument, "max_files must be >= 1; was 0");
  if (options_.connect_timeout.count() <= 0 || options_.read_timeout.count() <= 0)
    throw serve_exception(errc::invalid_argument,
                          "connect_timeout and read_timeout must be > 0; were " +
                              millis(options_.connect_timeout) + " and " +
                              millis(options_.read_timeout));
  auto colon = server_uri.find("://");
  auto scheme = colon == std::string::npos ? "" : ascii_lower(server_uri.substr(0, colon));
  if (scheme == "https")
    refuse_uri(server_uri, "https is not supported; reach the tracking server over http "
                           "(a TLS-terminating proxy on the same host works)");
  if (scheme != "http")
    refuse_uri(server_uri, "an MLflow tracking server is given as http://host:port");
  auto rest = server_uri.substr(colon + 3);
  if (rest.find_first_of("?#") != std::string::npos)
    refuse_uri(server_uri, "a query or fragment is not supported");
  auto slash = rest.find('/');
  auto authority = rest.substr(0, slash);
  base_path_ = slash == std::string::npos ? "" : rest.substr(slash);
  while (!base_path_.empty() && base_path_.back() == '/')
    base_path_.pop_back();
  if (authority.find('@') != std::string::npos)
    refuse_uri(server_uri, "credentials in the URI are not supported; set "
                           "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD");
  std::string host = authority;
  int port = 80;
  auto port_colon = authority.rfind(':');
  if (port_colon != std::string::npos && authority.find(']', port_colon) == std::string::npos) {
    host = authority.substr(0, port_colon);
    auto digits = authority.substr(port_colon + 1);
    bool ok = !digits.empty() && digits.size() <= 5;
    for (unsigned char c : digits)
      ok &= std::isdigit(c) != 0;
    port = ok ? std::stoi(digits) : 0;
    if (port < 1 || port > 65535)
      refuse_uri(server_uri, "port '" + digits + "' is not a number from 1 to 65535");
  }
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty() || has_control_char(host))
    refuse_uri(server_uri, "no host name");
  if (has_control_char(base_path_))
    refuse_uri(server_uri, "the path contains a control character");
  server_ = "http://" + authority + base_path_;
  cache_name_ = cache_component(host + "_" + std::to_string(port) +
                                (base_path_.empty() ? "" : "_" + base_path_.substr(1)));

  http_ = std::make_unique<httplib::Client>(host, port);
  http_->set_url_encode(false); // paths and queries are encoded here
  auto connect_us = std::chrono::duration_cast<std::chrono::microseconds>(options_.connect_timeout);
  auto read_us = std::chrono::duration_cast<std::chrono::microseconds>(options_.read_timeout);
  http_->set_connection_timeout(connect_us.count() / 1'000'000, connect_us.count() % 1'000'000);
  http_->set_read_timeout(read_us.count() / 1'000'000, read_us.count() % 1'000'000);
  http_->set_write_timeout(read_us.count() / 1'000'000, read_us.count() % 1'000'000);
  if (!options_.username.empty())
    http_->set_basic_auth(options_.username, options_.password);
  else if (!options_.token.empty())
    http_->set_bearer_token_auth(options_.token);
}

mlflow_rest_client::~mlflow_rest_client() = default;

std::string mlflow_rest_client::describe() const {
  return "MLflow tracking server " + server_;
}

void mlflow_rest_client::unreachable(const std::string& call, const std::string& why,
                                     const std::string& context) const {
  throw serve_exception(errc::unavailable, context + ": " + describe() + " is unreachable (" +
                                               call + ": " + why + ")");
}

namespace {

std::string explain(httplib::Error error, const mlflow_rest_options& options) {
  switch (error) {
  case httplib::Error::Connection:
    return "cannot connect";
  case httplib::Error::ConnectionTimeout:
    return "no connection within " + millis(options.connect_timeout);
  case httplib::Error::Read:
    return "the connection closed, or was silent for " + millis(options.read_timeout) +
           ", before the reply was complete";
  case httplib::Error::Write:
    return "sending the request failed";
  default:
    return httplib::to_string(error);
  }
}

} // namespace

rapidjson::Document mlflow_rest_client::parse_reply(int status, const std::string& body,
                                                    const std::string& call,
                                                    const std::string& context) const {
  rapidjson::Document doc;
  bool is_object = !parse_json(doc, body) && doc.IsObject();
  if (status == 200) {
    if (!is_object)
      throw serve_exception(errc::invalid_argument,
                            context + ": " + describe() + " answered " + call +
                                " with something other than a JSON object (is it an MLflow "
                                "tracking server?): " +
                                shorten(body));
    return doc;
  }
  bool retry = status >= 500 || status == 429 || status == 408;
  auto prefix =
      context + ": " + describe() + " answered " + call + " with HTTP " + std::to_string(status);
  if (is_object && doc.HasMember("error_code") && doc["error_code"].IsString()) {
    std::string code = doc["error_code"].GetString();
    std::string message =
        doc.HasMember("message") && doc["message"].IsString() ? doc["message"].GetString() : "";
    auto kind = retry                               ? errc::unavailable
                : code == "RESOURCE_DOES_NOT_EXIST" ? errc::not_found
                                                    : errc::invalid_argument;
    throw mlflow_api_error(kind, prefix + " " + code + ": " + message, code, status);
  }
  if (retry)
    throw serve_exception(errc::unavailable, prefix + ": " + shorten(body));
  throw serve_exception(errc::invalid_argument,
                        prefix +
                            (status == 404 ? " (not an MLflow tracking server, or one too "
                                             "old for this call?)"
                                           : "") +
                            (body.empty() ? "" : ": " + shorten(body)));
}

rapidjson::Document
mlflow_rest_client::get(const std::string& method,
                        const std::vector<std::pair<std::string, std::string>>& params,
                        const std::string& context) {
  auto path = base_path_ + api_prefix + method;
  auto call = "GET " + path;
  auto res = http_->Get((path + query_string(params)).c_str());
  if (!res)
    unreachable(call, explain(res.error(), options_), context);
  return parse_reply(res->status, res->body, call, context);
}

rapidjson::Document mlflow_rest_client::post(const std::string& method,
                                             const std::string& json_body,
                                             const std::string& context) {
  auto path = base_path_ + api_prefix + method;
  auto call = "POST " + path;
  auto res = http_->Post(path.c_str(), json_body, "application/json");
  if (!res)
    unreachable(call, explain(res.error(), options_), context);
  return parse_reply(res->status, res->body, call, context);
}

std::vector<artifact_entry> mlflow_rest_client::list_artifacts(const std::string& path,
                                                               const std::string& context) {
  check_artifact_path(path, context);
  auto endpoint = base_path_ + artifacts_prefix;
  auto call = "GET " + endpoint + "?path=" + path;
  auto res = http_->Get((endpoint + query_string({{"path", path}})).c_str());
  if (!res)
    unreachable(call, explain(res.error(), options_), context);
  auto doc = parse_reply(res->status, res->body, call, context);
  std::vector<artifact_entry> out;
  if (!doc.HasMember("files"))
    return out;
  auto bad_reply = [&](const std::string& what) {
    throw serve_exception(errc::invalid_argument,
                          context + ": " + describe() + " answered " + call + " with " + what);
  };
  if (!doc["files"].IsArray())
    bad_reply("\"files\" that is not an array");
  for (const auto& file : doc["files"].GetArray()) {
    if (!file.IsObject() || !file.HasMember("path") || !file["path"].IsString())
      bad_reply("a file entry without a \"path\" string");
    artifact_entry entry;
    entry.name = file["path"].GetString();
    // Tolerate servers that list paths from the artifact root rather than base names.
    if (entry.name.size() > path.size() + 1 && entry.name.compare(0, path.size(), path) == 0 &&
        entry.name[path.size()] == '/')
      entry.name = entry.name.substr(path.size() + 1);
    if (entry.name.empty() || entry.name == "." || entry.name == ".." ||
        entry.name.find('/') != std::string::npos || has_control_char(entry.name))
      throw serve_exception(errc::invalid_argument,
                            context + ": " + describe() + " listed artifact '" +
                                shorten(entry.name) + "' in '" + path +
                                "', which is not a plain name inside that folder; refused");
    if (file.HasMember("is_dir") && file["is_dir"].IsBool())
      entry.is_dir = file["is_dir"].GetBool();
    if (file.HasMember("file_size")) {
      const auto& size = file["file_size"];
      if (size.IsInt64())
        entry.size = size.GetInt64();
      else if (size.IsString())
        entry.size = std::strtoll(size.GetString(), nullptr, 10);
    }
    out.push_back(std::move(entry));
  }
  return out;
}

void mlflow_rest_client::download_file(const std::string& path, const std::string& local_file,
                                       int64_t size, const std::string& context) {
  auto url = base_path_ + artifacts_prefix + "/" + url_encode(path, true);
  auto call = "GET " + base_path_ + artifacts_prefix + "/" + path;
  int fd = ::open(local_file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    throw serve_exception(errc::internal,
                          context + ": cannot create " + local_file + ": " + std::strerror(errno));
  int status = 0;
  int64_t written = 0;
  int write_errno = 0;
  std::string error_body;
  auto res = http_->Get(
      url.c_str(),
      [&](const httplib::Response& response) {
        status = response.status;
        return true;
      },
      [&](const char* data, size_t length) {
        if (status != 200) {
          error_body.append(
              data, std::min(length, max_error_body - std::min(max_error_body, error_body.size())));
          return true;
        }
        if (!write_all(fd, data, length)) {
          write_errno = errno;
          return false;
        }
        written += static_cast<int64_t>(length);
        return true;
      });
  bool closed = ::close(fd) == 0;
  if (write_errno != 0 || !closed)
    throw serve_exception(errc::internal, context + ": cannot write " + local_file + ": " +
                                              std::strerror(write_errno ? write_errno : errno));
  if (!res)
    unreachable(call, explain(res.error(), options_), context);
  if (status != 200)
    parse_reply(status, error_body, call, context); // throws: not 200
  if (size >= 0 && written != size)
    throw serve_exception(errc::unavailable,
                          context + ": " + describe() + " sent " + std::to_string(written) +
                              " bytes for artifact '" + path + "', which is listed with " +
                              std::to_string(size) + " (cut off mid-download?); retry later");
}

size_t mlflow_rest_client::download_into(const std::string& path, const std::string& local_dir,
                                         size_t depth, size_t files, const std::string& context) {
  if (depth > max_depth)
    throw serve_exception(errc::invalid_argument,
                          context + ": artifact folder '" + path + "' is nested more than " +
                              std::to_string(max_depth) + " levels deep; refused");
  for (const auto& entry : list_artifacts(path, context)) {
    auto remote = path + "/" + entry.name;
    auto local = local_dir + "/" + entry.name;
    if (entry.is_dir) {
      if (::mkdir(local.c_str(), 0755) != 0)
        throw serve_exception(errc::internal,
                              context + ": cannot create " + local + ": " + std::strerror(errno));
      files = download_into(remote, local, depth + 1, files, context);
      continue;
    }
    if (++files > options_.max_files)
      throw serve_exception(errc::invalid_argument,
                            context + ": the artifacts hold more than max_files = " +
                                std::to_string(options_.max_files) + " files; refused");
    download_file(remote, local, entry.size, context);
  }
  return files;
}

size_t mlflow_rest_client::download_folder(const std::string& path, const std::string& local_dir,
                                           const std::string& context) {
  check_artifact_path(path, context);
  return download_into(path, local_dir, 0, 0, context);
}

} // namespace serve::registry
