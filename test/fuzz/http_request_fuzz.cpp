// HTTP request parsing: the bytes of a connection, cut into reads at places the first byte
// chooses, go through request_reader as a session feeds it (pipelined requests included), with
// small limits so that every limit is reachable. Checks the reader's own promises: it never
// takes more bytes than offered, a finished request's body stays within max_body_bytes, and the
// header count and target length stay within theirs.
#include <cstdlib>
#include <cstring>
#include <memory>

#include "fuzz_support.hpp"
#include "http/request_reader.hpp"

using namespace serve;

namespace {

void check(bool ok) {
  if (!ok)
    std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  const size_t step = 1 + data[0] % 64; // bytes per read
  auto input = fuzz::as_text(data + 1, size - 1);
  request_limits limits;
  limits.max_body_bytes = 4096;
  limits.max_header_bytes = 1024;
  limits.max_header_count = 16;
  limits.max_url_bytes = 256;
  std::string buffer;
  size_t next = 0;
  auto reader = std::make_unique<request_reader>(limits);
  while (true) {
    size_t used = reader->feed(buffer);
    check(used <= buffer.size());
    buffer.erase(0, used);
    // A Content-Length body is read straight into the request, as the session does.
    size_t room = 0;
    if (char* window = reader->body_window(room); window && buffer.empty() && next < input.size()) {
      size_t n = std::min({room, step, input.size() - next});
      std::memcpy(window, input.data() + next, n);
      next += n;
      reader->body_received(n);
      continue;
    }
    auto phase = reader->current();
    if (phase == request_reader::phase::done) {
      auto& req = reader->request();
      check(req.body.size() <= limits.max_body_bytes);
      check(req.headers.size() <= limits.max_header_count);
      check(req.target.size() <= limits.max_url_bytes);
      reader = std::make_unique<request_reader>(limits);
      continue;
    }
    if (phase == request_reader::phase::failed) {
      int status = reader->failure().status;
      check(status >= 400 && status < 600 && !reader->failure().message.empty());
      return 0;
    }
    if (used == 0 || buffer.empty()) {
      if (next >= input.size())
        break;
      size_t n = std::min(step, input.size() - next);
      buffer.append(input.data() + next, n);
      next += n;
      // The session never buffers more than one header's worth plus a read.
      check(buffer.size() <= limits.max_header_bytes + 2 * 64 + 1);
    }
  }
  reader->end_of_input();
  return 0;
}
