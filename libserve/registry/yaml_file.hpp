// Reading the YAML files MLflow writes (meta.yaml, MLmodel) with yaml-cpp (Debian's
// libyaml-cpp-dev), with errors that name the file. Used by the file store and the MLmodel
// reader; not part of the registry's public API.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <yaml-cpp/yaml.h>

namespace serve::registry {

/// Largest meta.yaml or MLmodel read (MLflow's are a few KiB).
constexpr size_t max_yaml_bytes = 1 << 20;
/// Deepest nesting of flow collections ("[", "{") accepted: yaml-cpp recurses per level.
constexpr size_t max_yaml_nesting = 64;

/// Parses `text` as a YAML mapping; `path` names it in errors. Throws
/// serve_exception(invalid_argument) when it is over max_yaml_bytes, nests brackets deeper than
/// max_yaml_nesting, is not YAML or is not a mapping.
YAML::Node parse_yaml_map(const std::string& text, const std::string& path);

/// Parses the YAML mapping in `path`. Throws serve_exception: not_found when the file does not
/// exist, invalid_argument naming the file when it cannot be read, is not YAML or is not a
/// mapping.
YAML::Node read_yaml_map(const std::string& path);

/// The scalar `key` of `map` as text; "" when absent or null. Throws
/// serve_exception(invalid_argument) naming `path` and the key when it is a list or mapping.
std::string yaml_scalar(const YAML::Node& map, const std::string& key, const std::string& path);

/// Parses a version number ("3"); throws serve_exception(invalid_argument) naming `what`.
int64_t parse_version_number(const std::string& text, const std::string& what);

} // namespace serve::registry
