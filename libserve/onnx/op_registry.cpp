// The operator registry (see op_registry.hpp): factories by (domain, op type), each list sorted
// by since-version so find() picks the newest semantics a model's opset allows.
#include "libserve/onnx/op_registry.hpp"

#include <algorithm>

namespace serve::onnx_ir {

namespace {

// "ai.onnx" is another spelling of the default domain.
std::string normalize_domain(const std::string& domain) {
  return domain == "ai.onnx" ? std::string(default_domain) : domain;
}

} // namespace

op_registry& op_registry::global() {
  static op_registry registry;
  static const bool filled = [] { // runs once, thread-safe (function-local static)
    register_structural_ops(registry);
    register_math_ops(registry);
    register_ml_ops(registry);
    return true;
  }();
  (void)filled;
  return registry;
}

void op_registry::add(const std::string& domain, const std::string& op_type, int since_version,
                      op_factory factory) {
  std::lock_guard<std::mutex> guard(mtx_);
  auto& entries = ops_[{normalize_domain(domain), op_type}];
  auto same = std::find_if(entries.begin(), entries.end(),
                           [&](const entry& e) { return e.since_version == since_version; });
  if (same != entries.end()) {
    same->factory = std::move(factory); // a later registration replaces an earlier one
    return;
  }
  entries.push_back({since_version, std::move(factory)});
  std::sort(entries.begin(), entries.end(),
            [](const entry& a, const entry& b) { return a.since_version < b.since_version; });
}

// The pointer stays valid until the next add() for the same op (registration happens at start-up).
const op_factory* op_registry::find(const std::string& domain, const std::string& op_type,
                                    int64_t opset) const {
  std::lock_guard<std::mutex> guard(mtx_);
  auto i = ops_.find({normalize_domain(domain), op_type});
  if (i == ops_.end())
    return nullptr;
  const op_factory* best = nullptr;
  for (auto& e : i->second) // sorted ascending
    if (e.since_version <= opset)
      best = &e.factory;
  return best;
}

int op_registry::since_version(const std::string& domain, const std::string& op_type,
                               int64_t opset) const {
  std::lock_guard<std::mutex> guard(mtx_);
  auto i = ops_.find({normalize_domain(domain), op_type});
  if (i == ops_.end())
    return 0;
  int best = 0;
  for (auto& e : i->second)
    if (e.since_version <= opset)
      best = e.since_version;
  return best;
}

std::vector<std::string> op_registry::list() const {
  std::lock_guard<std::mutex> guard(mtx_);
  std::vector<std::string> names;
  for (auto& [key, entries] : ops_)
    names.push_back(key.first + ":" + key.second);
  return names; // std::map keeps them sorted
}

} // namespace serve::onnx_ir
