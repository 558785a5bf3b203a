// MLflow's MLmodel file (YAML with JSON signatures) as the registry reader meets it: the input
// is written as a folder's MLmodel next to a model.onnx and read with read_model_folder.
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "fuzz_support.hpp"
#include "libserve/registry/mlmodel.hpp"

using namespace serve;

namespace {

/// The model folder the inputs are written to, removed when the fuzzer exits.
struct scratch_folder {
  std::filesystem::path dir = std::filesystem::temp_directory_path()
                              / ("actorserve-fuzz-mlmodel-" + std::to_string(getpid()));
  scratch_folder() {
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "model.onnx") << "not read here";
  }
  ~scratch_folder() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const scratch_folder scratch;
  const auto& dir = scratch.dir;
  {
    std::ofstream out(dir / "MLmodel", std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  fuzz::refusing([&] {
    auto folder = registry::read_model_folder(dir.string());
    (void)folder;
  });
  return 0;
}
