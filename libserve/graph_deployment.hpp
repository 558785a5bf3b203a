// The built-in graph deployment: composes other deployments of the same application from a
// declarative "graph" config instead of user C++ code.
//
//   {"sequence": ["A", "B", "C"]}
//       A gets the request body, B gets A's response body, ...; the last response is returned.
//   {"ensemble": ["A", "B"], "combiner": "list" | "mean" | "majority" | "concat"}
//       Every member gets the same body at once (fan out); their JSON results are combined:
//       list     - a JSON array of the results in member order (the default);
//       mean     - numbers -> their mean; equally shaped (nested) arrays of numbers -> the
//                  elementwise mean; always floating point; anything else fails (internal);
//       majority - the most common result compared as compact JSON; ties go to the result seen
//                  first in member order;
//       concat   - array results concatenated in member order, other results appended as one
//                  element each.
//   {"conditional": {"call": "A", "field": "score", "threshold": 0.5, "above": "B", "below": "C"}}
//       A gets the request body. Its result (a number, or an object whose numeric `field` is
//       read) decides: value > threshold goes to "above", otherwise to "below", each called
//       with A's response body. A missing or null branch returns A's response unchanged.
//
// Sub-calls carry the original request's id, method, path and query; only the body changes. An
// error from a sub-call is returned unchanged (the first one to arrive wins). Calls go through
// handles and futures only: the deployment never blocks its replica's thread.
//
// Not thread-safe beyond what deployment promises: the graph is immutable after construction,
// so handle() may run on several executor threads at once, but each call's futures and
// continuations stay on the thread that settles them (see future.hpp).
#pragma once

#include <memory>

#include "libserve/deployment.hpp"

namespace serve {

/// Builds the graph deployment described by `*ctx.graph_config`, taking handles from
/// `ctx.get_handle`. The config is expected to be validated by parse_config already; a missing
/// or malformed graph still throws serve_exception(invalid_argument) naming the bad field.
std::unique_ptr<deployment> make_graph_deployment(const deployment_context& ctx);

} // namespace serve
