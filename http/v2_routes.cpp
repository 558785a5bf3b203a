// Open Inference Protocol v2 endpoints of the ingress (see ingress.hpp and
// ../shared/notes/reference.md §4). Every model deployment is a v2 model named after its
// deployment (model_entry::name); version "1" is the only version. Infer calls go to the
// deployment's router like JSON requests, so both kinds batch together; the deployment decodes
// and encodes the v2 body (libserve/v2_protocol.hpp). Errors: {"error": "..."} with Triton's
// statuses (not found 404, unavailable 503, internal 500, everything else 400; timeouts 408 and
// oversized bodies 413 as on every route).
#include <caf/all.hpp>
#include <httplib.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "http/error_mapping.hpp"
#include "http/ingress.hpp"
#include "http/ingress_detail.hpp"
#include "http/request_log.hpp"
#include "libserve/model_stats.hpp"
#include "libserve/v2_protocol.hpp"

namespace serve {

namespace {

constexpr const char* server_version = "0.1.0";
/// Extensions we implement as Triton specifies them.
constexpr const char* extensions[] = {"binary_tensor_data", "model_repository",
                                      "model_configuration", "statistics"};

void write_v2_error(httplib::Response& res, errc code, const std::string& message) {
  res.status = http_status(code);
  res.set_content(v2::error_body(message), "application/json");
}

/// A version segment: digits only; we serve version 1.
bool check_version(const std::string& model, const std::string& version, httplib::Response& res) {
  if (version.empty())
    return true;
  if (version.find_first_not_of("0123456789") != std::string::npos) {
    write_v2_error(res, errc::invalid_argument,
                   "version segment must be a positive integer; got '" + version + "'");
    return false;
  }
  if (std::stoull(version) != 1) {
    write_v2_error(res, errc::not_found,
                   "Request for unknown model: '" + model + "' version " + version
                     + " is not found (this server serves version 1)");
    return false;
  }
  return true;
}

const model_entry* find_model(const std::vector<model_entry>& models, const std::string& name) {
  for (auto& m : models)
    if (m.name == name)
      return &m;
  return nullptr;
}

bool ready(const model_entry& m) {
  return !m.unloaded && m.running_replicas > 0;
}

std::string unknown_model(const std::string& name) {
  return "Request for unknown model: '" + name + "' is not found";
}

/// The model's declared inputs and outputs from its replica's description.
void read_signature(const model_entry& m, std::vector<v2::tensor_signature>& inputs,
                    std::vector<v2::tensor_signature>& outputs) {
  rapidjson::Document doc;
  if (m.description.empty() || doc.Parse(m.description.c_str()).HasParseError()
      || !doc.IsObject())
    return;
  auto read = [&](const char* key, std::vector<v2::tensor_signature>& out) {
    if (!doc.HasMember(key) || !doc[key].IsArray())
      return;
    for (auto& v : doc[key].GetArray()) {
      v2::tensor_signature s;
      s.name = v["name"].GetString();
      auto type = v2::dtype_from_v2(v["datatype"].GetString());
      if (!type)
        continue; // sequences of maps (ZipMap) have no v2 datatype
      s.type = *type;
      for (auto& d : v["shape"].GetArray())
        s.dims.push_back(d.GetInt64());
      out.push_back(std::move(s));
    }
  };
  read("inputs", inputs);
  read("outputs", outputs);
}

std::string triton_type(dtype t) {
  if (t == dtype::string)
    return "TYPE_STRING";
  return std::string("TYPE_") + dtype_v2_name(t);
}

/// GET .../config: Triton's model configuration (as JSON) plus ours under "actorserve".
std::string config_json(const model_entry& m) {
  std::vector<v2::tensor_signature> inputs, outputs;
  read_signature(m, inputs, outputs);
  rapidjson::Document cfg;
  cfg.Parse(m.config_json.c_str());
  uint64_t max_batch = 0;
  double wait_s = 0;
  bool batching = cfg.IsObject() && cfg.HasMember("batching") && cfg["batching"].IsObject();
  if (batching) {
    max_batch = cfg["batching"]["max_batch_size"].GetUint64();
    wait_s = cfg["batching"]["batch_wait_timeout_s"].GetDouble();
  }
  bool batch_dim = true;
  for (auto& s : inputs)
    batch_dim &= !s.dims.empty() && s.dims[0] < 0;
  if (!batch_dim)
    max_batch = 0; // no batch dimension: dims are given whole
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  auto tensors = [&](const std::vector<v2::tensor_signature>& list) {
    w.StartArray();
    for (auto& s : list) {
      w.StartObject();
      w.Key("name");
      w.String(s.name.c_str());
      w.Key("data_type");
      w.String(triton_type(s.type).c_str());
      w.Key("dims");
      w.StartArray();
      for (size_t k = max_batch > 0 ? 1 : 0; k < s.dims.size(); ++k)
        w.Int64(s.dims[k]);
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
  };
  w.StartObject();
  w.Key("name");
  w.String(m.name.c_str());
  w.Key("platform");
  w.String("onnx");
  w.Key("backend");
  w.String("actorserve");
  w.Key("max_batch_size");
  w.Uint64(max_batch);
  w.Key("input");
  tensors(inputs);
  w.Key("output");
  tensors(outputs);
  if (batching && max_batch > 0) {
    w.Key("dynamic_batching");
    w.StartObject();
    w.Key("max_queue_delay_microseconds");
    w.Uint64(static_cast<uint64_t>(wait_s * 1e6 + 0.5));
    w.EndObject();
  }
  w.Key("instance_group");
  w.StartArray();
  w.StartObject();
  w.Key("count");
  w.Int64(cfg.IsObject() && cfg.HasMember("num_replicas") ? cfg["num_replicas"].GetInt64() : 1);
  w.Key("kind");
  w.String("KIND_CPU");
  w.EndObject();
  w.EndArray();
  w.Key("actorserve");
  w.StartObject();
  w.Key("application");
  w.String(m.application.c_str());
  w.Key("deployment");
  w.RawValue(m.config_json.c_str(), m.config_json.size(), rapidjson::kObjectType);
  w.EndObject();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

void write_json(httplib::Response& res, const std::string& body) {
  res.status = 200;
  res.set_content(body, "application/json");
}

} // namespace

std::shared_ptr<const std::vector<model_entry>> http_ingress::fetch_models() {
  auto& bridge = bridge_for_this_thread(sys_);
  bridge->request(controller_, std::chrono::seconds(10), routes_atom::value)
    .receive([&](apply_result& current) { set_tables(current); }, [&](caf::error&) {});
  return models();
}

void http_ingress::install_v2_handlers() {
  auto& s = *server_;
  s.Get("/v2", [](const httplib::Request&, httplib::Response& res) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("name");
    w.String("actorserve");
    w.Key("version");
    w.String(server_version);
    w.Key("extensions");
    w.StartArray();
    for (auto* e : extensions)
      w.String(e);
    w.EndArray();
    w.EndObject();
    write_json(res, std::string(buf.GetString(), buf.GetSize()));
  });
  s.Get("/v2/health/live", [](const httplib::Request&, httplib::Response& res) {
    res.status = 200;
  });
  s.Get("/v2/health/ready", [this](const httplib::Request&, httplib::Response& res) {
    bool all = !draining_;
    for (auto& m : *fetch_models())
      all &= m.unloaded || ready(m);
    res.status = all ? 200 : 400;
  });
  s.Post(R"(/v2/models/([^/]+)(?:/versions/([^/]+))?/infer)",
         [this](const httplib::Request& req, httplib::Response& res) { handle_v2_infer(req, res); });
  s.Get(R"(/v2/models(?:/([^/]+)(?:/versions/([^/]+))?)?/stats)",
        [this](const httplib::Request& req, httplib::Response& res) { handle_v2_stats(req, res); });
  s.Get(R"(/v2/models/([^/]+)(?:/versions/([^/]+))?(/ready|/config)?)",
        [this](const httplib::Request& req, httplib::Response& res) { handle_v2_model(req, res); });
  s.Post(R"(/v2/repository/index)",
         [this](const httplib::Request& req, httplib::Response& res) {
           handle_v2_repository(req, res);
         });
  s.Post(R"(/v2/repository/models/([^/]+)/(load|unload))",
         [this](const httplib::Request& req, httplib::Response& res) {
           handle_v2_repository(req, res);
         });
  // Anything else under /v2 (trace, logging, shared memory, ...): Triton's clients expect a
  // JSON error. The /v2 path space belongs to the protocol, not to applications.
  auto unsupported = [](const httplib::Request& req, httplib::Response& res) {
    current_request_log().route = "/v2/*";
    write_v2_error(res, errc::not_found,
                   req.method + " " + req.path + " is not part of this server's v2 API "
                     "(supported: health, models, infer, config, stats, repository)");
  };
  s.Get(R"(/v2/.*)", unsupported);
  s.Post(R"(/v2/.*)", unsupported);
}

void http_ingress::handle_v2_infer(const httplib::Request& req, httplib::Response& res) {
  auto& log = current_request_log();
  const std::string name = req.matches[1];
  const std::string version = req.matches[2];
  log.route = "/v2/models/{model}/infer";
  log.model = name;
  auto request_id = take_request_id(req, res);
  if (!check_version(name, version, res))
    return;
  auto table = models();
  const model_entry* m = find_model(*table, name);
  if (m == nullptr) {
    table = fetch_models(); // a model loaded since the last refresh
    m = find_model(*table, name);
  }
  if (m == nullptr)
    return write_v2_error(res, errc::not_found, unknown_model(name));
  log.application = m->application;
  call_request call;
  call.id = request_id;
  call.method = "POST";
  call.path = req.path;
  call.body = req.body;
  if (req.has_header("Inference-Header-Content-Length"))
    call.headers["inference-header-content-length"]
      = req.get_header_value("Inference-Header-Content-Length");
  call_and_wait(m->router, std::move(call), res,
                [&](const error_info& info) { write_v2_error(res, info.code, info.message); });
}

void http_ingress::handle_v2_model(const httplib::Request& req, httplib::Response& res) {
  const std::string name = req.matches[1];
  const std::string version = req.matches[2];
  const std::string what = req.matches[3];
  current_request_log().model = name;
  current_request_log().route = "/v2/models/{model}" + what;
  if (!check_version(name, version, res))
    return;
  auto table = fetch_models();
  const model_entry* m = find_model(*table, name);
  if (m == nullptr)
    return write_v2_error(res, errc::not_found, unknown_model(name));
  current_request_log().application = m->application;
  if (what == "/ready") {
    res.status = ready(*m) ? 200 : 400;
    return;
  }
  if (!ready(*m) && m->description.empty())
    return write_v2_error(res, errc::invalid_argument,
                          "Request for unknown model: '" + name + "' has no available versions"
                            + (m->reason.empty() ? "" : " (" + m->reason + ")"));
  if (what == "/config")
    return write_json(res, config_json(*m));
  std::vector<v2::tensor_signature> inputs, outputs;
  read_signature(*m, inputs, outputs);
  write_json(res, v2::model_metadata_json(m->name, {"1"}, "onnx", inputs, outputs));
}

void http_ingress::handle_v2_stats(const httplib::Request& req, httplib::Response& res) {
  const std::string name = req.matches[1];
  const std::string version = req.matches[2];
  current_request_log().route = "/v2/models/{model}/stats";
  current_request_log().model = name;
  if (!name.empty() && !check_version(name, version, res))
    return;
  auto table = fetch_models();
  if (!name.empty() && find_model(*table, name) == nullptr)
    return write_v2_error(res, errc::not_found, unknown_model(name));
  rapidjson::StringBuffer buf;
  json_writer w(buf);
  w.StartObject();
  w.Key("model_stats");
  w.StartArray();
  for (auto& m : *table)
    if (name.empty() || m.name == name)
      model_statistics::of(m.application, m.deployment)->write_json(w, m.name, "1");
  w.EndArray();
  w.EndObject();
  write_json(res, std::string(buf.GetString(), buf.GetSize()));
}

void http_ingress::handle_v2_repository(const httplib::Request& req, httplib::Response& res) {
  current_request_log().route = req.path;
  if (req.matches.size() < 3 || std::string(req.matches[1]).empty()) { // index
    bool ready_only = false;
    if (!req.body.empty()) {
      rapidjson::Document doc;
      if (doc.Parse(req.body.c_str()).HasParseError() || !doc.IsObject())
        return write_v2_error(res, errc::invalid_argument,
                              "repository index body must be a JSON object like {\"ready\": true}");
      if (doc.HasMember("ready")) {
        if (!doc["ready"].IsBool())
          return write_v2_error(res, errc::invalid_argument, "\"ready\" must be true or false");
        ready_only = doc["ready"].GetBool();
      }
    }
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartArray();
    for (auto& m : *fetch_models()) {
      if (ready_only && !ready(m))
        continue;
      w.StartObject();
      w.Key("name");
      w.String(m.name.c_str());
      w.Key("version");
      w.String("1");
      w.Key("state");
      w.String(ready(m) ? "READY" : m.unloaded ? "UNAVAILABLE" : m.reason.empty() ? "LOADING"
                                                                                 : "UNAVAILABLE");
      w.Key("reason");
      w.String(m.reason.c_str());
      w.EndObject();
    }
    w.EndArray();
    return write_json(res, std::string(buf.GetString(), buf.GetSize()));
  }
  const std::string name = req.matches[1];
  const bool load = std::string(req.matches[2]) == "load";
  current_request_log().model = name;
  if (load && !req.body.empty()) {
    rapidjson::Document doc;
    if (doc.Parse(req.body.c_str()).HasParseError() || !doc.IsObject())
      return write_v2_error(res, errc::invalid_argument, "load body must be a JSON object");
    if (doc.HasMember("parameters") && doc["parameters"].IsObject()
        && doc["parameters"].HasMember("config"))
      return write_v2_error(res, errc::invalid_argument,
                            "load with a \"config\" parameter is not supported: change the "
                            "deployment with PUT /api/serve/applications/ instead");
  }
  auto& bridge = bridge_for_this_thread(sys_);
  auto on_result = [&](apply_result& result) {
    set_tables(result);
    res.status = 200;
  };
  auto on_error = [&](caf::error& err) {
    auto info = to_error_info(err);
    write_v2_error(res, info.code, info.message);
  };
  if (load)
    bridge->request(controller_, std::chrono::minutes(10), load_atom::value, name)
      .receive(on_result, on_error);
  else
    bridge->request(controller_, std::chrono::seconds(30), unload_atom::value, name)
      .receive(on_result, on_error);
}

} // namespace serve
