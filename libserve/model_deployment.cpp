#include "libserve/model_deployment.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "libserve/model_location.hpp"
#include "libserve/model_device.hpp"
#include "libserve/model_stats.hpp"
#include "libserve/onnx/model.hpp"
#include "libserve/payload.hpp"
#include "libserve/registry/mlmodel.hpp"
#include "libserve/registry/model_uri.hpp"
#include "libserve/registry/registry_store.hpp"
#include "libserve/v2_protocol.hpp"
#include "libserve/json.hpp"

namespace serve {

namespace {

using onnx_ir::onnx_model;
using onnx_ir::value;
using onnx_ir::value_info;

enum class reply_format { outputs, predictions, result, v2 };

/// One request, parsed: its inputs in the model's input order, each with a batch dimension.
struct parsed_request {
  std::vector<tensor> inputs;
  /// Per input, when not empty: its bytes where they lie in the request body (v2 binary
  /// tensors); the input's tensor then holds type and shape only. Copied once, into the batch.
  std::vector<std::string_view> raw;
  int64_t rows = 0;
  /// The batch dimension was added (one row given without it): replies drop it again.
  bool single_row = false;
  reply_format format = reply_format::outputs;
  /// v2 infer requests: the request (its inputs moved out), the model name and version asked.
  std::shared_ptr<v2::infer_request> v2;
  std::string v2_model, v2_version;
  /// Time spent parsing this request (ns), part of its compute_input statistics.
  int64_t parse_ns = 0;
};

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

/// For "/v2/models/{m}[/versions/{v}]/infer" (the path the ingress gives v2 infer calls): sets
/// model and version and returns true.
bool v2_infer_target(const std::string& path, std::string& model, std::string& version) {
  const std::string prefix = "/v2/models/", suffix = "/infer";
  if (path.size() <= prefix.size() + suffix.size() || path.rfind(prefix, 0) != 0
      || path.compare(path.size() - suffix.size(), suffix.size(), suffix) != 0)
    return false;
  auto middle = path.substr(prefix.size(), path.size() - prefix.size() - suffix.size());
  auto v = middle.find("/versions/");
  model = middle.substr(0, v);
  version = v == std::string::npos ? "" : middle.substr(v + 10);
  return !model.empty() && model.find('/') == std::string::npos;
}

v2::tensor_signature signature_of(const value_info& v) {
  return v2::tensor_signature{v.name, v.type, v.has_shape ? v.dims : std::vector<int64_t>{}};
}

[[noreturn]] void bad_request(const std::string& message) {
  throw serve_exception(errc::invalid_argument, message);
}

std::string declared(const value_info& v) {
  return std::string(dtype_name(v.type)) + " " + (v.has_shape ? shape_to_string(v.dims) : "[...]");
}

/// "labels": a JSON array (index -> name) or object ({"0": "setosa"}).
std::map<std::string, std::string> load_labels(const std::string& path) {
  std::map<std::string, std::string> labels;
  if (path.empty())
    return labels;
  rapidjson::Document doc;
  auto text = read_whole_file(path, "labels file");
  if (parse_json(doc, text) || !(doc.IsArray() || doc.IsObject()))
    throw serve_exception(errc::invalid_argument, "labels file \"" + path
                                                    + "\" must hold a JSON array or object");
  if (doc.IsArray()) {
    for (rapidjson::SizeType i = 0; i < doc.Size(); ++i)
      if (doc[i].IsString())
        labels[std::to_string(i)] = doc[i].GetString();
  } else {
    for (auto& m : doc.GetObject())
      if (m.value.IsString())
        labels[m.name.GetString()] = m.value.GetString();
  }
  return labels;
}

class onnx_deployment : public deployment {
public:
  explicit onnx_deployment(const deployment_context& ctx) {
    const auto& cfg = *ctx.model_config;
    uri_ = cfg["uri"].GetString();
    if (cfg.HasMember("features"))
      for (auto& f : cfg["features"].GetArray())
        features_.emplace_back(f.GetString());
    const std::string registry_uri = cfg.HasMember("registry_uri") && cfg["registry_uri"].IsString()
                                       ? cfg["registry_uri"].GetString()
                                       : "";
    auto located = locate_model(uri_, registry_uri);
    version_ = located.version;
    resolved_ = located.resolved;
    // A model its head shipped to this node: report the version the head resolved.
    if (cfg.HasMember("resolved_version") && cfg["resolved_version"].IsString())
      version_ = cfg["resolved_version"].GetString();
    if (cfg.HasMember("resolved_from") && cfg["resolved_from"].IsString())
      resolved_ = cfg["resolved_from"].GetString();
    model_ = onnx_model::load(located.model_path);
    labels_ = load_labels(
      labels_path(cfg.HasMember("labels") ? cfg["labels"].GetString() : "", located.dir));
    for (auto& in : model_->info().inputs) {
      batchable_ &= in.has_shape && !in.dims.empty() && in.dims[0] < 0;
      v2_inputs_.push_back(signature_of(in));
    }
    stats_ = model_statistics::of(ctx.application, ctx.deployment);
    device_ = std::make_unique<model_device>(ctx, model_); // CPU or GPU executor
  }

