// Building the requests of a bench run; the v2 metadata fetch. See bench_requests.hpp.
#include "apps/actorserve/bench_requests.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include <httplib.h>

#include "apps/actorserve/v2_payload.hpp"

namespace serve::cli {

namespace {

using bench::v2_input;
using bench::v2_model;

bool has_header(const std::vector<std::string>& headers, const std::string& name) {
  for (auto& h : headers) {
    auto given = h.substr(0, h.find(':'));
    if (given.size() == name.size() &&
        std::equal(given.begin(), given.end(), name.begin(),
                   [](char a, char b) { return std::tolower(a) == std::tolower(b); }))
      return true;
  }
  return false;
}

std::string v2_model_path(const parsed_url& url, const bench_options& o) {
  std::string base = url.path;
  while (!base.empty() && base.back() == '/')
    base.pop_back();
  std::string path = base + "/v2/models/" + o.v2_model;
  if (!o.v2_version.empty())
    path += "/versions/" + o.v2_version;
  return path;
}

/// GET /v2/models/NAME[/versions/V] into `model`. Returns an exit code on failure.
std::optional<int> fetch_v2_metadata(const parsed_url& url, const bench_options& o,
                                     v2_model& model) {
  httplib::Client client(url.host, url.port);
  client.set_connection_timeout(5);
  client.set_read_timeout(30);
  auto path = v2_model_path(url, o);
  auto res = client.Get(path.c_str());
  if (!res) {
    std::fprintf(stderr, "actorserve bench: cannot reach %s:%u for GET %s (%s)\n", url.host.c_str(),
                 url.port, path.c_str(), httplib::to_string(res.error()).c_str());
    return bench_exit_unreachable;
  }
  if (res->status != 200) {
    std::fprintf(stderr, "actorserve bench: GET %s answered HTTP %d: %s\n", path.c_str(),
                 res->status, res->body.substr(0, 300).c_str());
    return bench_exit_unreachable;
  }
  auto error = bench::parse_v2_metadata(res->body, model);
  if (!error.empty()) {
    std::fprintf(stderr, "actorserve bench: GET %s: %s\n", path.c_str(), error.c_str());
    return bench_exit_unreachable;
  }
  return std::nullopt;
}

/// Applies --shape to the metadata's inputs. Returns an exit code when it names an unknown
/// input or makes a tensor too large.
std::optional<int> apply_shapes(const bench_options& o, v2_model& model) {
  for (auto& [name, dims] : o.shapes) {
    auto it = std::find_if(model.inputs.begin(), model.inputs.end(),
                           [&](const v2_input& in) { return in.name == name; });
    if (it == model.inputs.end()) {
      std::string names;
      for (auto& in : model.inputs)
        names += (names.empty() ? "" : ", ") + in.name;
      return usage_failure("--shape names input '" + name + "', which model '" + o.v2_model +
                           "' does not have (inputs: " + names + ")");
    }
    it->shape = dims;
  }
  for (auto& in : model.inputs)
    if (bench::element_count(in) > (int64_t{1} << 26))
      return usage_failure("input '" + in.name +
                           "' would have more than 2^26 elements; "
                           "give a smaller --shape");
  return std::nullopt;
}

/// Reads the model's metadata and applies --shape. Returns an exit code on failure.
std::optional<int> load_v2_model(const parsed_url& url, const bench_options& o, v2_model& model) {
  if (auto code = fetch_v2_metadata(url, o, model))
    return code;
  return apply_shapes(o, model);
}

} // namespace

std::string http_request(const std::string& method, const parsed_url& url, const std::string& path,
                         const std::vector<std::string>& headers, const std::string& content_type,
                         const std::optional<std::string>& body) {
  std::string out = method + " " + path + " HTTP/1.1\r\n";
  if (!has_header(headers, "Host"))
    out += "Host: " + url.host_header + "\r\n";
  if (!has_header(headers, "User-Agent"))
    out += "User-Agent: actorserve-bench\r\n";
  for (auto& h : headers)
    out += h + "\r\n";
  if (body) {
    if (!has_header(headers, "Content-Type"))
      out += "Content-Type: " + content_type + "\r\n";
    out += "Content-Length: " + std::to_string(body->size()) + "\r\n";
  }
  out += "\r\n";
  if (body)
    out += *body;
  return out;
}

std::optional<int> build_requests(const parsed_url& url, const bench_options& o,
                                  std::vector<std::string>& requests, std::string& described) {
  std::string method =
      o.method.empty() ? (o.body || !o.v2_model.empty() ? "POST" : "GET") : o.method;
  if (o.v2_model.empty()) {
    requests.push_back(http_request(method, url, url.path, o.headers, o.content_type, o.body));
    described = method + " " + o.url;
    return std::nullopt;
  }
  auto infer_path = v2_model_path(url, o) + "/infer";
  described = method + " http://" + url.host_header + infer_path;
  if (o.body) { // a payload file, posted as it is
    requests.push_back(http_request(method, url, infer_path, o.headers, o.content_type, o.body));
    return std::nullopt;
  }
  v2_model model;
  if (auto code = load_v2_model(url, o, model))
    return code;
  bench::v2_payload_generator generator(o.seed);
  constexpr int payloads = 16;
  for (int i = 0; i < payloads; ++i) {
    if (!o.binary) {
      requests.push_back(http_request(method, url, infer_path, o.headers, "application/json",
                                      generator.json_body(model)));
      continue;
    }
    size_t header_length = 0;
    auto body = generator.binary_body(model, header_length);
    auto headers = o.headers;
    headers.push_back("Inference-Header-Content-Length: " + std::to_string(header_length));
    requests.push_back(
        http_request(method, url, infer_path, headers, "application/octet-stream", body));
  }
  described += std::string(o.binary ? " (binary tensors" : " (JSON tensors") + ", " +
               std::to_string(model.inputs.size()) + " input(s), " +
               std::to_string(requests.front().size()) + " bytes per request)";
  return std::nullopt;
}

} // namespace serve::cli
