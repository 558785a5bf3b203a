#include "libserve/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <mutex>
#include <unordered_map>

#include "libserve/future.hpp" // serve_exception

namespace serve::metrics {

namespace {

constexpr uint32_t chunk_shift = 9;
constexpr uint32_t chunk_slots = 1u << chunk_shift; // 512 doubles = 4 KiB
constexpr uint32_t chunk_mask = chunk_slots - 1;
constexpr uint32_t max_chunks = 1u << 12; // 2^21 slots per registry
constexpr size_t max_buckets = 500;       // a histogram's bounds + 2 fit in one chunk

/// Cache-line aligned so that two threads' chunks never share a line.
struct alignas(64) chunk {
  std::atomic<double> slots[chunk_slots];
};

/// One thread's slots for one registry. Only the owning thread writes (relaxed load + store:
/// no read-modify-write needed); scrapes read under the registry mutex. Chunks are installed
/// once and never move, so a scrape can read them while the owner grows the shard.
struct shard {
  std::unique_ptr<std::atomic<chunk*>[]> chunks =
      std::make_unique<std::atomic<chunk*>[]>(max_chunks);

  ~shard() {
    for (uint32_t i = 0; i < max_chunks; ++i)
      delete chunks[i].load(std::memory_order_relaxed);
  }
  const chunk* at(uint32_t c) const { return chunks[c].load(std::memory_order_acquire); }
  double read(uint32_t slot) const {
    const chunk* c = at(slot >> chunk_shift);
    return c ? c->slots[slot & chunk_mask].load(std::memory_order_relaxed) : 0.0;
  }
};

enum class kind { counter, gauge, histogram };

const char* kind_name(kind k) {
  static const char* const names[] = {"counter", "gauge", "histogram"};
  return names[static_cast<int>(k)];
}

struct family {
  std::string help;
  kind type = kind::counter;
  std::vector<std::string> label_names;
  std::vector<double> bounds;
  /// Label values -> series id; a map so that render() order is stable.
  std::map<std::vector<std::string>, uint32_t> series;
};

struct series_entry {
  uint32_t slot = 0; // the first slot; a histogram's buckets, then its sum
  bool removed = false;
};

[[noreturn]] void refuse(const std::string& name, const std::string& why) {
  throw serve_exception(errc::invalid_argument, "metric \"" + name + "\" " + why);
}

bool valid_name(const std::string& s, bool allow_colon) {
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
          (allow_colon && c == ':') || (i > 0 && c >= '0' && c <= '9')))
      return false;
  }
  return !s.empty();
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names)
    out += (out.empty() ? "" : ", ") + n;
  return "(" + out + ")";
}

/// Refuses a malformed name, label name or bucket list of a family being declared.
void check_new_family(const std::string& name, kind type, const std::vector<std::string>& labels,
                      const std::vector<double>& bounds) {
  if (!valid_name(name, true))
    refuse(name, "is not a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)");
  for (auto l = labels.begin(); l != labels.end(); ++l) {
    if (!valid_name(*l, false) || l->rfind("__", 0) == 0 || (type == kind::histogram && *l == "le"))
      refuse(name, "may not use the label name \"" + *l + "\"");
    if (std::find(labels.begin(), l, *l) != l)
      refuse(name, "has the label name \"" + *l + "\" twice");
  }
  if (bounds.size() > max_buckets)
    refuse(name, "has " + std::to_string(bounds.size()) + " buckets; at most 500");
  for (size_t i = 0; i < bounds.size(); ++i)
    if (!std::isfinite(bounds[i]) || (i > 0 && !(bounds[i - 1] < bounds[i])))
      refuse(name, "needs finite, strictly increasing bucket bounds");
}

std::string format_number(double v) {
  if (std::isnan(v))
    return "NaN";
  if (std::isinf(v))
    return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 9007199254740992.0) // 2^53: exact as an integer
    return std::to_string(static_cast<int64_t>(v));
  char buf[32];
  auto end = std::to_chars(buf, buf + sizeof buf, v).ptr; // shortest form that round-trips
  return std::string(buf, end);
}

