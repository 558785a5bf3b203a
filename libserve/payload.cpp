#include "libserve/payload.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string_view>

#include "libserve/future.hpp"

namespace serve {

namespace {

[[noreturn]] void fail(const std::string& what, const std::string& reason) {
  throw serve_exception(errc::invalid_argument, what + ": " + reason);
}

const char* json_kind(const rapidjson::Value& v) {
  switch (v.GetType()) {
    case rapidjson::kNullType: return "null";
    case rapidjson::kFalseType:
    case rapidjson::kTrueType: return "a boolean";
    case rapidjson::kObjectType: return "an object";
    case rapidjson::kArrayType: return "an array";
    case rapidjson::kStringType: return "a string";
    case rapidjson::kNumberType: return "a number";
  }
  return "a value";
}

/// The shape of a nested array, checked to be rectangular while the leaves are collected.
void collect_shape(const rapidjson::Value& v, size_t depth, std::vector<int64_t>& shape,
                   std::vector<const rapidjson::Value*>& leaves, const std::string& what) {
  if (!v.IsArray()) {
    if (depth != shape.size())
      fail(what, "ragged nesting: a scalar at depth " + std::to_string(depth) + " where depth "
                   + std::to_string(shape.size()) + " was expected");
    leaves.push_back(&v);
    return;
  }
  auto n = static_cast<int64_t>(v.Size());
  if (depth == shape.size()) {
    if (!leaves.empty())
      fail(what, "ragged nesting: a list where a scalar was expected");
    shape.push_back(n);
  } else if (depth > shape.size() || shape[depth] != n) {
    fail(what, "ragged nesting: a list of " + std::to_string(n) + " where "
                 + (depth < shape.size() ? std::to_string(shape[depth]) : "a scalar")
                 + " was expected at depth " + std::to_string(depth));
  }
  for (auto& item : v.GetArray())
    collect_shape(item, depth + 1, shape, leaves, what);
}

double number_of(const rapidjson::Value& v, const std::string& what, dtype type) {
  if (v.IsNumber())
    return v.GetDouble();
  if (v.IsBool() && type == dtype::boolean)
    return v.GetBool() ? 1.0 : 0.0;
  fail(what, std::string("expected ") + dtype_name(type) + " values, got " + json_kind(v));
}

template <class T>
void fill_integers(tensor& t, const std::vector<const rapidjson::Value*>& leaves,
                   const std::string& what) {
  auto* out = t.as<T>();
  for (size_t i = 0; i < leaves.size(); ++i) {
    const auto& v = *leaves[i];
    if (v.IsInt64()) {
      int64_t x = v.GetInt64();
      if (x < static_cast<int64_t>(std::numeric_limits<T>::min())
          || (x > 0 && static_cast<uint64_t>(x) > static_cast<uint64_t>(std::numeric_limits<T>::max())))
        fail(what, std::to_string(x) + " is out of range for " + dtype_name(t.type));
      out[i] = static_cast<T>(x);
    } else if (v.IsUint64() && std::is_same_v<T, uint64_t>) {
      out[i] = static_cast<T>(v.GetUint64());
    } else if (v.IsDouble() && std::floor(v.GetDouble()) == v.GetDouble()) {
      // An integral double (1e3) must also fit: converting one that does not (1e300) is
      // undefined behaviour (found by scripts/fuzz json_payload).
      double d = v.GetDouble();
      if (!(static_cast<long double>(d) >= std::numeric_limits<T>::min()
            && static_cast<long double>(d) <= std::numeric_limits<T>::max()))
      {
        char text[32];
        std::snprintf(text, sizeof text, "%.17g", d);
        fail(what, std::string(text) + " is out of range for " + dtype_name(t.type));
      }
      out[i] = static_cast<T>(d);
    } else {
      fail(what, std::string("expected ") + dtype_name(t.type) + " values, got "
                   + (v.IsNumber() ? "a fraction" : json_kind(v)));
    }
  }
}

template <class T>
void fill_floats(tensor& t, const std::vector<const rapidjson::Value*>& leaves,
                 const std::string& what) {
  auto* out = t.as<T>();
  for (size_t i = 0; i < leaves.size(); ++i)
    out[i] = static_cast<T>(number_of(*leaves[i], what, t.type));
}

template <class T>
void write_float(json_writer& w, T x) {
  if (!std::isfinite(x)) {
    w.Null(); // JSON has no NaN/Inf
    return;
  }
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf) - 2, x);
  auto len = static_cast<size_t>(res.ptr - buf);
  if (std::string_view(buf, len).find_first_of(".e") == std::string_view::npos) {
    buf[len++] = '.'; // keep floats recognisable as floats: 2.0, not 2
    buf[len++] = '0';
  }
  w.RawValue(buf, len, rapidjson::kNumberType);
}

} // namespace

