// A fresh actor system configured like actorserve's, with a scoped actor to drive it; one per
// test case (TEST_CASE_FIXTURE(actor_fixture, "...")), and how a test collects a call's reply.
#pragma once

#include <cstdint>
#include <string>

#include <caf/all.hpp>

#include "actors/messages.hpp"
#include "actors/runtime.hpp"
#include "libserve/error.hpp"

struct serve_system_config : caf::actor_system_config {
  serve_system_config() { serve::configure_actor_system(*this, {}); }
};

struct actor_fixture {
  serve_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
};

/// A POST call with `body`, id "req-<body>" and an optional deadline.
inline serve::call_request make_call(std::string body, int64_t deadline_ns = 0) {
  serve::call_request req;
  req.id = "req-" + body;
  req.method = "POST";
  req.path = "/";
  req.body = std::move(body);
  req.deadline_ns = deadline_ns;
  return req;
}

/// What a call came back with.
struct outcome {
  bool answered = false;
  bool ok = false;
  serve::call_reply reply;
  serve::error_info error;
};

template <class Handle>
inline outcome await_reply(Handle& handle) {
  outcome out;
  handle.receive(
    [&](serve::call_reply& reply) {
      out.answered = out.ok = true;
      out.reply = std::move(reply);
    },
    [&](caf::error& err) {
      out.answered = true;
      out.error = serve::to_error_info(err);
    });
  return out;
}
