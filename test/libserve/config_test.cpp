#include "libserve/config.hpp"

#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <unistd.h>

using namespace serve;

namespace {

/// A config with one application "app1" holding `deployments` (a JSON array body).
std::string one_app(const std::string& deployments, const std::string& app_fields = "") {
  return R"({"applications":[{"name":"app1",)" + app_fields + R"("deployments":[)" + deployments +
         "]}]}";
}

/// A config with one class deployment "D" carrying the extra `fields`.
std::string one_deployment(const std::string& fields) {
  return one_app(R"({"name":"D","class":"C")" + (fields.empty() ? "" : "," + fields) + "}");
}

/// A config whose http_options object holds `fields`.
std::string with_http(const std::string& fields) {
  return R"({"http_options":{)" + fields +
         R"(},"applications":[{"name":"a","deployments":[{"name":"D","class":"C"}]}]})";
}

/// "path: reason" of the refused config, or "<accepted>" when it was accepted.
std::string error_text(const std::string& text, const config_parse_options& opts = {}) {
  config_result result = parse_config(text, opts);
  if (!result.error)
    return "<accepted>";
  return result.config ? "<config and error>" : result.error->to_string();
}

serve_config accepted(const std::string& text, const config_parse_options& opts = {}) {
  config_result result = parse_config(text, opts);
  std::string error = result.error ? result.error->to_string() : std::string();
  INFO(error);
  REQUIRE_FALSE(result.error.has_value());
  REQUIRE(result.config.has_value());
  return *result.config;
}

const deployment_config& only_deployment(const serve_config& config) {
  REQUIRE(config.applications.size() == 1);
  REQUIRE(config.applications[0].deployments.size() == 1);
  return config.applications[0].deployments[0];
}

const char* const example_config = R"({
  "http_options": {"host": "0.0.0.0", "port": 8001, "request_timeout_s": null,
                   "keep_alive_timeout_s": 7, "io_threads": 8, "keep_alive_max_count": 100,
                   "max_body_bytes": 1024},
  "applications": [{
    "name": "app1", "route_prefix": "/composed", "ingress": "ComposedModel",
    "deployments": [
      {"name": "ComposedModel", "class": "ComposedModel", "num_replicas": 2,
       "max_ongoing_requests": 10, "max_queued_requests": -1, "user_config": {"anything": 1},
       "graceful_shutdown_timeout_s": 20,
       "batching": {"max_batch_size": 5, "batch_wait_timeout_s": 0.01, "max_concurrent_batches": 1}},
      {"name": "M", "model": {"uri": "models:/iris@production", "labels": "labels/iris.json"}},
      {"name": "G", "graph": {"ensemble": ["ComposedModel", "M"], "combiner": "mean"}}
    ]
  }]
})";

} // namespace

// ---- Defaults and a full config -----------------------------------------------------------

TEST_CASE("a minimal config gets Ray Serve's defaults") {
  serve_config config = accepted(one_deployment(""));
  CHECK(config.http.host == "127.0.0.1");
  CHECK(config.http.port == 8000);
  CHECK_FALSE(config.http.request_timeout_s.has_value());
  CHECK(config.http.keep_alive_timeout_s == 5.0);
  CHECK(config.http.request_read_timeout_s == 30.0);
  CHECK(config.http.io_threads == 0);
  CHECK(config.http.max_connections == 10000);
  CHECK(config.http.max_pipelined_requests == 16);
  CHECK_FALSE(config.http.num_threads.has_value());
  CHECK(config.http.keep_alive_max_count == 10000);
  CHECK(config.http.max_body_bytes == 64u * 1024 * 1024);
  CHECK(config.http.max_header_bytes == 16u * 1024);
  CHECK(config.http.max_header_count == 100);
  CHECK(config.http.max_url_bytes == 8u * 1024);
  const application_config& app = config.applications[0];
  CHECK(app.name == "app1");
  CHECK(app.route_prefix == "/");
  CHECK(app.ingress == "D");
  const deployment_config& dep = only_deployment(config);
  CHECK(dep.name == "D");
  CHECK(dep.type == deployment_config::kind::class_name);
  CHECK(dep.class_name == "C");
  CHECK(dep.num_replicas == 1);
  CHECK(dep.max_ongoing_requests == 5);
  CHECK(dep.max_queued_requests == -1);
  CHECK(dep.user_config_json == "null");
  CHECK_FALSE(dep.batching.has_value());
  CHECK(dep.graceful_shutdown_timeout_s == 20.0);
  CHECK(dep.graph_calls.empty());
}

