// A fresh actor system configured like actorserve's, with a scoped actor to drive it; one per
// test case (TEST_CASE_FIXTURE(actor_fixture, "...")).
#pragma once

#include <caf/all.hpp>

#include "actors/runtime.hpp"

struct serve_system_config : caf::actor_system_config {
  serve_system_config() { serve::configure_actor_system(*this, {}); }
};

struct actor_fixture {
  serve_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
};
