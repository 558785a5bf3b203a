#include "http/io_bridge.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/mailbox_element.hpp>

namespace serve {

io_bridge::io_bridge(caf::actor_config& cfg, boost::asio::io_context* io)
  : extended_base(cfg), io_(io), unit_(&cfg.host->system()) {
  // Requests are sent from io-thread code outside any message handler: they need a context.
  context(&unit_);
}

void io_bridge::enqueue(caf::mailbox_element_ptr ptr, caf::execution_unit*) {
  if (stopped_.load())
    return; // its io thread ends too: nothing would run the message, and its io_context goes
  // The strong reference keeps the actor alive while the message waits in the io_context.
  boost::asio::post(*io_, [self = caf::strong_actor_ptr{ctrl()}, ptr = std::move(ptr)]() mutable {
    auto* bridge = static_cast<io_bridge*>(caf::actor_cast<caf::abstract_actor*>(self));
    if (!bridge->stopped_)
      bridge->activate(&bridge->unit_, *ptr);
  });
}

void io_bridge::launch(caf::execution_unit*, bool, bool hide) {
  if (!hide)
    register_at_system();
}

void io_bridge::start() {
  set_default_handler(caf::drop);
  set_down_handler([this](caf::down_msg& dm) { on_down(dm); });
  // Nothing is sent to a bridge but replies and timeouts; the behavior keeps it alive.
  become(caf::behavior{[](caf::ok_atom) {}});
  activate(&unit_);
}

void io_bridge::stop() {
  if (stopped_)
    return;
  stopped_ = true;
  quit(caf::exit_reason::user_shutdown);
  cleanup(caf::exit_reason::user_shutdown, &unit_);
}

uint64_t io_bridge::watch(const caf::actor_addr& target, std::function<void()> on_lost) {
  auto [calls, added] = watched_.try_emplace(target);
  if (added)
    monitor(target);
  auto key = next_watch_++;
  calls->second.emplace(key, std::move(on_lost));
  return key;
}

bool io_bridge::unwatch(const caf::actor_addr& target, uint64_t key) {
  auto calls = watched_.find(target);
  return calls != watched_.end() && calls->second.erase(key) > 0;
}

void io_bridge::after(std::chrono::nanoseconds delay, std::function<void()> fn) {
  auto timer = std::make_shared<boost::asio::steady_timer>(*io_, delay);
  timer->async_wait([this, timer, fn = std::move(fn)](const boost::system::error_code& ec) {
    if (!ec && !stopped_)
      fn();
  });
}

void io_bridge::on_down(const caf::down_msg& dm) {
  auto calls = watched_.find(dm.source);
  if (calls == watched_.end())
    return;
  // A local actor bounces the calls it never started before its down_msg goes out, so what is
  // left here was started and will never be answered.
  auto lost = std::move(calls->second);
  watched_.erase(calls);
  for (auto& [_, on_lost] : lost)
    on_lost();
}

io_bridge* make_io_bridge(caf::actor_system& sys, boost::asio::io_context& io,
                          caf::actor& handle) {
  handle = sys.spawn<io_bridge, caf::hidden>(&io);
  return static_cast<io_bridge*>(caf::actor_cast<caf::abstract_actor*>(handle));
}

} // namespace serve