/// HELP text escapes \ and newline; label values also escape ".
std::string escape(const std::string& s, bool quotes) {
  std::string out;
  for (char c : s)
    out += c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '"' && quotes ? "\\\"" : std::string(1, c);
  return out;
}

} // namespace

/// Everything behind the registry mutex, plus the registry's id for the thread caches.
class registry::state {
public:
  explicit state(uint64_t registry_id) : id(registry_id) {}

  const uint64_t id;
  mutable std::mutex mu;
  // --- protected by mu ---
  std::map<std::string, std::unique_ptr<family>> families; // never erased: handles point in
  std::vector<series_entry> series;                        // by series id
  uint32_t next_slot = 0;
  std::vector<double> retired;                // by slot: totals of threads that exited
  std::vector<std::unique_ptr<shard>> shards; // one per live thread that wrote here

  /// The sum of `slot` over exited and live threads. Requires mu.
  double total(uint32_t slot) const {
    double sum = retired[slot];
    for (const auto& s : shards)
      sum += s->read(slot);
    return sum;
  }

  /// A counter's or gauge's total; 0 once removed.
  double value_of(uint32_t series_id, uint32_t slot) const {
    std::lock_guard<std::mutex> lock(mu);
    return series[series_id].removed ? 0.0 : total(slot);
  }

  /// Folds an exiting thread's shard into `retired` and frees it, in one critical section so
  /// that a scrape counts its values exactly once.
  void retire(const shard* gone) {
    std::lock_guard<std::mutex> lock(mu);
    for (uint32_t c = 0; c * chunk_slots < next_slot; ++c)
      if (const chunk* ch = gone->at(c))
        for (uint32_t i = 0; i < chunk_slots && c * chunk_slots + i < next_slot; ++i)
          retired[c * chunk_slots + i] += ch->slots[i].load(std::memory_order_relaxed);
    shards.erase(std::find_if(shards.begin(), shards.end(),
                              [gone](const auto& s) { return s.get() == gone; }));
  }

  /// Declare-or-find the family `name`, then its series with these label values; refuses a
  /// mismatch with the first declaration. Requires mu.
  std::pair<family*, uint32_t> find(const std::string& name, const std::string& help, kind type,
                                    const std::vector<double>& bounds, const label_set& labels) {
    std::vector<std::string> names, values;
    for (const auto& [label, value] : labels) {
      names.push_back(label);
      values.push_back(value);
    }
    auto known = families.find(name);
    if (known == families.end()) {
      check_new_family(name, type, names, bounds);
      auto fresh = std::make_unique<family>(family{help, type, names, bounds, {}});
      known = families.emplace(name, std::move(fresh)).first;
    }
    auto& f = known->second;
    if (f->type != type)
      refuse(name, std::string("is a ") + kind_name(f->type) + ", not a " + kind_name(type));
    if (f->help != help)
      refuse(name, "was declared with help \"" + f->help + "\", not \"" + help + "\"");
    if (f->label_names != names)
      refuse(name, "has label names " + join(f->label_names) + ", not " + join(names));
    if (f->bounds != bounds)
      refuse(name, "was declared with other histogram buckets");
    auto it = f->series.find(values);
    if (it != f->series.end())
      return {f.get(), it->second};
    auto width = static_cast<uint32_t>(type == kind::histogram ? bounds.size() + 2 : 1);
    uint32_t first = next_slot;
    if ((first & chunk_mask) + width > chunk_slots) // keep a series inside one chunk
      first = (first | chunk_mask) + 1;
    if (uint64_t(first) + width > uint64_t(max_chunks) * chunk_slots)
      throw serve_exception(errc::internal, "metrics registry is full (2^21 slots over its life)"
                                            "; cannot add a series to \"" +
                                                name + "\"");
    next_slot = first + width;
    retired.resize(next_slot, 0.0);
    series.push_back({first, false});
    f->series.emplace(std::move(values), static_cast<uint32_t>(series.size() - 1));
    return {f.get(), static_cast<uint32_t>(series.size() - 1)};
  }
};

