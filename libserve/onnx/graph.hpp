// ActorServe's in-memory form of an ONNX model: what the loader produces from the protobuf and
// what the executor runs. Plain data; no protobuf types leak past the loader.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "libserve/tensor.hpp"

namespace serve::onnx_ir {

/// The default domain is stored as "" (ONNX writes "" or "ai.onnx").
inline const char* default_domain = "";
inline const char* ml_domain = "ai.onnx.ml";

struct attribute {
  enum class kind { undefined, f, i, s, t, floats, ints, strings, tensors, graph };
  kind type = kind::undefined;
  float f = 0;
  int64_t i = 0;
  std::string s;
  tensor t;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  std::vector<tensor> tensors;

  static attribute of_int(int64_t v) {
    attribute a;
    a.type = kind::i;
    a.i = v;
    return a;
  }
  static attribute of_float(float v) {
    attribute a;
    a.type = kind::f;
    a.f = v;
    return a;
  }
  static attribute of_string(std::string v) {
    attribute a;
    a.type = kind::s;
    a.s = std::move(v);
    return a;
  }
  static attribute of_tensor(tensor v) {
    attribute a;
    a.type = kind::t;
    a.t = std::move(v);
    return a;
  }
  static attribute of_ints(std::vector<int64_t> v) {
    attribute a;
    a.type = kind::ints;
    a.ints = std::move(v);
    return a;
  }
  static attribute of_floats(std::vector<float> v) {
    attribute a;
    a.type = kind::floats;
    a.floats = std::move(v);
    return a;
  }
  static attribute of_strings(std::vector<std::string> v) {
    attribute a;
    a.type = kind::strings;
    a.strings = std::move(v);
    return a;
  }
};

struct node {
  std::string name;
  std::string op_type;
  /// "" for the default domain.
  std::string domain;
  /// Input value names; "" marks an omitted optional input.
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  std::map<std::string, attribute> attributes;

  const attribute* attr(const std::string& key) const {
    auto i = attributes.find(key);
    return i == attributes.end() ? nullptr : &i->second;
  }
  /// The tensor attribute `key`, or nullptr when it is missing or of another kind (whose `t` is
  /// an empty default, not a tensor to read).
  const tensor* tensor_attr(const std::string& key) const {
    auto a = attr(key);
    return a && a->type == attribute::kind::t ? &a->t : nullptr;
  }
  int64_t attr_int(const std::string& key, int64_t fallback) const {
    auto a = attr(key);
    return a ? a->i : fallback;
  }
  float attr_float(const std::string& key, float fallback) const {
    auto a = attr(key);
    return a ? a->f : fallback;
  }
  std::string attr_string(const std::string& key, const std::string& fallback) const {
    auto a = attr(key);
    return a ? a->s : fallback;
  }
};

/// A graph input or output as declared: name, element type and dims (-1 = unknown, with its
/// symbolic name in dim_names when it has one).
struct value_info {
  std::string name;
  dtype type = dtype::undefined;
  /// Empty with has_shape = false when the model declares no shape.
  std::vector<int64_t> dims;
  std::vector<std::string> dim_names;
  bool has_shape = false;
  /// For non-tensor types (ZipMap's sequence<map<...>>): a description, e.g. "seq(map(int64,float))".
  std::string non_tensor_type;
};

struct graph {
  int64_t ir_version = 0;
  /// Opset version per domain ("" = default domain).
  std::map<std::string, int64_t> opsets;
  std::vector<node> nodes;
  /// Constant tensors by name (initializers; also those listed as graph inputs).
  std::map<std::string, tensor> initializers;
  /// User inputs only: graph inputs that are not initializers.
  std::vector<value_info> inputs;
  std::vector<value_info> outputs;
  std::string producer_name;
  std::string producer_version;

  int64_t opset(const std::string& domain) const {
    auto i = opsets.find(domain);
    return i == opsets.end() ? 0 : i->second;
  }
};

} // namespace serve::onnx_ir
