// The ONNX loader and compiler: any bytes load as a model we can run or are refused with
// serve_exception. External data is looked up in an empty folder.
#include <filesystem>

#include "fuzz_support.hpp"
#include "libserve/onnx/model.hpp"

using namespace serve;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string empty_dir = [] {
    auto dir = std::filesystem::temp_directory_path() / "actorserve-fuzz-onnx";
    std::filesystem::create_directories(dir);
    return dir.string();
  }();
  fuzz::refusing([&] {
    auto model = onnx_ir::onnx_model::load_bytes(std::string(fuzz::as_text(data, size)), empty_dir);
    (void)model;
  });
  return 0;
}
