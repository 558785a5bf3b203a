#include "libserve/config.hpp"
#include "libserve/config_reader.hpp"
#include "libserve/device_selection.hpp"
#include "libserve/json.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <map>

namespace serve {

namespace {

using namespace config_detail;

constexpr int64_t int_max = INT_MAX;
/// Longest accepted batch_wait_timeout_s; keeps the conversion to microseconds far from overflow.
constexpr double max_batch_wait_s = 3600.0;
constexpr const char* combiners[] = {"list", "mean", "majority", "concat"};

// ---- http_options -------------------------------------------------------------------------

maybe_error read_request_timeout(const object_reader& obj, std::optional<double>& out) {
  const json* value = obj.field("request_timeout_s");
  if (!value || value->IsNull())
    return std::nullopt;
  double seconds = 0;
  if (auto err = read_number(*value, obj.path_of("request_timeout_s"), false, seconds))
    return err;
  out = seconds;
  return std::nullopt;
}

/// Longest timeout accepted in http_options (a day): keeps every conversion to a clock's
/// duration far from overflow.
constexpr double max_http_timeout_s = 86400.0;

maybe_error check_at_most(const object_reader& obj, const char* name, double value, double max) {
  if (obj.field(name) && value > max)
    return error_at(obj.path_of(name), "must be <= " + std::to_string(static_cast<int64_t>(max)) + "; was "
                                         + compact_json(*obj.field(name)));
  return std::nullopt;
}

maybe_error parse_http_options(const json& value, http_options& http) {
  object_reader obj(value, "http_options");
  int num_threads = 0;
  obj.allow({"host", "port", "request_timeout_s", "keep_alive_timeout_s",
             "request_read_timeout_s", "io_threads", "max_connections", "max_pipelined_requests",
             "keep_alive_max_count", "max_body_bytes", "max_header_bytes", "max_header_count",
             "max_url_bytes", "num_threads"})
      .string("host", false, http.host)
      .integer("port", 0, 65535, http.port)
      .then([&] { return read_request_timeout(obj, http.request_timeout_s); })
      .then([&] {
        return check_at_most(obj, "request_timeout_s", http.request_timeout_s.value_or(0),
                             max_http_timeout_s);
      })
      .number("keep_alive_timeout_s", false, http.keep_alive_timeout_s)
      .then([&] {
        return check_at_most(obj, "keep_alive_timeout_s", http.keep_alive_timeout_s,
                             max_http_timeout_s);
      })
      .number("request_read_timeout_s", false, http.request_read_timeout_s)
      .then([&] {
        return check_at_most(obj, "request_read_timeout_s", http.request_read_timeout_s,
                             max_http_timeout_s);
      })
      .integer("io_threads", 0, 256, http.io_threads)
      .integer("max_connections", 1, 1'000'000, http.max_connections)
      .integer("max_pipelined_requests", 1, 1024, http.max_pipelined_requests)
      .integer("keep_alive_max_count", 1, int_max, http.keep_alive_max_count)
      .integer("max_body_bytes", 1, INT64_MAX, http.max_body_bytes)
      .integer("max_header_bytes", 1024, 1 << 20, http.max_header_bytes)
      .integer("max_header_count", 1, 10'000, http.max_header_count)
      .integer("max_url_bytes", 16, 1 << 20, http.max_url_bytes)
      .integer("num_threads", 1, int_max, num_threads);
  if (obj.field("num_threads") && !obj.error)
    http.num_threads = num_threads;
  return obj.error;
}

// ---- graph --------------------------------------------------------------------------------

/// A deployment name a graph calls, and where in the config it was named.
struct graph_reference {
  std::string name;
  std::string path;
};

maybe_error parse_name_list(const json& value, const std::string& path,
                            std::vector<graph_reference>& refs) {
  if (auto err = check_non_empty_array(value, path))
    return err;
  for (rapidjson::SizeType i = 0; i < value.Size(); ++i) {
    graph_reference ref{{}, element_path(path, i)};
    if (auto err = read_string(value[i], ref.path, false, ref.name))
      return err;
    refs.push_back(std::move(ref));
  }
  return std::nullopt;
}

maybe_error check_combiner(const object_reader& graph) {
  const json* value = graph.field("combiner");
  std::string combiner;
  if (!value)
    return std::nullopt;
  if (auto err = read_string(*value, graph.path_of("combiner"), true, combiner))
    return err;
  if (std::count(std::begin(combiners), std::end(combiners), combiner))
    return std::nullopt;
  return error_at(graph.path_of("combiner"),
                  "must be one of: " + join(combiners) + "; was " + quoted(combiner));
}

/// A required deployment name ("call") or an optional one that may be null ("above", "below").
maybe_error read_reference(const object_reader& cond, const char* name, bool required,
                           std::vector<graph_reference>& refs) {
  const json* value = cond.field(name);
  graph_reference ref{{}, cond.path_of(name)};
  if (!value && required)
    return error_at(ref.path, "is required");
  if (!value || (value->IsNull() && !required))
    return std::nullopt;
  if (!value->IsString() && !required)
    return error_at(ref.path, "must be a string or null; was " + type_with_article(*value));
  if (auto err = read_string(*value, ref.path, false, ref.name))
    return err;
  refs.push_back(std::move(ref));
  return std::nullopt;
}

maybe_error check_threshold(const object_reader& cond) {
  const json* value = cond.field("threshold");
  if (value->IsNumber())
    return std::nullopt;
  return error_at(cond.path_of("threshold"), "must be a number; was " + type_with_article(*value));
}

maybe_error parse_conditional(const json& value, const std::string& path,
                              std::vector<graph_reference>& refs) {
  object_reader cond(value, path);
  std::string field;
  cond.allow({"call", "field", "threshold", "above", "below"})
      .then([&] { return read_reference(cond, "call", true, refs); })
      .require("field")
      .string("field", false, field)
      .require("threshold")
      .then([&] { return check_threshold(cond); })
      .then([&] { return read_reference(cond, "above", false, refs); })
      .then([&] { return read_reference(cond, "below", false, refs); });
  return cond.error;
}

maybe_error check_graph_shape(const object_reader& graph) {
  auto shapes = graph.present({"sequence", "ensemble", "conditional"});
  if (shapes.size() != 1)
    return error_at(graph.path(), "exactly one of sequence, ensemble, conditional is required" +
                                      found_text(shapes));
  if (graph.field("combiner") && !graph.field("ensemble"))
    return error_at(graph.path_of("combiner"), "is allowed only with ensemble");
  return std::nullopt;
}

maybe_error parse_graph_calls(const object_reader& graph, std::vector<graph_reference>& refs) {
  if (const json* sequence = graph.field("sequence"))
    return parse_name_list(*sequence, graph.path_of("sequence"), refs);
  if (const json* ensemble = graph.field("ensemble"))
    return parse_name_list(*ensemble, graph.path_of("ensemble"), refs);
  return parse_conditional(*graph.field("conditional"), graph.path_of("conditional"), refs);
}

maybe_error parse_graph(const json& value, const std::string& path, deployment_config& dep,
                        std::vector<graph_reference>& refs) {
  object_reader graph(value, path);
  graph.allow({"sequence", "ensemble", "combiner", "conditional"})
      .then([&] { return check_graph_shape(graph); })
      .then([&] { return parse_graph_calls(graph, refs); })
      .then([&] { return check_combiner(graph); });
  if (graph.error)
    return graph.error;
  dep.type = deployment_config::kind::graph;
  dep.graph_json = compact_json(value);
  for (const auto& ref : refs)
    if (std::find(dep.graph_calls.begin(), dep.graph_calls.end(), ref.name) ==
        dep.graph_calls.end())
      dep.graph_calls.push_back(ref.name);
  return std::nullopt;
}

// ---- deployments --------------------------------------------------------------------------

maybe_error check_known_class(const std::string& path, const std::string& class_name,
                              const config_parse_options& opts) {
  if (!opts.is_known_class || opts.is_known_class(class_name))
    return std::nullopt;
  std::string registered = opts.known_classes.empty() ? "(none)" : join(opts.known_classes);
  return error_at(path, "unknown deployment class " + quoted(class_name) +
                            "; registered classes: " + registered);
}

maybe_error parse_model(const json& value, const std::string& path, model_spec& model) {
  object_reader obj(value, path);
  obj.allow({"uri", "labels", "features", "registry_uri", "poll_interval_s"})
      .require("uri")
      .string("uri", false, model.uri)
      .string("labels", true, model.labels)
      .string("registry_uri", false, model.registry_uri)
      .number("poll_interval_s", false, model.poll_interval_s);
  if (obj.error || !obj.field("features"))
    return obj.error;
  auto path_of_features = obj.path_of("features");
  const json& features = *obj.field("features");
  if (auto err = check_non_empty_array(features, path_of_features))
    return err;
  for (rapidjson::SizeType i = 0; i < features.Size(); ++i) {
    model.features.emplace_back();
    if (auto err = read_string(features[i], element_path(path_of_features, i), false,
                               model.features.back()))
      return err;
  }
  return std::nullopt;
}

maybe_error parse_deployment_code(const object_reader& obj, const config_parse_options& opts,
                                  deployment_config& dep, std::vector<graph_reference>& refs) {
  auto kinds = obj.present({"class", "model", "graph"});
  if (kinds.size() != 1)
    return error_at(obj.path(),
                    "exactly one of class, model, graph is required" + found_text(kinds));
  if (kinds.front() == "class") {
    dep.type = deployment_config::kind::class_name;
    if (auto err = read_string(*obj.field("class"), obj.path_of("class"), false, dep.class_name))
      return err;
    return check_known_class(obj.path_of("class"), dep.class_name, opts);
  }
  if (kinds.front() == "model") {
    dep.type = deployment_config::kind::model;
    return parse_model(*obj.field("model"), obj.path_of("model"), dep.model);
  }
  return parse_graph(*obj.field("graph"), obj.path_of("graph"), dep, refs);
}

maybe_error check_batch_wait(const object_reader& obj, double wait_s) {
  if (wait_s <= max_batch_wait_s)
    return std::nullopt;
  return error_at(obj.path_of("batch_wait_timeout_s"),
                  "must be <= 3600; was " + compact_json(*obj.field("batch_wait_timeout_s")));
}

maybe_error parse_batching(const json& value, const std::string& path,
                           std::optional<batch_options>& out) {
  if (value.IsNull())
    return std::nullopt; // "batching": null = no batching, as deployment_config_json writes it
  batch_options batching;
  double wait_s = batching.batch_wait_timeout.count() / 1e6;
  object_reader obj(value, path);
  obj.allow({"max_batch_size", "batch_wait_timeout_s", "max_concurrent_batches"})
      .integer("max_batch_size", 1, int_max, batching.max_batch_size)
      .number("batch_wait_timeout_s", true, wait_s)
      .then([&] { return check_batch_wait(obj, wait_s); })
      .integer("max_concurrent_batches", 1, int_max, batching.max_concurrent_batches);
  if (obj.error)
    return obj.error;
  batching.batch_wait_timeout = std::chrono::microseconds(std::llround(wait_s * 1e6));
  out = batching;
  return std::nullopt;
}

maybe_error check_not_autoscaling(const object_reader& obj) {
  const json* value = obj.field("num_replicas");
  if (!value || !value->IsString() || std::string(value->GetString()) != "auto")
    return std::nullopt;
  return error_at(obj.path_of("num_replicas"),
                  "must be an integer >= 1; \"auto\" (autoscaling) is not supported");
}

maybe_error read_max_queued_requests(const object_reader& obj, int& out) {
  const json* value = obj.field("max_queued_requests");
  int64_t number = 0;
  std::string path = obj.path_of("max_queued_requests");
  if (!value)
    return std::nullopt;
  if (auto err = read_integer(*value, path, INT64_MIN, int_max, number))
    return err;
  if (number != -1 && number < 1)
    return error_at(path, "must be -1 (unlimited) or >= 1; was " + std::to_string(number));
  out = static_cast<int>(number);
  return std::nullopt;
}

/// "device" and "precision" (issue 7): known values, and only where a device means something.
maybe_error check_device(const object_reader& obj, const deployment_config& dep) {
  if (dep.type == deployment_config::kind::graph)
    for (const char* name : {"device", "precision"})
      if (obj.field(name))
        return error_at(obj.path_of(name), "applies to model and class deployments, not to a "
                                           "graph (its calls run where their deployments run)");
  if (!parse_device_request(dep.device))
    return error_at(obj.path_of("device"),
                    std::string("must be ") + device_request_syntax + "; was " + quoted(dep.device));
  if (!is_known_precision(dep.precision))
    return error_at(obj.path_of("precision"), std::string("must be one of ") + precision_syntax +
                                                  "; was " + quoted(dep.precision));
  return std::nullopt;
}

maybe_error parse_deployment(const json& value, const std::string& path,
                             const config_parse_options& opts, deployment_config& dep,
                             std::vector<graph_reference>& refs) {
  object_reader obj(value, path);
  obj.allow({"name", "class", "model", "graph", "num_replicas", "max_ongoing_requests",
             "max_queued_requests", "user_config", "graceful_shutdown_timeout_s", "batching",
             "placement", "device", "precision"})
      .require("name")
      .string("name", false, dep.name)
      .then([&] { return parse_deployment_code(obj, opts, dep, refs); })
      .then([&] { return check_not_autoscaling(obj); })
      .integer("num_replicas", 1, int_max, dep.num_replicas)
      .integer("max_ongoing_requests", 1, int_max, dep.max_ongoing_requests)
      .then([&] { return read_max_queued_requests(obj, dep.max_queued_requests); })
      .number("graceful_shutdown_timeout_s", true, dep.graceful_shutdown_timeout_s)
      .then([&]() -> maybe_error {
        const json* batching = obj.field("batching");
        return batching ? parse_batching(*batching, obj.path_of("batching"), dep.batching)
                        : std::nullopt;
      })
      .string("device", false, dep.device)
      .string("precision", false, dep.precision)
      .then([&] { return check_device(obj, dep); })
      .then([&]() -> maybe_error {
        const json* placement = obj.field("placement");
        return placement ? parse_placement(*placement, obj.path_of("placement"), dep.placement)
                         : std::nullopt;
      });
  if (const json* user_config = obj.field("user_config"); user_config && !obj.error)
    dep.user_config_json = compact_json(*user_config);
  return obj.error;
}

// ---- applications -------------------------------------------------------------------------

/// Parses the "deployments" array; refs[j] receives the names deployment j's graph calls.
maybe_error parse_deployments(const object_reader& obj, const config_parse_options& opts,
                              application_config& app,
                              std::vector<std::vector<graph_reference>>& refs) {
  const json& list = *obj.field("deployments");
  std::string list_path = obj.path_of("deployments");
  if (auto err = check_non_empty_array(list, list_path))
    return err;
  for (rapidjson::SizeType j = 0; j < list.Size(); ++j) {
    deployment_config dep;
    refs.emplace_back();
    std::string path = element_path(list_path, j);
    if (auto err = parse_deployment(list[j], path, opts, dep, refs.back()))
      return err;
    if (app.find(dep.name))
      return error_at(path + ".name", "duplicate deployment name " + quoted(dep.name) +
                                          " in application " + quoted(app.name));
    app.deployments.push_back(std::move(dep));
  }
  return std::nullopt;
}

maybe_error check_route_prefix(const std::string& prefix, const std::string& path) {
  if (prefix.empty() || prefix.front() != '/')
    return error_at(path, "must start with \"/\"; was " + quoted(prefix));
  if (prefix.size() > 1 && prefix.back() == '/')
    return error_at(path, "must not end with \"/\" (except \"/\" itself); was " + quoted(prefix));
  if (prefix == "/v2" || prefix.rfind("/v2/", 0) == 0 || prefix == "/metrics")
    return error_at(path, quoted(prefix) + " is reserved (the v2 inference protocol and "
                                           "/metrics live there); choose another prefix");
  return std::nullopt;
}

maybe_error resolve_ingress(const object_reader& obj, application_config& app) {
  std::string path = obj.path_of("ingress");
  if (!obj.field("ingress") && app.deployments.size() == 1) {
    app.ingress = app.deployments.front().name;
    return std::nullopt;
  }
  if (!obj.field("ingress"))
    return error_at(path, "is required when an application has more than one deployment; "
                          "deployments: " +
                              join(deployment_names(app)));
  if (auto err = read_string(*obj.field("ingress"), path, false, app.ingress))
    return err;
  if (app.find(app.ingress))
    return std::nullopt;
  return error_at(path, no_such_deployment(app.ingress, app));
}

maybe_error check_graph_references(const application_config& app,
                                   const std::vector<std::vector<graph_reference>>& refs) {
  for (size_t j = 0; j < app.deployments.size(); ++j) {
    for (const auto& ref : refs[j]) {
      if (ref.name == app.deployments[j].name)
        return error_at(ref.path,
                        "a graph deployment cannot call itself (" + quoted(ref.name) + ")");
      if (!app.find(ref.name))
        return error_at(ref.path, no_such_deployment(ref.name, app));
    }
  }
  return std::nullopt;
}

enum class visit_state { unvisited, on_path, done };

/// Depth-first search from `name` over graph deployments calling graph deployments. On a
/// cycle, returns true with `path` holding it (its first name repeated at the end).
bool find_graph_cycle(const application_config& app, const std::string& name,
                      std::map<std::string, visit_state>& states, std::vector<std::string>& path) {
  const deployment_config* dep = app.find(name);
  if (!dep || dep->type != deployment_config::kind::graph || states[name] == visit_state::done)
    return false;
  if (states[name] == visit_state::on_path) {
    path.erase(path.begin(), std::find(path.begin(), path.end(), name));
    path.push_back(name);
    return true;
  }
  states[name] = visit_state::on_path;
  path.push_back(name);
  for (const auto& callee : dep->graph_calls)
    if (find_graph_cycle(app, callee, states, path))
      return true;
  path.pop_back();
  states[name] = visit_state::done;
  return false;
}

maybe_error check_graph_cycles(const object_reader& obj, const application_config& app) {
  std::map<std::string, visit_state> states;
  for (const auto& dep : app.deployments) {
    std::vector<std::string> cycle;
    if (!find_graph_cycle(app, dep.name, states, cycle))
      continue;
    size_t index = static_cast<size_t>(app.find(cycle.front()) - app.deployments.data());
    std::string text;
    for (const auto& name : cycle)
      text += (text.empty() ? "" : " -> ") + name;
    return error_at(element_path(obj.path_of("deployments"), index) + ".graph",
                    "graph cycle: " + text);
  }
  return std::nullopt;
}

maybe_error parse_application(const json& value, const std::string& path,
                              const config_parse_options& opts, application_config& app) {
  object_reader obj(value, path);
  std::vector<std::vector<graph_reference>> refs;
  obj.allow({"name", "route_prefix", "ingress", "deployments", "registry_uri"})
      .require("name")
      .string("name", false, app.name)
      .string("registry_uri", false, app.registry_uri)
      .string("route_prefix", true, app.route_prefix)
      .then([&] { return check_route_prefix(app.route_prefix, obj.path_of("route_prefix")); })
      .require("deployments")
      .then([&] { return parse_deployments(obj, opts, app, refs); })
      .then([&] { return resolve_ingress(obj, app); })
      .then([&] { return check_graph_references(app, refs); })
      .then([&] { return check_graph_cycles(obj, app); });
  return obj.error;
}

/// Names and route prefixes are unique across applications.
maybe_error check_unique_application(const std::vector<application_config>& apps, size_t i) {
  std::string path = element_path("applications", i);
  for (size_t k = 0; k < i; ++k) {
    if (apps[k].name == apps[i].name)
      return error_at(path + ".name", "duplicate application name " + quoted(apps[i].name) +
                                          "; also used by " + element_path("applications", k));
    if (apps[k].route_prefix == apps[i].route_prefix)
      return error_at(path + ".route_prefix", "route prefix " + quoted(apps[i].route_prefix) +
                                                  " is already used by application " +
                                                  quoted(apps[k].name));
  }
  return std::nullopt;
}

maybe_error parse_applications(const json& list, const config_parse_options& opts,
                               std::vector<application_config>& apps) {
  if (auto err = check_non_empty_array(list, "applications"))
    return err;
  for (rapidjson::SizeType i = 0; i < list.Size(); ++i) {
    apps.emplace_back();
    if (auto err = parse_application(list[i], element_path("applications", i), opts, apps.back()))
      return err;
    if (auto err = check_unique_application(apps, i))
      return err;
  }
  return std::nullopt;
}

maybe_error parse_document(const json& doc, const config_parse_options& opts,
                           serve_config& config) {
  if (!doc.IsObject())
    return error_at("", "the config must be a JSON object; was " + type_with_article(doc));
  object_reader root(doc, "");
  root.allow({"http_options", "applications", "registry_uri", "nodes", "cluster"})
      .string("registry_uri", false, config.registry_uri)
      .then([&]() -> maybe_error {
        const json* nodes = root.field("nodes");
        return nodes ? parse_nodes(*nodes, config.nodes) : std::nullopt;
      })
      .then([&]() -> maybe_error {
        const json* cluster = root.field("cluster");
        return cluster ? parse_cluster(*cluster, config.cluster) : std::nullopt;
      })
      .then([&]() -> maybe_error {
        const json* http = root.field("http_options");
        return http ? parse_http_options(*http, config.http) : std::nullopt;
      })
      .require("applications")
      .then([&] {
        return parse_applications(*root.field("applications"), opts, config.applications);
      })
      .then([&] { return check_placements(config); });
  // A model without its own registry_uri uses its application's, else the config's.
  for (auto& app : config.applications)
    for (auto& dep : app.deployments)
      if (dep.type == deployment_config::kind::model && dep.model.registry_uri.empty())
        dep.model.registry_uri = app.registry_uri.empty() ? config.registry_uri : app.registry_uri;
  return root.error;
}

std::vector<std::string> collect_warnings(const serve_config& config) {
  std::vector<std::string> warnings;
  if (config.http.num_threads)
    warnings.push_back("http_options.num_threads: ignored; the ingress is event-driven (a "
                       "connection holds no thread); io_threads sets its threads");
  for (size_t i = 0; i < config.applications.size(); ++i) {
    const auto& deps = config.applications[i].deployments;
    for (size_t j = 0; j < deps.size(); ++j)
      if (std::string warning = deps[j].batching_warning(); !warning.empty())
        warnings.push_back(deployment_path(i, j) + ": " + warning);
  }
  return warnings;
}

} // namespace

// ---- Entry points -------------------------------------------------------------------------

config_result parse_config(const std::string& json_text, const config_parse_options& opts) {
  config_result result;
  try {
    rapidjson::Document doc;
    if (auto error = parse_json(doc, json_text)) {
      result.error = error_at("", "invalid JSON: " + *error);
      return result;
    }
    serve_config config;
    if (auto err = parse_document(doc, opts, config)) {
      result.error = std::move(err);
      return result;
    }
    result.warnings = collect_warnings(config);
    result.config = std::move(config);
  } catch (const std::exception& e) {
    result = config_result{};
    result.error = error_at("", std::string("cannot parse the config: ") + e.what());
  } catch (...) {
    result = config_result{};
    result.error = error_at("", "cannot parse the config: unknown exception");
  }
  return result;
}

config_result load_config_file(const std::string& path, const config_parse_options& opts) {
  auto cannot_read = [&](int code) {
    config_result result;
    result.error =
        error_at("", "cannot read config file " + quoted(path) + ": " + std::strerror(code));
    return result;
  };
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (!file)
    return cannot_read(errno);
  std::string text;
  char buffer[65536];
  size_t count = 0;
  while ((count = std::fread(buffer, 1, sizeof buffer, file)) > 0)
    text.append(buffer, count);
  int read_errno = std::ferror(file) ? (errno != 0 ? errno : EIO) : 0;
  std::fclose(file);
  if (read_errno != 0)
    return cannot_read(read_errno);
  return parse_config(text, opts);
}

} // namespace serve
