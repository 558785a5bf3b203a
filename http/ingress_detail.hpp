// Pieces of the ingress shared by its source files (ingress.cpp, v2_routes.cpp,
// observability.cpp). Not part of the public interface.
#pragma once

#include <string>

#include <caf/fwd.hpp>

namespace httplib {
struct Request;
struct Response;
} // namespace httplib

namespace serve {

/// The calling HTTP thread's bridge actor. Created on first use; destroyed when the thread
/// ends, which happens inside serve(), before the actor system goes away.
caf::scoped_actor& bridge_for_this_thread(caf::actor_system& sys);

/// A random 32-hex-digit request id.
std::string new_request_id();

/// The request's x-request-id, or a new one; echoed in the response and noted for the access
/// log.
std::string take_request_id(const httplib::Request& req, httplib::Response& res);

} // namespace serve