TEST_CASE("every field of a full config is read") {
  config_result result = parse_config(example_config);
  REQUIRE(result.config.has_value());
  CHECK(result.warnings.empty());
  const serve_config& config = *result.config;
  CHECK(config.http.host == "0.0.0.0");
  CHECK(config.http.port == 8001);
  CHECK_FALSE(config.http.request_timeout_s.has_value());
  CHECK(config.http.keep_alive_timeout_s == 7.0);
  CHECK(config.http.io_threads == 8);
  CHECK(config.http.keep_alive_max_count == 100);
  CHECK(config.http.max_body_bytes == 1024u);
  const application_config& app = config.applications.at(0);
  CHECK(app.route_prefix == "/composed");
  CHECK(app.ingress == "ComposedModel");
  REQUIRE(app.deployments.size() == 3);
  const deployment_config& composed = app.deployments[0];
  CHECK(composed.num_replicas == 2);
  CHECK(composed.max_ongoing_requests == 10);
  CHECK(composed.user_config_json == R"({"anything":1})");
  REQUIRE(composed.batching.has_value());
  CHECK(composed.batching->max_batch_size == 5u);
  CHECK(composed.batching->batch_wait_timeout == std::chrono::microseconds(10'000));
  CHECK(composed.batching->max_concurrent_batches == 1u);
  const deployment_config& model = app.deployments[1];
  CHECK(model.type == deployment_config::kind::model);
  CHECK(model.model.uri == "models:/iris@production");
  CHECK(model.model.labels == "labels/iris.json");
  const deployment_config& graph = app.deployments[2];
  CHECK(graph.type == deployment_config::kind::graph);
  CHECK(graph.graph_json == R"({"ensemble":["ComposedModel","M"],"combiner":"mean"})");
  CHECK(graph.graph_calls == std::vector<std::string>{"ComposedModel", "M"});
}

TEST_CASE("a request_timeout_s number sets the timeout") {
  CHECK(accepted(with_http(R"("request_timeout_s": 2.5)")).http.request_timeout_s == 2.5);
}

TEST_CASE("port 0 is accepted so a free port can be picked") {
  CHECK(accepted(with_http(R"("port": 0)")).http.port == 0);
}

TEST_CASE("an empty batching object gets the @serve.batch defaults") {
  deployment_config dep = only_deployment(accepted(one_deployment(R"("batching": {})")));
  REQUIRE(dep.batching.has_value());
  CHECK(dep.batching->max_batch_size == 10u);
  CHECK(dep.batching->batch_wait_timeout == std::chrono::microseconds(10'000));
  CHECK(dep.batching->max_concurrent_batches == 1u);
}

TEST_CASE("batching null means the deployment does not batch") {
  CHECK_FALSE(only_deployment(accepted(one_deployment(R"("batching": null)"))).batching);
}

TEST_CASE("batch_wait_timeout_s is stored in whole microseconds, rounded") {
  auto wait_of = [](const std::string& seconds) {
    auto config =
        accepted(one_deployment(R"("batching": {"batch_wait_timeout_s": )" + seconds + "}"));
    return only_deployment(config).batching->batch_wait_timeout.count();
  };
  CHECK(wait_of("0") == 0);
  CHECK(wait_of("0.0000016") == 2);
  CHECK(wait_of("0.0000014") == 1);
  CHECK(wait_of("1.5") == 1'500'000);
}

TEST_CASE("user_config keeps any JSON value as compact text") {
  auto user_config_of = [](const std::string& value) {
    return only_deployment(accepted(one_deployment(R"("user_config": )" + value))).user_config_json;
  };
  CHECK(user_config_of(R"({ "a" : [1, 2, {"b": null}], "c": "x" })") ==
        R"({"a":[1,2,{"b":null}],"c":"x"})");
  CHECK(user_config_of(R"("text")") == R"("text")");
  CHECK(user_config_of("3") == "3");
  CHECK(user_config_of("null") == "null");
}

TEST_CASE("max_queued_requests accepts -1 and positive limits") {
  CHECK(only_deployment(accepted(one_deployment(R"("max_queued_requests": -1)")))
            .max_queued_requests == -1);
  CHECK(only_deployment(accepted(one_deployment(R"("max_queued_requests": 7)")))
            .max_queued_requests == 7);
}

TEST_CASE("a zero graceful_shutdown_timeout_s is accepted") {
  CHECK(only_deployment(accepted(one_deployment(R"("graceful_shutdown_timeout_s": 0)")))
            .graceful_shutdown_timeout_s == 0.0);
}

// ---- Invalid documents --------------------------------------------------------------------

TEST_CASE("invalid JSON is reported with RapidJSON's message and offset") {
  config_result result = parse_config(R"({"applications": [})");
  REQUIRE(result.error.has_value());
  CHECK_FALSE(result.config.has_value());
  CHECK(result.error->path == "");
  CHECK(result.error->reason == "invalid JSON: Invalid value. at offset 18");
  CHECK(result.error->to_string() == result.error->reason);
}

TEST_CASE("an empty document is invalid JSON") {
  CHECK(error_text("") == "invalid JSON: The document is empty. at offset 0");
}

TEST_CASE("content after the top-level object is invalid JSON") {
  CHECK(error_text(one_deployment("") + " {}") ==
        "invalid JSON: The document root must not be followed by other values. at offset " +
            std::to_string(one_deployment("").size() + 1));
}

TEST_CASE("a config nested deeper than the JSON depth limit is refused, not a stack overflow") {
  const std::string prefix = R"({"applications": [], "x": )";
  std::string deep = prefix + std::string(200000, '[');
  // The offset is the first '[' past the limit (the root object is level 1).
  CHECK(error_text(deep) == "invalid JSON: nesting deeper than 128 levels at offset "
                              + std::to_string(prefix.size() + 127));
}

TEST_CASE("a config with a string that is not UTF-8 is invalid JSON") {
  CHECK(error_text("{\"applications\": [], \"x\": \"\xff\"}").rfind(
          "invalid JSON: Invalid encoding in string.", 0) == 0);
}

TEST_CASE("a top-level value that is not an object is refused at the root") {
  CHECK(error_text("[]") == "the config must be a JSON object; was an array");
  CHECK(error_text("\"config\"") == "the config must be a JSON object; was a string");
}

TEST_CASE("a throwing class check becomes an error instead of an exception") {
  config_parse_options opts;
  opts.is_known_class = [](const std::string&) -> bool { throw std::runtime_error("boom"); };
  CHECK(error_text(one_deployment(""), opts) == "cannot parse the config: boom");
}

TEST_CASE("to_string joins path and reason") {
  CHECK(config_error{"a.b", "must be >= 1; was 0"}.to_string() == "a.b: must be >= 1; was 0");
  CHECK(config_error{"", "bad"}.to_string() == "bad");
}

// ---- Unknown and repeated fields ----------------------------------------------------------

TEST_CASE("an unknown top-level field is refused by name") {
  CHECK(error_text(R"({"aplications": []})") ==
        "aplications: unknown field; expected one of: http_options, applications, registry_uri, "
        "nodes, cluster");
}

TEST_CASE("an unknown http_options field is refused with its path") {
  CHECK(error_text(with_http(R"("threads": 4)")) ==
        "http_options.threads: unknown field; expected one of: host, port, request_timeout_s, "
        "keep_alive_timeout_s, request_read_timeout_s, io_threads, max_connections, "
        "max_pipelined_requests, keep_alive_max_count, max_body_bytes, max_header_bytes, "
        "max_header_count, max_url_bytes, num_threads");
}

TEST_CASE("num_threads of the former HTTP server is accepted with a warning") {
  config_result result = parse_config(with_http(R"("num_threads": 64)"));
  REQUIRE(result.config.has_value());
  REQUIRE(result.warnings.size() == 1);
  CHECK(result.warnings[0].find("http_options.num_threads: ignored") == 0);
  CHECK(parse_config(with_http(R"("io_threads": 2)")).warnings.empty());
}

TEST_CASE("the ingress limits are read with their ranges") {
  serve_config config = accepted(with_http(
    R"("io_threads": 3, "max_connections": 50, "max_pipelined_requests": 4,
       "request_read_timeout_s": 2.5, "max_header_bytes": 4096, "max_header_count": 10,
       "max_url_bytes": 100)"));
  CHECK(config.http.io_threads == 3);
  CHECK(config.http.max_connections == 50);
  CHECK(config.http.max_pipelined_requests == 4);
  CHECK(config.http.request_read_timeout_s == 2.5);
  CHECK(config.http.max_header_bytes == 4096);
  CHECK(config.http.max_header_count == 10);
  CHECK(config.http.max_url_bytes == 100);
  CHECK(error_text(with_http(R"("io_threads": 300)")) ==
        "http_options.io_threads: must be <= 256; was 300");
  CHECK(error_text(with_http(R"("max_connections": 0)")) ==
        "http_options.max_connections: must be >= 1; was 0");
  CHECK(error_text(with_http(R"("max_pipelined_requests": 0)")) ==
        "http_options.max_pipelined_requests: must be >= 1; was 0");
  CHECK(error_text(with_http(R"("max_header_bytes": 100)")) ==
        "http_options.max_header_bytes: must be >= 1024; was 100");
  CHECK(error_text(with_http(R"("max_url_bytes": 2000000)")) ==
        "http_options.max_url_bytes: must be <= 1048576; was 2000000");
  CHECK(error_text(with_http(R"("request_read_timeout_s": 0)")) ==
        "http_options.request_read_timeout_s: must be > 0; was 0");
}

TEST_CASE("http timeouts longer than a day are refused") {
  CHECK(error_text(with_http(R"("request_timeout_s": 1e300)")) ==
        "http_options.request_timeout_s: must be <= 86400; was 1e300");
  CHECK(error_text(with_http(R"("keep_alive_timeout_s": 100000)")) ==
        "http_options.keep_alive_timeout_s: must be <= 86400; was 100000");
  CHECK(error_text(with_http(R"("request_read_timeout_s": 86401)")) ==
        "http_options.request_read_timeout_s: must be <= 86400; was 86401");
}

TEST_CASE("an unknown application field lists the expected ones") {
  CHECK(error_text(one_app(R"({"name":"D","class":"C"})", R"("routeprefix":"/x",)")) ==
        "applications[0].routeprefix: unknown field; expected one of: name, route_prefix, "
        "ingress, deployments, registry_uri");
}

TEST_CASE("an unknown deployment field such as autoscaling_config is refused") {
  CHECK(error_text(one_deployment(R"("autoscaling_config": {})")) ==
        "applications[0].deployments[0].autoscaling_config: unknown field; expected one of: "
        "name, class, model, graph, num_replicas, max_ongoing_requests, max_queued_requests, "
        "user_config, graceful_shutdown_timeout_s, batching, placement, device, precision");
}

TEST_CASE("unknown fields in batching, model and graph objects are refused") {
  CHECK(error_text(one_deployment(R"("batching": {"max_batch": 4})")) ==
        "applications[0].deployments[0].batching.max_batch: unknown field; expected one of: "
        "max_batch_size, batch_wait_timeout_s, max_concurrent_batches");
  CHECK(error_text(one_app(R"({"name":"M","model":{"uri":"m.onnx","version":2}})")) ==
        "applications[0].deployments[0].model.version: unknown field; expected one of: uri, "
        "labels, features, registry_uri, poll_interval_s");
  CHECK(error_text(
            one_app(R"({"name":"A","class":"C"},{"name":"G","graph":{"sequence":["A"],"order":1}})",
                    R"("ingress":"G",)")) ==
        "applications[0].deployments[1].graph.order: unknown field; expected one of: sequence, "
        "ensemble, combiner, conditional");
  CHECK(
      error_text(one_app(
          R"({"name":"A","class":"C"},{"name":"G","graph":{"conditional":{"call":"A","field":"s","threshold":1,"else":"A"}}})",
          R"("ingress":"G",)")) ==
      "applications[0].deployments[1].graph.conditional.else: unknown field; expected one "
      "of: call, field, threshold, above, below");
}

TEST_CASE("a model's features are a non-empty list of names") {
  auto ok = serve::parse_config(
    R"({"applications":[{"name":"a","deployments":[{"name":"M","model":{"uri":"m.onnx",)"
    R"("features":["x","y"]}}]}]})");
  REQUIRE(ok.config);
  CHECK(ok.config->applications[0].deployments[0].model.features
        == std::vector<std::string>{"x", "y"});
  CHECK(error_text(one_app(R"({"name":"M","model":{"uri":"m.onnx","features":[]}})"))
        == "applications[0].deployments[0].model.features: must not be empty");
  CHECK(error_text(one_app(R"({"name":"M","model":{"uri":"m.onnx","features":["x",3]}})"))
        == "applications[0].deployments[0].model.features[1]: must be a string; was a number");
}

TEST_CASE("a field given twice in one object is refused") {
  CHECK(error_text(one_deployment(R"("num_replicas": 1, "num_replicas": 2)")) ==
        "applications[0].deployments[0].num_replicas: duplicate field");
}

// ---- http_options -------------------------------------------------------------------------

TEST_CASE("http_options must be an object") {
  CHECK(error_text(R"({"http_options": 8000, "applications": []})") ==
        "http_options: must be an object; was a number");
}

TEST_CASE("a port outside 0..65535 is refused") {
  CHECK(error_text(with_http(R"("port": 70000)")) ==
        "http_options.port: must be <= 65535; was 70000");
  CHECK(error_text(with_http(R"("port": -1)")) == "http_options.port: must be >= 0; was -1");
}

TEST_CASE("a port given as a string is a type error naming the type") {
  CHECK(error_text(with_http(R"("port": "8000")")) ==
        "http_options.port: must be an integer; was a string");
  CHECK(error_text(with_http(R"("port": null)")) ==
        "http_options.port: must be an integer; was null");
  CHECK(error_text(with_http(R"("port": true)")) ==
        "http_options.port: must be an integer; was a boolean");
  CHECK(error_text(with_http(R"("port": [1])")) ==
        "http_options.port: must be an integer; was an array");
  CHECK(error_text(with_http(R"("port": {})")) ==
        "http_options.port: must be an integer; was an object");
}

TEST_CASE("a fractional number in an integer field is refused") {
  CHECK(error_text(with_http(R"("num_threads": 2.5)")) ==
        "http_options.num_threads: must be an integer; was 2.5");
  CHECK(error_text(with_http(R"("num_threads": 2.0)")) ==
        "http_options.num_threads: must be an integer; was 2.0");
}

TEST_CASE("an integer too large for its field is refused") {
  CHECK(error_text(with_http(R"("num_threads": 3000000000)")) ==
        "http_options.num_threads: must be <= 2147483647; was 3000000000");
  CHECK(error_text(with_http(R"("max_body_bytes": 10000000000000000000)")) ==
        "http_options.max_body_bytes: must be <= 9223372036854775807; was 10000000000000000000");
}

TEST_CASE("an empty or non-string host is refused") {
  CHECK(error_text(with_http(R"("host": "")")) == "http_options.host: must not be empty");
  CHECK(error_text(with_http(R"("host": 1)")) ==
        "http_options.host: must be a string; was a number");
}

TEST_CASE("timeouts in http_options must be positive numbers") {
  CHECK(error_text(with_http(R"("request_timeout_s": 0)")) ==
        "http_options.request_timeout_s: must be > 0; was 0");
  CHECK(error_text(with_http(R"("request_timeout_s": "5")")) ==
        "http_options.request_timeout_s: must be a number; was a string");
  CHECK(error_text(with_http(R"("keep_alive_timeout_s": -0.5)")) ==
        "http_options.keep_alive_timeout_s: must be > 0; was -0.5");
}

TEST_CASE("thread, keep-alive and body limits must be at least 1") {
  CHECK(error_text(with_http(R"("num_threads": 0)")) ==
        "http_options.num_threads: must be >= 1; was 0");
  CHECK(error_text(with_http(R"("keep_alive_max_count": 0)")) ==
        "http_options.keep_alive_max_count: must be >= 1; was 0");
  CHECK(error_text(with_http(R"("max_body_bytes": 0)")) ==
        "http_options.max_body_bytes: must be >= 1; was 0");
}

// ---- applications -------------------------------------------------------------------------

TEST_CASE("applications is required and must be a non-empty array") {
  CHECK(error_text("{}") == "applications: is required");
  CHECK(error_text(R"({"applications": []})") == "applications: must not be empty");
  CHECK(error_text(R"({"applications": {}})") == "applications: must be an array; was an object");
  CHECK(error_text(R"({"applications": [1]})") ==
        "applications[0]: must be an object; was a number");
}

TEST_CASE("an application needs a non-empty name") {
  CHECK(error_text(R"({"applications": [{"deployments": [{"name":"D","class":"C"}]}]})") ==
        "applications[0].name: is required");
  CHECK(error_text(
            R"({"applications": [{"name": "", "deployments": [{"name":"D","class":"C"}]}]})") ==
        "applications[0].name: must not be empty");
}

TEST_CASE("application names are unique") {
  CHECK(error_text(R"({"applications": [
          {"name": "a", "route_prefix": "/a", "deployments": [{"name":"D","class":"C"}]},
          {"name": "a", "route_prefix": "/b", "deployments": [{"name":"D","class":"C"}]}]})") ==
        R"(applications[1].name: duplicate application name "a"; also used by applications[0])");
}

TEST_CASE("route prefixes are unique across applications, the default included") {
  CHECK(error_text(R"({"applications": [
          {"name": "a", "deployments": [{"name":"D","class":"C"}]},
          {"name": "b", "route_prefix": "/", "deployments": [{"name":"D","class":"C"}]}]})") ==
        R"(applications[1].route_prefix: route prefix "/" is already used by application "a")");
}

TEST_CASE("several applications with distinct names and prefixes are accepted") {
  serve_config config = accepted(R"({"applications": [
      {"name": "a", "deployments": [{"name":"D","class":"C"}]},
      {"name": "b", "route_prefix": "/b", "deployments": [{"name":"D","class":"C"}]}]})");
  REQUIRE(config.applications.size() == 2);
  CHECK(config.applications[1].route_prefix == "/b");
}

