#include "actors/router.hpp"

#include <map>
#include <set>
#include <random>

#include <caf/all.hpp>

#include "actors/call_context.hpp"
#include "actors/direct_route.hpp"
#include "libserve/call_ledger.hpp"
#include "libserve/metrics.hpp"
#include "libserve/replica_chooser.hpp"

namespace serve {

namespace {

using reply_promise = caf::typed_response_promise<call_reply>;

constexpr int32_t max_reroutes = 3;

/// After a replica's down_msg, how long calls it had may still arrive bounced (CAF sends the
/// down_msg and the bounces of a dying actor's mailbox in no guaranteed order); calls still
/// open after that were started there and fail with internal.
constexpr std::chrono::milliseconds bounce_grace{200};

/// Period of the sweep that answers calls past their deadline (queued or on a replica) and
/// calls without a deadline that got no answer for max_call_wait: the router's finite timeouts,
/// kept by one timer per router instead of one per call.
constexpr std::chrono::milliseconds sweep_period{250};
constexpr std::chrono::minutes max_call_wait{10};

/// A replica offered to calls; its in-flight count is shared with direct callers.
struct replica_entry {
  std::shared_ptr<replica_slot> slot;
  const call_target_actor& handle() const { return slot->handle; }
};

struct queued_call {
  call_request req;
  reply_promise promise;
};

/// A call sent to a replica. `call` shares the request with the replica (local) or keeps it
/// (remote), for a re-route if the replica stops before starting it. When the router answers
/// the caller itself (timeout, dead replica) the call still counts against its replica until
/// the replica answers or goes down (call_ledger's `answered`).
struct call_slot {
  local_call call;
  std::shared_ptr<replica_slot> replica;
  reply_promise promise;
};

/// Calls waiting and calls on replicas (by replica address: actor ids repeat across nodes).
using router_ledger = call_ledger<queued_call, call_slot, caf::actor_addr>;

struct queue_gauges {
  metrics::gauge queued, pending;
  /// The queue length as last added to the gauges.
  int64_t reported = 0;