tensor tensor_from_json(const rapidjson::Value& value, dtype type, const std::string& what) {
  std::vector<int64_t> shape;
  std::vector<const rapidjson::Value*> leaves;
  collect_shape(value, 0, shape, leaves, what);
  tensor t = tensor::zeros(type, shape);
  switch (type) {
    case dtype::float32: fill_floats<float>(t, leaves, what); break;
    case dtype::float64: fill_floats<double>(t, leaves, what); break;
    case dtype::int64: fill_integers<int64_t>(t, leaves, what); break;
    case dtype::int32: fill_integers<int32_t>(t, leaves, what); break;
    case dtype::int16: fill_integers<int16_t>(t, leaves, what); break;
    case dtype::int8: fill_integers<int8_t>(t, leaves, what); break;
    case dtype::uint8: fill_integers<uint8_t>(t, leaves, what); break;
    case dtype::uint16: fill_integers<uint16_t>(t, leaves, what); break;
    case dtype::uint32: fill_integers<uint32_t>(t, leaves, what); break;
    case dtype::uint64: fill_integers<uint64_t>(t, leaves, what); break;
    case dtype::boolean: {
      auto* out = t.as<uint8_t>();
      for (size_t i = 0; i < leaves.size(); ++i)
        out[i] = number_of(*leaves[i], what, type) != 0.0 ? 1 : 0;
      break;
    }
    case dtype::string:
      for (size_t i = 0; i < leaves.size(); ++i) {
        if (!leaves[i]->IsString())
          fail(what, std::string("expected strings, got ") + json_kind(*leaves[i]));
        t.strings[i] = leaves[i]->GetString();
      }
      break;
    default:
      fail(what, std::string("inputs of type ") + dtype_name(type)
                   + " cannot be given as JSON");
  }
  return t;
}

void write_tensor_element(json_writer& w, const tensor& t, int64_t i) {
  switch (t.type) {
    case dtype::float32: write_float(w, t.as<float>()[i]); break;
    case dtype::float64: write_float(w, t.as<double>()[i]); break;
    case dtype::int64: w.Int64(t.as<int64_t>()[i]); break;
    case dtype::int32: w.Int(t.as<int32_t>()[i]); break;
    case dtype::int16: w.Int(t.as<int16_t>()[i]); break;
    case dtype::int8: w.Int(t.as<int8_t>()[i]); break;
    case dtype::uint8: w.Uint(t.as<uint8_t>()[i]); break;
    case dtype::uint16: w.Uint(t.as<uint16_t>()[i]); break;
    case dtype::uint32: w.Uint(t.as<uint32_t>()[i]); break;
    case dtype::uint64: w.Uint64(t.as<uint64_t>()[i]); break;
    case dtype::float16: write_float(w, half_to_float(t.as<uint16_t>()[i])); break;
    case dtype::bfloat16: write_float(w, bfloat16_to_float(t.as<uint16_t>()[i])); break;
    case dtype::boolean: w.Bool(t.as<uint8_t>()[i] != 0); break;
    case dtype::string:
      w.String(t.strings[i].data(), static_cast<rapidjson::SizeType>(t.strings[i].size()));
      break;
    default: w.Null(); break;
  }
}

namespace {

void write_nested(json_writer& w, const tensor& t, size_t dim, int64_t& index) {
  if (dim == t.shape.size()) {
    write_tensor_element(w, t, index++);
    return;
  }
  w.StartArray();
  for (int64_t k = 0; k < t.shape[dim]; ++k)
    write_nested(w, t, dim + 1, index);
  w.EndArray();
}

} // namespace

void write_tensor_rows(json_writer& w, const tensor& t, int64_t first_row, int64_t rows,
                       bool drop_row_dim) {
  if (t.shape.empty()) {
    write_tensor_element(w, t, 0);
    return;
  }
  int64_t row_size = t.shape[0] == 0 ? 0 : t.numel() / t.shape[0];
  int64_t index = first_row * row_size;
  bool drop = drop_row_dim && rows == 1;
  if (!drop)
    w.StartArray();
  for (int64_t r = 0; r < rows; ++r)
    write_nested(w, t, 1, index);
  if (!drop)
    w.EndArray();
}

tensor slice_rows(const tensor& t, int64_t first_row, int64_t rows) {
  auto shape = t.shape;
  shape[0] = rows;
  tensor out = tensor::zeros(t.type, shape);
  int64_t row_elems = t.shape[0] == 0 ? 0 : t.numel() / t.shape[0];
  if (t.type == dtype::string) {
    std::copy(t.strings.begin() + first_row * row_elems,
              t.strings.begin() + (first_row + rows) * row_elems, out.strings.begin());
  } else {
    size_t row_bytes = static_cast<size_t>(row_elems) * dtype_size(t.type);
    std::memcpy(out.data.data(), t.data.data() + first_row * row_bytes, rows * row_bytes);
  }
  return out;
}

tensor concat_rows(const std::vector<const tensor*>& parts) {
  auto shape = parts.front()->shape;
  shape[0] = 0;
  for (auto* p : parts)
    shape[0] += p->shape[0];
  tensor out = tensor::zeros(parts.front()->type, shape);
  size_t byte_offset = 0;
  size_t string_offset = 0;
  for (auto* p : parts) {
    if (p->type == dtype::string) {
      std::copy(p->strings.begin(), p->strings.end(), out.strings.begin() + string_offset);
      string_offset += p->strings.size();
    } else {
      std::memcpy(out.data.data() + byte_offset, p->data.data(), p->data.size());
      byte_offset += p->data.size();
    }
  }
  return out;
}

} // namespace serve
