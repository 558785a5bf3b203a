// Writing the YAML files of an MLflow file store (meta.yaml, MLmodel) the way MLflow writes them
// with PyYAML's safe_dump: block style, keys sorted, two-space indentation, lists at their key's
// indentation, strings plain where YAML reads them back as the same string and quoted otherwise
// ('0', 'yes', '2024-01-01' stay strings). Used by file_store_writer; not part of the registry's
// public API.
//
//   yaml_value meta = yaml_value::map();
//   meta.set("name", yaml_value::text("iris"));
//   meta.set("version", yaml_value::integer(3));
//   meta.set("description", yaml_value::null());
//   write_file_atomically(dir + "/meta.yaml", to_yaml(meta));
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace serve::registry {

/// One YAML value: null, a plain scalar written as it is (a number, a value read back from a
/// plain scalar), a string (quoted when it would not read back as that string), a mapping or a
/// list. A value type.
class yaml_value {
public:
  enum class kind { null, plain, text, map, list };

  static yaml_value null() { return yaml_value(kind::null); }
  /// Written verbatim: must be a valid plain scalar (an integer, `true`, ...).
  static yaml_value plain(std::string scalar);
  static yaml_value integer(int64_t value) { return plain(std::to_string(value)); }
  static yaml_value text(std::string value);
  static yaml_value map() { return yaml_value(kind::map); }
  static yaml_value list() { return yaml_value(kind::list); }

  /// A mapping or list read with yaml-cpp, keeping which scalars were plain and which quoted,
  /// so that rewriting a file MLflow wrote keeps every value's type.
  static yaml_value from_node(const YAML::Node& node);

  /// kind() == map: sets `key` (keys are written sorted).
  yaml_value& set(const std::string& key, yaml_value value);
  /// kind() == list: appends.
  yaml_value& push(yaml_value value);

  kind type() const { return kind_; }

private:
  explicit yaml_value(kind k) : kind_(k) {}
  friend void emit_value(std::string& out, const yaml_value& value, int indent);

  kind kind_;
  std::string scalar_;
  std::map<std::string, yaml_value> entries_;
  std::vector<yaml_value> items_;
};

/// The YAML text of `document` (a mapping), ending in a newline.
std::string to_yaml(const yaml_value& document);

/// `value` as a YAML scalar: plain when YAML reads it back as the same string, else in single
/// quotes, or double quotes with escapes when it holds line breaks or control characters.
std::string yaml_scalar_text(const std::string& value);

} // namespace serve::registry
