// Gathers single requests into batches, with Ray Serve's @serve.batch timing.
//
// A batch opens when its first item arrives (or when items are left behind by the previous
// batch); the timer starts then. The batch is due as soon as it is full, or when the timer runs
// out with whatever it has. An idle period never lets a later lone item skip its wait. Option
// changes apply to the next batch formed; the batch already open keeps its start time.
//
// Time is passed in by the caller (no clock inside), so tests need no sleeps.
// Not thread-safe: accessed only from the owning replica actor.
#pragma once

#include <algorithm>
#include <chrono>
#include <deque>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include "libserve/config.hpp"

namespace serve {

template <class T>
class batch_queue {
public:
  using clock = std::chrono::steady_clock;
  using time_point = clock::time_point;

  explicit batch_queue(batch_options opts) : opts_(opts) {}

  /// Adds an item that arrived at `now`.
  void push(T item, time_point now) {
    if (items_.empty())
      opened_at_ = now;
    items_.push_back(std::move(item));
  }

  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }

  /// True when the open batch is full.
  bool full() const { return items_.size() >= opts_.max_batch_size; }

  /// When the open batch is due at the latest; nullopt when the queue is empty.
  std::optional<time_point> deadline() const {
    if (items_.empty())
      return std::nullopt;
    return opened_at_ + opts_.batch_wait_timeout;
  }

  /// True when a batch should be sent at `now`: it is full or its timer has run out.
  bool due(time_point now) const {
    return !items_.empty() && (full() || now >= *deadline());
  }

  /// Removes up to max_batch_size items, oldest first. Items for which `drop(item)` is true
  /// (cancelled, expired) are moved to `dropped` instead and do not take a place in the batch.
  /// Items left behind open the next batch at `now`.
  std::vector<T> pop_batch(time_point now, const std::function<bool(const T&)>& drop,
                           std::vector<T>& dropped) {
    std::vector<T> batch;
    batch.reserve(std::min(items_.size(), opts_.max_batch_size));
    while (!items_.empty() && batch.size() < opts_.max_batch_size) {
      if (drop && drop(items_.front()))
        dropped.push_back(std::move(items_.front()));
      else
        batch.push_back(std::move(items_.front()));
      items_.pop_front();
    }
    opened_at_ = now;
    return batch;
  }

  /// Removes up to max_batch_size items, oldest first.
  std::vector<T> pop_batch(time_point now) {
    std::vector<T> dropped;
    return pop_batch(now, nullptr, dropped);
  }

  /// Removes every item matching `pred` (e.g. cancelled) wherever it waits; returns them.
  std::vector<T> remove_if(const std::function<bool(const T&)>& pred) {
    std::vector<T> removed;
    for (auto i = items_.begin(); i != items_.end();) {
      if (pred(*i)) {
        removed.push_back(std::move(*i));
        i = items_.erase(i);
      } else {
        ++i;
      }
    }
    return removed;
  }

  /// Removes everything (shutdown).
  std::vector<T> take_all() {
    std::vector<T> all(std::make_move_iterator(items_.begin()),
                       std::make_move_iterator(items_.end()));
    items_.clear();
    return all;
  }

  const batch_options& options() const { return opts_; }

  /// New options for the next batch; the open batch keeps its start time.
  void set_options(batch_options opts) { opts_ = opts; }

private:
  batch_options opts_;
  std::deque<T> items_;
  time_point opened_at_{};
};

} // namespace serve