TEST_CASE("a route_prefix must start with a slash") {
  CHECK(error_text(one_app(R"({"name":"D","class":"C"})", R"("route_prefix":"api",)")) ==
        R"(applications[0].route_prefix: must start with "/"; was "api")");
  CHECK(error_text(one_app(R"({"name":"D","class":"C"})", R"("route_prefix":"",)")) ==
        R"(applications[0].route_prefix: must start with "/"; was "")");
}

TEST_CASE("registry_uri is taken from the model, else its application, else the top level") {
  serve_config config = accepted(R"({"registry_uri": "/top", "applications": [
      {"name": "a", "route_prefix": "/a", "registry_uri": "sqlite:///app.db", "deployments": [
        {"name": "M", "model": {"uri": "models:/m/1"}},
        {"name": "N", "model": {"uri": "models:/n/1", "registry_uri": "/own",
                                "poll_interval_s": 2.5}}], "ingress": "M"},
      {"name": "b", "route_prefix": "/b", "deployments": [
        {"name": "M", "model": {"uri": "models:/m@prod"}}]}]})");
  CHECK(config.applications[0].deployments[0].model.registry_uri == "sqlite:///app.db");
  CHECK(config.applications[0].deployments[1].model.registry_uri == "/own");
  CHECK(config.applications[0].deployments[1].model.poll_interval_s == 2.5);
  CHECK(config.applications[0].deployments[0].model.poll_interval_s == 10.0);
  CHECK(config.applications[1].deployments[0].model.registry_uri == "/top");
  CHECK(error_text(R"({"applications": [{"name": "a", "deployments": [
      {"name": "M", "model": {"uri": "x", "poll_interval_s": 0}}]}]})") ==
        "applications[0].deployments[0].model.poll_interval_s: must be > 0; was 0");
}

