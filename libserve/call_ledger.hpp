// A router's bookkeeping of its calls, apart from the actor: the FIFO of calls waiting for a
// slot, the calls sent to each replica, and their deadlines. Time is passed in; nothing here
// sends, sleeps or reads a clock, so every rule is tested with plain values
// (test/libserve/call_ledger_test.cpp), and the router actor (actors/router.cpp) only feeds it
// its messages and its sweep timer.
//
//   Waiting: what the router keeps of a queued call (the request and the caller's promise).
//   Running: what it keeps of a call on a replica (the request shared with the replica, the
//            replica's slot, the promise).
//   Key:     names a replica (ordered; the router uses the replica's actor address).
//
// Rules:
// - Waiting calls leave in arrival order; a call routed again after a bounce goes first.
// - A call whose deadline (ns on the caller's steady clock, 0 = none) has passed leaves the
//   queue as expired, when next_waiting() reaches it or at the next expire().
// - A running call past its deadline, or running for longer than max_wait without one, is
//   expired once (the router answers its caller) but stays counted against its replica until
//   the replica answers or is lost: finish() then reports it as already answered.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <utility>
#include <vector>

namespace serve {

template <class Waiting, class Running, class Key>
class call_ledger {
public:
  /// A call on a replica.
  struct running_call {
    Running call;
    int64_t deadline_ns = 0;
    int64_t sent_ns = 0;
    /// Its caller was answered already (the call expired).
    bool answered = false;
  };

  /// `max_wait_ns`: how long a running call without a deadline may go unanswered.
  explicit call_ledger(int64_t max_wait_ns) : max_wait_ns_(max_wait_ns) {}

  // ---- the wait queue

  size_t waiting() const { return queue_.size(); }

  /// Queues a call: at the back, or at the front when it is routed again after a bounce.
  void wait(Waiting call, int64_t deadline_ns, bool first_in_line) {
    if (first_in_line)
      queue_.push_front(queued{std::move(call), deadline_ns});
    else
      queue_.push_back(queued{std::move(call), deadline_ns});
  }

  /// The oldest waiting call not past its deadline, or nullptr; calls past theirs are removed
  /// first and handed to `on_expired(Waiting&&)`. `now()` gives the time, read only when a
  /// call has a deadline (the router's drain runs after every reply).
  template <class Now, class OnExpired>
  Waiting* next_waiting(Now&& now, OnExpired&& on_expired) {
    while (!queue_.empty()) {
      auto deadline_ns = queue_.front().deadline_ns;
      if (deadline_ns == 0 || !past(deadline_ns, now()))
        return &queue_.front().call;
      auto expired = std::move(queue_.front().call);
      queue_.pop_front();
      on_expired(std::move(expired));
    }
    return nullptr;
  }

  /// Removes and returns the oldest waiting call; the queue must not be empty.
  Waiting take_next() {
    auto call = std::move(queue_.front().call);
    queue_.pop_front();
    return call;
  }

  /// Empties the queue, handing every call to `f(Waiting&&)` in order.
  template <class F>
  void take_all_waiting(F&& f) {
    auto calls = std::move(queue_);
    queue_.clear();
    for (auto& q : calls)
      f(std::move(q.call));
  }

  // ---- calls on replicas

  /// Records a call sent to `replica` at `now_ns`; returns its number there.
  uint64_t start(const Key& replica, Running call, int64_t deadline_ns, int64_t now_ns) {
    auto no = next_call_++;
    running_[replica].emplace(no, running_call{std::move(call), deadline_ns, now_ns, false});
    return no;
  }

  /// The replica answered call `no`: the call, or nullopt when it is not known (its replica
  /// was lost and the call taken out already).
  std::optional<running_call> finish(const Key& replica, uint64_t no) {
    auto calls = running_.find(replica);
    if (calls == running_.end())
      return std::nullopt;
    auto call = calls->second.find(no);
    if (call == calls->second.end())
      return std::nullopt;
    std::optional<running_call> out{std::move(call->second)};
    calls->second.erase(call);
    if (calls->second.empty())
      running_.erase(calls);
    return out;
  }

  /// Calls on replicas, all of them.
  size_t running() const {
    size_t n = 0;
    for (auto& [_, calls] : running_)
      n += calls.size();
    return n;
  }
  bool running_on(const Key& replica) const { return running_.count(replica) > 0; }

  /// The replica is lost: its calls, taken out (in the order they were sent).
  std::vector<running_call> take_running_on(const Key& replica) {
    std::vector<running_call> out;
    auto calls = running_.find(replica);
    if (calls == running_.end())
      return out;
    for (auto& [_, call] : calls->second)
      out.push_back(std::move(call));
    running_.erase(calls);
    return out;
  }

  /// Takes out every call on every replica, handing each to `f(running_call&&)`.
  template <class F>
  void take_all_running(F&& f) {
    auto all = std::move(running_);
    running_.clear();
    for (auto& [_, calls] : all)
      for (auto& [__, call] : calls)
        f(std::move(call));
  }

  /// Nothing waits and nothing runs.
  bool idle() const { return queue_.empty() && running_.empty(); }

  // ---- time

  /// At `now_ns`: waiting calls past their deadline are removed and handed to
  /// `on_waiting(Waiting&&)`; running calls past their deadline, or without one and sent
  /// max_wait ago, are marked answered and handed to `on_running(Running&)` once.
  template <class OnWaiting, class OnRunning>
  void expire(int64_t now_ns, OnWaiting&& on_waiting, OnRunning&& on_running) {
    for (auto& [_, calls] : running_)
      for (auto& [__, call] : calls) {
        bool expired = call.deadline_ns != 0 ? past(call.deadline_ns, now_ns)
                                             : now_ns - call.sent_ns >= max_wait_ns_;
        if (expired && !call.answered) {
          call.answered = true;
          on_running(call.call);
        }
      }
    for (auto i = queue_.begin(); i != queue_.end();) {
      if (past(i->deadline_ns, now_ns)) {
        auto expired = std::move(i->call);
        i = queue_.erase(i);
        on_waiting(std::move(expired));
      } else {
        ++i;
      }
    }
  }

private:
  struct queued {
    Waiting call;
    int64_t deadline_ns = 0;
  };

  static bool past(int64_t deadline_ns, int64_t now_ns) {
    return deadline_ns != 0 && deadline_ns <= now_ns;
  }

  int64_t max_wait_ns_;
  std::deque<queued> queue_;
  std::map<Key, std::map<uint64_t, running_call>> running_;
  uint64_t next_call_ = 0;
};

} // namespace serve
