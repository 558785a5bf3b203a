// Dense tensors: a dtype, a shape and the bytes, row-major.
//
// The unit of data between ONNX ops, between requests and batches, and (as bytes) between
// actors. dtype values equal ONNX's TensorProto.DataType so conversion is a cast.
// A tensor owns its bytes. Not thread-safe; a const tensor may be read from many threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace serve {

/// Element types; values are ONNX's TensorProto.DataType.
enum class dtype : int32_t {
  undefined = 0,
  float32 = 1,
  uint8 = 2,
  int8 = 3,
  uint16 = 4,
  int16 = 5,
  int32 = 6,
  int64 = 7,
  string = 8,
  boolean = 9,
  float16 = 10,
  float64 = 11,
  uint32 = 12,
  uint64 = 13,
  bfloat16 = 16,
};

/// Bytes per element (0 for string and undefined).
size_t dtype_size(dtype t);
/// "float32", "int64", "bool", ... (numpy names).
const char* dtype_name(dtype t);
/// Open Inference Protocol names: "FP32", "INT64", "BOOL", "BYTES", ...
const char* dtype_v2_name(dtype t);

/// Number of elements of `shape` (1 for a scalar, shape {}); negative when a dimension is (-1
/// marks "any size"). Throws
/// serve_exception(invalid_argument) when the count does not fit in 64 bits.
int64_t shape_numel(const std::vector<int64_t>& shape);

/// Bytes a tensor of `shape` and `type` takes (strings: their std::string objects). Throws
/// serve_exception(invalid_argument) for a negative dimension or a size past the address space.
size_t shape_bytes(const std::vector<int64_t>& shape, dtype type);
/// "[2, 3]" (unknown dims, -1, print as "-1").
std::string shape_to_string(const std::vector<int64_t>& shape);

/// IEEE half and bfloat16 bit patterns <-> float. Narrowing rounds to nearest even, overflows to
/// infinity and keeps NaN a NaN.
float half_to_float(uint16_t bits);
uint16_t float_to_half(float value);
float bfloat16_to_float(uint16_t bits);
uint16_t float_to_bfloat16(float value);

struct tensor {
  dtype type = dtype::float32;
  std::vector<int64_t> shape;
  /// numel * dtype_size(type) bytes, row-major; empty for string tensors.
  std::vector<uint8_t> data;
  /// The elements of a string tensor (numel of them); empty otherwise.
  std::vector<std::string> strings;

  /// A zero-filled tensor (or numel empty strings).
  static tensor zeros(dtype type, std::vector<int64_t> shape);
  /// A tensor holding a copy of `values`.
  template <class T>
  static tensor from(dtype type, std::vector<int64_t> shape, const std::vector<T>& values) {
    tensor t = zeros(type, std::move(shape));
    std::memcpy(t.data.data(), values.data(), values.size() * sizeof(T));
    return t;
  }

  int64_t numel() const { return shape_numel(shape); }
  size_t rank() const { return shape.size(); }

  template <class T>
  T* as() {
    return reinterpret_cast<T*>(data.data());
  }
  template <class T>
  const T* as() const {
    return reinterpret_cast<const T*>(data.data());
  }
};

} // namespace serve