TEST_CASE("the v2 protocol's and the metrics' paths are not route prefixes") {
  CHECK(error_text(one_app(R"({"name":"D","class":"C"})", R"("route_prefix":"/v2/models",)")) ==
        R"(applications[0].route_prefix: "/v2/models" is reserved (the v2 inference protocol and /metrics live there); choose another prefix)");
  CHECK(error_text(one_app(R"({"name":"D","class":"C"})", R"("route_prefix":"/metrics",)")) !=
        "");
  CHECK(accepted(one_app(R"({"name":"D","class":"C"})", R"("route_prefix":"/v2x",)"))
            .applications[0]
            .route_prefix == "/v2x");
}

TEST_CASE("a route_prefix must not end with a slash unless it is the root") {
  CHECK(error_text(one_app(R"({"name":"D","class":"C"})", R"("route_prefix":"/api/",)")) ==
        R"(applications[0].route_prefix: must not end with "/" (except "/" itself); was "/api/")");
  CHECK(accepted(one_app(R"({"name":"D","class":"C"})", R"("route_prefix":"/",)"))
            .applications[0]
            .route_prefix == "/");
  CHECK(accepted(one_app(R"({"name":"D","class":"C"})", R"("route_prefix":"/a/b",)"))
            .applications[0]
            .route_prefix == "/a/b");
}

TEST_CASE("an application needs a non-empty deployments array") {
  CHECK(error_text(R"({"applications": [{"name": "a"}]})") ==
        "applications[0].deployments: is required");
  CHECK(error_text(one_app("")) == "applications[0].deployments: must not be empty");
  CHECK(error_text(one_app("5")) ==
        "applications[0].deployments[0]: must be an object; was a number");
}

// ---- ingress ------------------------------------------------------------------------------

TEST_CASE("ingress defaults to the only deployment") {
  CHECK(accepted(one_deployment("")).applications[0].ingress == "D");
}

TEST_CASE("ingress is required when an application has several deployments") {
  CHECK(error_text(one_app(R"({"name":"A","class":"C"},{"name":"B","class":"C"})")) ==
        "applications[0].ingress: is required when an application has more than one "
        "deployment; deployments: A, B");
}

TEST_CASE("an ingress must name a deployment of its application") {
  CHECK(error_text(
            one_app(R"({"name":"A","class":"C"},{"name":"B","class":"C"})", R"("ingress":"Z",)")) ==
        R"(applications[0].ingress: no deployment "Z" in application "app1"; deployments: A, B)");
  CHECK(
      accepted(one_app(R"({"name":"A","class":"C"},{"name":"B","class":"C"})", R"("ingress":"B",)"))
          .applications[0]
          .ingress == "B");
}

