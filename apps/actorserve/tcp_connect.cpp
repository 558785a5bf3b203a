// getaddrinfo, non-blocking connect and a poll-based reachability probe. See tcp_connect.hpp.
#include "apps/actorserve/tcp_connect.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace serve::bench {

std::string resolve(const std::string& host, uint16_t port, socket_address& out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  auto service = std::to_string(port);
  int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
  if (rc != 0)
    return "cannot resolve " + host + ": " + gai_strerror(rc);
  std::memcpy(&out.storage, found->ai_addr, found->ai_addrlen);
  out.length = found->ai_addrlen;
  freeaddrinfo(found);
  return {};
}

int start_connect(const socket_address& addr) {
  int fd = socket(addr.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr.storage), addr.length) != 0 &&
      errno != EINPROGRESS) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

std::string probe_connect(const std::string& host, uint16_t port,
                          std::chrono::milliseconds timeout) {
  socket_address addr;
  if (auto error = resolve(host, port, addr); !error.empty())
    return error;
  int fd = start_connect(addr);
  if (fd < 0)
    return std::strerror(errno);
  pollfd p{fd, POLLOUT, 0};
  int ready = poll(&p, 1, static_cast<int>(timeout.count()));
  int err = 0;
  socklen_t len = sizeof(err);
  if (ready == 0)
    err = ETIMEDOUT;
  else if (ready < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
    err = errno;
  close(fd);
  return err == 0 ? std::string() : std::strerror(err);
}

} // namespace serve::bench
