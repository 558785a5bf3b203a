// An actor whose mailbox is drained by an io thread: the ingress's way into CAF and back.
//
// Modelled on caf::actor_companion (CAF 0.17.6), with the requester mixin added: code running
// on the io thread calls bridge.request(router, timeout, ...).then(on_reply, on_error), and
// both continuations run later on that same io thread. Every message for the bridge (replies,
// request timeouts from CAF's clock) is posted into the io_context and consumed there, so the
// bridge's state is touched by one thread only and a request crosses exactly one thread on its
// way into CAF (io thread -> router) and one on its way back (replica/router -> io thread).
//
// Lifetime: make_io_bridge spawns it hidden (the actor system does not wait for it); the io
// thread calls start() first and stop() last; messages still queued after stop() are dropped.
// Accessed only from its io thread, except enqueue (any thread).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>

#include <boost/asio/io_context.hpp>

#include <caf/actor.hpp>
#include <caf/extend.hpp>
#include <caf/mixin/behavior_changer.hpp>
#include <caf/mixin/requester.hpp>
#include <caf/mixin/sender.hpp>
#include <caf/scheduled_actor.hpp>
#include <caf/scoped_execution_unit.hpp>

namespace serve {
class io_bridge;
} // namespace serve

namespace caf {
template <>
class behavior_type_of<serve::io_bridge> {
public:
  using type = behavior;
};
} // namespace caf

namespace serve {

class io_bridge
  : public caf::extend<caf::scheduled_actor, io_bridge>::with<
      caf::mixin::sender, caf::mixin::requester, caf::mixin::behavior_changer> {
public:
  using signatures = caf::none_t;
  using behavior_type = caf::behavior;

  io_bridge(caf::actor_config& cfg, boost::asio::io_context* io);

  /// Posts `ptr` to the io thread, which hands it to the actor there.
  void enqueue(caf::mailbox_element_ptr ptr, caf::execution_unit* eu) override;

  /// Registers (unless hidden) but schedules nothing: the io thread runs this actor.
  void launch(caf::execution_unit* eu, bool lazy, bool hide) override;

  const char* name() const override { return "io_bridge"; }

  /// On the io thread, before the first request.
  void start();

  /// On the io thread: the actor terminates; pending continuations are dropped.
  void stop();

  /// On the io thread: a call sent to `target` that must not wait forever if `target` dies
  /// holding it (a dead actor answers nothing). `on_lost` runs on the io thread when the
  /// target goes down before unwatch(); returns the key for unwatch. Targets are monitored
  /// once, until they go down.
  uint64_t watch(const caf::actor_addr& target, std::function<void()> on_lost);

  /// On the io thread: the call's answer came; false when on_lost ran already (or will not).
  bool unwatch(const caf::actor_addr& target, uint64_t key);

  /// On the io thread: runs `fn` there after `delay` (unless the bridge stopped).
  void after(std::chrono::nanoseconds delay, std::function<void()> fn);

private:
  void on_down(const caf::down_msg& dm);

  boost::asio::io_context* io_;
  caf::scoped_execution_unit unit_;
  /// Set on the io thread by stop(); read by enqueue (any thread).
  std::atomic<bool> stopped_{false};
  uint64_t next_watch_ = 0;
  /// Watched calls by target; a target stays (monitored) until its down_msg.
  std::map<caf::actor_addr, std::map<uint64_t, std::function<void()>>> watched_;
};

/// Spawns a bridge for `io` (hidden). The returned pointer lives as long as the handle.
io_bridge* make_io_bridge(caf::actor_system& sys, boost::asio::io_context& io,
                          caf::actor& handle);

} // namespace serve