// ---- Deployments --------------------------------------------------------------------------

TEST_CASE("a deployment needs a non-empty name") {
  CHECK(error_text(one_app(R"({"class":"C"})")) ==
        "applications[0].deployments[0].name: is required");
  CHECK(error_text(one_app(R"({"name":"","class":"C"})")) ==
        "applications[0].deployments[0].name: must not be empty");
}

TEST_CASE("deployment names are unique within an application") {
  CHECK(
      error_text(
          one_app(R"({"name":"A","class":"C"},{"name":"A","class":"C"})", R"("ingress":"A",)")) ==
      R"(applications[0].deployments[1].name: duplicate deployment name "A" in application "app1")");
}

TEST_CASE("two applications may each have a deployment of the same name") {
  serve_config config = accepted(R"({"applications": [
      {"name": "a", "route_prefix": "/a", "deployments": [{"name":"D","class":"C"}]},
      {"name": "b", "route_prefix": "/b", "deployments": [{"name":"D","class":"C"}]}]})");
  CHECK(config.applications[0].deployments[0].name == config.applications[1].deployments[0].name);
}

TEST_CASE("a deployment needs exactly one of class, model and graph") {
  CHECK(error_text(one_app(R"({"name":"D"})")) ==
        "applications[0].deployments[0]: exactly one of class, model, graph is required; found "
        "none");
  CHECK(error_text(one_app(R"({"name":"D","class":"C","model":{"uri":"m.onnx"}})")) ==
        "applications[0].deployments[0]: exactly one of class, model, graph is required; found "
        "class, model");
}

TEST_CASE("an unregistered class is refused with the registered ones listed") {
  config_parse_options opts;
  opts.known_classes = {"Echo", "Sum"};
  opts.is_known_class = [](const std::string& name) { return name == "Echo" || name == "Sum"; };
  CHECK(
      error_text(one_app(R"({"name":"D","class":"Ecko"})"), opts) ==
      R"(applications[0].deployments[0].class: unknown deployment class "Ecko"; registered classes: Echo, Sum)");
  CHECK(only_deployment(accepted(one_app(R"({"name":"D","class":"Sum"})"), opts)).class_name ==
        "Sum");
}

TEST_CASE("a class must be a non-empty string") {
  CHECK(error_text(one_app(R"({"name":"D","class":3})")) ==
        "applications[0].deployments[0].class: must be a string; was a number");
  CHECK(error_text(one_app(R"({"name":"D","class":""})")) ==
        "applications[0].deployments[0].class: must not be empty");
}

TEST_CASE("a model needs a uri and takes an optional labels path") {
  CHECK(error_text(one_app(R"({"name":"M","model":"m.onnx"})")) ==
        "applications[0].deployments[0].model: must be an object; was a string");
  CHECK(error_text(one_app(R"({"name":"M","model":{"labels":"l.json"}})")) ==
        "applications[0].deployments[0].model.uri: is required");
  CHECK(error_text(one_app(R"({"name":"M","model":{"uri":"m.onnx","labels":1}})")) ==
        "applications[0].deployments[0].model.labels: must be a string; was a number");
  deployment_config dep =
      only_deployment(accepted(one_app(R"({"name":"M","model":{"uri":"m.onnx"}})")));
  CHECK(dep.type == deployment_config::kind::model);
  CHECK(dep.model.uri == "m.onnx");
  CHECK(dep.model.labels.empty());
}

TEST_CASE("num_replicas must be an integer >= 1 and autoscaling is refused") {
  CHECK(error_text(one_deployment(R"("num_replicas": 0)")) ==
        "applications[0].deployments[0].num_replicas: must be >= 1; was 0");
  CHECK(
      error_text(one_deployment(R"("num_replicas": "auto")")) ==
      R"(applications[0].deployments[0].num_replicas: must be an integer >= 1; "auto" (autoscaling) is not supported)");
  CHECK(error_text(one_deployment(R"("num_replicas": "two")")) ==
        "applications[0].deployments[0].num_replicas: must be an integer; was a string");
  CHECK(error_text(one_deployment(R"("num_replicas": 1.5)")) ==
        "applications[0].deployments[0].num_replicas: must be an integer; was 1.5");
  CHECK(only_deployment(accepted(one_deployment(R"("num_replicas": 3)"))).num_replicas == 3);
}

TEST_CASE("max_ongoing_requests must be at least 1") {
  CHECK(error_text(one_deployment(R"("max_ongoing_requests": 0)")) ==
        "applications[0].deployments[0].max_ongoing_requests: must be >= 1; was 0");
}

TEST_CASE("max_queued_requests must be -1 or at least 1") {
  CHECK(error_text(one_deployment(R"("max_queued_requests": 0)")) ==
        "applications[0].deployments[0].max_queued_requests: must be -1 (unlimited) or >= 1; "
        "was 0");
  CHECK(error_text(one_deployment(R"("max_queued_requests": -2)")) ==
        "applications[0].deployments[0].max_queued_requests: must be -1 (unlimited) or >= 1; "
        "was -2");
}

TEST_CASE("a negative graceful_shutdown_timeout_s is refused") {
  CHECK(error_text(one_deployment(R"("graceful_shutdown_timeout_s": -1)")) ==
        "applications[0].deployments[0].graceful_shutdown_timeout_s: must be >= 0; was -1");
}

// ---- Batching -----------------------------------------------------------------------------

TEST_CASE("a zero max_batch_size is refused with its JSON path") {
  CHECK(error_text(one_app(
            R"({"name":"A","class":"C"},{"name":"B","class":"C","batching":{"max_batch_size":0}})",
            R"("ingress":"A",)")) ==
        "applications[0].deployments[1].batching.max_batch_size: must be >= 1; was 0");
}

TEST_CASE("batching must be an object with valid limits") {
  CHECK(error_text(one_deployment(R"("batching": true)")) ==
        "applications[0].deployments[0].batching: must be an object; was a boolean");
  CHECK(error_text(one_deployment(R"("batching": {"batch_wait_timeout_s": -0.1})")) ==
        "applications[0].deployments[0].batching.batch_wait_timeout_s: must be >= 0; was -0.1");
  CHECK(error_text(one_deployment(R"("batching": {"batch_wait_timeout_s": 4000})")) ==
        "applications[0].deployments[0].batching.batch_wait_timeout_s: must be <= 3600; was 4000");
  CHECK(error_text(one_deployment(R"("batching": {"max_concurrent_batches": 0})")) ==
        "applications[0].deployments[0].batching.max_concurrent_batches: must be >= 1; was 0");
}

