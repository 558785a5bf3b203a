// The helpers that read ActorServe's JSON config: typed field readers that name the JSON path
// of a bad value, shared by config.cpp (applications, deployments) and cluster_config.cpp
// (nodes, cluster, placement). Internal to libserve.
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "libserve/config.hpp"

namespace serve::config_detail {

using json = rapidjson::Value;
using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;
using maybe_error = std::optional<config_error>;


// ---- Text helpers -------------------------------------------------------------------------

inline config_error error_at(std::string path, std::string reason) {
  return config_error{std::move(path), std::move(reason)};
}

template <class Container> std::string join(const Container& items) {
  std::string text;
  for (const auto& item : items)
    text += (text.empty() ? "" : ", ") + std::string(item);
  return text;
}

inline std::string quoted(const std::string& text) {
  return "\"" + text + "\"";
}

inline std::string compact_json(const json& value) {
  rapidjson::StringBuffer buffer;
  json_writer writer(buffer);
  value.Accept(writer);
  return {buffer.GetString(), buffer.GetSize()};
}

/// "a string", "an array", "null", ... for the "was ..." of type errors.
inline std::string type_with_article(const json& value) {
  // Indexed by rapidjson::Type: null, false, true, object, array, string, number.
  static const char* const names[] = {"null",     "a boolean", "a boolean", "an object",
                                      "an array", "a string",  "a number"};
  return names[value.GetType()];
}

inline std::string member_path(const std::string& parent, const std::string& name) {
  return parent.empty() ? name : parent + "." + name;
}

inline std::string element_path(const std::string& parent, size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

inline std::string deployment_path(size_t app_index, size_t dep_index) {
  return element_path(element_path("applications", app_index) + ".deployments", dep_index);
}

inline std::vector<std::string> deployment_names(const application_config& app) {
  std::vector<std::string> names;
  for (const auto& dep : app.deployments)
    names.push_back(dep.name);
  return names;
}

inline std::string no_such_deployment(const std::string& name, const application_config& app) {
  return "no deployment " + quoted(name) + " in application " + quoted(app.name) +
         "; deployments: " + join(deployment_names(app));
}

// ---- Reading single values ----------------------------------------------------------------

inline maybe_error read_integer(const json& value, const std::string& path, int64_t min, int64_t max,
                         int64_t& out) {
  if (!value.IsNumber())
    return error_at(path, "must be an integer; was " + type_with_article(value));
  if (!value.IsInt64() && !value.IsUint64())
    return error_at(path, "must be an integer; was " + compact_json(value));
  if (!value.IsInt64() || value.GetInt64() > max)
    return error_at(path, "must be <= " + std::to_string(max) + "; was " + compact_json(value));
  if (value.GetInt64() < min)
    return error_at(path, "must be >= " + std::to_string(min) + "; was " + compact_json(value));
  out = value.GetInt64();
  return std::nullopt;
}

/// A number > 0, or >= 0 when zero_allowed.
inline maybe_error read_number(const json& value, const std::string& path, bool zero_allowed,
                        double& out) {
  if (!value.IsNumber())
    return error_at(path, "must be a number; was " + type_with_article(value));
  double number = value.GetDouble();
  if (number < 0 || (!zero_allowed && number == 0))
    return error_at(path, std::string(zero_allowed ? "must be >= 0" : "must be > 0") + "; was " +
                              compact_json(value));
  out = number;
  return std::nullopt;
}

inline maybe_error read_string(const json& value, const std::string& path, bool empty_allowed,
                        std::string& out) {
  if (!value.IsString())
    return error_at(path, "must be a string; was " + type_with_article(value));
  if (!empty_allowed && value.GetStringLength() == 0)
    return error_at(path, "must not be empty");
  out.assign(value.GetString(), value.GetStringLength());
  return std::nullopt;
}

inline maybe_error check_non_empty_array(const json& value, const std::string& path) {
  if (!value.IsArray())
    return error_at(path, "must be an array; was " + type_with_article(value));
  if (value.Empty())
    return error_at(path, "must not be empty");
  return std::nullopt;
}

// ---- Reading the fields of one object -----------------------------------------------------

/// Reads the fields of one JSON object and keeps the first error; once there is one, later
/// reads do nothing. An absent optional field leaves its output (the default) untouched.
class object_reader {
public:
  object_reader(const json& value, std::string path) : value_(value), path_(std::move(path)) {
    if (!value.IsObject())
      error = error_at(path_, "must be an object; was " + type_with_article(value));
  }

  maybe_error error;

  const std::string& path() const { return path_; }
  std::string path_of(const std::string& name) const { return member_path(path_, name); }

  const json* field(const char* name) const {
    if (!value_.IsObject())
      return nullptr;
    auto it = value_.FindMember(name);
    return it == value_.MemberEnd() ? nullptr : &it->value;
  }

  /// Which of `names` are present.
  std::vector<std::string> present(std::initializer_list<const char*> names) const {
    std::vector<std::string> found;
    for (const char* name : names)
      if (field(name))
        found.emplace_back(name);
    return found;
  }

  /// Refuses fields not in `allowed`, and fields given twice.
  object_reader& allow(std::initializer_list<const char*> allowed) {
    return then([&] { return check_fields(allowed); });
  }

  object_reader& require(const char* name) {
    return then([&] {
      return field(name) ? std::nullopt : maybe_error(error_at(path_of(name), "is required"));
    });
  }

  template <class T> object_reader& integer(const char* name, int64_t min, int64_t max, T& out) {
    if (const json* value = unread(name)) {
      int64_t number = 0;
      error = read_integer(*value, path_of(name), min, max, number);
      if (!error)
        out = static_cast<T>(number);
    }
    return *this;
  }

  object_reader& number(const char* name, bool zero_allowed, double& out) {
    if (const json* value = unread(name))
      error = read_number(*value, path_of(name), zero_allowed, out);
    return *this;
  }

  object_reader& string(const char* name, bool empty_allowed, std::string& out) {
    if (const json* value = unread(name))
      error = read_string(*value, path_of(name), empty_allowed, out);
    return *this;
  }

  /// Runs `check` (returning maybe_error) unless an error was already found.
  template <class Check> object_reader& then(Check&& check) {
    if (!error)
      error = check();
    return *this;
  }

private:
  /// The field `name` when it is present and no error was found yet.
  const json* unread(const char* name) const { return error ? nullptr : field(name); }

  maybe_error check_fields(std::initializer_list<const char*> allowed) const {
    for (auto member = value_.MemberBegin(); member != value_.MemberEnd(); ++member) {
      std::string name(member->name.GetString(), member->name.GetStringLength());
      if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return name == a; }))
        return error_at(path_of(name), "unknown field; expected one of: " + join(allowed));
      for (auto earlier = value_.MemberBegin(); earlier != member; ++earlier)
        if (earlier->name == member->name)
          return error_at(path_of(name), "duplicate field");
    }
    return std::nullopt;
  }

  const json& value_;
  std::string path_;
};

/// "found none" / "found class, model" for the exactly-one-of errors.
inline std::string found_text(const std::vector<std::string>& present) {
  return "; found " + (present.empty() ? std::string("none") : join(present));
}

} // namespace serve::config_detail

namespace serve::config_detail {

// Defined in cluster_config.cpp.

/// "nodes": [{"name", "address": "host:port"}]: unique names, not "head".
maybe_error parse_nodes(const json& value, std::vector<node_config>& out);
/// "cluster": {"token_file", "heartbeat_interval_s", "heartbeat_timeout_s",
/// "reconnect_interval_s", "tls": {"certificate", "key", "ca_file"}}.
maybe_error parse_cluster(const json& value, cluster_options& out);
/// A deployment's "placement": {"nodes": [...], "model_source": "head" | "node"}.
maybe_error parse_placement(const json& value, const std::string& path, placement_options& out);
/// Every placement names "head" or a listed node.
maybe_error check_placements(const serve_config& config);
/// "host:port" with a port in 1..65535.
maybe_error parse_address(const std::string& text, const std::string& path, std::string& host,
                          int& port);

} // namespace serve::config_detail
