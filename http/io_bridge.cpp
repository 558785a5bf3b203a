#include "http/io_bridge.hpp"

#include <boost/asio/post.hpp>

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

io_bridge* make_io_bridge(caf::actor_system& sys, boost::asio::io_context& io,
                          caf::actor& handle) {
  handle = sys.spawn<io_bridge, caf::hidden>(&io);
  return static_cast<io_bridge*>(caf::actor_cast<caf::abstract_actor*>(handle));
}

} // namespace serve
