#include "actors/node.hpp"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>

#include <caf/all.hpp>

#include "actors/call_context.hpp"
#include "actors/replica.hpp"
#include "libserve/future.hpp"
#include "libserve/model_location.hpp"
#include "libserve/node_token.hpp"

namespace serve {

namespace {

using clock_type = std::chrono::steady_clock;

/// A challenge not answered within this time is forgotten.
constexpr std::chrono::seconds challenge_lifetime{30};
/// How often sessions are checked for missing pings.
constexpr std::chrono::milliseconds watchdog_period{250};

struct session_record {
  std::string head_id;
  caf::actor head_link;
  std::vector<caf::actor> replicas;
  clock_type::time_point last_ping;
  std::chrono::milliseconds heartbeat_timeout{5000};
};

struct node_state {
  node_options opts;
  std::map<std::string, clock_type::time_point> challenges;
  std::map<uint64_t, session_record> sessions;
  std::mt19937_64 rng{std::random_device{}()};
  bool watchdog_armed = false;
  static inline const char* name = "node";
};

using node_pointer = node_actor::stateful_pointer<node_state>;

void log_line(node_pointer self, const std::string& line) {
  std::fprintf(stderr, "[actorserve node %s] %s\n", self->state.opts.name.c_str(), line.c_str());
}

std::string head_address(node_pointer self) {
  auto sender = self->current_sender();
  return sender ? to_string(sender->node()) : std::string("an unknown peer");
}

std::filesystem::path session_dir(node_pointer self, uint64_t session) {
  return std::filesystem::path(self->state.opts.work_dir) / ("session-" + std::to_string(session));
}

/// Stops a session's replicas and removes its files.
void end_session(node_pointer self, uint64_t session, const std::string& why) {
  auto& st = self->state;
  auto i = st.sessions.find(session);
  if (i == st.sessions.end())
    return;
  log_line(self, "ending the session of head " + i->second.head_id + " (" + why + "): stopping "
                   + std::to_string(i->second.replicas.size()) + " replica(s)");
  for (auto& r : i->second.replicas)
    self->send_exit(r, caf::exit_reason::user_shutdown);
  st.sessions.erase(i);
  std::error_code ec;
  std::filesystem::remove_all(session_dir(self, session), ec);
}

void arm_watchdog(node_pointer self) {
  if (self->state.watchdog_armed || self->state.sessions.empty())
    return;
  self->state.watchdog_armed = true;
  self->delayed_send(self, watchdog_period, watchdog_atom::value);
}

caf::result<join_reply> join(node_pointer self, join_request& req) {
  auto& st = self->state;
  auto now = clock_type::now();
  for (auto i = st.challenges.begin(); i != st.challenges.end();)
    i = now - i->second > challenge_lifetime ? st.challenges.erase(i) : std::next(i);
  auto challenge = st.challenges.find(req.challenge);
  if (challenge == st.challenges.end()) {
    log_line(self, "refused a join from " + head_address(self) + ": unknown or expired challenge");
    return make_error(errc::invalid_argument, "join refused by node " + st.opts.name
                                                + ": unknown or expired challenge");
  }
  st.challenges.erase(challenge);
  if (!st.opts.token.empty() && !proof_matches(st.opts.token, req.challenge, req.proof)) {
    log_line(self, "refused a join from head " + req.head_id + " at " + head_address(self)
                     + ": bad token");
    return make_error(errc::invalid_argument, "join refused by node " + st.opts.name
                                                + ": bad token (the head's cluster.token_file "
                                                  "must hold the node's --token-file token)");
  }
  std::vector<uint64_t> earlier;
  for (auto& [id, s] : st.sessions)
    if (s.head_id == req.head_id)
      earlier.push_back(id);
  for (auto id : earlier)
    end_session(self, id, "the head joined again");
  uint64_t session = 0;
  while (session == 0 || st.sessions.count(session) > 0)
    session = st.rng();
  session_record rec;
  rec.head_id = req.head_id;
  rec.head_link = req.head_link;
  rec.last_ping = now;
  rec.heartbeat_timeout = std::chrono::milliseconds(std::max<int64_t>(100, req.heartbeat_timeout_ms));
  if (rec.head_link)
    self->monitor(rec.head_link);
  st.sessions.emplace(session, std::move(rec));
  log_line(self, "head " + req.head_id + " at " + head_address(self) + " joined");
  arm_watchdog(self);
  return join_reply{st.opts.name, session, st.opts.devices};
}

/// The replica options a spec describes; model files shipped with it are written first.
replica_options to_replica_options(node_pointer self, uint64_t session, replica_spec& spec) {
  replica_options opts;
  auto& exec = opts.exec;
  exec.application = spec.application;
  exec.deployment = spec.deployment;
  exec.replica_id = spec.replica_id;
  exec.class_name = spec.class_name;
  exec.graph_json = spec.graph_json;
  exec.model_json = spec.model_json;
  exec.user_config_json = spec.user_config_json;
  exec.device = spec.device; // chosen among this node's GPUs (libserve/device_selection.hpp)
  exec.precision = spec.precision;
  exec.replica_index = spec.replica_index;
  auto directory = std::make_shared<router_directory>();
  for (size_t i = 0; i < spec.router_names.size() && i < spec.routers.size(); ++i)
    directory->set(spec.router_names[i], caf::actor_cast<router_actor>(spec.routers[i]));
  exec.backend = std::make_shared<runtime_handle_backend>(directory);
  opts.batching = spec.batching;
  if (!spec.model_files.empty()) {
    model_bundle bundle;
    bundle.files = std::move(spec.model_files);
    bundle.model_file = spec.model_file;
    bundle.labels_file = spec.labels_file;
    bundle.version = spec.resolved_version;
    bundle.resolved = spec.resolved_from;
    std::string safe_id;
    for (char c : spec.replica_id)
      safe_id += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ? c : '_';
    auto folder = (session_dir(self, session) / safe_id).string();
    write_model_bundle(bundle, folder);
    exec.model_json = relocate_model_json(exec.model_json, folder);
  }
  return opts;
}

} // namespace

namespace {

caf::result<caf::actor> spawn_for(node_pointer self, uint64_t session, replica_spec& spec) {
  auto& st = self->state;
  auto s = st.sessions.find(session);
  if (s == st.sessions.end())
    return make_error(errc::unavailable, "node " + st.opts.name + " has no session "
                                           + std::to_string(session) + " (join again)");
  replica_options opts;
  try {
    opts = to_replica_options(self, session, spec);
  } catch (...) {
    auto info = current_exception_info();
    log_line(self, "cannot start replica " + spec.replica_id + ": " + info.message);
    return make_error(info.code, "node " + st.opts.name + ": " + info.message);
  }
  auto replica = caf::actor_cast<caf::actor>(spawn_replica(self->system(), std::move(opts)));
  self->monitor(replica);
  s->second.replicas.push_back(replica);
  log_line(self, "started replica " + spec.replica_id + " for head " + s->second.head_id);
  return replica;
}

void on_down(node_pointer self, const caf::down_msg& dm) {
  auto& st = self->state;
  for (auto& [id, s] : st.sessions) {
    if (s.head_link && s.head_link.address() == dm.source) {
      end_session(self, id, "the head went away: " + to_error_info(dm.reason).message);
      return;
    }
    auto& reps = s.replicas;
    auto i = std::find_if(reps.begin(), reps.end(),
                          [&](const caf::actor& r) { return r.address() == dm.source; });
    if (i != reps.end()) {
      reps.erase(i);
      return;
    }
  }
}

void check_pings(node_pointer self) {
  auto& st = self->state;
  st.watchdog_armed = false;
  auto now = clock_type::now();
  std::vector<std::pair<uint64_t, std::string>> silent;
  for (auto& [id, s] : st.sessions)
    if (now - s.last_ping > s.heartbeat_timeout)
      silent.emplace_back(id, "no ping for " + std::to_string(s.heartbeat_timeout.count()) + " ms");
  for (auto& [id, why] : silent)
    end_session(self, id, why);
  arm_watchdog(self);
}

node_actor::behavior_type node_impl(node_pointer self, node_options opts) {
  self->state.opts = std::move(opts);
  self->set_down_handler([=](caf::down_msg& dm) { on_down(self, dm); });
  self->attach_functor([=](const caf::error&) {
    // Stopping the node stops every replica it hosts.
    for (auto& [_, s] : self->state.sessions)
      for (auto& r : s.replicas)
        caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
  });
  return {
    [=](hello_atom) -> std::string {
      auto challenge = make_challenge();
      self->state.challenges.emplace(challenge, clock_type::now());
      return challenge;
    },
    [=](join_atom, join_request& req) -> caf::result<join_reply> { return join(self, req); },
    [=](spawn_atom, uint64_t session, replica_spec& spec) -> caf::result<caf::actor> {
      return spawn_for(self, session, spec);
    },
    [=](ping_atom, uint64_t session) -> caf::result<uint64_t> {
      auto s = self->state.sessions.find(session);
      if (s == self->state.sessions.end())
        return make_error(errc::unavailable, "node " + self->state.opts.name
                                               + " has no session " + std::to_string(session));
      s->second.last_ping = clock_type::now();
      return static_cast<uint64_t>(s->second.replicas.size());
    },
    [=](leave_atom, uint64_t session) { end_session(self, session, "the head left"); },
    [=](watchdog_atom) { check_pings(self); },
  };
}

} // namespace

node_actor spawn_node(caf::actor_system& sys, node_options opts) {
  return sys.spawn<caf::detached>(node_impl, std::move(opts));
}

} // namespace serve
