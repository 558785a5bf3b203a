#include "http/route_table.hpp"

#include <algorithm>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace serve {

route_table::route_table(std::vector<route_entry> routes) : routes_(std::move(routes)) {
  std::stable_sort(routes_.begin(), routes_.end(), [](const route_entry& a, const route_entry& b) {
    return a.route_prefix.size() > b.route_prefix.size();
  });
}

const route_entry* route_table::match(const std::string& path) const {
  for (auto& r : routes_) {
    const auto& prefix = r.route_prefix;
    if (prefix == "/")
      return &r;
    if (path.compare(0, prefix.size(), prefix) != 0)
      continue;
    if (path.size() == prefix.size() || path[prefix.size()] == '/')
      return &r;
  }
  return nullptr;
}

std::string route_table::remaining_path(const route_entry& route, const std::string& path) {
  if (route.route_prefix == "/")
    return path.empty() ? "/" : path;
  auto rest = path.substr(route.route_prefix.size());
  return rest.empty() ? "/" : rest;
}

std::string route_table::routes_json() const {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  for (auto& r : routes_) {
    w.Key(r.route_prefix.c_str());
    w.String(r.application.c_str());
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

} // namespace serve