TEST_CASE("batches larger than max_ongoing_requests warn and raise the effective cap") {
  config_result result = parse_config(
      one_deployment(R"("max_ongoing_requests": 5, "batching": {"max_batch_size": 10})"));
  REQUIRE(result.config.has_value());
  REQUIRE(result.warnings.size() == 1);
  CHECK(result.warnings[0] ==
        "applications[0].deployments[0]: max_ongoing_requests (5) < max_batch_size (10) x "
        "max_concurrent_batches (1): Ray Serve would cap every batch at 5 requests; ActorServe "
        "lets up to 10 requests in flight per replica so batches can fill");
  CHECK(only_deployment(*result.config).effective_max_ongoing() == 10u);
}

TEST_CASE("concurrent batches multiply the effective cap") {
  config_result result = parse_config(one_deployment(
      R"("max_ongoing_requests": 8, "batching": {"max_batch_size": 4, "max_concurrent_batches": 3})"));
  REQUIRE(result.config.has_value());
  const deployment_config& dep = only_deployment(*result.config);
  CHECK(dep.effective_max_ongoing() == 12u);
  REQUIRE(result.warnings.size() == 1);
  CHECK(dep.batching_warning().find("ActorServe lets up to 12 requests") != std::string::npos);
}

TEST_CASE("no warning when max_ongoing_requests already covers the batches") {
  config_result result = parse_config(
      one_deployment(R"("max_ongoing_requests": 20, "batching": {"max_batch_size": 10})"));
  REQUIRE(result.config.has_value());
  CHECK(result.warnings.empty());
  const deployment_config& dep = only_deployment(*result.config);
  CHECK(dep.batching_warning() == "");
  CHECK(dep.effective_max_ongoing() == 20u);
}

TEST_CASE("without batching the effective cap is max_ongoing_requests") {
  deployment_config dep;
  dep.max_ongoing_requests = 3;
  CHECK(dep.effective_max_ongoing() == 3u);
  CHECK(dep.batching_warning() == "");
}

TEST_CASE("warnings name the deployment they belong to") {
  config_result result = parse_config(one_app(
      R"({"name":"A","class":"C"},{"name":"B","class":"C","max_ongoing_requests":1,"batching":{"max_batch_size":2}})",
      R"("ingress":"A",)"));
  REQUIRE(result.warnings.size() == 1);
  CHECK(result.warnings[0].rfind("applications[0].deployments[1]: max_ongoing_requests (1)", 0) ==
        0);
}

// ---- Graphs -------------------------------------------------------------------------------

TEST_CASE("a sequence graph records its calls once each, in first-seen order") {
  serve_config config = accepted(one_app(
      R"({"name":"A","class":"C"},{"name":"B","class":"C"},{"name":"G","graph":{"sequence":["B","A","B"]}})",
      R"("ingress":"G",)"));
  const deployment_config* graph = config.applications[0].find("G");
  REQUIRE(graph != nullptr);
  CHECK(graph->graph_json == R"({"sequence":["B","A","B"]})");
  CHECK(graph->graph_calls == std::vector<std::string>{"B", "A"});
}

TEST_CASE("an ensemble takes an optional combiner from the known set") {
  std::string members = R"({"name":"A","class":"C"},{"name":"B","class":"C"},)";
  CHECK(accepted(one_app(members + R"({"name":"G","graph":{"ensemble":["A","B"]}})",
                         R"("ingress":"G",)"))
            .applications[0]
            .find("G")
            ->graph_calls.size() == 2);
  for (const char* combiner : {"list", "mean", "majority", "concat"})
    CHECK(error_text(one_app(members + R"({"name":"G","graph":{"ensemble":["A","B"],"combiner":")" +
                                 combiner + "\"}}",
                             R"("ingress":"G",)")) == "<accepted>");
  CHECK(
      error_text(
          one_app(members + R"({"name":"G","graph":{"ensemble":["A","B"],"combiner":"max"}})",
                  R"("ingress":"G",)")) ==
      R"(applications[0].deployments[2].graph.combiner: must be one of: list, mean, majority, concat; was "max")");
}

TEST_CASE("a combiner without an ensemble is refused") {
  CHECK(error_text(one_app(
            R"({"name":"A","class":"C"},{"name":"G","graph":{"sequence":["A"],"combiner":"mean"}})",
            R"("ingress":"G",)")) ==
        "applications[0].deployments[1].graph.combiner: is allowed only with ensemble");
}

TEST_CASE("a graph needs exactly one of sequence, ensemble and conditional") {
  CHECK(error_text(
            one_app(R"({"name":"A","class":"C"},{"name":"G","graph":{}})", R"("ingress":"G",)")) ==
        "applications[0].deployments[1].graph: exactly one of sequence, ensemble, conditional "
        "is required; found none");
  CHECK(error_text(one_app(
            R"({"name":"A","class":"C"},{"name":"G","graph":{"sequence":["A"],"ensemble":["A"]}})",
            R"("ingress":"G",)")) ==
        "applications[0].deployments[1].graph: exactly one of sequence, ensemble, conditional "
        "is required; found sequence, ensemble");
  CHECK(error_text(
            one_app(R"({"name":"A","class":"C"},{"name":"G","graph":[]})", R"("ingress":"G",)")) ==
        "applications[0].deployments[1].graph: must be an object; was an array");
}

TEST_CASE("sequence and ensemble lists must be non-empty lists of names") {
  CHECK(error_text(one_app(R"({"name":"A","class":"C"},{"name":"G","graph":{"sequence":[]}})",
                           R"("ingress":"G",)")) ==
        "applications[0].deployments[1].graph.sequence: must not be empty");
  CHECK(error_text(one_app(R"({"name":"A","class":"C"},{"name":"G","graph":{"ensemble":"A"}})",
                           R"("ingress":"G",)")) ==
        "applications[0].deployments[1].graph.ensemble: must be an array; was a string");
  CHECK(error_text(one_app(R"({"name":"A","class":"C"},{"name":"G","graph":{"sequence":["A",7]}})",
                           R"("ingress":"G",)")) ==
        "applications[0].deployments[1].graph.sequence[1]: must be a string; was a number");
}

TEST_CASE("a conditional graph records its call and both branches") {
  serve_config config = accepted(one_app(
      R"({"name":"Score","class":"C"},{"name":"Hi","class":"C"},{"name":"Lo","class":"C"},
         {"name":"G","graph":{"conditional":{"call":"Score","field":"score","threshold":0.5,
                                             "above":"Hi","below":"Lo"}}})",
      R"("ingress":"G",)"));
  CHECK(config.applications[0].find("G")->graph_calls ==
        std::vector<std::string>{"Score", "Hi", "Lo"});
}

TEST_CASE("a conditional branch may be null") {
  serve_config config = accepted(one_app(
      R"({"name":"Score","class":"C"},
         {"name":"G","graph":{"conditional":{"call":"Score","field":"score","threshold":-1,
                                             "above":null}}})",
      R"("ingress":"G",)"));
  CHECK(config.applications[0].find("G")->graph_calls == std::vector<std::string>{"Score"});
}

