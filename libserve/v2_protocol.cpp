// Parsing of Open Inference Protocol v2 infer requests (see v2_protocol.hpp); the replies are
// written in v2_response.cpp.
#include "libserve/v2_protocol.hpp"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <type_traits>

#include <rapidjson/document.h>

#include "libserve/future.hpp"
#include "libserve/json.hpp"

namespace serve::v2 {

namespace {

using json = rapidjson::Value;

[[noreturn]] void fail(const std::string& message) {
  throw serve_exception(errc::invalid_argument, message);
}

struct v2_name {
  const char* name;
  dtype type;
};

constexpr v2_name v2_names[] = {
    {"BOOL", dtype::boolean},  {"UINT8", dtype::uint8},   {"UINT16", dtype::uint16},
    {"UINT32", dtype::uint32}, {"UINT64", dtype::uint64}, {"INT8", dtype::int8},
    {"INT16", dtype::int16},   {"INT32", dtype::int32},   {"INT64", dtype::int64},
    {"FP16", dtype::float16},  {"FP32", dtype::float32},  {"FP64", dtype::float64},
    {"BYTES", dtype::string},  {"BF16", dtype::bfloat16},
};

std::string v2_name_list() {
  std::string s;
  for (const auto& n : v2_names)
    s += (s.empty() ? "" : ", ") + std::string(n.name);
  return s;
}

std::string quoted(std::string_view s) {
  return "'" + std::string(s) + "'";
}

/// "inputs[0].shape"; a top-level field is named alone ("parameters").
std::string field(const std::string& where, const char* key) {
  return where.empty() ? key : where + "." + key;
}

/// A JSON value as an error message shows it: "a string", "1.5", "-3".
std::string describe(const json& v) {
  if (v.IsNull())
    return "null";
  if (v.IsBool())
    return v.GetBool() ? "true" : "false";
  if (v.IsObject())
    return "an object";
  if (v.IsArray())
    return "an array";
  if (v.IsString())
    return "a string";
  if (v.IsInt64())
    return std::to_string(v.GetInt64());
  if (v.IsUint64())
    return std::to_string(v.GetUint64());
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.17g", v.GetDouble());
  return buf;
}

/// The member `key` of object `obj`, or nullptr.
const json* member(const json& obj, const char* key) {
  auto it = obj.FindMember(key);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

const json* object_member(const json& obj, const char* key, const std::string& where) {
  const json* v = member(obj, key);
  if (v && !v->IsObject())
    fail(field(where, key) + ": expected an object");
  return v;
}

std::string string_member(const json& obj, const char* key, const std::string& where) {
  const json* v = member(obj, key);
  if (!v)
    fail(field(where, key) + " is missing");
  if (!v->IsString())
    fail(field(where, key) + ": expected a string, got " + describe(*v));
  return std::string(v->GetString(), v->GetStringLength());
}

/// parameters.<key> as a bool, if present.
std::optional<bool> bool_parameter(const json* params, const char* key, const std::string& where) {
  const json* v = params ? member(*params, key) : nullptr;
  if (!v)
    return std::nullopt;
  if (!v->IsBool())
    fail(field(where, "parameters.") + key + ": expected true or false, got " + describe(*v));
  return v->GetBool();
}

void refuse_parameter(const json* params, const char* key, const std::string& where) {
  if (params && member(*params, key))
    fail(field(where, "parameters.") + key + " is not supported");
}

std::vector<int64_t> parse_shape(const json& in, const std::string& where) {
  const json* v = member(in, "shape");
  if (!v)
    fail(where + ".shape is missing");
  if (!v->IsArray())
    fail(where + ".shape: expected an array of non-negative integers, got " + describe(*v));
  std::vector<int64_t> shape;
  shape.reserve(v->Size());
  int64_t numel = 1;
  for (const auto& d : v->GetArray()) {
    if (!d.IsInt64() || d.GetInt64() < 0)
      fail(where + ".shape: expected an array of non-negative integers, got " + describe(d));
    shape.push_back(d.GetInt64());
    if (__builtin_mul_overflow(numel, shape.back(), &numel))
      fail(where + ".shape: " + shape_to_string(shape) + " has too many elements");
  }
  return shape;
}

// ---- JSON "data" ------------------------------------------------------------------------------

/// Leaves of a nested array (a non-array counts as one).
size_t count_leaves(const json& v) {
  if (!v.IsArray())
    return 1;
  size_t n = 0;
  for (const auto& item : v.GetArray())
    n += count_leaves(item);
  return n;
}

/// Calls store(leaf, flat_index) for every leaf of `v` in row-major order.
template <class Store> void for_each_leaf(const json& v, size_t& index, Store& store) {
  if (!v.IsArray()) {
    store(v, index++);
    return;
  }
  for (const auto& item : v.GetArray())
    for_each_leaf(item, index, store);
}

template <class T> void fill_data(tensor& t, const json& data, const std::string& where) {
  const char* type_name = dtype_v2_name(t.type);
  auto bad = [&](const json& v, size_t i, const std::string& expected) {
    fail(where + ": data[" + std::to_string(i) + "] is " + describe(v) + "; " + type_name +
         " needs " + expected);
  };
  size_t index = 0;
  if constexpr (std::is_same_v<T, std::string>) {
    auto store = [&](const json& v, size_t i) {
      if (!v.IsString())
        bad(v, i, "strings");
      t.strings[i].assign(v.GetString(), v.GetStringLength());
    };
    for_each_leaf(data, index, store);
  } else {
    auto* out = t.as<T>();
    auto store = [&](const json& v, size_t i) {
      if (t.type == dtype::boolean) {
        if (!v.IsBool())
          bad(v, i, "true or false");
        out[i] = v.GetBool() ? 1 : 0;
      } else if (t.type == dtype::float16 || t.type == dtype::bfloat16) {
        if (!v.IsNumber())
          bad(v, i, "numbers");
        auto f = static_cast<float>(v.GetDouble());
        out[i] = t.type == dtype::float16 ? float_to_half(f) : float_to_bfloat16(f);
      } else if constexpr (std::is_floating_point_v<T>) {
        if (!v.IsNumber())
          bad(v, i, "numbers");
        out[i] = static_cast<T>(v.GetDouble());
      } else if constexpr (std::is_signed_v<T>) {
        if (!v.IsInt64() || v.GetInt64() < std::numeric_limits<T>::min() ||
            v.GetInt64() > std::numeric_limits<T>::max())
          bad(v, i,
              "integers in [" + std::to_string(std::numeric_limits<T>::min()) + ", " +
                  std::to_string(std::numeric_limits<T>::max()) + "]");
        out[i] = static_cast<T>(v.GetInt64());
      } else {
        if (!v.IsUint64() || v.GetUint64() > std::numeric_limits<T>::max())
          bad(v, i, "integers in [0, " + std::to_string(std::numeric_limits<T>::max()) + "]");
        out[i] = static_cast<T>(v.GetUint64());
      }
    };
    for_each_leaf(data, index, store);
  }
}

tensor tensor_from_data(dtype type, std::vector<int64_t> shape, const json& data,
                        const std::string& where) {
  if (!data.IsArray())
    fail(where + ": data must be an array (flat or nested), got " + describe(data));
  size_t n = count_leaves(data);
  if (static_cast<int64_t>(n) != shape_numel(shape))
    fail(where + ": data has " + std::to_string(n) + " elements but shape " +
         shape_to_string(shape) + " needs " + std::to_string(shape_numel(shape)));
  tensor t = tensor::zeros(type, std::move(shape));
  switch (type) {
  case dtype::boolean:
  case dtype::uint8:
    fill_data<uint8_t>(t, data, where);
    break;
  case dtype::uint16:
    fill_data<uint16_t>(t, data, where);
    break;
  case dtype::uint32:
    fill_data<uint32_t>(t, data, where);
    break;
  case dtype::uint64:
    fill_data<uint64_t>(t, data, where);
    break;
  case dtype::int8:
    fill_data<int8_t>(t, data, where);
    break;
  case dtype::int16:
    fill_data<int16_t>(t, data, where);
    break;
  case dtype::int32:
    fill_data<int32_t>(t, data, where);
    break;
  case dtype::int64:
    fill_data<int64_t>(t, data, where);
    break;
  case dtype::float16:
  case dtype::bfloat16:
    fill_data<uint16_t>(t, data, where);
    break;
  case dtype::float32:
    fill_data<float>(t, data, where);
    break;
  case dtype::float64:
    fill_data<double>(t, data, where);
    break;
  case dtype::string:
    fill_data<std::string>(t, data, where);
    break;
  case dtype::undefined:
    break;
  }
  return t;
}

// ---- binary tensors ---------------------------------------------------------------------------

uint32_t read_u32_le(const char* p) {
  auto* b = reinterpret_cast<const unsigned char*>(p);
  return uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24;
}

/// A BYTES tensor from its serialized elements (4-byte little-endian length, then the bytes).
tensor strings_from_bytes(std::string_view bytes, std::vector<int64_t> shape,
                          const std::string& what) {
  tensor t;
  t.type = dtype::string;
  t.shape = std::move(shape);
  auto n = static_cast<size_t>(shape_numel(t.shape));
  t.strings.reserve(std::min(n, bytes.size() / 4)); // n comes from the request: bound it
  size_t pos = 0;
  while (pos < bytes.size()) {
    if (bytes.size() - pos < 4)
      fail(what + ": element " + std::to_string(t.strings.size()) +
           " has a truncated 4-byte length prefix");
    uint32_t len = read_u32_le(bytes.data() + pos);
    pos += 4;
    if (len > bytes.size() - pos)
      fail(what + ": element " + std::to_string(t.strings.size()) + " is " + std::to_string(len) +
           " bytes long but only " + std::to_string(bytes.size() - pos) + " bytes are left");
    if (t.strings.size() == n)
      fail(what + ": more than the " + std::to_string(n) + " elements shape " +
           shape_to_string(t.shape) + " needs");
    t.strings.emplace_back(bytes.data() + pos, len);
    pos += len;
  }
  if (t.strings.size() != n)
    fail(what + ": " + std::to_string(t.strings.size()) + " elements but shape " +
         shape_to_string(t.shape) + " needs " + std::to_string(n));
  return t;
}

/// A numeric tensor holding a copy of `bytes` (the one copy out of the request body).
tensor tensor_from_bytes(dtype type, std::vector<int64_t> shape, std::string_view bytes) {
  tensor t;
  t.type = type;
  t.shape = std::move(shape);
  auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  t.data.assign(p, p + bytes.size());
  return t;
}

/// Consumes the binary tail in input order.
class binary_tail {
public:
  binary_tail(std::string_view bytes, bool header_given)
      : rest_(bytes), header_given_(header_given) {}

  std::string_view take(size_t n, const std::string& input_name) {
    if (n > rest_.size())
      fail("binary data ends before input " + quoted(input_name) + " (needs " + std::to_string(n) +
           " bytes, " + std::to_string(rest_.size()) + " left)" +
           (header_given_ ? "" : "; the Inference-Header-Content-Length header was not sent"));
    auto part = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return part;
  }

  size_t left() const { return rest_.size(); }

private:
  std::string_view rest_;
  bool header_given_;
};

input parse_input(const json& in, size_t i, binary_tail& tail, bool borrow_binary) {
  std::string where = "inputs[" + std::to_string(i) + "]";
  if (!in.IsObject())
    fail(where + ": expected an object");
  input result;
  result.name = string_member(in, "name", where);
  auto datatype = string_member(in, "datatype", where);
  auto type = dtype_from_v2(datatype);
  if (!type)
    fail(where + ".datatype: unknown datatype " + quoted(datatype) + "; expected one of " +
         v2_name_list());
  auto shape = parse_shape(in, where);
  const json* params = object_member(in, "parameters", where);
  refuse_parameter(params, "shared_memory_region", where);
  const json* size_json = params ? member(*params, "binary_data_size") : nullptr;
  const json* data = member(in, "data");
  if (size_json && !size_json->IsUint64())
    fail(where + ".parameters.binary_data_size: expected a non-negative integer, got " +
         describe(*size_json));
  where += " (" + quoted(result.name) + ")";
  if ((size_json != nullptr) == (data != nullptr))
    fail(where + ": needs exactly one of \"data\" and parameters.binary_data_size; " +
         (data ? "both are set" : "neither is set"));
  if (data) {
    result.value = tensor_from_data(*type, std::move(shape), *data, where);
    return result;
  }
  uint64_t size = size_json->GetUint64();
  if (*type != dtype::string) {
    uint64_t needed = 0;
    if (__builtin_mul_overflow(static_cast<uint64_t>(shape_numel(shape)), dtype_size(*type),
                               &needed))
      fail(where + ": shape " + shape_to_string(shape) + " is too large for " + datatype);
    if (size != needed)
      fail("binary data of input " + quoted(result.name) + ": binary_data_size " +
           std::to_string(size) + " but " + datatype + " " + shape_to_string(shape) + " needs " +
           std::to_string(needed) + " bytes");
  }
  auto bytes = tail.take(size, result.name);
  if (borrow_binary && *type != dtype::string) {
    result.value.type = *type;
    result.value.shape = std::move(shape);
    result.bytes = bytes;
    return result;
  }
  result.value = *type == dtype::string
                     ? strings_from_bytes(bytes, std::move(shape),
                                          "binary data of input " + quoted(result.name))
                     : tensor_from_bytes(*type, std::move(shape), bytes);
  return result;
}

requested_output parse_output(const json& out, size_t i) {
  std::string where = "outputs[" + std::to_string(i) + "]";
  if (!out.IsObject())
    fail(where + ": expected an object");
  requested_output result;
  result.name = string_member(out, "name", where);
  const json* params = object_member(out, "parameters", where);
  refuse_parameter(params, "shared_memory_region", where);
  refuse_parameter(params, "classification", where);
  result.binary = bool_parameter(params, "binary_data", where).value_or(false);
  return result;
}

// ---- raw binary requests ----------------------------------------------------------------------

infer_request parse_raw_request(std::string_view body, const std::vector<tensor_signature>& model) {
  if (model.size() != 1)
    fail("a raw binary request (Inference-Header-Content-Length: 0) needs a model with exactly "
         "one input; this one has " +
         std::to_string(model.size()));
  const auto& sig = model.front();
  std::string where = "raw binary input " + quoted(sig.name);
  auto shape = sig.dims;
  auto variable = [&](size_t from) {
    size_t n = 0;
    for (size_t d = from; d < shape.size(); ++d)
      n += shape[d] < 0 ? 1 : 0;
    return n;
  };
  if (!shape.empty() && shape[0] < 0 && (variable(1) > 0 || sig.type == dtype::string))
    shape[0] = 1; // the batch dim: one request, one row
  int64_t fixed = 1;
  for (auto d : shape)
    fixed *= d < 0 ? 1 : d;
  infer_request req;
  req.raw_binary = true;
  req.binary_output_default = true;
  if (sig.type == dtype::string) {
    if (variable(0) > 0 || fixed != 1)
      fail(where +
           ": a BYTES raw input needs dims of one element (like [1] or [-1]); the model "
           "declares " +
           shape_to_string(sig.dims));
    tensor t = tensor::zeros(dtype::string, shape);
    t.strings[0].assign(body.data(), body.size());
    req.inputs.push_back({sig.name, std::move(t)});
    return req;
  }
  if (variable(0) > 1)
    fail(where + ": cannot derive the shape from dims " + shape_to_string(sig.dims) +
         " (more than one variable dim)");
  bool derived = variable(0) == 1;
  auto row_bytes = static_cast<uint64_t>(fixed) * dtype_size(sig.type);
  for (auto& d : shape)
    if (d < 0)
      d = row_bytes == 0 ? 0 : static_cast<int64_t>(body.size() / row_bytes);
  auto needed = static_cast<uint64_t>(shape_numel(shape)) * dtype_size(sig.type);
  if (needed != body.size())
    fail(where + ": " + std::to_string(body.size()) + " bytes do not make a " +
         dtype_v2_name(sig.type) + " tensor of dims " + shape_to_string(sig.dims) + " (" +
         (derived ? "a multiple of " + std::to_string(row_bytes) : std::to_string(needed)) +
         " bytes expected)");
  req.inputs.push_back({sig.name, tensor_from_bytes(sig.type, std::move(shape), body)});
  return req;
}

} // namespace

std::optional<dtype> dtype_from_v2(std::string_view name) {
  for (const auto& n : v2_names)
    if (name == n.name)
      return n.type;
  return std::nullopt;
}

infer_request parse_infer_request(std::string_view body, std::optional<size_t> header_length,
                                  const std::vector<tensor_signature>& model_inputs,
                                  bool borrow_binary) {
  if (header_length && *header_length > body.size())
    fail("Inference-Header-Content-Length " + std::to_string(*header_length) +
         " is larger than the body (" + std::to_string(body.size()) + " bytes)");
  if (header_length && *header_length == 0)
    return parse_raw_request(body, model_inputs);
  size_t json_length = header_length.value_or(body.size());

  rapidjson::Document doc;
  json_read_options read_options;
  read_options.allow_nan_and_infinity = true;
  read_options.full_precision = true;
  if (auto error = parse_json(doc, body.substr(0, json_length), read_options))
    fail("request JSON: " + *error);
  if (!doc.IsObject())
    fail("request JSON: expected an object");

  infer_request req;
  if (const json* id = member(doc, "id")) {
    if (!id->IsString())
      fail("id: expected a string, got " + describe(*id));
    req.id.assign(id->GetString(), id->GetStringLength());
    req.has_id = true;
  }
  const json* params = object_member(doc, "parameters", "");
  req.binary_output_default = bool_parameter(params, "binary_data_output", "").value_or(false);

  const json* inputs = member(doc, "inputs");
  if (!inputs)
    fail("inputs is missing");
  if (!inputs->IsArray())
    fail("inputs: expected an array");
  binary_tail tail(body.substr(json_length), header_length.has_value());
  req.inputs.reserve(inputs->Size());
  for (rapidjson::SizeType i = 0; i < inputs->Size(); ++i)
    req.inputs.push_back(parse_input((*inputs)[i], i, tail, borrow_binary));
  if (tail.left() > 0)
    fail(std::to_string(tail.left()) + " bytes of binary data follow the last binary input");

  if (const json* outputs = member(doc, "outputs")) {
    if (!outputs->IsArray())
      fail("outputs: expected an array");
    req.outputs.reserve(outputs->Size());
    for (rapidjson::SizeType i = 0; i < outputs->Size(); ++i)
      req.outputs.push_back(parse_output((*outputs)[i], i));
  }
  return req;
}

} // namespace serve::v2
