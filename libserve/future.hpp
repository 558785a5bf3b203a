// Single-threaded futures for composing deployment calls without blocking.
//
// A deployment handler returns a future<T>; calls to other deployments through a handle return
// futures too. Continuations (`then`) run when the value arrives, on the thread that settles the
// promise - in a replica that is the replica's executor thread, never a CAF scheduler thread.
// There is deliberately no blocking get(): composition is continuation-based.
//
// Not thread-safe: a promise, its futures and their continuations belong to one thread.
// One continuation per future: then()/on_error() move the value out (bodies can be large);
// to use a result twice, copy it inside the single continuation.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "libserve/error.hpp"

namespace serve {

/// Thrown by user code to fail a request with a specific code, e.g.
/// `throw serve_exception(errc::invalid_argument, "field \"x\" is missing")`.
/// Any other exception becomes errc::internal with its what().
class serve_exception : public std::runtime_error {
public:
  serve_exception(errc code, const std::string& message)
    : std::runtime_error(message), code_(code) {}
  errc code() const noexcept { return code_; }

private:
  errc code_;
};

/// Converts the exception currently being handled into an error_info.
error_info current_exception_info();

template <class T>
class future;

namespace detail {

template <class T>
struct future_state {
  std::optional<T> value;
  std::optional<error_info> error;
  std::vector<std::function<void()>> callbacks;

  bool settled() const { return value.has_value() || error.has_value(); }

  void run_callbacks() {
    auto callbacks_now = std::move(callbacks);
    callbacks.clear();
    for (auto& f : callbacks_now)
      f();
  }
};

template <class T>
struct unwrap_future {
  using type = T;
  static constexpr bool is_future = false;
};

template <class T>
struct unwrap_future<future<T>> {
  using type = T;
  static constexpr bool is_future = true;
};

} // namespace detail

/// The writing end of a future. Settling twice is ignored (the first result wins).
template <class T>
class promise {
public:
  promise() : state_(std::make_shared<detail::future_state<T>>()) {}

  future<T> get_future() const { return future<T>(state_); }

  // Settling holds its own reference to the state while the callbacks run: they do not own
  // it (see future::subscribe), and one of them may destroy this promise.
  void set_value(T value) {
    auto state = state_;
    if (state->settled())
      return;
    state->value.emplace(std::move(value));
    state->run_callbacks();
  }

  void set_error(error_info err) {
    auto state = state_;
    if (state->settled())
      return;
    state->error.emplace(std::move(err));
    state->run_callbacks();
  }

  bool settled() const { return state_->settled(); }

private:
  std::shared_ptr<detail::future_state<T>> state_;
};

template <class T>
class future {
public:
  using value_type = T;

  /// A future that already holds `value` (lets a handler simply `return response{...};`).
  future(T value) : state_(std::make_shared<detail::future_state<T>>()) {
    state_->value.emplace(std::move(value));
  }

  explicit future(std::shared_ptr<detail::future_state<T>> state) : state_(std::move(state)) {}

  static future failed(error_info err) {
    auto state = std::make_shared<detail::future_state<T>>();
    state->error.emplace(std::move(err));
    return future(std::move(state));
  }

  bool ready() const { return state_->settled(); }
  bool has_error() const { return state_->error.has_value(); }

  /// Calls `on_done(value, error)` exactly once, with one of the two non-null.
  void subscribe(std::function<void(T*, const error_info*)> on_done) const {
    // The callback is stored in the state itself, so it must not own the state: that cycle
    // would keep an abandoned promise's state and every continuation alive forever.
    auto run = [state = state_.get(), on_done = std::move(on_done)] {
      if (state->value)
        on_done(&*state->value, nullptr);
      else
        on_done(nullptr, &*state->error);
    };
    if (state_->settled()) {
      auto keep_alive = state_; // on_done may destroy this future
      run();
    } else {
      state_->callbacks.emplace_back(std::move(run));
    }
  }

  /// Runs `f(T)` once the value arrives. `f` may return U or future<U>; the result is future<U>.
  /// Errors skip `f` and pass through. An exception thrown by `f` becomes the result's error.
  template <class F>
  auto then(F f) const {
    using raw = std::invoke_result_t<F, T>;
    using traits = detail::unwrap_future<raw>;
    using U = typename traits::type;
    promise<U> next;
    subscribe([next, f = std::move(f)](T* value, const error_info* err) mutable {
      if (err) {
        next.set_error(*err);
        return;
      }
      try {
        if constexpr (traits::is_future) {
          f(std::move(*value)).subscribe([next](U* v, const error_info* e) mutable {
            if (e)
              next.set_error(*e);
            else
              next.set_value(std::move(*v));
          });
        } else {
          next.set_value(f(std::move(*value)));
        }
      } catch (...) {
        next.set_error(current_exception_info());
      }
    });
    return next.get_future();
  }

  /// Recovers from an error: `f(error_info)` returns a replacement T.
  template <class F>
  future<T> on_error(F f) const {
    promise<T> next;
    subscribe([next, f = std::move(f)](T* value, const error_info* err) mutable {
      if (!err) {
        next.set_value(std::move(*value));
        return;
      }
      try {
        next.set_value(f(*err));
      } catch (...) {
        next.set_error(current_exception_info());
      }
    });
    return next.get_future();
  }

private:
  std::shared_ptr<detail::future_state<T>> state_;
};

/// Gathers futures: the result holds all values in the order given, or the first error (in
/// order of arrival). An empty input gives an empty vector at once.
template <class T>
future<std::vector<T>> when_all(std::vector<future<T>> futures) {
  struct gather {
    std::vector<std::optional<T>> values;
    size_t pending = 0;
    promise<std::vector<T>> done;
  };
  auto g = std::make_shared<gather>();
  g->values.resize(futures.size());
  g->pending = futures.size();
  auto result = g->done.get_future();
  if (futures.empty()) {
    g->done.set_value({});
    return result;
  }
  for (size_t i = 0; i < futures.size(); ++i) {
    futures[i].subscribe([g, i](T* value, const error_info* err) {
      if (err) {
        g->done.set_error(*err);
        return;
      }
      g->values[i].emplace(std::move(*value));
      if (--g->pending == 0 && !g->done.settled()) {
        std::vector<T> out;
        out.reserve(g->values.size());
        for (auto& v : g->values)
          out.emplace_back(std::move(*v));
        g->done.set_value(std::move(out));
      }
    });
  }
  return result;
}

} // namespace serve