TEST_CASE("a conditional needs call, field and a numeric threshold") {
  std::string app_fields = R"("ingress":"G",)";
  auto conditional = [&](const std::string& body) {
    return error_text(
        one_app(R"({"name":"A","class":"C"},{"name":"G","graph":{"conditional":{)" + body + "}}}",
                app_fields));
  };
  std::string path = "applications[0].deployments[1].graph.conditional.";
  CHECK(conditional(R"("field":"s","threshold":1)") == path + "call: is required");
  CHECK(conditional(R"("call":"A","threshold":1)") == path + "field: is required");
  CHECK(conditional(R"("call":"A","field":"s")") == path + "threshold: is required");
  CHECK(conditional(R"("call":"A","field":"s","threshold":"high")") ==
        path + "threshold: must be a number; was a string");
  CHECK(conditional(R"("call":"A","field":"s","threshold":1,"above":3)") ==
        path + "above: must be a string or null; was a number");
  CHECK(conditional(R"("call":null,"field":"s","threshold":1)") ==
        path + "call: must be a string; was null");
}

TEST_CASE("a graph naming a missing deployment is refused at the name's path") {
  CHECK(
      error_text(one_app(
          R"({"name":"A","class":"C"},{"name":"B","class":"C"},{"name":"G","graph":{"ensemble":["A","X"]}})",
          R"("ingress":"G",)")) ==
      R"(applications[0].deployments[2].graph.ensemble[1]: no deployment "X" in application "app1"; deployments: A, B, G)");
  CHECK(
      error_text(one_app(
          R"({"name":"A","class":"C"},{"name":"G","graph":{"conditional":{"call":"A","field":"s","threshold":1,"below":"Y"}}})",
          R"("ingress":"G",)")) ==
      R"(applications[0].deployments[1].graph.conditional.below: no deployment "Y" in application "app1"; deployments: A, G)");
}

TEST_CASE("a graph may not name a deployment of another application") {
  CHECK(
      error_text(R"({"applications": [
          {"name": "a", "route_prefix": "/a", "deployments": [{"name":"A","class":"C"}]},
          {"name": "b", "route_prefix": "/b", "deployments": [{"name":"G","graph":{"sequence":["A"]}}]}]})") ==
      R"(applications[1].deployments[0].graph.sequence[0]: no deployment "A" in application "b"; deployments: G)");
}

TEST_CASE("a graph may not call itself") {
  CHECK(
      error_text(one_app(R"({"name":"A","class":"C"},{"name":"G","graph":{"sequence":["A","G"]}})",
                         R"("ingress":"G",)")) ==
      R"(applications[0].deployments[1].graph.sequence[1]: a graph deployment cannot call itself ("G"))");
}

TEST_CASE("graph deployments calling each other in a cycle are refused with the cycle named") {
  CHECK(error_text(one_app(
            R"({"name":"A","class":"C"},
               {"name":"G1","graph":{"sequence":["A","G2"]}},
               {"name":"G2","graph":{"ensemble":["G3"]}},
               {"name":"G3","graph":{"conditional":{"call":"A","field":"s","threshold":0,"above":"G1"}}})",
            R"("ingress":"G1",)")) ==
        "applications[0].deployments[1].graph: graph cycle: G1 -> G2 -> G3 -> G1");
}

TEST_CASE("graphs calling graphs without a cycle are accepted") {
  serve_config config = accepted(one_app(
      R"({"name":"A","class":"C"},
         {"name":"Top","graph":{"ensemble":["Left","Right"]}},
         {"name":"Left","graph":{"sequence":["A","Shared"]}},
         {"name":"Right","graph":{"sequence":["Shared"]}},
         {"name":"Shared","graph":{"sequence":["A"]}})",
      R"("ingress":"Top",)"));
  CHECK(config.applications[0].deployments.size() == 5);
}

// ---- same_code and find -------------------------------------------------------------------