  future<response> handle(request req) override {
    std::vector<request> one;
    one.push_back(std::move(req));
    return run_requests(one).front();
  }

  future<std::vector<response>> handle_batch(std::vector<request> requests) override {
    return run_requests(requests);
  }

  std::string describe() const override;

private:
  std::vector<response> run_requests(const std::vector<request>& requests) const;
  void run_group(const std::vector<size_t>& members, std::vector<parsed_request>& parsed,
                 std::vector<response>& out) const;
  parsed_request parse(const request& req) const;
  void parse_inputs(const rapidjson::Value& v, parsed_request& p) const;
  void parse_mlflow(const rapidjson::Document& body, parsed_request& p) const;
  void parse_columns(const std::vector<std::string>& columns,
                     const std::vector<const rapidjson::Value*>& rows, parsed_request& p) const;
  void parse_features(const rapidjson::Value& body, parsed_request& p) const;
  void parse_v2(const request& req, parsed_request& p) const;
  response render_v2(const parsed_request& p, const std::vector<value>& outputs,
                     int64_t first_row) const;
  void check_signature(parsed_request& p) const;
  response render(const parsed_request& p, const std::vector<value>& outputs, int64_t first_row) const;
  void write_result(json_writer& w, const std::vector<value>& outputs, int64_t row) const;

