// The HTTP/1.1 requests one `actorserve bench` run sends in turn, built from its options: one
// request to the URL (with --body / --body-text if given), or for --v2-model the model's infer
// route with a payload file or 16 generated payloads (the metadata is fetched from the server
// first and --shape applied to it).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "apps/actorserve/bench_options.hpp"

namespace serve::cli {

/// One complete HTTP/1.1 request to `path` on `url`'s host: Host and User-Agent unless
/// `headers` has them, then `headers`, then Content-Type (unless given) and Content-Length
/// whenever there is a body. Thread-safe.
std::string http_request(const std::string& method, const parsed_url& url, const std::string& path,
                         const std::vector<std::string>& headers, const std::string& content_type,
                         const std::optional<std::string>& body);

/// Fills `requests` and `described` (a line saying what is sent, for the report). May GET the v2
/// metadata from the server. Returns an exit code when that fails or --shape does not fit the
/// model, after printing why on stderr. Thread-safe.
std::optional<int> build_requests(const parsed_url& url, const bench_options& o,
                                  std::vector<std::string>& requests, std::string& described);

} // namespace serve::cli
