// The Open Inference Protocol v2 (KServe v2, Triton HTTP) infer messages as a pure codec.
//
// Parses POST /v2/models/{m}[/versions/{v}]/infer bodies into tensors and writes the replies,
// including Triton's binary tensor data extension, the way Triton's HTTP frontend does
// (triton-inference-server/server src/http_server.cc), so that tritonclient[http] and
// perf_analyzer work unchanged:
//   * Body = JSON header, then the raw bytes of every input whose "parameters" carry
//     "binary_data_size", in input order. The header's length travels in the HTTP header
//     Inference-Header-Content-Length; without it the whole body is JSON.
//   * Inference-Header-Content-Length: 0 = raw binary request: the whole body is the one input of
//     a single-input model; its shape is derived from the model's dims (parse_infer_request).
//   * Binary tensors are little-endian and row-major; a BYTES element is a 4-byte little-endian
//     length followed by that many bytes.
//   * Replies put an output's bytes after the JSON header when the request asked for it
//     ("binary_data" per output, "binary_data_output" for outputs it does not name); the JSON
//     part's length is returned for the Inference-Header-Content-Length response header.
// No HTTP and no actors here. Stateless functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "libserve/tensor.hpp"

namespace serve::v2 {

/// "BOOL", "UINT8".."UINT64", "INT8".."INT64", "FP16", "FP32", "FP64", "BYTES", "BF16" -> dtype;
/// nullopt for anything else (names are case-sensitive, as in Triton). The reverse is
/// dtype_v2_name (tensor.hpp).
std::optional<dtype> dtype_from_v2(std::string_view name);

/// One input of a request. value.type and value.shape come from "datatype" and "shape"; BYTES
/// elements land in value.strings. The tensor owns its bytes (copied once out of the body).
struct input {
  std::string name;
  tensor value;
  /// With borrowed binary data (parse_infer_request's `borrow_binary`): the bytes of a numeric
  /// binary input where they lie in the body, and `value` holds its type and shape only. The
  /// caller copies them once, where they are needed (a batch's input buffer); the body must
  /// outlive the view. Empty otherwise.
  std::string_view bytes;
};

/// An entry of the request's "outputs". `binary` is its parameters.binary_data (false when
/// absent: Triton applies the request-level binary_data_output only to outputs not named).
struct requested_output {
  std::string name;
  bool binary = false;
};

struct infer_request {
  /// The request's "id"; "" when absent. Echoed in the reply when not empty (as Triton does).
  std::string id;
  bool has_id = false;
  std::vector<input> inputs;
  /// The request's "outputs"; empty = all of the model's outputs.
  std::vector<requested_output> outputs;
  /// parameters.binary_data_output: how outputs not named in `outputs` are returned.
  /// True for raw binary requests (Triton answers those in binary).
  bool binary_output_default = false;
  /// The body was one raw input tensor (Inference-Header-Content-Length: 0).
  bool raw_binary = false;
};

/// A model input or output as declared: dims include the batch dim, -1 = variable.
struct tensor_signature {
  std::string name;
  dtype type = dtype::float32;
  std::vector<int64_t> dims;
};

/// Parses an infer request body. `header_length`: the Inference-Header-Content-Length value
/// (nullopt when the header is absent: the whole body is JSON). `model_inputs` is used only for
/// raw binary requests.
///
/// JSON form: "inputs" (required) [{"name", "datatype", "shape", and exactly one of "data" or
/// parameters.binary_data_size}], optional "id" (string), "parameters" (object; other keys are
/// ignored) and "outputs" [{"name", "parameters"?: {"binary_data"?: bool}}]. "data" is nested
/// or flat (any nesting; its element count must equal the shape's product), ints must fit the
/// datatype, BOOL takes true/false, BYTES strings, FP16/BF16 numbers (Triton itself refuses
/// FP16/BF16 as JSON). Binary tails follow in input order and must be used up exactly.
///
/// Raw binary form (header_length == 0; Triton core's InferenceRequest::Normalize): the model
/// must have exactly one input; the tensor takes its name and dtype. Shape = the input's dims
/// with -1 resolved: a leading -1 (the batch dim) becomes 1 when another dim is also variable or
/// the dtype is BYTES (Triton prepends batch 1 for batching models); then at most one -1 may
/// remain, and it becomes body bytes / (product of the fixed dims * element size), which must
/// divide exactly. BYTES needs every other dim fixed with product 1: the body is one element.
/// Outputs: all of the model's, in binary.
///
/// With `borrow_binary`, numeric binary inputs are not copied out of `body`: see input::bytes.
///
/// Throws serve_exception(errc::invalid_argument) naming the field and what was expected, e.g.
/// "inputs[1] ('x'): data has 5 elements but shape [2, 3] needs 6".
infer_request parse_infer_request(std::string_view body, std::optional<size_t> header_length,
                                  const std::vector<tensor_signature>& model_inputs,
                                  bool borrow_binary = false);

/// A request in the binary tensor form: a JSON header naming every input with
/// parameters.binary_data_size, then the inputs' bytes in order (BYTES: a 4-byte little-endian
/// length before each element); id, parameters.binary_data_output and outputs as `req` has them,
/// so the reply's form does not change. parse_infer_request(body, header_length, ...) gives `req`
/// back. The ingress turns JSON requests into this form on its io threads, so that the replica
/// only copies bytes.
struct encoded_request {
  std::string body;
  size_t header_length = 0;
};
encoded_request encode_binary_request(const infer_request& req);

/// One tensor of a reply. The tensor is borrowed: it must outlive encode_infer_response.
struct output {
  std::string name;
  const tensor* value = nullptr;
  bool binary = false;
};

/// The outputs to return for `req` out of the model's (name, tensor) results: the requested ones
/// in request order, each binary as asked, or, when the request names none, all of them in the
/// model's order, binary per binary_output_default. Throws invalid_argument for a requested
/// name the model does not have ("outputs[1].name: unknown output 'q'; the model has a, b").
std::vector<output>
select_outputs(const infer_request& req,
               const std::vector<std::pair<std::string, const tensor*>>& model_outputs);

struct encoded_response {
  /// JSON header, then the binary outputs' bytes in output order.
  std::string body;
  /// The JSON part's length, for the Inference-Header-Content-Length response header (and
  /// Content-Type: application/octet-stream); nullopt = the body is plain JSON
  /// (application/json). Set iff binary bytes follow, as in Triton: a binary output with
  /// 0 bytes still reports "binary_data_size": 0 but adds no header.
  std::optional<size_t> header_length;
};

/// {"id"? ,"model_name","model_version","outputs":[{"name","datatype","shape", and "data"
/// (flat, row-major) or "parameters":{"binary_data_size":N}}]}, Triton's key order. Floats are
/// written in their shortest round-trip form; NaN and infinities as null (JSON has neither).
encoded_response encode_infer_response(const std::string& model_name,
                                       const std::string& model_version, const infer_request& req,
                                       const std::vector<output>& outputs);

/// {"error": message}, JSON-escaped.
std::string error_body(const std::string& message);

/// GET /v2/models/{m}: {"name","versions":[...],"platform","inputs":[{"name","datatype",
/// "shape"}],"outputs":[...]}, variable dims as -1 (Triton's model metadata).
std::string model_metadata_json(const std::string& name, const std::vector<std::string>& versions,
                                const std::string& platform,
                                const std::vector<tensor_signature>& inputs,
                                const std::vector<tensor_signature>& outputs);

} // namespace serve::v2
