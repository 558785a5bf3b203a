// deployment_config's derived values and the JSON that the status API shows for a deployment.
#include <algorithm>
#include <cmath>
#include <optional>
#include <string>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "libserve/config.hpp"
#include "libserve/json.hpp"

namespace serve {

namespace {

using json = rapidjson::Value;
using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

std::string compact_json(const json& value) {
  rapidjson::StringBuffer buffer;
  json_writer writer(buffer);
  value.Accept(writer);
  return {buffer.GetString(), buffer.GetSize()};
}

// ---- deployment_config_json ---------------------------------------------------------------

/// Makes JSON values in one document's allocator.
struct json_maker {
  rapidjson::Document::AllocatorType& alloc;

  json text(const std::string& s) const {
    return json(s.data(), static_cast<rapidjson::SizeType>(s.size()), alloc);
  }
  json number(double value) const { return std::isfinite(value) ? json(value) : json(); }
  /// Stored JSON text as a value; text that does not parse becomes null.
  json embedded(const std::string& text) const {
    rapidjson::Document doc;
    return parse_json(doc, text) ? json() : json(static_cast<const json&>(doc), alloc);
  }
  json batching(const std::optional<batch_options>& options) const {
    if (!options)
      return json();
    json obj(rapidjson::kObjectType);
    obj.AddMember("max_batch_size", uint64_t{options->max_batch_size}, alloc);
    obj.AddMember("batch_wait_timeout_s", number(options->batch_wait_timeout.count() / 1e6), alloc);
    obj.AddMember("max_concurrent_batches", uint64_t{options->max_concurrent_batches}, alloc);
    return obj;
  }
  json model(const model_spec& spec) const {
    json obj(rapidjson::kObjectType);
    obj.AddMember("uri", text(spec.uri), alloc);
    if (!spec.labels.empty())
      obj.AddMember("labels", text(spec.labels), alloc);
    if (!spec.features.empty()) {
      json list(rapidjson::kArrayType);
      for (auto& f : spec.features)
        list.PushBack(text(f), alloc);
      obj.AddMember("features", list, alloc);
    }
    if (!spec.registry_uri.empty())
      obj.AddMember("registry_uri", text(spec.registry_uri), alloc);
    obj.AddMember("poll_interval_s", number(spec.poll_interval_s), alloc);
    if (!spec.resolved_version.empty())
      obj.AddMember("resolved_version", text(spec.resolved_version), alloc);
    if (!spec.resolved_from.empty())
      obj.AddMember("resolved_from", text(spec.resolved_from), alloc);
    return obj;
  }
  json placement(const placement_options& p) const {
    json obj(rapidjson::kObjectType);
    if (!p.nodes.empty()) {
      json list(rapidjson::kArrayType);
      for (auto& n : p.nodes)
        list.PushBack(text(n), alloc);
      obj.AddMember("nodes", list, alloc);
    }
    obj.AddMember("model_source", text(p.model_source), alloc);
    return obj;
  }
};

} // namespace

// ---- deployment_config / application_config -----------------------------------------------

size_t deployment_config::effective_max_ongoing() const {
  size_t configured = static_cast<size_t>(std::max(max_ongoing_requests, 1));
  if (!batching)
    return configured;
  return std::max(configured, batching->max_batch_size * batching->max_concurrent_batches);
}

std::string deployment_config::batching_warning() const {
  if (!batching)
    return "";
  size_t batch_capacity = batching->max_batch_size * batching->max_concurrent_batches;
  if (static_cast<size_t>(std::max(max_ongoing_requests, 0)) >= batch_capacity)
    return "";
  std::string ongoing = std::to_string(max_ongoing_requests);
  return "max_ongoing_requests (" + ongoing + ") < max_batch_size (" +
         std::to_string(batching->max_batch_size) + ") x max_concurrent_batches (" +
         std::to_string(batching->max_concurrent_batches) +
         "): Ray Serve would cap every batch at " + ongoing + " requests; ActorServe lets up to " +
         std::to_string(batch_capacity) + " requests in flight per replica so batches can fill";
}

bool deployment_config::same_code(const deployment_config& other) const {
  return name == other.name && type == other.type && class_name == other.class_name &&
         model.uri == other.model.uri && model.labels == other.model.labels &&
         model.features == other.model.features &&
         graph_json == other.graph_json && device == other.device &&
         precision == other.precision;
}

const deployment_config* application_config::find(const std::string& deployment) const {
  for (const auto& dep : deployments)
    if (dep.name == deployment)
      return &dep;
  return nullptr;
}

std::string model_spec_json(const model_spec& spec) {
  rapidjson::Document doc;
  json_maker make{doc.GetAllocator()};
  return compact_json(make.model(spec));
}

std::string deployment_config_json(const deployment_config& dep) {
  rapidjson::Document doc(rapidjson::kObjectType);
  auto& alloc = doc.GetAllocator();
  json_maker make{alloc};
  doc.AddMember("name", make.text(dep.name), alloc);
  doc.AddMember("num_replicas", dep.num_replicas, alloc);
  doc.AddMember("max_ongoing_requests", dep.max_ongoing_requests, alloc);
  doc.AddMember("max_queued_requests", dep.max_queued_requests, alloc);
  doc.AddMember("user_config", make.embedded(dep.user_config_json), alloc);
  doc.AddMember("graceful_shutdown_timeout_s", make.number(dep.graceful_shutdown_timeout_s), alloc);
  doc.AddMember("batching", make.batching(dep.batching), alloc);
  if (dep.type != deployment_config::kind::graph) { // a graph has no device of its own
    doc.AddMember("device", make.text(dep.device), alloc);
    doc.AddMember("precision", make.text(dep.precision), alloc);
  }
  doc.AddMember("placement", make.placement(dep.placement), alloc);
  if (dep.type == deployment_config::kind::class_name)
    doc.AddMember("class", make.text(dep.class_name), alloc);
  else if (dep.type == deployment_config::kind::model)
    doc.AddMember("model", make.model(dep.model), alloc);
  else
    doc.AddMember("graph", make.embedded(dep.graph_json), alloc);
  return compact_json(doc);
}

} // namespace serve
