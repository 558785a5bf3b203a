// The cluster part of the config: "nodes", "cluster" and each deployment's "placement".
#include <set>

#include "libserve/config_reader.hpp"

namespace serve::config_detail {

maybe_error parse_address(const std::string& text, const std::string& path, std::string& host,
                          int& port) {
  auto colon = text.rfind(':');
  std::string port_text = colon == std::string::npos ? "" : text.substr(colon + 1);
  host = colon == std::string::npos ? "" : text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  bool digits = !port_text.empty() && port_text.size() <= 5
                && std::all_of(port_text.begin(), port_text.end(), ::isdigit);
  port = digits ? std::stoi(port_text) : 0;
  if (host.empty() || port < 1 || port > 65535)
    return error_at(path, "must be \"host:port\" with a port in 1..65535; was " + quoted(text));
  return std::nullopt;
}

maybe_error parse_node(const json& value, const std::string& path, node_config& node) {
  object_reader obj(value, path);
  std::string address;
  obj.allow({"name", "address"})
      .require("name")
      .string("name", false, node.name)
      .require("address")
      .string("address", false, address)
      .then([&] { return parse_address(address, obj.path_of("address"), node.host, node.port); })
      .then([&]() -> maybe_error {
        if (node.name == "head")
          return error_at(obj.path_of("name"), "\"head\" is reserved for the head process itself");
        return std::nullopt;
      });
  return obj.error;
}

maybe_error parse_nodes(const json& value, std::vector<node_config>& out) {
  if (!value.IsArray())
    return error_at("nodes", "must be an array; was " + type_with_article(value));
  for (rapidjson::SizeType i = 0; i < value.Size(); ++i) {
    node_config node;
    auto path = element_path("nodes", i);
    if (auto err = parse_node(value[i], path, node))
      return err;
    for (auto& other : out)
      if (other.name == node.name)
        return error_at(path + ".name", "duplicate node name " + quoted(node.name));
    out.push_back(std::move(node));
  }
  return std::nullopt;
}

maybe_error parse_tls(const json& value, tls_options& tls) {
  object_reader obj(value, "cluster.tls");
  obj.allow({"certificate", "key", "ca_file"})
      .require("certificate")
      .string("certificate", false, tls.certificate)
      .require("key")
      .string("key", false, tls.key)
      .string("ca_file", false, tls.ca_file);
  return obj.error;
}

maybe_error parse_cluster(const json& value, cluster_options& out) {
  object_reader obj(value, "cluster");
  obj.allow({"token_file", "heartbeat_interval_s", "heartbeat_timeout_s", "reconnect_interval_s",
             "tls"})
      .string("token_file", false, out.token_file)
      .number("heartbeat_interval_s", false, out.heartbeat_interval_s)
      .number("heartbeat_timeout_s", false, out.heartbeat_timeout_s)
      .number("reconnect_interval_s", false, out.reconnect_interval_s)
      .then([&]() -> maybe_error {
        if (out.heartbeat_timeout_s <= out.heartbeat_interval_s)
          return error_at(obj.path_of("heartbeat_timeout_s"),
                          "must be greater than heartbeat_interval_s ("
                            + compact_json(json(out.heartbeat_interval_s)) + "); was "
                            + compact_json(json(out.heartbeat_timeout_s)));
        return std::nullopt;
      })
      .then([&]() -> maybe_error {
        const json* tls = obj.field("tls");
        return tls ? parse_tls(*tls, out.tls) : std::nullopt;
      });
  return obj.error;
}

maybe_error parse_placement(const json& value, const std::string& path, placement_options& out) {
  object_reader obj(value, path);
  obj.allow({"nodes", "model_source"})
      .string("model_source", false, out.model_source)
      .then([&]() -> maybe_error {
        if (out.model_source == "head" || out.model_source == "node")
          return std::nullopt;
        return error_at(obj.path_of("model_source"),
                        "must be \"head\" or \"node\"; was " + quoted(out.model_source));
      })
      .then([&]() -> maybe_error {
        const json* nodes = obj.field("nodes");
        if (!nodes)
          return std::nullopt;
        auto list_path = obj.path_of("nodes");
        if (auto err = check_non_empty_array(*nodes, list_path))
          return err;
        for (rapidjson::SizeType i = 0; i < nodes->Size(); ++i) {
          std::string name;
          if (auto err = read_string((*nodes)[i], element_path(list_path, i), false, name))
            return err;
          if (std::find(out.nodes.begin(), out.nodes.end(), name) != out.nodes.end())
            return error_at(element_path(list_path, i), "duplicate node " + quoted(name));
          out.nodes.push_back(std::move(name));
        }
        return std::nullopt;
      });
  return obj.error;
}

maybe_error check_placements(const serve_config& config) {
  std::vector<std::string> known{"head"};
  for (auto& node : config.nodes)
    known.push_back(node.name);
  for (size_t i = 0; i < config.applications.size(); ++i) {
    const auto& deps = config.applications[i].deployments;
    for (size_t j = 0; j < deps.size(); ++j)
      for (size_t k = 0; k < deps[j].placement.nodes.size(); ++k) {
        const auto& name = deps[j].placement.nodes[k];
        if (std::find(known.begin(), known.end(), name) == known.end())
          return error_at(element_path(deployment_path(i, j) + ".placement.nodes", k),
                          "unknown node " + quoted(name) + "; known nodes: " + join(known)
                            + " (list nodes in the top-level \"nodes\")");
      }
  }
  return std::nullopt;
}

} // namespace serve::config_detail
