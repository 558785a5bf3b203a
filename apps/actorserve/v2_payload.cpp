// v2 metadata parsing and random tensor payloads. See v2_payload.hpp.
#include "apps/actorserve/v2_payload.hpp"
#include "libserve/json.hpp"

#include <cstring>
#include <map>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace serve::bench {

int v2_element_size(const std::string& datatype) {
  static const std::map<std::string, int> sizes = {
      {"BOOL", 1}, {"UINT8", 1}, {"UINT16", 2}, {"UINT32", 4}, {"UINT64", 8},
      {"INT8", 1}, {"INT16", 2}, {"INT32", 4},  {"INT64", 8},  {"FP16", 2},
      {"BF16", 2}, {"FP32", 4},  {"FP64", 8},   {"BYTES", 0}};
  auto it = sizes.find(datatype);
  return it == sizes.end() ? -1 : it->second;
}

std::string parse_v2_metadata(const std::string& body, v2_model& model) {
  rapidjson::Document doc;
  if (parse_json(doc, body) || !doc.IsObject())
    return "the metadata is not a JSON object: " + body.substr(0, 200);
  if (!doc.HasMember("inputs") || !doc["inputs"].IsArray() || doc["inputs"].Empty())
    return "the metadata has no \"inputs\" array: " + body.substr(0, 200);
  for (auto& in : doc["inputs"].GetArray()) {
    if (!in.IsObject() || !in.HasMember("name") || !in["name"].IsString() ||
        !in.HasMember("datatype") || !in["datatype"].IsString() || !in.HasMember("shape") ||
        !in["shape"].IsArray())
      return "an input lacks name, datatype or shape: " + body.substr(0, 200);
    v2_input input{in["name"].GetString(), in["datatype"].GetString(), {}};
    if (v2_element_size(input.datatype) < 0)
      return "input '" + input.name + "' has datatype " + input.datatype + ", which is not a v2 " +
             "datatype";
    for (auto& d : in["shape"].GetArray()) {
      if (!d.IsInt64())
        return "input '" + input.name + "' has a shape that is not a list of integers";
      input.shape.push_back(d.GetInt64() < 0 ? 1 : d.GetInt64()); // variable dims: 1
    }
    model.inputs.push_back(std::move(input));
  }
  if (doc.HasMember("outputs") && doc["outputs"].IsArray())
    for (auto& out : doc["outputs"].GetArray())
      if (out.IsObject() && out.HasMember("name") && out["name"].IsString())
        model.outputs.emplace_back(out["name"].GetString());
  return {};
}

int64_t element_count(const v2_input& in) {
  int64_t n = 1;
  for (auto d : in.shape)
    n *= d;
  return n;
}

namespace {

/// FP32 to IEEE half, truncating the mantissa: too small becomes (signed) 0, too large infinity.
uint16_t fp32_to_fp16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  int32_t exponent = static_cast<int32_t>((x >> 23) & 0xff) - 127 + 15;
  uint32_t mantissa = x & 0x7fffff;
  if (exponent <= 0) {
    if (exponent < -10)
      return static_cast<uint16_t>(sign);
    mantissa |= 0x800000;
    return static_cast<uint16_t>(sign | (mantissa >> (14 - exponent)));
  }
  if (exponent >= 31)
    return static_cast<uint16_t>(sign | 0x7c00);
  return static_cast<uint16_t>(sign | (static_cast<uint32_t>(exponent) << 10) | (mantissa >> 13));
}

/// Random tensor data, written both as JSON values and as little-endian bytes. Draws from the
/// generator's engine, which must outlive it.
class tensor_filler {
public:
  explicit tensor_filler(std::mt19937_64& rng) : rng_(rng) {}