  std::string uri_;
  /// The registry version served ("" for a local model) and how the uri resolved.
  std::string version_, resolved_;
  std::vector<std::string> features_;
  std::map<std::string, std::string> labels_;
  std::shared_ptr<const onnx_model> model_;
  /// Every input has a dynamic batch dimension: requests can be concatenated.
  bool batchable_ = true;
  std::vector<v2::tensor_signature> v2_inputs_;
  std::shared_ptr<model_statistics> stats_;
  /// Runs the graph on the CPU or a GPU (device and why in describe()).
  std::unique_ptr<model_device> device_;
};

std::string onnx_deployment::describe() const {
  const auto& info = model_->info();
  rapidjson::StringBuffer buf;
  json_writer w(buf);
  auto write_values = [&w](const std::vector<value_info>& values) {
    w.StartArray();
    for (auto& v : values) {
      w.StartObject();
      w.Key("name");
      w.String(v.name.c_str());
      w.Key("datatype");
      w.String(v.non_tensor_type.empty() ? dtype_v2_name(v.type) : v.non_tensor_type.c_str());
      w.Key("shape");
      w.StartArray();
      for (auto d : v.dims)
        w.Int64(d);
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
  };
  w.StartObject();
  w.Key("uri");
  w.String(uri_.c_str());
  w.Key("version");
  w.String(version_.c_str());
  w.Key("resolved");
  w.String(resolved_.c_str());
  w.Key("inputs");
  write_values(info.inputs);
  w.Key("outputs");
  write_values(info.outputs);
  w.Key("parameters");
  w.Int64(info.parameter_count);
  w.Key("parameter_bytes");
  w.Uint64(info.parameter_bytes);
  w.Key("nodes");
  w.Uint64(info.node_count);
  w.Key("ir_version");
  w.Int64(info.ir_version);
  w.Key("producer");
  w.String(info.producer.c_str());
  device_->describe(w);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

parsed_request onnx_deployment::parse(const request& req) const {
  parsed_request p;
  if (v2_infer_target(req.path, p.v2_model, p.v2_version)) {
    p.format = reply_format::v2;
    parse_v2(req, p);
    check_signature(p);
    return p;
  }
  auto body = req.json();
  if (req.path == "/invocations") {
    p.format = reply_format::predictions;
    parse_mlflow(body, p);
  } else if (body.IsObject() && body.HasMember("inputs")) {
    parse_inputs(body["inputs"], p);
  } else if (!features_.empty() && body.IsObject()) {
    p.format = reply_format::result;
    parse_features(body, p);
  } else if (body.IsArray() && model_->info().inputs.size() == 1) {
    parse_inputs(body, p);
  } else {
    bad_request("expected {\"inputs\": {\"<input>\": [...]}}"
                + std::string(model_->info().inputs.size() == 1 ? " or {\"inputs\": [...]}" : "")
                + (features_.empty() ? "" : " or an object of features")
                + ", or MLflow's formats at <route>/invocations");
  }
  check_signature(p);
  return p;
}

void onnx_deployment::parse_inputs(const rapidjson::Value& v, parsed_request& p) const {
  const auto& decl = model_->info().inputs;
  if (!v.IsObject()) {
    if (decl.size() != 1)
      bad_request("this model takes " + std::to_string(decl.size())
                  + " inputs: give them by name as {\"inputs\": {\"<input>\": [...]}}");
    p.inputs.push_back(tensor_from_json(v, decl[0].type, "input \"" + decl[0].name + "\""));
    return;
  }
  for (auto& m : v.GetObject()) {
    bool known = false;
    for (auto& d : decl)
      known |= d.name == m.name.GetString();
    if (!known)
      bad_request(std::string("unknown input \"") + m.name.GetString() + "\"");
  }
  for (auto& d : decl) {
    if (!v.HasMember(d.name.c_str()))
      bad_request("missing input \"" + d.name + "\" (" + declared(d) + ")");
    p.inputs.push_back(tensor_from_json(v[d.name.c_str()], d.type, "input \"" + d.name + "\""));
  }
}

void onnx_deployment::parse_v2(const request& req, parsed_request& p) const {
  std::optional<size_t> header_length;
  if (auto h = req.headers.find("inference-header-content-length"); h != req.headers.end()) {
    char* end = nullptr;
    auto n = std::strtoull(h->second.c_str(), &end, 10);
    if (h->second.empty() || *end != '\0' || h->second[0] == '-')
      bad_request("Inference-Header-Content-Length must be a non-negative integer; got '"
                  + h->second + "'");
    header_length = static_cast<size_t>(n);
  }
  auto parsed = std::make_shared<v2::infer_request>(
    v2::parse_infer_request(req.body, header_length, v2_inputs_, /*borrow_binary=*/true));
  const auto& decl = model_->info().inputs;
  for (auto& in : parsed->inputs)
    if (std::none_of(decl.begin(), decl.end(), [&](auto& d) { return d.name == in.name; })) {
      std::string names;
      for (auto& d : decl)
        names += (names.empty() ? "" : ", ") + d.name;
      bad_request("unexpected inference input '" + in.name + "' for model '" + p.v2_model
                  + "'; its inputs are: " + names);
    }
  for (auto& d : decl) {
    auto in = std::find_if(parsed->inputs.begin(), parsed->inputs.end(),
                           [&](auto& i) { return i.name == d.name; });
    if (in == parsed->inputs.end())
      bad_request("missing inference input '" + d.name + "' (" + dtype_v2_name(d.type) + " "
                  + (d.has_shape ? shape_to_string(d.dims) : "[...]") + ") for model '"
                  + p.v2_model + "'");
    if (in->value.type != d.type)
      bad_request("inference input '" + d.name + "' data-type is '"
                  + dtype_v2_name(in->value.type) + "', but model '" + p.v2_model
                  + "' expects '" + dtype_v2_name(d.type) + "'");
    p.inputs.push_back(std::move(in->value));
    p.raw.push_back(in->bytes);
  }
  const auto& outs = model_->info().outputs;
  for (size_t k = 0; k < parsed->outputs.size(); ++k) {
    auto o = std::find_if(outs.begin(), outs.end(),
                          [&](auto& d) { return d.name == parsed->outputs[k].name; });
    if (o == outs.end()) {
      std::string names;
      for (auto& d : outs)
        names += (names.empty() ? "" : ", ") + d.name;
      bad_request("outputs[" + std::to_string(k) + "].name: unknown output '"
                  + parsed->outputs[k].name + "'; the model has " + names);
    }
    if (!o->non_tensor_type.empty())
      bad_request("output '" + o->name + "' is a " + o->non_tensor_type
                  + ", which the v2 protocol cannot carry; ask for a tensor output");
  }
  parsed->inputs.clear();
  p.v2 = std::move(parsed);
}

void onnx_deployment::parse_mlflow(const rapidjson::Document& body, parsed_request& p) const {
  if (!body.IsObject())
    bad_request("MLflow scoring expects an object with one of dataframe_split, "
                "dataframe_records, instances, inputs");
  const char* keys[] = {"dataframe_split", "dataframe_records", "instances", "inputs"};
  int found = 0;
  for (auto* k : keys)
    found += body.HasMember(k) ? 1 : 0;
  if (found != 1)
    bad_request("MLflow scoring expects exactly one of dataframe_split, dataframe_records, "
                "instances, inputs; found " + std::to_string(found));
  if (body.HasMember("inputs"))
    return parse_inputs(body["inputs"], p);
  std::vector<std::string> columns;
  std::vector<const rapidjson::Value*> rows;
  if (body.HasMember("dataframe_split")) {
    const auto& split = body["dataframe_split"];
    if (!split.IsObject() || !split.HasMember("data") || !split["data"].IsArray())
      bad_request("dataframe_split needs \"data\": a list of rows");
    if (split.HasMember("columns") && split["columns"].IsArray())
      for (auto& c : split["columns"].GetArray())
        columns.emplace_back(c.IsString() ? c.GetString() : "");
    for (auto& r : split["data"].GetArray())
      rows.push_back(&r);
    return parse_columns(columns, rows, p);
  }
  const auto& list = body.HasMember("instances") ? body["instances"] : body["dataframe_records"];
  if (!list.IsArray())
    bad_request("instances / dataframe_records must be a list");
  if (list.Size() > 0 && list[0].IsObject()) {
    for (auto& m : list[0].GetObject())
      columns.emplace_back(m.name.GetString());
    for (auto& r : list.GetArray())
      rows.push_back(&r);
    return parse_columns(columns, rows, p);
  }
  parse_inputs(list, p); // instances as a list of rows of a single-input model
}

void onnx_deployment::parse_columns(const std::vector<std::string>& columns,
                                    const std::vector<const rapidjson::Value*>& rows,
                                    parsed_request& p) const {
  const auto& decl = model_->info().inputs;
  auto cell = [&](const rapidjson::Value& row, const std::string& column,
                  size_t index) -> const rapidjson::Value& {
    if (row.IsObject()) {
      if (!row.HasMember(column.c_str()))
        bad_request("a row misses column \"" + column + "\"");
      return row[column.c_str()];
    }
    if (!row.IsArray() || index >= row.Size())
      bad_request("a row has fewer values than there are columns");
    return row[static_cast<rapidjson::SizeType>(index)];
  };
  rapidjson::Document doc;
  auto& a = doc.GetAllocator();
  bool by_input = !columns.empty() && (decl.size() > 1 || columns == std::vector{decl[0].name});
  for (auto& c : columns)
    by_input &= std::any_of(decl.begin(), decl.end(), [&](auto& d) { return d.name == c; });
  if (by_input) { // one column per model input
    for (auto& d : decl) {
      auto at = std::find(columns.begin(), columns.end(), d.name);
      if (at == columns.end())
        bad_request("missing input column \"" + d.name + "\"");
      rapidjson::Value column(rapidjson::kArrayType);
      for (auto* row : rows)
        column.PushBack(rapidjson::Value(cell(*row, d.name, at - columns.begin()), a), a);
      auto t = tensor_from_json(column, d.type, "input \"" + d.name + "\"");
      if (d.has_shape && d.dims.size() == t.rank() + 1 && d.dims.back() == 1)
        t.shape.push_back(1);
      p.inputs.push_back(std::move(t));
    }
    return;
  }
  if (decl.size() != 1)
    bad_request("columns must name the model's inputs");
  const auto& order = features_.empty() ? columns : features_;
  rapidjson::Value matrix(rapidjson::kArrayType);
  for (auto* row : rows) {
    if (order.empty() && row->IsArray()) { // no column names: rows as they are
      matrix.PushBack(rapidjson::Value(*row, a), a);
      continue;
    }
    rapidjson::Value out(rapidjson::kArrayType);
    for (size_t k = 0; k < order.size(); ++k) {
      auto at = std::find(columns.begin(), columns.end(), order[k]);
      if (at == columns.end() && !row->IsObject())
        bad_request("missing column \"" + order[k] + "\"");
      out.PushBack(rapidjson::Value(cell(*row, order[k], at - columns.begin()), a), a);
    }
    matrix.PushBack(out, a);
  }
  p.inputs.push_back(tensor_from_json(matrix, decl[0].type, "input \"" + decl[0].name + "\""));
}

void onnx_deployment::parse_features(const rapidjson::Value& body, parsed_request& p) const {
  const auto& decl = model_->info().inputs;
  if (decl.size() != 1)
    bad_request("named features need a single-input model");
  for (auto& m : body.GetObject())
    if (std::find(features_.begin(), features_.end(), m.name.GetString()) == features_.end())
      bad_request(std::string("unknown feature \"") + m.name.GetString() + "\"; expected: "
                  + [&] {
                      std::string all;
                      for (auto& f : features_)
                        all += (all.empty() ? "" : ", ") + f;
                      return all;
                    }());
  rapidjson::Document doc;
  auto& a = doc.GetAllocator();
  rapidjson::Value row(rapidjson::kArrayType);
  for (auto& f : features_) {
    if (!body.HasMember(f.c_str()))
      bad_request("missing feature \"" + f + "\"");
    row.PushBack(rapidjson::Value(body[f.c_str()], a), a);
  }
  rapidjson::Value matrix(rapidjson::kArrayType);
  matrix.PushBack(row, a);
  p.inputs.push_back(tensor_from_json(matrix, decl[0].type, "input \"" + decl[0].name + "\""));
}

/// Adds the batch dimension to a single row, and checks each input's rank and fixed dims
/// against the declaration and the row counts against each other.
void onnx_deployment::check_signature(parsed_request& p) const {
  const auto& decl = model_->info().inputs;
  for (size_t i = 0; i < decl.size(); ++i) {
    auto& t = p.inputs[i];
    const auto& d = decl[i];
    if (!d.has_shape)
      continue;
    if (t.rank() + 1 == d.dims.size()) {
      t.shape.insert(t.shape.begin(), 1);
      p.single_row = true;
    }
    bool ok = t.rank() == d.dims.size();
    for (size_t k = 0; ok && k < d.dims.size(); ++k)
      ok = d.dims[k] < 0 || d.dims[k] == t.shape[k];
    if (!ok)
      bad_request("input \"" + d.name + "\": expected " + declared(d) + ", got "
                  + dtype_name(t.type) + " " + shape_to_string(t.shape));
  }
  p.rows = p.inputs.empty() || p.inputs[0].shape.empty() ? 1 : p.inputs[0].shape[0];
  for (size_t i = 1; i < p.inputs.size(); ++i)
    if (p.inputs[i].shape.empty() || p.inputs[i].shape[0] != p.rows)
      bad_request("inputs have different numbers of rows: \"" + decl[0].name + "\" has "
                  + std::to_string(p.rows) + ", \"" + decl[i].name + "\" has "
                  + (p.inputs[i].shape.empty() ? "none" : std::to_string(p.inputs[i].shape[0])));
}

/// The key under which requests can share one execution: the non-batch dims of every input.
std::string batch_key(const parsed_request& p) {
  std::string key;
  for (auto& t : p.inputs) {
    key += '|';
    for (size_t k = 1; k < t.shape.size(); ++k)
      key += std::to_string(t.shape[k]) + ',';
  }
  return key;
}

bool splittable(const std::vector<value>& outputs, int64_t rows) {
  for (auto& v : outputs) {
    if (v.maps ? static_cast<int64_t>(v.maps->values.size()) != rows
               : (v.t.shape.empty() || v.t.shape[0] != rows))
      return false;
  }
  return true;
}

std::vector<response> onnx_deployment::run_requests(const std::vector<request>& requests) const {
  const int64_t start = now_ns();
  std::vector<response> out(requests.size());
  std::vector<parsed_request> parsed(requests.size());
  std::map<std::string, std::vector<size_t>> groups;
  for (size_t i = 0; i < requests.size(); ++i) {
    const int64_t t = now_ns();
    try {
      parsed[i] = parse(requests[i]);
      groups[batchable_ ? batch_key(parsed[i]) : std::to_string(i)].push_back(i);
    } catch (...) {
      auto err = current_exception_info();
      out[i] = response::failure(err.code, err.message);
    }
    parsed[i].parse_ns = now_ns() - t;
  }
  for (auto& [_, members] : groups)
    run_group(members, parsed, out);
  const int64_t end = now_ns();
  for (size_t i = 0; i < requests.size(); ++i) {
    const int64_t received = requests[i].received_ns > 0 ? requests[i].received_ns : start;
    stats_->record_request(!out[i].error, end - received, std::max<int64_t>(0, start - received));
  }
  return out;
}

/// Input `k` of a group of requests: their rows in one tensor, each request's bytes copied once,
/// straight from its body when it sent them in binary.
tensor batch_input(const std::vector<size_t>& members, std::vector<parsed_request>& parsed,
                   size_t k) {
  auto raw_of = [&](size_t i) {
    const auto& p = parsed[i];
    return k < p.raw.size() ? p.raw[k] : std::string_view{};
  };
  auto& first = parsed[members.front()].inputs[k];
  if (members.size() == 1) {
    tensor t = std::move(first);
    auto raw = raw_of(members.front());
    if (!raw.empty())
      t.data.assign(raw.begin(), raw.end());
    return t;
  }
  if (first.type == dtype::string) {
    std::vector<const tensor*> parts;
    for (auto i : members)
      parts.push_back(&parsed[i].inputs[k]);
    return concat_rows(parts);
  }
  tensor out;
  out.type = first.type;
  out.shape = first.shape;
  out.shape[0] = 0;
  size_t bytes = 0;
  for (auto i : members) {
    const auto& t = parsed[i].inputs[k];
    auto raw = raw_of(i);
    out.shape[0] += t.shape[0];
    bytes += raw.empty() ? t.data.size() : raw.size();
  }
  out.data.reserve(bytes);
  for (auto i : members) {
    auto raw = raw_of(i);
    const auto& data = parsed[i].inputs[k].data;
    if (raw.empty())
      out.data.insert(out.data.end(), data.begin(), data.end());
    else
      out.data.insert(out.data.end(), raw.begin(), raw.end());
  }
  return out;
}

void onnx_deployment::run_group(const std::vector<size_t>& members,
                                std::vector<parsed_request>& parsed,
                                std::vector<response>& out) const {
  const auto& decl = model_->info().inputs;
  const int64_t t_input = now_ns();
  std::map<std::string, tensor> feed;
  int64_t total_rows = 0;
  for (auto i : members)
    total_rows += parsed[i].rows;
  for (size_t k = 0; k < decl.size(); ++k)
    feed[decl[k].name] = batch_input(members, parsed, k);
  try {
    const int64_t t_infer = now_ns();
    auto outputs = device_->run(feed);
    const int64_t t_output = now_ns();
    if (members.size() > 1 && !splittable(outputs, total_rows)) {
      for (auto i : members) // outputs without a batch dimension: one execution per request
        run_group({i}, parsed, out);
      return;
    }
    int64_t row = 0;
    for (auto i : members) {
      const auto& p = parsed[i];
      const int64_t first = members.size() == 1 ? -1 : row;
      out[i] = p.format == reply_format::v2 ? render_v2(p, outputs, first)
                                            : render(p, outputs, first);
      row += p.rows;
    }
    const int64_t t_done = now_ns();
    stats_->record_execution(members.size(), static_cast<uint64_t>(total_rows),
                             t_infer - t_input, t_output - t_infer, t_done - t_output);
    for (auto i : members)
      stats_->record_compute(t_infer - t_input + parsed[i].parse_ns, t_output - t_infer,
                             t_done - t_output);
  } catch (const replica_failure&) {
    throw; // a sticky GPU error: the executor takes the replica down
  } catch (...) {
    auto err = current_exception_info();
    for (auto i : members)
      out[i] = response::failure(err.code, err.message);
  }
}

void write_maps(json_writer& w, const onnx_ir::map_sequence& maps, int64_t first, int64_t rows,
                bool drop_row_dim) {
  bool drop = drop_row_dim && rows == 1;
  if (!drop)
    w.StartArray();
  for (int64_t r = first; r < first + rows; ++r) {
    w.StartObject();
    const auto& values = maps.values[static_cast<size_t>(r)];
    for (size_t k = 0; k < values.size(); ++k) {
      auto key = maps.string_keys.empty() ? std::to_string(maps.int_keys[k]) : maps.string_keys[k];
      w.Key(key.c_str());
      w.Double(values[k]);
    }
    w.EndObject();
  }
  if (!drop)
    w.EndArray();
}

/// The label of `row`: the first output's value (a class label, or the argmax of a score row),
/// named through the labels file when there is one.
void onnx_deployment::write_result(json_writer& w, const std::vector<value>& outputs,
                                   int64_t row) const {
  const auto& v = outputs.front();
  std::string key;
  if (v.maps) {
    const auto& values = v.maps->values[static_cast<size_t>(row)];
    size_t best = static_cast<size_t>(std::max_element(values.begin(), values.end()) - values.begin());
    key = v.maps->string_keys.empty() ? std::to_string(v.maps->int_keys[best])
                                      : v.maps->string_keys[best];
  } else if (v.t.rank() >= 2 && (v.t.type == dtype::float32 || v.t.type == dtype::float64)) {
    int64_t width = v.t.numel() / std::max<int64_t>(1, v.t.shape[0]);
    int64_t best = 0;
    for (int64_t k = 1; k < width; ++k) {
      double a = v.t.type == dtype::float32 ? v.t.as<float>()[row * width + k]
                                            : v.t.as<double>()[row * width + k];
      double b = v.t.type == dtype::float32 ? v.t.as<float>()[row * width + best]
                                            : v.t.as<double>()[row * width + best];
      if (a > b)
        best = k;
    }
    key = std::to_string(best);
  } else if (v.t.type == dtype::string) {
    key = v.t.strings[static_cast<size_t>(row)];
  } else if (v.t.type == dtype::int64 || v.t.type == dtype::int32) {
    key = std::to_string(v.t.type == dtype::int64 ? v.t.as<int64_t>()[row] : v.t.as<int32_t>()[row]);
  } else {
    write_tensor_element(w, v.t, row);
    return;
  }
  auto named = labels_.find(key);
  if (named != labels_.end()) {
    w.String(named->second.c_str());
  } else if (v.t.type == dtype::string || (v.maps && !v.maps->string_keys.empty())) {
    w.String(key.c_str());
  } else {
    w.Int64(std::stoll(key));
  }
}

response onnx_deployment::render(const parsed_request& p, const std::vector<value>& outputs,
                                 int64_t first_row) const {
  const auto& decl = model_->info().outputs;
  rapidjson::StringBuffer buf;
  json_writer w(buf);
  auto write_value = [&](const value& v) {
    int64_t first = first_row < 0 ? 0 : first_row;
    if (v.maps) {
      int64_t rows = first_row < 0 ? static_cast<int64_t>(v.maps->values.size()) : p.rows;
      write_maps(w, *v.maps, first, rows, p.single_row);
    } else if (v.t.shape.empty()) {
      write_tensor_element(w, v.t, 0);
    } else {
      int64_t rows = first_row < 0 ? v.t.shape[0] : p.rows;
      write_tensor_rows(w, v.t, first, rows, p.single_row);
    }
  };
  w.StartObject();
  if (p.format == reply_format::result) {
    w.Key("result");
    write_result(w, outputs, first_row < 0 ? 0 : first_row);
  } else {
    w.Key(p.format == reply_format::predictions ? "predictions" : "outputs");
    bool single = p.format == reply_format::predictions && outputs.size() == 1;
    if (!single)
      w.StartObject();
    for (size_t k = 0; k < outputs.size(); ++k) {
      if (!single)
        w.Key(decl[k].name.c_str());
      write_value(outputs[k]);
    }
    if (!single)
      w.EndObject();
  }
  w.EndObject();
  return response{std::string(buf.GetString(), buf.GetSize()), "application/json"};
}

response onnx_deployment::render_v2(const parsed_request& p, const std::vector<value>& outputs,
                                    int64_t first_row) const {
  const auto& decl = model_->info().outputs;
  std::vector<tensor> slices; // this request's rows of each output, when they must be copied
  slices.reserve(outputs.size());
  std::vector<std::pair<std::string, const tensor*>> named;
  for (size_t k = 0; k < outputs.size(); ++k) {
    const auto& v = outputs[k];
    if (v.maps)
      continue; // sequences of maps (ZipMap) have no v2 form; parse_v2 refused asking for them
    const tensor* t = &v.t;
    if ((first_row >= 0 && !v.t.shape.empty()) || (p.single_row && !v.t.shape.empty())) {
      slices.push_back(first_row >= 0 ? slice_rows(v.t, first_row, p.rows) : v.t);
      if (p.single_row && slices.back().shape.size() > 1)
        slices.back().shape.erase(slices.back().shape.begin());
      t = &slices.back();
    }
    named.emplace_back(decl[k].name, t);
  }
  auto encoded = v2::encode_infer_response(p.v2_model, p.v2_version.empty() ? "1" : p.v2_version,
                                           *p.v2, v2::select_outputs(*p.v2, named));
  response r{std::move(encoded.body),
             encoded.header_length ? "application/octet-stream" : "application/json"};
  if (encoded.header_length)
    r.headers["inference-header-content-length"] = std::to_string(*encoded.header_length);
  return r;
}

} // namespace

std::unique_ptr<deployment> make_model_deployment(const deployment_context& ctx) {
  if (ctx.model_config == nullptr || !ctx.model_config->IsObject()
      || !ctx.model_config->HasMember("uri"))
    throw serve_exception(errc::invalid_argument,
                          "deployment \"" + ctx.deployment + "\" has no model uri");
  return std::make_unique<onnx_deployment>(ctx);
}

} // namespace serve
