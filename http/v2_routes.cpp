// Open Inference Protocol v2 endpoints of the ingress (see ingress.hpp and
// ../shared/notes/reference.md §4). Every model deployment is a v2 model named after its
// deployment (model_entry::name); version "1" is the only version. Infer calls go to the
// deployment's router like JSON requests, so both kinds batch together; the deployment decodes
// and encodes the v2 body (libserve/v2_protocol.hpp). Errors: {"error": "..."} with Triton's
// statuses (not found 404, unavailable 503, internal 500, everything else 400; timeouts 408 and
// oversized bodies 413 as on every route).
#include <caf/all.hpp>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "http/error_mapping.hpp"
#include "http/ingress.hpp"
#include "http/io_bridge.hpp"
#include "libserve/future.hpp"
#include "libserve/json.hpp"
#include "libserve/model_stats.hpp"
#include "libserve/v2_protocol.hpp"

namespace serve {

namespace {

constexpr const char* server_version = "0.1.0";
/// JSON infer bodies from this size on are parsed on the io thread and passed on in the binary
/// tensor form; smaller ones are cheaper to pass as they are.
constexpr size_t min_transcoded_json_bytes = 512;
/// Extensions we implement as Triton specifies them.
constexpr const char* extensions[] = {"binary_tensor_data", "model_repository",
                                      "model_configuration", "statistics"};

http_response v2_error(errc code, const std::string& message) {
  return http_response::json(http_status(code), v2::error_body(printable_utf8(message)));
}

http_response v2_error_of(const error_info& info) {
  return v2_error(info.code, info.message);
}

/// A version segment: digits only; we serve version 1. Returns the error to answer, if any.
std::optional<http_response> check_version(const std::string& model, const std::string& version) {
  if (version.empty())
    return std::nullopt;
  if (version.find_first_not_of("0123456789") != std::string::npos)
    return v2_error(errc::invalid_argument,
                    "version segment must be a positive integer; got '" + version + "'");
  if (version.find_first_not_of('0') != version.size() - 1 || version.back() != '1')
    return v2_error(errc::not_found, "Request for unknown model: '" + model + "' version "
                                       + version + " is not found (this server serves version 1)");
  return std::nullopt;
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

/// The model's declared inputs and outputs from its replica's description (a description from
/// another node is checked like any input).
void read_signature(const model_entry& m, std::vector<v2::tensor_signature>& inputs,
                    std::vector<v2::tensor_signature>& outputs) {
  rapidjson::Document doc;
  if (m.description.empty() || parse_json(doc, m.description) || !doc.IsObject())
    return;
  auto read = [&](const char* key, std::vector<v2::tensor_signature>& out) {
    if (!doc.HasMember(key) || !doc[key].IsArray())
      return;
    for (auto& v : doc[key].GetArray()) {
      if (!v.IsObject() || !v.HasMember("name") || !v["name"].IsString()
          || !v.HasMember("datatype") || !v["datatype"].IsString() || !v.HasMember("shape")
          || !v["shape"].IsArray())
        continue;
      v2::tensor_signature s;
      s.name = v["name"].GetString();
      auto type = v2::dtype_from_v2(v["datatype"].GetString());
      if (!type)
        continue; // sequences of maps (ZipMap) have no v2 datatype
      s.type = *type;
      for (auto& d : v["shape"].GetArray())
        s.dims.push_back(d.IsInt64() ? d.GetInt64() : -1);
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
  if (parse_json(cfg, m.config_json))
    cfg.SetObject();
  uint64_t max_batch = 0;
  double wait_s = 0;
  bool batching = cfg.IsObject() && cfg.HasMember("batching") && cfg["batching"].IsObject();
  if (batching) {
    const auto& b = cfg["batching"];
    if (b.HasMember("max_batch_size") && b["max_batch_size"].IsUint64())
      max_batch = b["max_batch_size"].GetUint64();
    if (b.HasMember("batch_wait_timeout_s") && b["batch_wait_timeout_s"].IsNumber())
      wait_s = b["batch_wait_timeout_s"].GetDouble();
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
  w.Int64(cfg.IsObject() && cfg.HasMember("num_replicas") && cfg["num_replicas"].IsInt64()
            ? cfg["num_replicas"].GetInt64()
            : 1);
  w.Key("kind");
  w.String("KIND_CPU");
  w.EndObject();
  w.EndArray();
  w.Key("actorserve");
  w.StartObject();
  w.Key("application");
  w.String(m.application.c_str());
  w.Key("deployment");
  if (cfg.IsObject())
    cfg.Accept(w);
  else
    w.Null();
  w.EndObject();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string server_metadata() {
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
  return std::string(buf.GetString(), buf.GetSize());
}

std::string repository_index(const std::vector<model_entry>& models, bool ready_only) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartArray();
  for (auto& m : models) {
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
  return std::string(buf.GetString(), buf.GetSize());
}

/// The segments of a path ("/v2/models/m/infer" -> v2, models, m, infer).
std::vector<std::string> segments_of(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 1;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos)
      slash = path.size();
    out.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return out;
}

http_response method_not_allowed(const std::string& allow) {
  auto res = v2_error(errc::invalid_argument, "method not allowed; use " + allow);
  res.status = 405;
  res.headers.push_back({"Allow", allow});
  return res;
}

} // namespace

void http_ingress::fetch_models(
  const exchange_ptr& ex,
  std::function<void(std::shared_ptr<const std::vector<model_entry>>)> next) {
  ex->bridge()
    .request(controller_, std::chrono::seconds(10), routes_atom::value)
    .then(
      [this, next](apply_result& current) {
        set_tables(current);
        next(models());
      },
      [this, next](caf::error&) { next(models()); });
}

bool http_ingress::handle_v2(const exchange_ptr& ex) {
  auto& req = ex->request;
  if (!is_v2_path(req.path))
    return false;
  const bool get = req.is_get_or_head();
  const bool post = req.method == "POST";
  auto seg = segments_of(req.path);
  auto want = [&](bool ok, const char* allow) {
    if (!ok)
      ex->reply(method_not_allowed(allow));
    return ok;
  };
  ex->log.route = "/v2/*";
  // /v2
  if (seg.size() == 1) {
    ex->log.route = "/v2";
    if (want(get, "GET, HEAD"))
      ex->reply(http_response::json(200, server_metadata()));
    return true;
  }
  // /v2/health/{live,ready}
  if (seg.size() == 3 && seg[1] == "health" && (seg[2] == "live" || seg[2] == "ready")) {
    ex->log.route = "/v2/health/" + seg[2];
    if (!want(get, "GET, HEAD"))
      return true;
    if (seg[2] == "live") {
      ex->reply(http_response{});
      return true;
    }
    fetch_models(ex, [this, ex](auto table) {
      bool all = !draining_;
      for (auto& m : *table)
        all &= m.unloaded || ready(m);
      http_response res;
      res.status = all ? 200 : 400;
      ex->reply(std::move(res));
    });
    return true;
  }
  // /v2/models/stats
  if (seg.size() == 3 && seg[1] == "models" && seg[2] == "stats") {
    if (want(get, "GET, HEAD"))
      handle_v2_stats(ex, "", "");
    return true;
  }
  // /v2/models/{m}[/versions/{v}][/ready|/config|/infer|/stats]
  if (seg.size() >= 3 && seg[1] == "models" && !seg[2].empty()) {
    std::string name = seg[2];
    std::string version;
    size_t next = 3;
    if (seg.size() >= 5 && seg[3] == "versions" && !seg[4].empty()) {
      version = seg[4];
      next = 5;
    }
    std::string what = next < seg.size() ? seg[next] : "";
    if (next + 1 < seg.size() || (next < seg.size() && what.empty())
        || (what != "" && what != "ready" && what != "config" && what != "infer"
            && what != "stats")) {
      ex->reply(v2_error(errc::not_found, req.method + " " + req.path
                                            + " is not part of this server's v2 API (supported: "
                                              "health, models, infer, config, stats, repository)"));
      return true;
    }
    if (what == "infer") {
      if (want(post, "POST"))
        handle_v2_infer(ex, name, version);
    } else if (what == "stats") {
      if (want(get, "GET, HEAD"))
        handle_v2_stats(ex, name, version);
    } else if (want(get, "GET, HEAD")) {
      handle_v2_model(ex, name, version, what);
    }
    return true;
  }
  // /v2/repository/index, /v2/repository/models/{m}/{load,unload}
  if (seg.size() == 3 && seg[1] == "repository" && seg[2] == "index") {
    ex->log.route = "/v2/repository/index";
    if (want(post, "POST"))
      handle_v2_repository(ex, "", "index");
    return true;
  }
  if (seg.size() == 5 && seg[1] == "repository" && seg[2] == "models" && !seg[3].empty()
      && (seg[4] == "load" || seg[4] == "unload")) {
    ex->log.route = "/v2/repository/models/{model}/" + seg[4];
    if (want(post, "POST"))
      handle_v2_repository(ex, seg[3], seg[4]);
    return true;
  }
  // Anything else under /v2 (trace, logging, shared memory, ...): Triton's clients expect a
  // JSON error. The /v2 path space belongs to the protocol, not to applications.
  ex->reply(v2_error(errc::not_found, req.method + " " + req.path
                                        + " is not part of this server's v2 API (supported: "
                                          "health, models, infer, config, stats, repository)"));
  return true;
}

void http_ingress::handle_v2_infer(const exchange_ptr& ex, const std::string& name,
                                   const std::string& version) {
  ex->log.route = "/v2/models/{model}/infer";
  ex->log.model = name;
  take_request_id(*ex);
  auto answer = [ex](http_response res) {
    stamp_request_id(*ex, res);
    ex->reply(std::move(res));
  };
  if (auto bad = check_version(name, version))
    return answer(std::move(*bad));
  auto send = [this, ex, name, answer](const std::vector<model_entry>& table) {
    const model_entry* m = find_model(table, name);
    if (m == nullptr)
      return answer(v2_error(errc::not_found, unknown_model(name)));
    ex->log.application = m->application;
    call_request call;
    call.id = ex->log.request_id;
    call.method = "POST";
    call.path = ex->request.path;
    const std::string* length = ex->request.header("inference-header-content-length");
    if (length == nullptr && ex->request.body.size() >= min_transcoded_json_bytes) {
      // A JSON request is parsed here, on the io thread, and sent on in the binary form: the
      // replica's batch thread then only copies bytes (Triton's frontend parses on its HTTP
      // threads too). Errors are the ones the replica would give.
      try {
        auto encoded = v2::encode_binary_request(
          v2::parse_infer_request(ex->request.body, std::nullopt, {}));
        call.body = std::move(encoded.body);
        call.headers["inference-header-content-length"] = std::to_string(encoded.header_length);
      } catch (const serve_exception& e) {
        return answer(v2_error(e.code(), e.what()));
      }
    } else {
      call.body = std::move(ex->request.body);
      if (length != nullptr)
        call.headers["inference-header-content-length"] = *length;
    }
    call_router(ex, m->router, std::move(call), v2_error_of);
  };
  auto table = models();
  if (find_model(*table, name) != nullptr)
    return send(*table);
  fetch_models(ex, [send](auto fresh) { send(*fresh); }); // a model loaded since the last refresh
}

void http_ingress::handle_v2_model(const exchange_ptr& ex, const std::string& name,
                                   const std::string& version, const std::string& what) {
  ex->log.model = name;
  ex->log.route = "/v2/models/{model}" + (what.empty() ? std::string() : "/" + what);
  if (auto bad = check_version(name, version))
    return ex->reply(std::move(*bad));
  fetch_models(ex, [ex, name, what](auto table) {
    const model_entry* m = find_model(*table, name);
    if (m == nullptr)
      return ex->reply(v2_error(errc::not_found, unknown_model(name)));
    ex->log.application = m->application;
    if (what == "ready") {
      http_response res;
      res.status = ready(*m) ? 200 : 400;
      return ex->reply(std::move(res));
    }
    if (!ready(*m) && m->description.empty())
      return ex->reply(v2_error(errc::invalid_argument,
                                "Request for unknown model: '" + name
                                  + "' has no available versions"
                                  + (m->reason.empty() ? "" : " (" + m->reason + ")")));
    if (what == "config")
      return ex->reply(http_response::json(200, config_json(*m)));
    std::vector<v2::tensor_signature> inputs, outputs;
    read_signature(*m, inputs, outputs);
    ex->reply(http_response::json(
      200, v2::model_metadata_json(m->name, {"1"}, "onnx", inputs, outputs)));
  });
}

void http_ingress::handle_v2_stats(const exchange_ptr& ex, const std::string& name,
                                   const std::string& version) {
  ex->log.route = "/v2/models/{model}/stats";
  ex->log.model = name;
  if (!name.empty())
    if (auto bad = check_version(name, version))
      return ex->reply(std::move(*bad));
  fetch_models(ex, [ex, name](auto table) {
    if (!name.empty() && find_model(*table, name) == nullptr)
      return ex->reply(v2_error(errc::not_found, unknown_model(name)));
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
    ex->reply(http_response::json(200, std::string(buf.GetString(), buf.GetSize())));
  });
}

void http_ingress::handle_v2_repository(const exchange_ptr& ex, const std::string& name,
                                        const std::string& action) {
  const std::string& body = ex->request.body;
  if (action == "index") {
    bool ready_only = false;
    if (!body.empty()) {
      rapidjson::Document doc;
      if (parse_json(doc, body) || !doc.IsObject())
        return ex->reply(v2_error(errc::invalid_argument,
                                  "repository index body must be a JSON object like "
                                  "{\"ready\": true}"));
      if (doc.HasMember("ready")) {
        if (!doc["ready"].IsBool())
          return ex->reply(v2_error(errc::invalid_argument, "\"ready\" must be true or false"));
        ready_only = doc["ready"].GetBool();
      }
    }
    return fetch_models(ex, [ex, ready_only](auto table) {
      ex->reply(http_response::json(200, repository_index(*table, ready_only)));
    });
  }
  const bool load = action == "load";
  ex->log.model = name;
  if (load && !body.empty()) {
    rapidjson::Document doc;
    if (parse_json(doc, body) || !doc.IsObject())
      return ex->reply(v2_error(errc::invalid_argument, "load body must be a JSON object"));
    if (doc.HasMember("parameters") && doc["parameters"].IsObject()
        && doc["parameters"].HasMember("config"))
      return ex->reply(v2_error(errc::invalid_argument,
                                "load with a \"config\" parameter is not supported: change the "
                                "deployment with PUT /api/serve/applications/ instead"));
  }
  auto on_result = [this, ex](apply_result& result) {
    set_tables(result);
    ex->reply(http_response{});
  };
  auto on_error = [ex](caf::error& err) { ex->reply(v2_error_of(to_error_info(err))); };
  if (load)
    ex->bridge()
      .request(controller_, std::chrono::minutes(10), load_atom::value, name)
      .then(on_result, on_error);
  else
    ex->bridge()
      .request(controller_, std::chrono::seconds(30), unload_atom::value, name)
      .then(on_result, on_error);
}

} // namespace serve
