#include "libserve/registry/artifact_locator.hpp"

#include <filesystem>
#include <system_error>

#include "libserve/future.hpp"
#include "libserve/registry/model_uri.hpp"

namespace serve::registry {
namespace fs = std::filesystem;
namespace {

bool exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

// True when `path` is `root` or inside it; `rest` gets the part below root.
bool under(const std::string& path, const std::string& root, std::string& rest) {
  if (path == root) {
    rest.clear();
    return true;
  }
  if (root == "/" && path.size() > 1 && path[0] == '/') {
    rest = path.substr(1);
    return true;
  }
  if (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
      path[root.size()] == '/') {
    rest = path.substr(root.size() + 1);
    return true;
  }
  return false;
}

// The candidate paths for `path` under each moved root that contains it.
std::vector<std::string> relocations(const std::vector<artifact_root_move>& moves,
                                     const std::string& path, const std::string& relative) {
  std::vector<std::string> out;
  for (const auto& move : moves) {
    std::string rest;
    if (under(path, move.recorded, rest))
      out.push_back(join_path(join_path(move.current, rest), relative));
  }
  return out;
}

} // namespace

std::string join_path(const std::string& dir, const std::string& relative) {
  fs::path p(dir);
  if (!relative.empty())
    p /= relative;
  auto s = p.lexically_normal().string();
  while (s.size() > 1 && s.back() == '/')
    s.pop_back();
  return s;
}

artifact_locator::artifact_locator(std::string store_dir, std::vector<artifact_root_move> moves)
    : store_dir_(join_path(store_dir, "")) {
  for (auto& move : moves)
    if (!move.recorded.empty() && !move.current.empty())
      moves_.push_back({join_path(move.recorded, ""), join_path(move.current, "")});
}

std::string artifact_locator::recorded_path(const std::string& location,
                                            const std::string& context) const {
  auto scheme = uri_scheme(location);
  std::string path;
  if (scheme == "file") {
    try {
      path = file_uri_to_path(location);
    } catch (const serve_exception& e) {
      throw serve_exception(errc::invalid_argument, context + ": " + e.what());
    }
  } else if (scheme.empty()) {
    path = location;
  } else if (scheme == "mlflow-artifacts") {
    throw serve_exception(errc::invalid_argument,
                          context + ": the artifacts are on a tracking server (" + location +
                              "); open the registry through the server's http(s):// URI");
  } else {
    throw serve_exception(errc::invalid_argument,
                          context + ": the artifacts at " + location +
                              " are not local; only local paths and file: URIs are read");
  }
  if (path.empty())
    throw serve_exception(errc::invalid_argument, context + ": no artifact location recorded");
  return path[0] == '/' ? join_path(path, "") : join_path(store_dir_, path);
}

std::optional<std::string> artifact_locator::find(const std::string& location,
                                                  const std::string& relative,
                                                  const std::string& context) const {
  auto path = recorded_path(location, context);
  auto full = join_path(path, relative);
  if (exists(full))
    return full;
  for (const auto& candidate : relocations(moves_, path, relative))
    if (exists(candidate))
      return candidate;
  return std::nullopt;
}

std::string artifact_locator::require(const std::string& location, const std::string& relative,
                                      const std::string& context) const {
  if (auto found = find(location, relative, context))
    return *found;
  auto path = recorded_path(location, context);
  std::string message = context + ": artifacts not found at " + join_path(path, relative);
  for (const auto& candidate : relocations(moves_, path, relative))
    message += " nor at " + candidate + " (where the store is now)";
  throw serve_exception(errc::not_found, message);
}

std::optional<std::string> artifact_locator::recorded_root(const std::string& experiment_location,
                                                           const std::string& experiment_id) {
  std::string path;
  auto scheme = uri_scheme(experiment_location);
  try {
    if (scheme == "file")
      path = file_uri_to_path(experiment_location);
    else if (scheme.empty())
      path = experiment_location;
  } catch (const serve_exception&) {
    return std::nullopt;
  }
  if (path.empty() || path[0] != '/' || experiment_id.empty())
    return std::nullopt;
  path = join_path(path, "");
  auto suffix = "/" + experiment_id;
  if (path.size() <= suffix.size() ||
      path.compare(path.size() - suffix.size(), suffix.size(), suffix) != 0)
    return std::nullopt;
  auto root = path.substr(0, path.size() - suffix.size());
  return root.empty() ? "/" : root;
}

} // namespace serve::registry
