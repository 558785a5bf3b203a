// Open Inference Protocol request bodies, JSON and binary: the first three bytes choose the
// Inference-Header-Content-Length (byte 0 % 3: none, 0 = raw binary, or bytes 1-2 as a
// little-endian length) and the model (byte 0 & 4); the rest is the body, parsed against a model with an FP32 [-1, 4] input, an INT64 [-1] input and a
// BYTES [-1] input, or the single FP32 input of a raw request.
#include "fuzz_support.hpp"
#include "libserve/v2_protocol.hpp"

using namespace serve;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3)
    return 0;
  auto body = fuzz::as_text(data + 3, size - 3);
  std::optional<size_t> header_length;
  unsigned selector = data[0];
  if (selector % 3 == 1)
    header_length = 0;
  else if (selector % 3 == 2)
    header_length = static_cast<size_t>(data[1]) | static_cast<size_t>(data[2]) << 8;
  static const std::vector<v2::tensor_signature> three = {
    {"x", dtype::float32, {-1, 4}}, {"ids", dtype::int64, {-1}}, {"text", dtype::string, {-1}}};
  static const std::vector<v2::tensor_signature> one = {{"x", dtype::float32, {-1, 4}}};
  fuzz::refusing([&] {
    auto parsed = v2::parse_infer_request(body, header_length, selector & 4 ? one : three);
    (void)parsed;
  });
  return 0;
}
