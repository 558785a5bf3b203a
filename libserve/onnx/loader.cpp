// ONNX protobuf -> onnx_ir::graph (see loader.hpp), and load_tensor_proto_file (model.hpp).
#include "libserve/onnx/loader.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <onnx/onnx_pb.h>

#include "libserve/future.hpp"
#include "libserve/onnx/model.hpp"

namespace serve::onnx_ir {

namespace fs = std::filesystem;

namespace {

constexpr int64_t min_ir_version = 3;
constexpr int64_t max_ir_version = 10;

[[noreturn]] void refuse(const std::string& message) {
  throw serve_exception(errc::invalid_argument, message);
}

std::string normalize_domain(const std::string& domain) {
  return domain == "ai.onnx" ? std::string(default_domain) : domain;
}

// `what` names the tensor for messages: `initializer "W"`, `node 'n' attribute 'value'`.
dtype to_dtype(int32_t onnx_type, const std::string& what) {
  bool has_dtype = (onnx_type >= 1 && onnx_type <= 13) || onnx_type == 16; // not complex, float8
  if (has_dtype)
    return static_cast<dtype>(onnx_type);
  auto name = onnx::TensorProto_DataType_IsValid(onnx_type)
                  ? onnx::TensorProto_DataType_Name(onnx_type)
                  : std::string("unknown");
  refuse(what + ": element type " + std::to_string(onnx_type) + " (" + name + ") is not supported");
}

// ---- external data ----------------------------------------------------------------------------

struct external_ref {
  std::string location;
  uint64_t offset = 0;
  bool has_length = false;
  uint64_t length = 0;
};

external_ref external_fields(const onnx::TensorProto& proto, const std::string& what) {
  external_ref ref;
  for (auto& kv : proto.external_data()) {
    try {
      if (kv.key() == "location")
        ref.location = kv.value();
      else if (kv.key() == "offset")
        ref.offset = std::stoull(kv.value());
      else if (kv.key() == "length") {
        ref.length = std::stoull(kv.value());
        ref.has_length = true;
      }
    } catch (const std::exception&) {
      refuse(what + ": external data " + kv.key() + " \"" + kv.value() + "\" is not a number");
    }
  }
  if (ref.location.empty())
    refuse(what + ": external data has no location");
  return ref;
}

// The file `location` names, inside `base_dir` (symlinks resolved); refuses anything else.
fs::path resolve_inside(const std::string& base_dir, const std::string& location,
                        const std::string& what) {
  fs::path loc(location);
  auto where = what + ": external data location \"" + location + "\"";
  if (loc.is_absolute() || loc.has_root_name() || loc.has_root_directory())
    refuse(where + " is an absolute path; it must be relative to the model's folder");
  for (auto& part : loc)
    if (part == "..")
      refuse(where + " escapes the model's folder (\"..\")");
  fs::path base = fs::weakly_canonical(base_dir.empty() ? fs::path(".") : fs::path(base_dir));
  fs::path full = fs::weakly_canonical(base / loc);
  auto mismatch = std::mismatch(base.begin(), base.end(), full.begin(), full.end());
  if (mismatch.first != base.end())
    refuse(where + " escapes the model's folder (resolves to " + full.string() + ")");
  return full;
}

std::vector<uint8_t> read_external(const onnx::TensorProto& proto, const std::string& base_dir,
                                   size_t expected_bytes, const std::string& what) {
  auto ref = external_fields(proto, what);
  auto file = resolve_inside(base_dir, ref.location, what);
  std::error_code ec;
  uint64_t file_size = fs::file_size(file, ec);
  if (ec)
    refuse(what + ": cannot read external data file \"" + ref.location + "\": " + ec.message());
  uint64_t length = ref.has_length ? ref.length : file_size - std::min(file_size, ref.offset);
  if (ref.offset > file_size || length > file_size - ref.offset)
    refuse(what + ": external data offset " + std::to_string(ref.offset) + " + length " +
           std::to_string(length) + " is past the end of \"" + ref.location + "\" (" +
           std::to_string(file_size) + " bytes)");
  if (length != expected_bytes)
    refuse(what + ": external data has " + std::to_string(length) + " bytes; the shape needs " +
           std::to_string(expected_bytes));
  std::vector<uint8_t> bytes(length);
  std::ifstream in(file, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(ref.offset));
  if (!in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(length)))
    refuse(what + ": reading external data file \"" + ref.location + "\" failed");
  return bytes;
}

// ---- tensors ----------------------------------------------------------------------------------

template <class Dst, class Field> void copy_field(const Field& field, tensor& t) {
  auto* out = t.as<Dst>();
  for (int i = 0; i < field.size(); ++i)
    out[i] = static_cast<Dst>(field.Get(i));
}

// Number of elements the typed field for `t.type` holds.
int typed_field_size(const onnx::TensorProto& p, dtype type) {
  switch (type) {
  case dtype::float32:
    return p.float_data_size();
  case dtype::float64:
    return p.double_data_size();
  case dtype::int64:
    return p.int64_data_size();
  case dtype::uint32:
  case dtype::uint64:
    return p.uint64_data_size();
  case dtype::string:
    return p.string_data_size();
  default:
    return p.int32_data_size(); // int8/16/32, uint8/16, bool, float16/bfloat16 bits
  }
}

void copy_typed_fields(const onnx::TensorProto& p, tensor& t) {
  switch (t.type) {
  case dtype::float32:
    return copy_field<float>(p.float_data(), t);
  case dtype::float64:
    return copy_field<double>(p.double_data(), t);
  case dtype::int64:
    return copy_field<int64_t>(p.int64_data(), t);
  case dtype::uint32:
    return copy_field<uint32_t>(p.uint64_data(), t);
  case dtype::uint64:
    return copy_field<uint64_t>(p.uint64_data(), t);
  case dtype::int32:
    return copy_field<int32_t>(p.int32_data(), t);
  case dtype::int16:
    return copy_field<int16_t>(p.int32_data(), t);
  case dtype::int8:
    return copy_field<int8_t>(p.int32_data(), t);
  case dtype::uint16:
  case dtype::float16:
  case dtype::bfloat16:
    return copy_field<uint16_t>(p.int32_data(), t);
  case dtype::uint8:
    return copy_field<uint8_t>(p.int32_data(), t);
  case dtype::boolean: {
    for (int i = 0; i < p.int32_data_size(); ++i)
      t.data[static_cast<size_t>(i)] = p.int32_data(i) != 0;
    return;
  }
  case dtype::string: {
    for (int i = 0; i < p.string_data_size(); ++i)
      t.strings[static_cast<size_t>(i)] = p.string_data(i);
    return;
  }
  case dtype::undefined:
    return;
  }
}

tensor tensor_from_proto(const onnx::TensorProto& p, const std::string& base_dir,
                         const std::string& what) {
  if (p.has_segment())
    refuse(what + ": segmented tensors are not supported");
  std::vector<int64_t> dims(p.dims().begin(), p.dims().end());
  for (auto d : dims)
    if (d < 0)
      refuse(what + ": negative dimension in " + shape_to_string(dims));
  dtype type = to_dtype(p.data_type(), what);
  // The size the shape declares is checked against the bytes the file holds before anything
  // of that size is allocated: a model may declare 2^40 elements and carry 16 bytes.
  size_t n = 0, bytes = 0;
  try {
    n = static_cast<size_t>(shape_numel(dims));
    bytes = shape_bytes(dims, type);
  } catch (const serve_exception& e) {
    refuse(what + ": " + e.what());
  }
  if (type != dtype::string)
    bytes = n * dtype_size(type);
  if (p.data_location() == onnx::TensorProto::EXTERNAL) {
    if (type == dtype::string)
      refuse(what + ": string tensors cannot use external data");
    tensor t;
    t.type = type;
    t.shape = dims;
    t.data = read_external(p, base_dir, bytes, what); // checks the file's length first
    return t;
  }
  if (p.has_raw_data() && type != dtype::string) {
    if (p.raw_data().size() != bytes)
      refuse(what + ": raw_data has " + std::to_string(p.raw_data().size()) + " bytes; the shape " +
             shape_to_string(dims) + " needs " + std::to_string(bytes));
    tensor t;
    t.type = type;
    t.shape = dims;
    t.data.assign(p.raw_data().begin(), p.raw_data().end());
    return t;
  }
  auto have = static_cast<size_t>(typed_field_size(p, type));
  if (have != n)
    refuse(what + ": holds " + std::to_string(have) + " " + dtype_name(type) +
           " values; the shape " + shape_to_string(dims) + " needs " + std::to_string(n));
  tensor t = tensor::zeros(type, dims);
  copy_typed_fields(p, t);
  return t;
}

// ---- value infos ------------------------------------------------------------------------------

std::string lowercase(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// "seq(map(int64,float))": ONNX's own spelling of non-tensor types, tensors by element type.
std::string describe_type(const onnx::TypeProto& type) {
  switch (type.value_case()) {
  case onnx::TypeProto::kTensorType:
    return lowercase(onnx::TensorProto_DataType_Name(type.tensor_type().elem_type()));
  case onnx::TypeProto::kSequenceType:
    return "seq(" + describe_type(type.sequence_type().elem_type()) + ")";
  case onnx::TypeProto::kMapType:
    return "map(" + lowercase(onnx::TensorProto_DataType_Name(type.map_type().key_type())) + "," +
           describe_type(type.map_type().value_type()) + ")";
  case onnx::TypeProto::kOptionalType:
    return "optional(" + describe_type(type.optional_type().elem_type()) + ")";
  case onnx::TypeProto::kSparseTensorType:
    return "sparse_tensor(" +
           lowercase(onnx::TensorProto_DataType_Name(type.sparse_tensor_type().elem_type())) + ")";
  default:
    return "unknown";
  }
}

value_info value_info_from_proto(const onnx::ValueInfoProto& p, const std::string& role) {
  value_info v;
  v.name = p.name();
  auto& type = p.type();
  if (type.value_case() != onnx::TypeProto::kTensorType) {
    v.non_tensor_type = describe_type(type);
    return v;
  }
  auto& tt = type.tensor_type();
  if (tt.elem_type() != 0)
    v.type = to_dtype(tt.elem_type(), role + " \"" + v.name + "\"");
  if (!tt.has_shape())
    return v;
  v.has_shape = true;
  for (auto& d : tt.shape().dim()) {
    v.dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
    v.dim_names.push_back(d.has_dim_param() ? d.dim_param() : std::string());
  }
  return v;
}

// ---- nodes ------------------------------------------------------------------------------------

// IR 3+ always sets the type; older writers left it out, so infer it from the field in use.
onnx::AttributeProto::AttributeType attribute_type(const onnx::AttributeProto& a) {
  if (a.type() != onnx::AttributeProto::UNDEFINED)
    return a.type();
  if (a.has_f())
    return onnx::AttributeProto::FLOAT;
  if (a.has_i())
    return onnx::AttributeProto::INT;
  if (a.has_s())
    return onnx::AttributeProto::STRING;
  if (a.has_t())
    return onnx::AttributeProto::TENSOR;
  if (a.has_g())
    return onnx::AttributeProto::GRAPH;
  if (a.floats_size() > 0)
    return onnx::AttributeProto::FLOATS;
  if (a.ints_size() > 0)
    return onnx::AttributeProto::INTS;
  if (a.strings_size() > 0)
    return onnx::AttributeProto::STRINGS;
  if (a.tensors_size() > 0)
    return onnx::AttributeProto::TENSORS;
  if (a.graphs_size() > 0)
    return onnx::AttributeProto::GRAPHS;
  return onnx::AttributeProto::UNDEFINED;
}

// `what` names the node for messages: "node 'n'".
attribute attribute_from_proto(const onnx::AttributeProto& a, const std::string& op_type,
                               const std::string& base_dir, const std::string& node_what) {
  using kind = attribute::kind;
  attribute out;
  auto what = node_what + " attribute '" + a.name() + "'";
  switch (attribute_type(a)) {
  case onnx::AttributeProto::FLOAT:
    out.type = kind::f;
    out.f = a.f();
    break;
  case onnx::AttributeProto::INT:
    out.type = kind::i;
    out.i = a.i();
    break;
  case onnx::AttributeProto::STRING:
    out.type = kind::s;
    out.s = a.s();
    break;
  case onnx::AttributeProto::TENSOR:
    out.type = kind::t;
    out.t = tensor_from_proto(a.t(), base_dir, what);
    break;
  case onnx::AttributeProto::FLOATS:
    out.type = kind::floats;
    out.floats.assign(a.floats().begin(), a.floats().end());
    break;
  case onnx::AttributeProto::INTS:
    out.type = kind::ints;
    out.ints.assign(a.ints().begin(), a.ints().end());
    break;
  case onnx::AttributeProto::STRINGS:
    out.type = kind::strings;
    out.strings.assign(a.strings().begin(), a.strings().end());
    break;
  case onnx::AttributeProto::TENSORS:
    out.type = kind::tensors;
    for (auto& t : a.tensors())
      out.tensors.push_back(tensor_from_proto(t, base_dir, what));
    break;
  case onnx::AttributeProto::GRAPH:
  case onnx::AttributeProto::GRAPHS: // worded like model.cpp's refusal of unknown ops
    refuse("unsupported operator " + op_type + " in " + what +
           ": subgraphs (If, Loop, Scan and other control flow) are not supported");
  case onnx::AttributeProto::UNDEFINED:
    break; // an attribute with no value: keep it as undefined
  default:
    refuse(what + " has type " + onnx::AttributeProto_AttributeType_Name(a.type()) +
           ", which is not supported");
  }
  return out;
}

// Unnamed nodes (ONNX's backend tests, some exporters) get "<op>_<index>" so that every message
// can name the node.
node node_from_proto(const onnx::NodeProto& p, int index, const std::string& base_dir) {
  node n;
  n.name = p.name().empty() ? p.op_type() + "_" + std::to_string(index) : p.name();
  n.op_type = p.op_type();
  n.domain = normalize_domain(p.domain());
  n.inputs.assign(p.input().begin(), p.input().end());
  n.outputs.assign(p.output().begin(), p.output().end());
  auto what = "node '" + n.name + "'";
  for (auto& a : p.attribute())
    n.attributes[a.name()] = attribute_from_proto(a, n.op_type, base_dir, what);
  return n;
}

// ---- model ------------------------------------------------------------------------------------

void read_header(const onnx::ModelProto& m, graph& g) {
  if (m.ir_version() < min_ir_version || m.ir_version() > max_ir_version)
    refuse("ONNX IR version " + std::to_string(m.ir_version()) + " is not supported (only " +
           std::to_string(min_ir_version) + " to " + std::to_string(max_ir_version) + ")");
  g.ir_version = m.ir_version();
  g.producer_name = m.producer_name();
  g.producer_version = m.producer_version();
  for (auto& o : m.opset_import())
    g.opsets[normalize_domain(o.domain())] = o.version();
}

void read_graph(const onnx::GraphProto& gp, const std::string& base_dir, graph& g) {
  if (gp.sparse_initializer_size() > 0)
    refuse("sparse initializers are not supported (\"" + gp.sparse_initializer(0).values().name() +
           "\")");
  for (auto& init : gp.initializer())
    g.initializers[init.name()] =
        tensor_from_proto(init, base_dir, "initializer \"" + init.name() + "\"");
  for (auto& in : gp.input())
    if (!g.initializers.count(in.name())) // an initializer listed as input is a constant
      g.inputs.push_back(value_info_from_proto(in, "input"));
  for (auto& out : gp.output())
    g.outputs.push_back(value_info_from_proto(out, "output"));
  g.nodes.reserve(static_cast<size_t>(gp.node_size()));
  for (int i = 0; i < gp.node_size(); ++i)
    g.nodes.push_back(node_from_proto(gp.node(i), i, base_dir));
}

} // namespace

graph parse_model_bytes(const std::string& bytes, const std::string& base_dir) {
  onnx::ModelProto m;
  if (!m.ParseFromString(bytes))
    refuse("not an ONNX model: the protobuf could not be parsed");
  graph g;
  read_header(m, g);
  read_graph(m.graph(), base_dir, g);
  return g;
}

tensor load_tensor_proto_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    refuse("cannot open tensor file \"" + path + "\"");
  std::stringstream buffer;
  buffer << in.rdbuf();
  onnx::TensorProto p;
  if (!p.ParseFromString(buffer.str()))
    refuse("\"" + path + "\" is not a serialized TensorProto");
  return tensor_from_proto(p, fs::path(path).parent_path().string(), "tensor \"" + path + "\"");
}

} // namespace serve::onnx_ir
