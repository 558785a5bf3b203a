// MLflow's MLmodel file (YAML with JSON signatures) as the registry reader meets it: the input
// is written as a folder's MLmodel next to a model.onnx and read with read_model_folder.
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "fuzz_support.hpp"
#include "libserve/registry/mlmodel.hpp"

using namespace serve;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path()
             / ("actorserve-fuzz-mlmodel-" + std::to_string(getpid()));
    std::filesystem::create_directories(d);
    std::ofstream(d / "model.onnx") << "not read here";
    return d;
  }();
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
