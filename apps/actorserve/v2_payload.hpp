// Open Inference Protocol (v2) request payloads for `actorserve bench --v2-model`: reads a
// model's metadata (GET /v2/models/NAME) into its inputs and outputs, and generates inference
// request bodies with random tensors of those shapes and datatypes, either as JSON tensors or
// in Triton's binary tensor extension. No network here: the caller fetches the metadata.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace serve::bench {

/// One input tensor of a v2 model.
struct v2_input {
  std::string name;
  /// A v2 datatype: BOOL, UINT8-64, INT8-64, FP16, BF16, FP32, FP64 or BYTES.
  std::string datatype;
  /// Dimensions >= 0; the metadata's variable dimensions (-1) are read as 1.
  std::vector<int64_t> shape;
};

/// What a payload needs to know about a model.
struct v2_model {
  std::vector<v2_input> inputs;
  std::vector<std::string> outputs; ///< output names; asked for in binary by binary_body
};

/// Bytes per element of a v2 datatype; 0 for BYTES (variable), -1 for one we do not know.
int v2_element_size(const std::string& datatype);

/// The product of the input's dimensions.
int64_t element_count(const v2_input& in);

/// Parses the body of GET /v2/models/NAME into `model`; an empty string on success, else what
/// is wrong (quoting the start of the body).
std::string parse_v2_metadata(const std::string& body, v2_model& model);

/// Makes inference request bodies with random data: floats in [0, 1), integers in [0, 100),
/// random booleans, 8-letter strings. The same seed gives the same sequence of bodies.
/// Not thread-safe.
class v2_payload_generator {
public:
  explicit v2_payload_generator(uint64_t seed) : rng_(seed) {}

  /// {"inputs":[{"name","shape","datatype","data":[...]}]}
  std::string json_body(const v2_model& model);

  /// Triton's binary tensor extension: a JSON header with binary_data_size per input and every
  /// output asked for in binary, then each input's raw little-endian bytes (BYTES: a 4-byte
  /// length before each element). `header_length` receives the JSON header's size, the value
  /// of Inference-Header-Content-Length.
  std::string binary_body(const v2_model& model, size_t& header_length);

private:
  std::mt19937_64 rng_;
};

} // namespace serve::bench
