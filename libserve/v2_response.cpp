// Replies of the Open Inference Protocol v2 (see v2_protocol.hpp): infer responses with JSON or
// binary outputs, error bodies and model metadata.
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "libserve/future.hpp"
#include "libserve/payload.hpp"
#include "libserve/v2_protocol.hpp"

namespace serve::v2 {

namespace {

void write_string(json_writer& w, const std::string& s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void write_shape(json_writer& w, const std::vector<int64_t>& shape) {
  w.StartArray();
  for (auto d : shape)
    w.Int64(d);
  w.EndArray();
}

/// Bytes of `t` on the wire: its data, or every string with a 4-byte length prefix. Throws
/// errc::internal when the tensor does not hold what its dtype and shape say.
size_t binary_size(const output& o) {
  const tensor& t = *o.value;
  auto numel = static_cast<size_t>(t.numel());
  if (t.type == dtype::string) {
    if (t.strings.size() != numel)
      throw serve_exception(errc::internal, "output '" + o.name + "' has " +
                                                std::to_string(t.strings.size()) +
                                                " strings but shape " + shape_to_string(t.shape) +
                                                " needs " + std::to_string(numel));
    size_t n = 4 * numel;
    for (const auto& s : t.strings)
      n += s.size();
    return n;
  }
  if (t.type == dtype::undefined || t.data.size() != numel * dtype_size(t.type))
    throw serve_exception(
        errc::internal, "output '" + o.name + "' has " + std::to_string(t.data.size()) +
                            " bytes but " + dtype_v2_name(t.type) + " " + shape_to_string(t.shape) +
                            " needs " + std::to_string(numel * dtype_size(t.type)));
  return t.data.size();
}

void append_binary(std::string& body, const tensor& t) {
  if (t.type != dtype::string) {
    body.append(reinterpret_cast<const char*>(t.data.data()), t.data.size());
    return;
  }
  for (const auto& s : t.strings) {
    auto len = static_cast<uint32_t>(s.size());
    const char prefix[4] = {static_cast<char>(len), static_cast<char>(len >> 8),
                            static_cast<char>(len >> 16), static_cast<char>(len >> 24)};
    body.append(prefix, 4);
    body.append(s);
  }
}

void write_signatures(json_writer& w, const char* key, const std::vector<tensor_signature>& list) {
  w.Key(key);
  w.StartArray();
  for (const auto& sig : list) {
    w.StartObject();
    w.Key("name");
    write_string(w, sig.name);
    w.Key("datatype");
    w.String(dtype_v2_name(sig.type));
    w.Key("shape");
    write_shape(w, sig.dims);
    w.EndObject();
  }
  w.EndArray();
}

} // namespace

std::vector<output>
select_outputs(const infer_request& req,
               const std::vector<std::pair<std::string, const tensor*>>& model_outputs) {
  std::vector<output> selected;
  if (req.outputs.empty()) {
    selected.reserve(model_outputs.size());
    for (const auto& [name, value] : model_outputs)
      selected.push_back({name, value, req.binary_output_default});
    return selected;
  }
  selected.reserve(req.outputs.size());
  for (size_t i = 0; i < req.outputs.size(); ++i) {
    const auto& wanted = req.outputs[i];
    const tensor* value = nullptr;
    for (const auto& [name, t] : model_outputs)
      if (name == wanted.name)
        value = t;
    if (!value) {
      std::string names;
      for (const auto& mo : model_outputs)
        names += (names.empty() ? "" : ", ") + mo.first;
      throw serve_exception(errc::invalid_argument, "outputs[" + std::to_string(i) +
                                                        "].name: unknown output '" + wanted.name +
                                                        "'; the model has " + names);
    }
    selected.push_back({wanted.name, value, wanted.binary});
  }
  return selected;
}

encoded_response encode_infer_response(const std::string& model_name,
                                       const std::string& model_version, const infer_request& req,
                                       const std::vector<output>& outputs) {
  rapidjson::StringBuffer buf;
  json_writer w(buf);
  size_t binary_bytes = 0;
  w.StartObject();
  if (!req.id.empty()) {
    w.Key("id");
    write_string(w, req.id);
  }
  w.Key("model_name");
  write_string(w, model_name);
  w.Key("model_version");
  write_string(w, model_version);
  w.Key("outputs");
  w.StartArray();
  for (const auto& o : outputs) {
    if (!o.value)
      throw serve_exception(errc::internal, "output '" + o.name + "' has no tensor");
    const tensor& t = *o.value;
    size_t size = binary_size(o);
    w.StartObject();
    w.Key("name");
    write_string(w, o.name);
    w.Key("datatype");
    w.String(dtype_v2_name(t.type));
    w.Key("shape");
    write_shape(w, t.shape);
    if (o.binary) {
      w.Key("parameters");
      w.StartObject();
      w.Key("binary_data_size");
      w.Uint64(size);
      w.EndObject();
      binary_bytes += size;
    } else {
      w.Key("data");
      w.StartArray();
      for (int64_t i = 0, n = t.numel(); i < n; ++i)
        write_tensor_element(w, t, i);
      w.EndArray();
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();

  encoded_response response;
  response.body.reserve(buf.GetSize() + binary_bytes);
  response.body.append(buf.GetString(), buf.GetSize());
  if (binary_bytes > 0) {
    response.header_length = buf.GetSize();
    for (const auto& o : outputs)
      if (o.binary)
        append_binary(response.body, *o.value);
  }
  return response;
}

std::string error_body(const std::string& message) {
  rapidjson::StringBuffer buf;
  json_writer w(buf);
  w.StartObject();
  w.Key("error");
  write_string(w, message);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string model_metadata_json(const std::string& name, const std::vector<std::string>& versions,
                                const std::string& platform,
                                const std::vector<tensor_signature>& inputs,
                                const std::vector<tensor_signature>& outputs) {
  rapidjson::StringBuffer buf;
  json_writer w(buf);
  w.StartObject();
  w.Key("name");
  write_string(w, name);
  w.Key("versions");
  w.StartArray();
  for (const auto& v : versions)
    write_string(w, v);
  w.EndArray();
  w.Key("platform");
  write_string(w, platform);
  write_signatures(w, "inputs", inputs);
  write_signatures(w, "outputs", outputs);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

encoded_request encode_binary_request(const infer_request& req) {
  rapidjson::StringBuffer buf;
  json_writer w(buf);
  w.StartObject();
  if (req.has_id) {
    w.Key("id");
    write_string(w, req.id);
  }
  if (req.binary_output_default) {
    w.Key("parameters");
    w.StartObject();
    w.Key("binary_data_output");
    w.Bool(true);
    w.EndObject();
  }
  std::vector<size_t> sizes;
  w.Key("inputs");
  w.StartArray();
  for (auto& in : req.inputs) {
    sizes.push_back(binary_size(output{in.name, &in.value, true}));
    w.StartObject();
    w.Key("name");
    write_string(w, in.name);
    w.Key("datatype");
    w.String(dtype_v2_name(in.value.type));
    w.Key("shape");
    write_shape(w, in.value.shape);
    w.Key("parameters");
    w.StartObject();
    w.Key("binary_data_size");
    w.Uint64(sizes.back());
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  if (!req.outputs.empty()) {
    w.Key("outputs");
    w.StartArray();
    for (auto& out : req.outputs) {
      w.StartObject();
      w.Key("name");
      write_string(w, out.name);
      w.Key("parameters");
      w.StartObject();
      w.Key("binary_data");
      w.Bool(out.binary);
      w.EndObject();
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
  encoded_request out;
  out.header_length = buf.GetSize();
  size_t total = out.header_length;
  for (auto n : sizes)
    total += n;
  out.body.reserve(total);
  out.body.assign(buf.GetString(), buf.GetSize());
  for (auto& in : req.inputs)
    append_binary(out.body, in.value);
  return out;
}

} // namespace serve::v2