TEST_CASE("same_code ignores the fields applied without restarting replicas") {
  deployment_config before =
      only_deployment(accepted(one_deployment(R"("num_replicas": 1, "user_config": {"v": 1})")));
  deployment_config after = only_deployment(accepted(one_deployment(
      R"("num_replicas": 4, "max_ongoing_requests": 9, "max_queued_requests": 3,
         "user_config": {"v": 2}, "graceful_shutdown_timeout_s": 1, "batching": {})")));
  CHECK(before.same_code(after));
  CHECK(after.same_code(before));
}

TEST_CASE("same_code notices a different class, model or graph") {
  deployment_config base;
  base.name = "D";
  base.class_name = "C";
  deployment_config other = base;
  other.class_name = "C2";
  CHECK_FALSE(base.same_code(other));
  other = base;
  other.name = "E";
  CHECK_FALSE(base.same_code(other));
  other = base;
  other.type = deployment_config::kind::model;
  CHECK_FALSE(base.same_code(other));
  other = base;
  other.model.uri = "m.onnx";
  CHECK_FALSE(base.same_code(other));
  other = base;
  other.model.labels = "l.json";
  CHECK_FALSE(base.same_code(other));
  other = base;
  other.graph_json = R"({"sequence":["A"]})";
  CHECK_FALSE(base.same_code(other));
}

TEST_CASE("find returns the named deployment or nullptr") {
  serve_config config = accepted(example_config);
  const application_config& app = config.applications[0];
  REQUIRE(app.find("M") != nullptr);
  CHECK(app.find("M")->model.uri == "models:/iris@production");
  CHECK(app.find("missing") == nullptr);
}

// ---- deployment_config_json ---------------------------------------------------------------

TEST_CASE("deployment_config_json carries every option of a class deployment") {
  deployment_config dep = accepted(example_config).applications[0].deployments[0];
  rapidjson::Document doc;
  doc.Parse(deployment_config_json(dep).c_str());
  REQUIRE_FALSE(doc.HasParseError());
  REQUIRE(doc.IsObject());
  CHECK(std::string(doc["name"].GetString()) == "ComposedModel");
  CHECK(std::string(doc["class"].GetString()) == "ComposedModel");
  CHECK(doc["num_replicas"].GetInt() == 2);
  CHECK(doc["max_ongoing_requests"].GetInt() == 10);
  CHECK(doc["max_queued_requests"].GetInt() == -1);
  REQUIRE(doc["user_config"].IsObject());
  CHECK(doc["user_config"]["anything"].GetInt() == 1);
  CHECK(doc["graceful_shutdown_timeout_s"].GetDouble() == 20.0);
  const rapidjson::Value& batching = doc["batching"];
  REQUIRE(batching.IsObject());
  CHECK(batching["max_batch_size"].GetInt() == 5);
  CHECK(batching["batch_wait_timeout_s"].GetDouble() == doctest::Approx(0.01));
  CHECK(batching["max_concurrent_batches"].GetInt() == 1);
  CHECK_FALSE(doc.HasMember("model"));
  CHECK_FALSE(doc.HasMember("graph"));
}

TEST_CASE("deployment_config_json writes a model deployment without batching") {
  deployment_config dep = accepted(example_config).applications[0].deployments[1];
  rapidjson::Document doc;
  doc.Parse(deployment_config_json(dep).c_str());
  REQUIRE(doc.IsObject());
  CHECK(doc["batching"].IsNull());
  CHECK(doc["user_config"].IsNull());
  REQUIRE(doc["model"].IsObject());
  CHECK(std::string(doc["model"]["uri"].GetString()) == "models:/iris@production");
  CHECK(std::string(doc["model"]["labels"].GetString()) == "labels/iris.json");
  CHECK_FALSE(doc.HasMember("class"));
}

TEST_CASE("deployment_config_json embeds a graph as the object it was given") {
  deployment_config dep = accepted(example_config).applications[0].deployments[2];
  std::string text = deployment_config_json(dep);
  CHECK(text.find(R"("graph":{"ensemble":["ComposedModel","M"],"combiner":"mean"})") !=
        std::string::npos);
  rapidjson::Document doc;
  doc.Parse(text.c_str());
  REQUIRE(doc.IsObject());
  REQUIRE(doc["graph"].IsObject());
  CHECK(doc["graph"]["ensemble"].Size() == 2);
  CHECK_FALSE(doc.HasMember("class"));
}

TEST_CASE("a deployment_config_json batching object parses back as deployment batching") {
  deployment_config dep = accepted(example_config).applications[0].deployments[0];
  rapidjson::Document doc;
  doc.Parse(deployment_config_json(dep).c_str());
  REQUIRE(doc.IsObject());
  std::string batching_text = R"({"max_batch_size":5,"batch_wait_timeout_s":)" +
                              std::to_string(doc["batching"]["batch_wait_timeout_s"].GetDouble()) +
                              R"(,"max_concurrent_batches":1})";
  deployment_config again =
      only_deployment(accepted(one_deployment(R"("batching": )" + batching_text)));
  CHECK(again.batching->batch_wait_timeout == dep.batching->batch_wait_timeout);
}

// ---- device and precision (issue 7) -------------------------------------------------------

TEST_CASE("device defaults to cpu and precision to tf32") {
  const deployment_config dep = only_deployment(accepted(one_deployment("")));
  CHECK(dep.device == "cpu");
  CHECK(dep.precision == "tf32");
}

TEST_CASE("device takes cpu, auto, cuda and cuda:N") {
  for (const char* device : {"cpu", "auto", "cuda", "cuda:0", "cuda:7", "cuda:9999"})
    CHECK(only_deployment(accepted(one_deployment(std::string(R"("device": ")") + device + "\"")))
              .device == device);
}

TEST_CASE("a bad device is refused with its path and the accepted values") {
  const std::string expected =
      R"(applications[0].deployments[0].device: must be "cpu", "auto", "cuda" or "cuda:N" (N a device number >= 0); was )";
  for (const char* device : {"gpu", "cuda:", "cuda:-1", "cuda:x", "cuda:1 ", "CUDA", "cuda:10000"})
    CHECK(error_text(one_deployment(std::string(R"("device": ")") + device + "\"")) ==
          expected + "\"" + device + "\"");
  CHECK(error_text(one_deployment(R"("device": 0)")) ==
        "applications[0].deployments[0].device: must be a string; was a number");
  CHECK(error_text(one_deployment(R"("device": "")")) ==
        "applications[0].deployments[0].device: must not be empty");
}

TEST_CASE("precision takes tf32, fp32, fp16 and bf16") {
  for (const char* precision : {"tf32", "fp32", "fp16", "bf16"})
    CHECK(only_deployment(
              accepted(one_deployment(std::string(R"("precision": ")") + precision + "\"")))
              .precision == precision);
  CHECK(error_text(one_deployment(R"("precision": "int8")")) ==
        R"(applications[0].deployments[0].precision: must be one of "tf32", "fp32", "fp16" or "bf16"; was "int8")");
}

TEST_CASE("a model deployment takes device and precision; a graph refuses them") {
  const deployment_config dep = only_deployment(accepted(
      one_app(R"({"name":"M","model":{"uri":"m.onnx"},"device":"cuda:1","precision":"bf16"})")));
  CHECK(dep.device == "cuda:1");
  CHECK(dep.precision == "bf16");
  CHECK(error_text(one_app(R"({"name":"A","class":"C"},
                              {"name":"G","graph":{"sequence":["A"]},"device":"auto"})",
                           R"("ingress":"G",)")) ==
        "applications[0].deployments[1].device: applies to model and class deployments, not to a "
        "graph (its calls run where their deployments run)");
}

TEST_CASE("device and precision show in deployment_config_json and need new replicas") {
  const deployment_config dep = only_deployment(
      accepted(one_app(R"({"name":"M","model":{"uri":"m.onnx"},"device":"auto"})")));
  rapidjson::Document doc;
  doc.Parse(deployment_config_json(dep).c_str());
  REQUIRE(doc.IsObject());
  CHECK(std::string(doc["device"].GetString()) == "auto");
  CHECK(std::string(doc["precision"].GetString()) == "tf32");
  deployment_config other = dep;
  other.device = "cpu";
  CHECK_FALSE(dep.same_code(other));
  other = dep;
  other.precision = "fp16";
  CHECK_FALSE(dep.same_code(other));
}

// ---- load_config_file ---------------------------------------------------------------------

TEST_CASE("a missing config file is an error naming the file") {
  config_result result = load_config_file("/nonexistent/actorserve/serve.json");
  REQUIRE(result.error.has_value());
  CHECK_FALSE(result.config.has_value());
  CHECK(result.error->path == "");
  CHECK(
      result.error->reason ==
      R"(cannot read config file "/nonexistent/actorserve/serve.json": No such file or directory)");
}

TEST_CASE("a directory is not a readable config file") {
  std::string dir = std::filesystem::temp_directory_path().string();
  config_result result = load_config_file(dir);
  REQUIRE(result.error.has_value());
  CHECK(result.error->reason == "cannot read config file \"" + dir + "\": Is a directory");
}

TEST_CASE("a config file is read whole and parsed") {
  std::filesystem::path file = std::filesystem::temp_directory_path() /
                               ("actorserve_config_test_" + std::to_string(::getpid()) + ".json");
  {
    std::ofstream out(file);
    out << example_config;
  }
  config_result result = load_config_file(file.string());
  std::filesystem::remove(file);
  REQUIRE(result.config.has_value());
  CHECK(result.config->applications[0].deployments.size() == 3);
  CHECK(result.config->http.port == 8001);
}
