// The config parser (what `actorserve run` and PUT /api/serve/applications/ read): any text
// gives a config or an error naming a JSON path, never a crash.
#include <cstdlib>

#include "fuzz_support.hpp"
#include "libserve/config.hpp"

using namespace serve;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  config_parse_options opts;
  opts.known_classes = {"Noop", "Echo", "Greeter"};
  opts.is_known_class = [](const std::string& n) {
    return n == "Noop" || n == "Echo" || n == "Greeter";
  };
  auto result = parse_config(std::string(fuzz::as_text(data, size)), opts);
  if (result.config.has_value() == result.error.has_value())
    std::abort(); // exactly one of the two
  return 0;
}
