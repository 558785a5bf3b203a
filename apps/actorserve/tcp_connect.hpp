// Plain TCP client plumbing for `actorserve bench`: resolve a host once, start a non-blocking
// connect, and probe whether a target accepts connections at all before a run.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace serve::bench {

/// A resolved IPv4 or IPv6 address with its port. A value type; constant once resolved.
struct socket_address {
  sockaddr_storage storage{};
  socklen_t length = 0;
};

/// Resolves `host` (numeric or a name) and `port` to the first address found; an empty string
/// on success, else "cannot resolve HOST: reason". Thread-safe.
std::string resolve(const std::string& host, uint16_t port, socket_address& out);

/// A non-blocking TCP socket with TCP_NODELAY whose connect has started; -1 with errno set.
/// The caller owns the descriptor. Thread-safe.
int start_connect(const socket_address& addr);

/// Connects once to host:port within `timeout`; an empty string on success, else the reason.
/// Thread-safe.
std::string probe_connect(const std::string& host, uint16_t port,
                          std::chrono::milliseconds timeout);

} // namespace serve::bench