  template <class Writer> void fill(const v2_input& in, Writer* json, std::string* raw) {
    static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "raw tensors are little-endian");
    int64_t n = element_count(in);
    const auto& t = in.datatype;
    for (int64_t i = 0; i < n; ++i) {
      if (t == "FP32" || t == "FP64" || t == "FP16" || t == "BF16") {
        float v = std::uniform_real_distribution<float>(0.0f, 1.0f)(rng_);
        if (json)
          json->Double(static_cast<double>(v));
        if (raw && t == "FP32")
          append(*raw, v);
        else if (raw && t == "FP64")
          append(*raw, static_cast<double>(v));
        else if (raw && t == "FP16")
          append(*raw, fp32_to_fp16(v));
        else if (raw) {
          uint32_t bits;
          std::memcpy(&bits, &v, 4);
          append(*raw, static_cast<uint16_t>(bits >> 16));
        }
      } else if (t == "BOOL") {
        bool v = rng_() & 1;
        if (json)
          json->Bool(v);
        if (raw)
          raw->push_back(v ? 1 : 0);
      } else if (t == "BYTES") {
        std::string s(8, 'a');
        for (auto& c : s)
          c = static_cast<char>('a' + rng_() % 26);
        if (json)
          json->String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
        if (raw) {
          append(*raw, static_cast<uint32_t>(s.size()));
          *raw += s;
        }
      } else { // integers: small non-negative values fit every width
        auto v = static_cast<int64_t>(rng_() % 100);
        if (json)
          json->Int64(v);
        if (raw)
          append_int(*raw, v, static_cast<size_t>(v2_element_size(t)));
      }
    }
  }

private:
  template <class T> static void append(std::string& out, T v) {
    char bytes[sizeof(T)];
    std::memcpy(bytes, &v, sizeof(T));
    out.append(bytes, sizeof(T));
  }
  static void append_int(std::string& out, int64_t v, size_t width) {
    char bytes[8];
    std::memcpy(bytes, &v, 8);
    out.append(bytes, width); // little-endian: the low bytes come first
  }

  std::mt19937_64& rng_;
};

void write_input_header(rapidjson::Writer<rapidjson::StringBuffer>& w, const v2_input& in) {
  w.Key("name");
  w.String(in.name.c_str());
  w.Key("shape");
  w.StartArray();
  for (auto d : in.shape)
    w.Int64(d);
  w.EndArray();
  w.Key("datatype");
  w.String(in.datatype.c_str());
}

/// "outputs": every output with binary_data, "parameters": {"binary_data_output": true}.
void write_binary_outputs(rapidjson::Writer<rapidjson::StringBuffer>& w, const v2_model& model) {
  if (!model.outputs.empty()) {
    w.Key("outputs");
    w.StartArray();
    for (auto& name : model.outputs) {
      w.StartObject();
      w.Key("name");
      w.String(name.c_str());
      w.Key("parameters");
      w.StartObject();
      w.Key("binary_data");
      w.Bool(true);
      w.EndObject();
      w.EndObject();
    }
    w.EndArray();
  }
  w.Key("parameters");
  w.StartObject();
  w.Key("binary_data_output");
  w.Bool(true);
  w.EndObject();
}

} // namespace

std::string v2_payload_generator::json_body(const v2_model& model) {
  tensor_filler filler(rng_);
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("inputs");
  w.StartArray();
  for (auto& in : model.inputs) {
    w.StartObject();
    write_input_header(w, in);
    w.Key("data");
    w.StartArray();
    filler.fill(in, &w, nullptr);
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string v2_payload_generator::binary_body(const v2_model& model, size_t& header_length) {
  tensor_filler filler(rng_);
  std::vector<std::string> raws;
  for (auto& in : model.inputs) {
    raws.emplace_back();
    filler.fill<rapidjson::Writer<rapidjson::StringBuffer>>(in, nullptr, &raws.back());
  }
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("inputs");
  w.StartArray();
  for (size_t i = 0; i < model.inputs.size(); ++i) {
    w.StartObject();
    write_input_header(w, model.inputs[i]);
    w.Key("parameters");
    w.StartObject();
    w.Key("binary_data_size");
    w.Uint64(raws[i].size());
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  write_binary_outputs(w, model);
  w.EndObject();
  std::string body(buf.GetString(), buf.GetSize());
  header_length = body.size();
  for (auto& raw : raws)
    body += raw;
  return body;
}

} // namespace serve::bench
