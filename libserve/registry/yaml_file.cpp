#include "libserve/registry/yaml_file.hpp"

#include <cctype>
#include <filesystem>
#include <system_error>

#include "libserve/future.hpp"

namespace serve::registry {

YAML::Node read_yaml_map(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw serve_exception(errc::not_found, "no file " + path);
  YAML::Node node;
  try {
    node = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    throw serve_exception(errc::invalid_argument, "corrupt YAML in " + path + ": " + e.what());
  }
  if (!node.IsMap())
    throw serve_exception(errc::invalid_argument,
                          "corrupt YAML in " + path + ": expected a mapping of keys to values");
  return node;
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