namespace {

/// Ids of live registries, so an exiting thread folds only into registries that still exist.
/// Leaked: threads may exit after static destructors ran.
struct live_registries {
  std::mutex mu; // taken before any registry's mu
  std::unordered_map<uint64_t, registry::state*> by_id;
};

live_registries& live() {
  static auto* registries = new live_registries;
  return *registries;
}

std::atomic<uint64_t> next_registry_id{1};

// Thread caches. A registry owns its shards; a thread only remembers (registry id, shard*).
// Ids are never reused, so an entry of a destroyed registry never matches again and its freed
// shard is never touched. The last registry used is kept in a trivially destructible
// thread_local: the fast path is one compare, with no TLS init guard.
struct shard_ref {
  uint64_t registry_id = 0;
  shard* s = nullptr;
};
thread_local shard_ref tls_last;
thread_local bool tls_exited = false;

/// All shards of this thread; at thread exit, folds each into its registry if it still lives.
struct thread_shards {
  std::vector<shard_ref> refs;

  ~thread_shards() {
    tls_exited = true; // writes from later thread_local destructors are dropped
    tls_last = {};
    auto& l = live();
    std::lock_guard<std::mutex> lock(l.mu);
    for (const auto& r : refs)
      if (auto it = l.by_id.find(r.registry_id); it != l.by_id.end())
        it->second->retire(r.s);
  }
};
thread_local thread_shards tls_shards;

/// The slow path: this thread's shard of `st`, created on the thread's first write to it.
shard* attach(registry::state& st) {
  if (tls_exited)
    return nullptr;
  auto& refs = tls_shards.refs;
  auto known = std::find_if(refs.begin(), refs.end(),
                            [&](const shard_ref& r) { return r.registry_id == st.id; });
  if (known != refs.end())
    return (tls_last = *known).s;
  auto fresh = std::make_unique<shard>();
  shard_ref ref{st.id, fresh.get()};
  {
    auto& l = live();
    std::lock_guard<std::mutex> lock(l.mu);
    refs.erase(std::remove_if(refs.begin(), refs.end(),
                              [&](const shard_ref& r) { return !l.by_id.count(r.registry_id); }),
               refs.end());
    std::lock_guard<std::mutex> lock_registry(st.mu);
    st.shards.push_back(std::move(fresh));
  }
  refs.push_back(ref);
  return (tls_last = ref).s;
}

void add_to(std::atomic<double>& slot, double v) {
  slot.store(slot.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
}

} // namespace

std::atomic<double>* registry::local_slot(uint32_t index) const {
  shard* s = tls_last.registry_id == id_ ? tls_last.s : attach(*state_);
  if (s == nullptr)
    return nullptr;
  auto& entry = s->chunks[index >> chunk_shift];
  chunk* c = entry.load(std::memory_order_relaxed); // only this thread stores it
  if (c == nullptr) {
    c = new chunk();
    entry.store(c, std::memory_order_release);
  }
  return &c->slots[index & chunk_mask];
}

registry::registry() : id_(next_registry_id.fetch_add(1)), state_(std::make_unique<state>(id_)) {
  std::lock_guard<std::mutex> lock(live().mu);
  live().by_id[id_] = state_.get();
}

registry::~registry() {
  std::lock_guard<std::mutex> lock(live().mu);
  live().by_id.erase(id_); // from here on, exiting threads leave this registry's shards alone
}

registry& registry::global() {
  static auto* process_registry = new registry;
  return *process_registry;
}

counter registry::get_counter(const std::string& name, const std::string& help,
                              const label_set& labels) {
  std::lock_guard<std::mutex> lock(state_->mu);
  uint32_t id = state_->find(name, help, kind::counter, {}, labels).second;
  return counter(this, id, state_->series[id].slot);
}

gauge registry::get_gauge(const std::string& name, const std::string& help,
                          const label_set& labels) {
  std::lock_guard<std::mutex> lock(state_->mu);
  uint32_t id = state_->find(name, help, kind::gauge, {}, labels).second;
  return gauge(this, id, state_->series[id].slot);
}

histogram registry::get_histogram(const std::string& name, const std::string& help,
                                  const std::vector<double>& upper_bounds,
                                  const label_set& labels) {
  std::lock_guard<std::mutex> lock(state_->mu);
  auto [f, id] = state_->find(name, help, kind::histogram, upper_bounds, labels);
  return histogram(this, id, state_->series[id].slot, &f->bounds);
}

void registry::remove_series_with(const std::string& label, const std::string& value) {
  std::lock_guard<std::mutex> lock(state_->mu);
  for (auto& [name, f] : state_->families) {
    auto pos = std::find(f->label_names.begin(), f->label_names.end(), label);
    if (pos == f->label_names.end())
      continue;
    auto index = pos - f->label_names.begin();
    for (auto it = f->series.begin(); it != f->series.end();) {
      if (it->first[index] == value) {
        state_->series[it->second].removed = true;
        it = f->series.erase(it);
      } else {
        ++it;
      }
    }
  }
}

std::string registry::render() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  std::string out;
  for (const auto& [name, f] : state_->families) {
    if (f->series.empty())
      continue;
    out += "# HELP " + name + " " + escape(f->help, false) + "\n";
    out += "# TYPE " + name + " " + kind_name(f->type) + "\n";
    for (const auto& [values, id] : f->series) {
      std::string labels;
      for (size_t i = 0; i < values.size(); ++i)
        labels += (i ? "," : "") + f->label_names[i] + "=\"" + escape(values[i], true) + "\"";
      std::string braced = labels.empty() ? "" : "{" + labels + "}";
      uint32_t slot = state_->series[id].slot;
      if (f->type != kind::histogram) {
        out += name + braced + " " + format_number(state_->total(slot)) + "\n";
        continue;
      }
      const auto n = static_cast<uint32_t>(f->bounds.size());
      double cumulative = 0;
      for (uint32_t i = 0; i <= n; ++i) {
        cumulative += state_->total(slot + i);
        out += name + "_bucket{" + labels + (labels.empty() ? "" : ",") + "le=\"" +
               (i < n ? format_number(f->bounds[i]) : "+Inf") + "\"} " + format_number(cumulative) +
               "\n";
      }
      out += name + "_sum" + braced + " " + format_number(state_->total(slot + n + 1)) + "\n";
      out += name + "_count" + braced + " " + format_number(cumulative) + "\n";
    }
  }
  return out;
}

