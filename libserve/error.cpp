#include "libserve/error.hpp"

#include <caf/message.hpp>
#include <caf/sec.hpp>

namespace serve {

const char* to_string(errc code) {
  switch (code) {
    case errc::invalid_argument: return "invalid_argument";
    case errc::not_found: return "not_found";
    case errc::payload_too_large: return "payload_too_large";
    case errc::request_timeout: return "request_timeout";
    case errc::unavailable: return "unavailable";
    case errc::internal: return "internal";
  }
  return "unknown";
}

caf::error make_error(errc code, std::string message) {
  return caf::error(static_cast<uint8_t>(code), error_category_atom,
                    caf::make_message(std::move(message)));
}

error_info to_error_info(const caf::error& err) {
  error_info info;
  if (!err) {
    info.message = "no error";
    return info;
  }
  if (err.category() == error_category_atom) {
    info.code = static_cast<errc>(err.code());
    const auto& ctx = err.context();
    if (ctx.size() == 1 && ctx.match_element<std::string>(0))
      info.message = ctx.get_as<std::string>(0);
    return info;
  }
  if (err.category() == caf::atom("system")) {
    switch (static_cast<caf::sec>(err.code())) {
      case caf::sec::request_timeout:
        info.code = errc::request_timeout;
        info.message = "request timed out";
        return info;
      case caf::sec::request_receiver_down:
        info.code = errc::unavailable;
        info.message = "the replica went away before the request started";
        return info;
      default:
        break;
    }
  }
  info.code = errc::internal;
  info.message = "internal error: " + caf::to_string(err);
  return info;
}

} // namespace serve
