#include "actors/controller_state.hpp"
#include "libserve/json.hpp"

#include <chrono>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

namespace serve {

const char* to_string(replica_phase phase) {
  switch (phase) {
    case replica_phase::starting: return "STARTING";
    case replica_phase::running: return "RUNNING";
    case replica_phase::stopping: return "STOPPING";
  }
  return "UNKNOWN";
}

double wall_clock_s() {
  using namespace std::chrono;
  return duration_cast<duration<double>>(system_clock::now().time_since_epoch()).count();
}

size_t deployment_record::running_current() const {
  return count_running(replicas, generation);
}

size_t deployment_record::active_current() const {
  return count_active(replicas, generation);
}

bool deployment_record::has_old_generation() const {
  for (auto& r : replicas)
    if (r.generation != generation && r.phase != replica_phase::stopping)
      return true;
  return false;
}

std::string deployment_record::serving_version() const {
  for (auto& r : replicas) {
    if (r.phase != replica_phase::running || r.generation != generation || r.description.empty())
      continue;
    rapidjson::Document doc;
    if (!parse_json(doc, r.description) && doc.IsObject() && doc.HasMember("version")
        && doc["version"].IsString())
      return doc["version"].GetString();
  }
  return "";
}

std::string deployment_record::status() const {
  if (!failure.empty())
    return "DEPLOY_FAILED";
  bool whole = running_current() == target_replicas()
               && active_current() == running_current() && !has_old_generation();
  if (whole)
    return "HEALTHY";
  return recovering || !placement_message.empty() ? "UNHEALTHY" : "UPDATING";
}

std::string application_record::status() const {
  bool updating = false;
  bool unhealthy = false;
  for (auto& [_, dep] : deployments) {
    auto s = dep.status();
    if (s == "DEPLOY_FAILED")
      return "DEPLOY_FAILED";
    updating |= s == "UPDATING";
    unhealthy |= s == "UNHEALTHY";
  }
  if (unhealthy)
    return "UNHEALTHY";
  return updating ? "DEPLOYING" : "RUNNING";
}

namespace {

using writer_t = rapidjson::Writer<rapidjson::StringBuffer>;

void write_string(writer_t& w, const std::string& s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void write_raw_json(writer_t& w, const std::string& json) {
  w.RawValue(json.data(), json.size(), rapidjson::kObjectType);
}

void write_replicas(writer_t& w, const deployment_record& dep, const router_status* rs) {
  w.Key("replicas");
  w.StartArray();
  for (auto& r : dep.replicas) {
    w.StartObject();
    w.Key("replica_id");
    write_string(w, r.id);
    w.Key("state");
    w.String(to_string(r.phase));
    w.Key("pid");
    w.Int(static_cast<int>(getpid()));
    w.Key("node_ip");
    w.String("127.0.0.1");
    w.Key("node");
    write_string(w, r.node);
    // The device the replica's model runs on, and why (GPU replicas, libserve/device_selection).
    if (!r.description.empty()) {
      rapidjson::Document desc;
      bool parsed = !parse_json(desc, r.description);
      for (const char* key : {"device", "device_reason"})
        if (parsed && desc.IsObject() && desc.HasMember(key)
            && desc[key].IsString()) {
          w.Key(key);
          w.String(desc[key].GetString());
        }
    }
    w.Key("actor_id");
    write_string(w, std::to_string(r.handle ? r.handle.id() : 0));
    w.Key("start_time_s");
    w.Double(r.start_time_s);
    w.Key("ongoing_requests");
    uint64_t ongoing = 0;
    if (rs)
      for (size_t i = 0; i < rs->replica_ids.size(); ++i)
        if (rs->replica_ids[i] == r.id)
          ongoing = rs->in_flight[i];
    w.Uint64(ongoing);
    w.EndObject();
  }
  w.EndArray();
}

void write_deployment(writer_t& w, const deployment_record& dep, const router_status* rs) {
  w.StartObject();
  w.Key("name");
  write_string(w, dep.cfg.name);
  auto status = dep.status();
  w.Key("status");
  write_string(w, status);
  w.Key("status_trigger");
  w.String(status == "DEPLOY_FAILED"   ? "REPLICA_STARTUP_FAILED"
           : status == "UNHEALTHY"     ? "HEALTH_CHECK_FAILED"
           : status == "HEALTHY"       ? "CONFIG_UPDATE_COMPLETED"
                                       : "CONFIG_UPDATE_STARTED");
  w.Key("message");
  write_string(w, !dep.failure.empty()             ? dep.failure
                  : !dep.placement_message.empty() ? dep.placement_message
                                                   : dep.registry_message);
  w.Key("warnings");
  w.StartArray();
  if (!dep.warning.empty())
    write_string(w, dep.warning);
  w.EndArray();
  w.Key("deployment_config");
  write_raw_json(w, deployment_config_json(dep.cfg));
  w.Key("target_num_replicas");
  w.Int(dep.cfg.num_replicas);
  w.Key("effective_max_ongoing_requests");
  w.Uint64(dep.cfg.effective_max_ongoing());
  w.Key("queued_requests");
  w.Uint64(rs ? rs->queued : 0);
  w.Key("total_requests");
  w.Uint64(rs ? rs->total_requests : 0);
  w.Key("rejected_requests");
  w.Uint64(rs ? rs->rejected : 0);
  // What the replicas loaded (a model's signature, parameters and memory), from a running one.
  for (auto& r : dep.replicas)
    if (r.phase == replica_phase::running && !r.description.empty()) {
      w.Key("model");
      w.RawValue(r.description.data(), r.description.size(), rapidjson::kObjectType);
      break;
    }
  write_replicas(w, dep, rs);
  // Replica counts per node (running and starting ones of the current code).
  std::map<std::string, uint64_t> per_node;
  for (auto& r : dep.replicas)
    if (r.phase != replica_phase::stopping)
      ++per_node[r.node];
  w.Key("replicas_per_node");
  w.StartObject();
  for (auto& [node, n] : per_node) {
    w.Key(node.c_str());
    w.Uint64(n);
  }
  w.EndObject();
  w.EndObject();
}

void write_application(writer_t& w, const application_record& app,
                       const std::map<std::string, router_status>& routers) {
  w.StartObject();
  w.Key("name");
  write_string(w, app.cfg.name);
  w.Key("route_prefix");
  write_string(w, app.cfg.route_prefix);
  w.Key("ingress");
  write_string(w, app.cfg.ingress);
  w.Key("docs_path");
  w.Null();
  w.Key("status");
  write_string(w, app.status());
  std::string message;
  for (auto& [name, dep] : app.deployments)
    if (!dep.failure.empty())
      message += "Deployment \"" + name + "\" failed: " + dep.failure + " ";
  w.Key("message");
  write_string(w, message);
  w.Key("last_deployed_time_s");
  w.Double(app.last_deployed_time_s);
  w.Key("source");
  w.String("declarative");
  w.Key("deployments");
  w.StartObject();
  for (auto& [name, dep] : app.deployments) {
    w.Key(name.c_str());
    auto i = routers.find(app.cfg.name + "/" + name);
    write_deployment(w, dep, i == routers.end() ? nullptr : &i->second);
  }
  w.EndObject();
  w.EndObject();
}

} // namespace

std::string build_status_json(const http_options& http,
                              const std::map<std::string, application_record>& apps,
                              const std::map<std::string, router_status>& routers,
                              const std::map<std::string, node_record>& nodes) {
  rapidjson::StringBuffer buf;
  writer_t w(buf);
  w.StartObject();
  w.Key("controller_info");
  w.StartObject();
  w.Key("node_ip");
  w.String("127.0.0.1");
  w.Key("actor_name");
  w.String("actorserve-controller");
  w.Key("pid");
  w.Int(static_cast<int>(getpid()));
  w.EndObject();
  w.Key("proxy_location");
  w.String("HeadOnly");
  w.Key("http_options");
  w.StartObject();
  w.Key("host");
  write_string(w, http.host);
  w.Key("port");
  w.Int(http.port);
  w.Key("request_timeout_s");
  if (http.request_timeout_s)
    w.Double(*http.request_timeout_s);
  else
    w.Null();
  w.Key("keep_alive_timeout_s");
  w.Double(http.keep_alive_timeout_s);
  w.EndObject();
  if (!nodes.empty()) {
    w.Key("nodes");
    w.StartArray();
    for (auto& [name, n] : nodes) {
      w.StartObject();
      w.Key("name");
      write_string(w, name);
      w.Key("address");
      write_string(w, n.cfg.host + ":" + std::to_string(n.cfg.port));
      w.Key("status");
      w.String(n.up ? "UP" : n.reported ? "DOWN" : "CONNECTING");
      w.Key("message");
      write_string(w, n.reason);
      w.Key("since_s");
      w.Double(n.since_s);
      w.EndObject();
    }
    w.EndArray();
  }
  w.Key("deploy_mode");
  w.String("MULTI_APP");
  w.Key("applications");
  w.StartObject();
  for (auto& [name, app] : apps) {
    w.Key(name.c_str());
    write_application(w, app, routers);
  }
  w.EndObject();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

} // namespace serve