void counter::inc(double v) const {
  if (reg_ == nullptr || !(v >= 0))
    return;
  if (auto* slot = reg_->local_slot(slot_))
    add_to(*slot, v);
}

double counter::value() const {
  return reg_ ? reg_->state_->value_of(series_, slot_) : 0.0;
}

void gauge::add(double delta) const {
  if (reg_ == nullptr)
    return;
  if (auto* slot = reg_->local_slot(slot_))
    add_to(*slot, delta);
}

void gauge::set(double v) const {
  auto* slot = reg_ ? reg_->local_slot(slot_) : nullptr; // before the lock: a first touch takes it
  if (slot == nullptr)
    return;
  std::lock_guard<std::mutex> lock(reg_->state_->mu);
  if (!reg_->state_->series[series_].removed)
    add_to(*slot, v - reg_->state_->total(slot_));
}

double gauge::value() const {
  return reg_ ? reg_->state_->value_of(series_, slot_) : 0.0;
}

void histogram::observe(double v) const {
  if (reg_ == nullptr || std::isnan(v))
    return;
  const auto& bounds = *bounds_; // first bound >= v; bounds.size() is the +Inf bucket
  auto bucket = std::lower_bound(bounds.begin(), bounds.end(), v) - bounds.begin();
  if (auto* first = reg_->local_slot(slot_)) { // the series lies in one chunk
    add_to(first[bucket], 1);
    add_to(first[bounds.size() + 1], v);
  }
}

histogram::snapshot histogram::read() const {
  snapshot snap;
  if (reg_ == nullptr)
    return snap;
  snap.upper_bounds = *bounds_;
  snap.counts.assign(bounds_->size() + 1, 0);
  const auto& st = *reg_->state_;
  std::lock_guard<std::mutex> lock(st.mu);
  if (st.series[series_].removed)
    return snap;
  for (uint32_t i = 0; i < snap.counts.size(); ++i) {
    snap.counts[i] = static_cast<uint64_t>(st.total(slot_ + i));
    snap.count += snap.counts[i];
  }
  snap.sum = st.total(slot_ + static_cast<uint32_t>(snap.counts.size()));
  return snap;
}

} // namespace serve::metrics
