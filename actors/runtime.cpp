#include "actors/runtime.hpp"

#include <algorithm>
#include <thread>

#include <caf/all.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>

#include "actors/messages.hpp"
#include "libserve/error.hpp"

namespace serve {

void configure_actor_system(caf::actor_system_config& cfg, const scheduler_options& sched) {
  cfg.add_message_types<caf::id_block::serve>();
  cfg.add_error_category(error_category_atom,
                         [](uint8_t code, caf::atom_value, const caf::message& ctx) {
                           std::string out = to_string(static_cast<errc>(code));
                           if (ctx.size() == 1 && ctx.match_element<std::string>(0))
                             out += ": " + ctx.get_as<std::string>(0);
                           return out;
                         });
  size_t workers = sched.worker_threads;
  if (workers == 0)
    workers = std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 4);
  cfg.set("scheduler.max-threads", workers);
  cfg.set("scheduler.policy", caf::atom_from_string(sched.policy));
}

void configure_network(caf::actor_system_config& cfg, const tls_options& tls) {
  cfg.load<caf::io::middleman>();
  if (!tls.enabled())
    return;
  cfg.load<caf::openssl::manager>();
  cfg.openssl_certificate = tls.certificate;
  cfg.openssl_key = tls.key;
  cfg.openssl_cafile = tls.ca_file;
}

} // namespace serve
