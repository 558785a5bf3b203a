#include "libserve/registry/yaml_file.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>

#include "libserve/future.hpp"

namespace serve::registry {

namespace {

/// The deepest nesting of flow collections ("[", "{") in `text`, counting brackets inside quoted
/// scalars too (an over-estimate that real MLflow files stay far below: their JSON signatures
/// nest about 4 deep).
size_t flow_nesting(const std::string& text) {
  size_t depth = 0, deepest = 0;
  for (char c : text) {
    if (c == '[' || c == '{')
      deepest = std::max(deepest, ++depth);
    else if ((c == ']' || c == '}') && depth > 0)
      --depth;
  }
  return deepest;
}

} // namespace

YAML::Node parse_yaml_map(const std::string& text, const std::string& path) {
  if (text.size() > max_yaml_bytes)
    throw serve_exception(errc::invalid_argument,
                          "corrupt YAML in " + path + ": " + std::to_string(text.size())
                            + " bytes, more than the " + std::to_string(max_yaml_bytes)
                            + " an MLflow metadata file may have");
  // yaml-cpp parses flow collections recursively: bound the nesting before it sees the text.
  if (flow_nesting(text) > max_yaml_nesting)
    throw serve_exception(errc::invalid_argument,
                          "corrupt YAML in " + path + ": brackets nested deeper than "
                            + std::to_string(max_yaml_nesting));
  YAML::Node node;
  try {
    node = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw serve_exception(errc::invalid_argument, "corrupt YAML in " + path + ": " + e.what());
  }
  if (!node.IsMap())
    throw serve_exception(errc::invalid_argument,
                          "corrupt YAML in " + path + ": expected a mapping of keys to values");
  return node;
}

YAML::Node read_yaml_map(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw serve_exception(errc::not_found, "no file " + path);
  auto size = std::filesystem::file_size(path, ec);
  if (ec)
    throw serve_exception(errc::invalid_argument, "cannot read " + path + ": " + ec.message());
  if (size > max_yaml_bytes)
    throw serve_exception(errc::invalid_argument,
                          "corrupt YAML in " + path + ": " + std::to_string(size)
                            + " bytes, more than the " + std::to_string(max_yaml_bytes)
                            + " an MLflow metadata file may have");
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof())
    throw serve_exception(errc::invalid_argument, "cannot read " + path);
  return parse_yaml_map(text, path);
}

std::string yaml_scalar(const YAML::Node& map, const std::string& key, const std::string& path) {
  auto value = map[key];
  if (!value || value.IsNull())
    return "";
  if (!value.IsScalar())
    throw serve_exception(errc::invalid_argument,
                          "corrupt YAML in " + path + ": '" + key + "' should be a single value");
  return value.Scalar();
}

int64_t parse_version_number(const std::string& text, const std::string& what) {
  bool digits = !text.empty() && text.size() <= 18;
  for (unsigned char c : text)
    digits &= std::isdigit(c) != 0;
  if (!digits)
    throw serve_exception(errc::invalid_argument,
                          what + ": '" + text + "' is not a version number");
  return std::stoll(text);
}

} // namespace serve::registry