  void report(size_t length) {
    auto delta = static_cast<double>(static_cast<int64_t>(length) - reported);
    queued.add(delta);
    pending.add(delta);
    reported = static_cast<int64_t>(length);
  }
};

struct router_state {
  router_options opts;
  std::vector<replica_entry> replicas;
  /// The wait queue and the calls on replicas (failed here if their replica dies).
  router_ledger calls{std::chrono::duration_cast<std::chrono::nanoseconds>(max_call_wait).count()};
  bool sweep_armed = false;
  uint64_t max_ongoing = 5;
  int64_t max_queued = -1;
  uint64_t total = 0;
  uint64_t rejected = 0;
  /// Non-empty: with no replica, calls fail at once with 503 and this reason.
  std::string unavailable_reason;
  bool closing = false;
  /// Replicas that went down (or whose node was lost): a replica set published before the
  /// controller heard of it must not bring them back. Pruned to the replicas of each new set.
  std::set<caf::actor_addr> dead;
  /// Replicas removed from the set that still had calls (the router's or direct callers'):
  /// stopped when those finish.
  std::map<caf::actor_addr, std::shared_ptr<replica_slot>> retiring;
  /// What callers in this process share with the router to route around it.
  std::shared_ptr<direct_route> direct;
  /// Every replica this router was given, stopped when the router ends.
  std::shared_ptr<std::vector<call_target_actor>> seen_replicas
    = std::make_shared<std::vector<call_target_actor>>();
  std::optional<replica_chooser> chooser;
  std::vector<replica_load> loads; // scratch
  /// Queue gauges; shared with the cleanup functor, which zeroes them after the state is gone.
  std::shared_ptr<queue_gauges> gauges = std::make_shared<queue_gauges>();
  static inline const char* name = "router";
};

using router_pointer = router_actor::stateful_pointer<router_state>;

/// Brings the queue gauges and the direct callers' view of the queue up to date; called after
/// every message.
void report_queue(router_state& st) {
  st.direct->set_queued(st.calls.waiting());
  if (static_cast<int64_t>(st.calls.waiting()) != st.gauges->reported)
    st.gauges->report(st.calls.waiting());
}

/// Offers the replicas to direct callers: all of them when every one is in this process and the
/// router is not closing, none otherwise (calls to other nodes need the router's timeouts).
void publish_direct(router_pointer self) {
  auto& st = self->state;
  std::vector<std::shared_ptr<replica_slot>> offered;
  bool all_local = std::all_of(st.replicas.begin(), st.replicas.end(), [&](const replica_entry& r) {
    return r.handle().node() == self->node();
  });
  if (all_local && !st.closing)
    for (auto& r : st.replicas)
      offered.push_back(r.slot);
  st.direct->publish(std::move(offered), st.max_ongoing);
  st.direct->watch_releases(st.closing);
}

/// Stops offering a replica, to the router's calls and to direct callers.
void retire(replica_slot& slot) {
  slot.retired.store(true);
}

/// Stops retired replicas that no call is on any more.
void stop_idle_retired(router_pointer self) {
  auto& st = self->state;
  for (auto i = st.retiring.begin(); i != st.retiring.end();) {
    if (i->second->in_flight.load() == 0) {
      self->send_exit(i->second->handle, caf::exit_reason::user_shutdown);
      i = st.retiring.erase(i);
    } else {
      ++i;
    }
  }
}

void init_metrics(router_state& st) {
  const auto& label = st.opts.deployment_label;
  auto slash = label.find('/');
  auto app = slash == std::string::npos ? std::string{} : label.substr(0, slash);
  auto dep = slash == std::string::npos ? label : label.substr(slash + 1);
  auto& reg = metrics::registry::global();
  st.gauges->queued = reg.get_gauge("ray_serve_deployment_queued_queries",
                                  "The current number of queries to this deployment waiting to "
                                  "be assigned to a replica.",
                                  {{"deployment", dep}, {"application", app}});
  if (!st.opts.model_name.empty())
    st.gauges->pending = reg.get_gauge("nv_inference_pending_request_count",
                                     "Instantaneous number of pending requests awaiting "
                                     "execution per-model.",
                                     {{"model", st.opts.model_name}, {"version", "1"}});
}

/// Picks a replica and takes a slot on it; nullopt when every replica is at its cap (direct
/// callers may take a slot between the choice and the taking: then choose again).
std::optional<size_t> acquire_replica(router_pointer self) {
  auto& st = self->state;
  for (int attempt = 0; attempt < 4; ++attempt) {
    st.loads.resize(st.replicas.size());
    for (size_t i = 0; i < st.replicas.size(); ++i)
      st.loads[i] = replica_load{st.replicas[i].slot->in_flight.load(), st.max_ongoing, true};
    auto index = st.chooser->choose(st.loads);
    if (!index)
      return std::nullopt;
    if (st.replicas[*index].slot->try_acquire(st.max_ongoing))
      return index;
  }
  return std::nullopt;
}

bool past_deadline(const call_request& req) {
  return req.deadline_ns != 0 && req.deadline_ns <= steady_now_ns();
}

void timed_out_while_queued(queued_call&& qc) {
  qc.promise.deliver(make_error(errc::request_timeout, "request timed out while queued"));
}

/// A call its replica will not answer (lost, or the server is shutting down): its slot is free
/// and its caller gets `reason`, unless the router answered it already.
void fail_running(router_ledger::running_call&& lost, const caf::error& reason) {
  lost.call.replica->in_flight.fetch_sub(1);
  if (!lost.answered)
    lost.call.promise.deliver(reason);
}

void route(router_pointer self, queued_call qc, bool first_in_line);
void drain_queue(router_pointer self);

/// A closing router quits once nothing is in flight, its own calls and direct ones.
void quit_if_closed(router_pointer self) {
  auto& st = self->state;
  if (!st.closing || !st.calls.idle())
    return;
  for (auto& r : st.replicas)
    if (r.slot->in_flight.load() != 0)
      return;
  for (auto& [_, slot] : st.retiring)
    if (slot->in_flight.load() != 0)
      return;
  self->quit(caf::exit_reason::user_shutdown);
}

caf::error unavailable_error(router_pointer self) {
  auto& st = self->state;
  return make_error(errc::unavailable, st.unavailable_reason.empty()
                                         ? "no healthy replica of " + st.opts.deployment_label
                                         : st.unavailable_reason);
}

/// Forgets a finished call and returns its slot; nullopt when it is gone (its replica went down
/// and the call was failed).
std::optional<router_ledger::running_call>
finish_call(router_pointer self, const caf::actor_addr& replica, uint64_t call_no) {
  auto& st = self->state;
  auto slot = st.calls.finish(replica, call_no);
  if (!slot)
    return std::nullopt;
  slot->call.replica->in_flight.fetch_sub(1);
  stop_idle_retired(self);
  quit_if_closed(self);
  return slot;
}

void arm_sweep(router_pointer self) {
  auto& st = self->state;
  if (!st.sweep_armed && !st.calls.idle()) {
    st.sweep_armed = true;
    self->delayed_send(self, sweep_period, flush_atom::value);
  }
}

/// Answers calls past their deadline with request_timeout, and calls without one that waited
/// max_call_wait for their replica.
void sweep(router_pointer self) {
  auto& st = self->state;
  st.sweep_armed = false;
  st.calls.expire(
    steady_now_ns(), timed_out_while_queued,
    [](call_slot& slot) {
      slot.promise.deliver(make_error(errc::request_timeout, "request timed out on its replica"));
    });
  arm_sweep(self);
}

/// Sends a call to replica `index`, on which acquire_replica took a slot for it.
void dispatch(router_pointer self, size_t index, queued_call qc) {
  auto& st = self->state;
  auto& entry = st.replicas[index];
  auto handle = entry.handle();
  auto replica = handle.address();
  bool remote = handle.node() != self->node();
  auto deadline_ns = qc.req.deadline_ns;
  auto timeout = call_timeout(deadline_ns, remote);
  local_call call{std::move(qc.req)};
  auto call_no = st.calls.start(replica, call_slot{call, entry.slot, std::move(qc.promise)},
                                deadline_ns, steady_now_ns());
  arm_sweep(self);
  // A replica here takes the request from the shared call, which stays ours until then; one on
  // another node gets its own copy (it is serialized anyway).
  auto sent = remote ? self->request(handle, timeout, call_atom::value, call.peek())
                     : self->request(handle, timeout, call_atom::value, std::move(call));
  std::move(sent)
    .then(
      [self, replica, call_no](call_reply& reply) {
        auto done = finish_call(self, replica, call_no);
        if (done && !done->answered)
          done->call.promise.deliver(std::move(reply));
        drain_queue(self);
      },
      [self, replica, call_no](caf::error& err) {
        auto done = finish_call(self, replica, call_no);
        if (!done || done->answered)
          return;
        auto slot = &done->call;
        if (err == caf::sec::request_receiver_down && !slot->call.taken()
            && slot->call.peek().reroutes < max_reroutes) {
          // The bounce proves the replica is gone: stop offering it before its down_msg comes.
          auto& reps = self->state.replicas;
          retire(*slot->replica);
          reps.erase(std::remove_if(reps.begin(), reps.end(),
                                    [&](const replica_entry& r) { return r.slot == slot->replica; }),
                     reps.end());
          publish_direct(self);
          auto req = slot->call.take();
          ++req.reroutes;
          route(self, queued_call{std::move(req), std::move(slot->promise)}, true);
        } else {
          slot->promise.deliver(std::move(err));
        }
        drain_queue(self);
      });
}

void route(router_pointer self, queued_call qc, bool first_in_line) {
  auto& st = self->state;
  if (past_deadline(qc.req)) {
    timed_out_while_queued(std::move(qc));
    return;
  }
  if (st.replicas.empty() && (st.closing || !st.unavailable_reason.empty())) {
    qc.promise.deliver(unavailable_error(self));
    return;
  }
  if (st.calls.waiting() == 0 || first_in_line)
    if (auto index = acquire_replica(self)) {
      dispatch(self, *index, std::move(qc));
      return;
    }
  if (!first_in_line && st.max_queued >= 0
      && st.calls.waiting() >= static_cast<size_t>(st.max_queued)) {
    ++st.rejected;
    qc.promise.deliver(make_error(
      errc::unavailable, "Request dropped due to backpressure (num_queued_requests="
                           + std::to_string(st.calls.waiting())
                           + ", max_queued_requests=" + std::to_string(st.max_queued) + ")."));
    return;
  }
  auto deadline_ns = qc.req.deadline_ns;
  st.calls.wait(std::move(qc), deadline_ns, first_in_line);
  arm_sweep(self);
  // Direct callers must see the queue before we look again for a slot one of them freed
  // meanwhile (see direct_route.hpp): otherwise the call could wait beside a free replica.
  st.direct->set_queued(st.calls.waiting());
  drain_queue(self);
}

void drain_queue(router_pointer self) {
  auto& st = self->state;
  while (st.calls.next_waiting(steady_now_ns, timed_out_while_queued) != nullptr) {
    auto index = acquire_replica(self);
    if (!index)
      break;
    dispatch(self, *index, st.calls.take_next());
  }
  report_queue(st); // also runs from replies, outside the behavior's handlers
}

void update_replicas(router_pointer self, replica_set& set) {
  auto& st = self->state;
  std::vector<replica_entry> next;
  std::set<caf::actor_addr> still_dead;
  for (size_t i = 0; i < set.replicas.size(); ++i) {
    auto handle = caf::actor_cast<call_target_actor>(set.replicas[i]);
    if (st.dead.count(handle.address()) > 0) {
      still_dead.insert(handle.address());
      continue;
    }
    auto known = std::find_if(st.replicas.begin(), st.replicas.end(),
                              [&](const replica_entry& r) { return r.handle() == handle; });
    if (known != st.replicas.end()) {
      next.push_back(*known);
      continue;
    }
    self->monitor(handle);
    st.seen_replicas->push_back(handle);
    next.push_back(replica_entry{std::make_shared<replica_slot>(
      handle, i < set.replica_ids.size() ? set.replica_ids[i] : "")});
  }
  for (auto& old : st.replicas) {
    auto kept = std::find_if(next.begin(), next.end(),
                             [&](const replica_entry& r) { return r.slot == old.slot; });
    if (kept != next.end())
      continue;
    retire(*old.slot); // then read its count: see direct_route.hpp
    st.retiring.emplace(old.handle().address(), old.slot);
  }
  st.replicas = std::move(next);
  st.dead = std::move(still_dead);
  st.max_ongoing = std::max<uint64_t>(1, set.max_ongoing);
  st.max_queued = set.max_queued;
  st.unavailable_reason = std::move(set.unavailable_reason);
  st.closing = set.closing;
  publish_direct(self);
  stop_idle_retired(self);
  if (st.replicas.empty() && (st.closing || !st.unavailable_reason.empty())) {
    auto unavailable = unavailable_error(self);
    st.calls.take_all_waiting([&](queued_call&& qc) { qc.promise.deliver(unavailable); });
  }
  drain_queue(self);
  quit_if_closed(self);
}

void reap_replica(router_pointer self, const caf::actor_addr& id, const caf::error& reason);

void on_replica_down(router_pointer self, const caf::down_msg& dm) {
  auto& st = self->state;
  auto id = dm.source;
  st.dead.insert(dm.source);
  for (auto& r : st.replicas)
    if (r.handle().address() == id)
      retire(*r.slot);
  st.replicas.erase(std::remove_if(st.replicas.begin(), st.replicas.end(),
                                   [&](const replica_entry& r) { return r.handle().address() == id; }),
                    st.replicas.end());
  st.retiring.erase(id);
  publish_direct(self);
  auto& seen = *st.seen_replicas;
  seen.erase(std::remove_if(seen.begin(), seen.end(),
                            [&](const call_target_actor& r) { return r.address() == id; }),
             seen.end());
  if (!st.calls.running_on(id)) {
    quit_if_closed(self);
    return;
  }
  if (dm.reason == caf::exit_reason::remote_link_unreachable) {
    // Its node's connection broke: no bounce can come, and the work there is lost.
    reap_replica(self, id, make_error(errc::unavailable, "the node of a replica of "
                                                           + st.opts.deployment_label
                                                           + " was lost while it handled the "
                                                             "request; retry"));
    return;
  }
  self->delayed_send(self, bounce_grace, reap_atom::value, id);
}

/// Fails the calls still open on the replicas of node `nid` (lost: its process died, its
/// connection broke or it stopped answering heartbeats) with unavailable at once, and stops
/// offering those replicas. Nothing comes back from a lost node, so there is nothing to wait for.
void fail_node(router_pointer self, const caf::node_id& nid, const std::string& reason) {
  auto& st = self->state;
  std::vector<caf::actor_addr> ids;
  for (auto& r : st.replicas)
    if (r.handle().node() == nid) {
      ids.push_back(r.handle().address());
      st.dead.insert(r.handle().address());
      retire(*r.slot);
    }
  for (auto& [addr, r] : st.retiring)
    if (r->handle.node() == nid)
      ids.push_back(addr);
  st.replicas.erase(std::remove_if(st.replicas.begin(), st.replicas.end(),
                                   [&](const replica_entry& r) { return r.handle().node() == nid; }),
                    st.replicas.end());
  publish_direct(self);
  auto lost = make_error(errc::unavailable, reason + " while it handled the request; retry");
  for (auto& id : ids) {
    st.retiring.erase(id);
    reap_replica(self, id, lost);
  }
  drain_queue(self);
}

/// Fails the calls still open on a replica that went down bounce_grace ago.
void reap_replica(router_pointer self, const caf::actor_addr& id, const caf::error& reason) {
  auto& st = self->state;
  for (auto& lost : st.calls.take_running_on(id))
    fail_running(std::move(lost), reason);
  quit_if_closed(self);
}

router_actor::behavior_type router_impl(router_pointer self, router_options opts) {
  self->state.opts = std::move(opts);
  init_metrics(self->state);
  self->attach_functor([g = self->state.gauges](const caf::error&) { g->report(0); });
  self->state.chooser.emplace(self->state.opts.seed != 0 ? self->state.opts.seed
                                                         : std::random_device{}());
  self->state.direct = std::make_shared<direct_route>(self->address());
  direct_routes::global().add(self->id(), self->state.direct);
  self->attach_functor([id = self->id()](const caf::error&) { direct_routes::global().remove(id); });
  self->set_down_handler([=](caf::down_msg& dm) {
    on_replica_down(self, dm);
    report_queue(self->state);
  });
  // When the router ends, so do its replicas (the controller spawned them for it).
  // (The functor outlives the state, so it holds its own list of every replica seen.)
  self->attach_functor([seen = self->state.seen_replicas](const caf::error&) {
    for (auto& r : *seen)
      caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
  });
  return {
    [=](call_atom, call_request& req) -> caf::result<call_reply> {
      ++self->state.total;
      auto rp = self->make_response_promise<call_reply>();
      route(self, queued_call{std::move(req), rp}, false);
      report_queue(self->state);
      return rp;
    },
    [=](update_atom, replica_set& set) {
      update_replicas(self, set);
      report_queue(self->state);
    },
    [=](flush_atom) {
      sweep(self);
      report_queue(self->state);
    },
    [=](drain_atom) {
      // A direct caller freed a slot while calls wait, on a retiring replica, or while closing.
      drain_queue(self);
      stop_idle_retired(self);
      quit_if_closed(self);
    },
    [=](reap_atom, caf::actor_addr& replica) {
      reap_replica(self, replica,
                   make_error(errc::internal, "the replica of " + self->state.opts.deployment_label
                                                + " stopped while handling the request"));
      report_queue(self->state);
    },
    [=](lost_atom, caf::node_id& nid, std::string& reason) {
      fail_node(self, nid, reason);
      report_queue(self->state);
    },
    [=](status_atom) -> router_status {
      auto& st = self->state;
      router_status out;
      out.queued = st.calls.waiting();
      out.total_requests = st.total + st.direct->direct_calls();
      out.rejected = st.rejected;
      for (auto& r : st.replicas) {
        out.replica_ids.push_back(r.slot->id);
        out.in_flight.push_back(r.slot->in_flight.load());
      }
      return out;
    },
    [=](abort_atom) {
      auto& st = self->state;
      auto shutting_down = make_error(errc::unavailable, "the server is shutting down");
      st.calls.take_all_waiting([&](queued_call&& qc) { qc.promise.deliver(shutting_down); });
      st.calls.take_all_running(
        [&](router_ledger::running_call&& lost) { fail_running(std::move(lost), shutting_down); });
      report_queue(st);
      quit_if_closed(self);
    },
  };
}

} // namespace

router_actor spawn_router(caf::actor_system& sys, router_options opts) {
  return sys.spawn(router_impl, std::move(opts));
}

} // namespace serve
