// Longest-prefix routing of HTTP paths to applications (Ray Serve's route_prefix rules).
//
// A prefix matches a path when the path equals it or continues it with "/" (so "/a" matches
// "/a" and "/a/b" but not "/ab"); "/" matches every path; the longest matching prefix wins.
// Immutable after construction, so a snapshot may be shared by HTTP threads without locks.
#pragma once

#include <string>
#include <vector>

#include "actors/messages.hpp"

namespace serve {

class route_table {
public:
  route_table() = default;
  explicit route_table(std::vector<route_entry> routes);

  /// The route serving `path`, or nullptr (-> 404).
  const route_entry* match(const std::string& path) const;

  /// The part of `path` below `route.route_prefix`, starting with "/".
  static std::string remaining_path(const route_entry& route, const std::string& path);

  /// GET /-/routes: {"<route_prefix>": "<application>", ...}
  std::string routes_json() const;

  const std::vector<route_entry>& routes() const { return routes_; }

private:
  /// Sorted by prefix length, longest first.
  std::vector<route_entry> routes_;
};

} // namespace serve
