#include "actors/node_link.hpp"

#include <cstdio>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/manager.hpp>

#include "libserve/error.hpp"
#include "libserve/node_token.hpp"

namespace serve {

namespace {


struct node_link_state {
  node_link_options opts;
  node_actor node;
  uint64_t session = 0;
  bool up = false;
  /// Bumped on every loss: replies and timers of an earlier attempt are ignored.
  uint64_t attempt = 0;
  /// The last reason reported, so that a node that stays down is logged once.
  std::string last_reason;
  bool leaving = false;
  static inline const char* name = "node_link";
};

using link_pointer = node_link_actor::stateful_pointer<node_link_state>;

std::string label(link_pointer self) {
  auto& n = self->state.opts.node;
  return "node " + n.name + " (" + n.host + ":" + std::to_string(n.port) + ")";
}

void log_line(const std::string& line) {
  std::fprintf(stderr, "[actorserve] %s\n", line.c_str());
}

std::chrono::milliseconds seconds_to_ms(double s) {
  return std::chrono::milliseconds(static_cast<int64_t>(s * 1000));
}

/// Time allowed for the connect and for each step of the join: the heartbeat timeout, within
/// 2..10 s (a TLS node reached without TLS, or a stopped one, never answers).
std::chrono::milliseconds join_step_timeout(link_pointer self) {
  return seconds_to_ms(std::clamp(self->state.opts.cluster.heartbeat_timeout_s, 2.0, 10.0));
}

/// "2 s", "0.5 s".
std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", s);
  return buf;
}

void schedule_connect(link_pointer self) {
  if (!self->state.leaving)
    self->delayed_send(self, seconds_to_ms(self->state.opts.cluster.reconnect_interval_s),
                       connect_atom::value);
}

/// The node is down or could not be joined: tell the controller (once per reason) and retry.
void lost(link_pointer self, const std::string& reason) {
  auto& st = self->state;
  ++st.attempt;
  bool was_up = st.up;
  st.up = false;
  if (st.node)
    self->demonitor(st.node.address());
  st.node = nullptr;
  if (was_up || reason != st.last_reason) {
    log_line(label(self) + (was_up ? " lost: " : " not joined: ") + reason);
    node_event ev;
    ev.name = st.opts.node.name;
    ev.reason = reason;
    self->send(st.opts.controller, node_atom::value, std::move(ev));
  }
  st.last_reason = reason;
  schedule_connect(self);
}

/// A short reason for the status and the log.
std::string describe(const caf::error& err) {
  if (err == caf::sec::request_timeout)
    return "no answer in time";
  if (err == caf::sec::cannot_connect_to_node)
    return "cannot connect";
  if (err == caf::exit_reason::remote_link_unreachable)
    return "connection lost";
  if (err.category() == caf::atom("system") || err.category() == caf::atom("exit"))
    return caf::to_string(err);
  return to_error_info(err).message;
}

void joined(link_pointer self, join_reply& reply) {
  auto& st = self->state;
  st.up = true;
  st.session = reply.session;
  st.last_reason.clear();
  self->monitor(st.node);
  log_line(label(self) + " joined" + (reply.devices.empty() ? "" : " (" + reply.devices + ")"));
  node_event ev;
  ev.name = st.opts.node.name;
  ev.up = true;
  ev.node = caf::actor_cast<caf::actor>(st.node);
  ev.session = reply.session;
  self->send(st.opts.controller, node_atom::value, std::move(ev));
  self->send(self, ping_atom::value, st.attempt);
}

void join(link_pointer self, uint64_t attempt) {
  auto& st = self->state;
  self->request(st.node, join_step_timeout(self), hello_atom::value)
    .then(
      [=](std::string& challenge) {
        auto& st = self->state;
        if (attempt != st.attempt)
          return;
        join_request req;
        req.head_id = st.opts.head_id;
        req.challenge = challenge;
        req.proof = st.opts.token.empty() ? "" : token_proof(st.opts.token, challenge);
        req.head_link = caf::actor_cast<caf::actor>(self);
        req.heartbeat_timeout_ms = seconds_to_ms(st.opts.cluster.heartbeat_timeout_s).count();
        self->request(st.node, join_step_timeout(self), join_atom::value, std::move(req))
          .then(
            [=](join_reply& reply) {
              if (attempt == self->state.attempt)
                joined(self, reply);
            },
            [=](caf::error& err) {
              if (attempt == self->state.attempt)
                lost(self, describe(err));
            });
      },
      [=](caf::error& err) {
        if (attempt == self->state.attempt)
          lost(self, "no answer to hello: " + describe(err));
      });
}

void connect(link_pointer self) {
  auto& st = self->state;
  if (st.up || st.leaving || st.node)
    return;
  auto attempt = ++st.attempt;
  auto& sys = self->system();
  auto mm = st.opts.cluster.tls.enabled() ? sys.openssl_manager().actor_handle()
                                          : sys.middleman().actor_handle();
  self->request(mm, join_step_timeout(self), connect_atom::value, st.opts.node.host,
                static_cast<uint16_t>(st.opts.node.port))
    .then(
      [=](caf::node_id&, caf::strong_actor_ptr& ptr, std::set<std::string>&) {
        if (attempt != self->state.attempt)
          return;
        if (!ptr) {
          lost(self, "nothing is published on that port");
          return;
        }
        self->state.node = caf::actor_cast<node_actor>(ptr);
        join(self, attempt);
      },
      [=](caf::error& err) {
        if (attempt == self->state.attempt)
          lost(self, describe(err));
      });
}

void ping(link_pointer self, uint64_t attempt) {
  auto& st = self->state;
  if (!st.up || attempt != st.attempt)
    return;
  auto timeout = seconds_to_ms(st.opts.cluster.heartbeat_timeout_s);
  self->request(st.node, timeout, ping_atom::value, st.session)
    .then(
      [=](uint64_t) {
        if (attempt == self->state.attempt)
          self->delayed_send(self, seconds_to_ms(self->state.opts.cluster.heartbeat_interval_s),
                             ping_atom::value, attempt);
      },
      [=](caf::error& err) {
        if (attempt != self->state.attempt)
          return;
        lost(self, err == caf::sec::request_timeout
                     ? "no heartbeat answer within "
                         + seconds_text(self->state.opts.cluster.heartbeat_timeout_s)
                     : describe(err));
      });
}

node_link_actor::behavior_type node_link_impl(link_pointer self, node_link_options opts) {
  self->state.opts = std::move(opts);
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    if (st.node && dm.source == st.node.address())
      lost(self, describe(dm.reason));
  });
  self->send(self, connect_atom::value);
  return {
    [=](connect_atom) { connect(self); },
    [=](ping_atom, uint64_t attempt) { ping(self, attempt); },
    [=](leave_atom) {
      auto& st = self->state;
      st.leaving = true;
      if (st.up && st.node)
        self->send(st.node, leave_atom::value, st.session);
    },
  };
}

} // namespace

node_link_actor spawn_node_link(caf::actor_system& sys, node_link_options opts) {
  return sys.spawn(node_link_impl, std::move(opts));
}

} // namespace serve
