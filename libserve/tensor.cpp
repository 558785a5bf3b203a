// Element-type facts and shape helpers for serve::tensor (see tensor.hpp).
#include "libserve/tensor.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>

#include "libserve/future.hpp"

namespace serve {

size_t dtype_size(dtype t) {
  switch (t) {
  case dtype::boolean:
  case dtype::int8:
  case dtype::uint8:
    return 1;
  case dtype::int16:
  case dtype::uint16:
  case dtype::float16:
  case dtype::bfloat16:
    return 2;
  case dtype::int32:
  case dtype::uint32:
  case dtype::float32:
    return 4;
  case dtype::int64:
  case dtype::uint64:
  case dtype::float64:
    return 8;
  case dtype::string:
  case dtype::undefined:
    return 0;
  }
  return 0;
}

const char* dtype_name(dtype t) {
  switch (t) {
  case dtype::float32:
    return "float32";
  case dtype::float16:
    return "float16";
  case dtype::float64:
    return "float64";
  case dtype::bfloat16:
    return "bfloat16";
  case dtype::int8:
    return "int8";
  case dtype::int16:
    return "int16";
  case dtype::int32:
    return "int32";
  case dtype::int64:
    return "int64";
  case dtype::uint8:
    return "uint8";
  case dtype::uint16:
    return "uint16";
  case dtype::uint32:
    return "uint32";
  case dtype::uint64:
    return "uint64";
  case dtype::boolean:
    return "bool";
  case dtype::string:
    return "string";
  case dtype::undefined:
    return "undefined";
  }
  return "undefined";
}

const char* dtype_v2_name(dtype t) {
  switch (t) {
  case dtype::float32:
    return "FP32";
  case dtype::float16:
    return "FP16";
  case dtype::float64:
    return "FP64";
  case dtype::bfloat16:
    return "BF16";
  case dtype::int8:
    return "INT8";
  case dtype::int16:
    return "INT16";
  case dtype::int32:
    return "INT32";
  case dtype::int64:
    return "INT64";
  case dtype::uint8:
    return "UINT8";
  case dtype::uint16:
    return "UINT16";
  case dtype::uint32:
    return "UINT32";
  case dtype::uint64:
    return "UINT64";
  case dtype::boolean:
    return "BOOL";
  case dtype::string:
    return "BYTES";
  case dtype::undefined:
    return "UNDEFINED";
  }
  return "UNDEFINED";
}

int64_t shape_numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  bool negative = false;
  for (auto d : shape) {
    if (d < 0) {
      negative = true;
      d = -d;
    }
    if (d != 0 && n > INT64_MAX / d)
      throw serve_exception(errc::invalid_argument,
                            "shape " + shape_to_string(shape)
                              + " has more elements than a 64-bit count can hold");
    n *= d;
  }
  return negative ? -n : n;
}

size_t shape_bytes(const std::vector<int64_t>& shape, dtype type) {
  int64_t n = shape_numel(shape);
  if (n < 0)
    throw serve_exception(errc::invalid_argument,
                          "shape " + shape_to_string(shape) + " has a negative dimension");
  size_t width = type == dtype::string ? sizeof(std::string) : dtype_size(type);
  if (width != 0 && static_cast<uint64_t>(n) > SIZE_MAX / 2 / width)
    throw serve_exception(errc::invalid_argument,
                          "shape " + shape_to_string(shape) + " of " + dtype_name(type)
                            + " needs more bytes than this machine can address");
  return static_cast<size_t>(n) * width;
}

std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0)
      s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

namespace {

template <class To, class From> To bit_cast(From from) { // std::bit_cast is C++20
  static_assert(sizeof(To) == sizeof(From));
  To to;
  std::memcpy(&to, &from, sizeof(To));
  return to;
}

} // namespace

float half_to_float(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  if (exp == 0x1f)
    return bit_cast<float>(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) // zero or subnormal: mant * 2^-24
    return std::copysign(std::ldexp(static_cast<float>(mant), -24), sign ? -1.f : 1.f);
  return bit_cast<float>(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t float_to_half(float f) {
  uint32_t x = bit_cast<uint32_t>(f);
  uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  uint32_t abs = x & 0x7fffffff;
  if (abs > 0x7f800000) // NaN stays a (quiet) NaN
    return sign | 0x7e00;
  if (abs >= 0x477ff000) // rounds to >= 65520: infinity
    return sign | 0x7c00;
  if (abs < 0x38800000) { // below the smallest normal half: subnormal, rounded by the FPU
    float scaled = bit_cast<float>(abs) * 16777216.f; // * 2^24
    return sign | static_cast<uint16_t>(std::nearbyint(scaled));
  }
  uint32_t rounded = abs + 0xfff + ((abs >> 13) & 1); // round to nearest even at bit 13
  return sign | static_cast<uint16_t>((rounded - 0x38000000) >> 13);
}

float bfloat16_to_float(uint16_t b) {
  return bit_cast<float>(uint32_t(b) << 16);
}

uint16_t float_to_bfloat16(float f) {
  uint32_t x = bit_cast<uint32_t>(f);
  if ((x & 0x7fffffff) > 0x7f800000)
    return static_cast<uint16_t>((x >> 16) | 0x40);
  return static_cast<uint16_t>((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

tensor tensor::zeros(dtype type, std::vector<int64_t> shape) {
  tensor t;
  t.type = type;
  t.shape = std::move(shape);
  shape_bytes(t.shape, type); // refuses negative dimensions and sizes past the address space
  int64_t n = t.numel();
  if (type == dtype::string)
    t.strings.resize(static_cast<size_t>(n));
  else
    t.data.assign(static_cast<size_t>(n) * dtype_size(type), 0);
  return t;
}

} // namespace serve
