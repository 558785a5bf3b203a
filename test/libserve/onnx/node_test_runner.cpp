// ONNX's backend node tests (Debian's libonnx-testdata) against ActorServe's operators.
//
//   onnx_node_tests /usr/share/libonnx-testdata/data/node
//
// Each case folder test_* holds model.onnx and test_data_set_*/input_N.pb, output_N.pb
// (serialized TensorProtos; inputs match the graph's user inputs by position). A case whose
// model uses an operator we do not implement is "not implemented", not a failure; every other
// case must reproduce the outputs (rtol 1e-3, atol 1e-7, NaN equals NaN; integers, bools and
// strings exactly; shapes exactly). Cases in `excluded_cases` are not run, with the reason.
// Prints a table per operator (the op of the model's first node), the failures, the exclusions
// and "N passed, M failed, K skipped"; exits 1 when any case failed.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "libserve/future.hpp"
#include "libserve/onnx/model.hpp"

namespace fs = std::filesystem;
using namespace serve;

namespace {

// Cases we do not run, and why. Keep short: each entry is a conscious gap.
const std::map<std::string, std::string> excluded_cases = {
    {"test_cast_FLOAT_to_STRING", "string casts are not supported (numpy float formatting)"},
    {"test_cast_STRING_to_FLOAT", "string casts are not supported"},
    {"test_castlike_FLOAT_to_STRING_expanded", "string casts are not supported"},
    {"test_castlike_STRING_to_FLOAT_expanded", "string casts are not supported"},
    {"test_batchnorm_epsilon_training_mode", "training_mode = 1: an inference runtime"},
    {"test_batchnorm_example_training_mode", "training_mode = 1: an inference runtime"},
    {"test_cast_FLOAT_to_BFLOAT16", "onnx 1.12's expected values truncate to bfloat16; we round "
                                    "to nearest even like onnxruntime and onnx >= 1.14's data"},
    {"test_castlike_BFLOAT16_to_FLOAT_expanded",
     "input \"like\" is [1] in the data but declared [3, 4] in the model"},
    {"test_castlike_FLOAT_to_BFLOAT16_expanded",
     "input \"like\" is [1] in the data but declared [3, 4] in the model"},
    {"test_identity_opt", "optional-typed values are not supported"},
    {"test_identity_sequence", "sequence-typed values are not supported"},
};

constexpr double rtol = 1e-3;
constexpr double atol = 1e-7;

struct op_tally {
  int run = 0, passed = 0, failed = 0, excluded = 0, not_implemented = 0;
};

struct report {
  std::map<std::string, op_tally> ops;
  std::vector<std::string> failures;   // "case: first mismatch"
  std::vector<std::string> exclusions; // "case: reason"
};

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The op type of the model's first node ("?" when unreadable).
std::string first_op(const fs::path& model_path) {
  onnx::ModelProto m;
  if (!m.ParseFromString(read_bytes(model_path)) || m.graph().node_size() == 0)
    return "?";
  return m.graph().node(0).op_type();
}

double half_to_double(uint16_t h) {
  int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  double sign = (h & 0x8000) ? -1 : 1;
  if (exp == 0x1f)
    return mant ? NAN : sign * INFINITY;
  if (exp == 0)
    return sign * std::ldexp(mant, -24);
  return sign * std::ldexp(mant + 1024, exp - 25);
}

double bfloat16_to_double(uint16_t b) {
  uint32_t bits = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

double float_element(const tensor& t, size_t i) {
  switch (t.type) {
  case dtype::float32:
    return t.as<float>()[i];
  case dtype::float64:
    return t.as<double>()[i];
  case dtype::float16:
    return half_to_double(t.as<uint16_t>()[i]);
  default:
    return bfloat16_to_double(t.as<uint16_t>()[i]);
  }
}

bool is_float(dtype t) {
  return t == dtype::float32 || t == dtype::float64 || t == dtype::float16 || t == dtype::bfloat16;
}

bool close(double got, double want) {
  if (std::isnan(got) || std::isnan(want))
    return std::isnan(got) && std::isnan(want);
  if (std::isinf(got) || std::isinf(want))
    return got == want;
  return std::fabs(got - want) <= atol + rtol * std::fabs(want);
}

// "" when equal, else the first difference.
std::string first_mismatch(const tensor& got, const tensor& want) {
  if (got.type != want.type || got.shape != want.shape)
    return std::string("expected ") + dtype_name(want.type) + " " + shape_to_string(want.shape) +
           ", got " + dtype_name(got.type) + " " + shape_to_string(got.shape);
  size_t n = static_cast<size_t>(want.numel());
  for (size_t i = 0; i < n; ++i) {
    bool same;
    std::string g, w;
    if (want.type == dtype::string) {
      same = got.strings[i] == want.strings[i];
      g = got.strings[i], w = want.strings[i];
    } else if (is_float(want.type)) {
      double a = float_element(got, i), b = float_element(want, i);
      same = close(a, b);
      g = std::to_string(a), w = std::to_string(b);
    } else {
      size_t es = dtype_size(want.type);
      same = std::memcmp(got.data.data() + i * es, want.data.data() + i * es, es) == 0;
      g = "(bytes differ)", w = "";
    }
    if (!same)
      return "element " + std::to_string(i) + ": expected " + w + ", got " + g;
  }
  return "";
}

std::vector<tensor> load_numbered(const fs::path& dir, const std::string& prefix) {
  std::vector<tensor> tensors;
  for (int i = 0;; ++i) {
    auto path = dir / (prefix + std::to_string(i) + ".pb");
    if (!fs::exists(path))
      return tensors;
    tensors.push_back(onnx_ir::load_tensor_proto_file(path.string()));
  }
}

// ONNX 1.12's test data writes bfloat16 tensors as uint16 TensorProtos (same bits): read them
// as the bfloat16 the model declares or produces.
void retype_bfloat16(tensor& stored, dtype meant) {
  if (stored.type == dtype::uint16 && meant == dtype::bfloat16)
    stored.type = dtype::bfloat16;
}

// "" when the data set passes, else why not.
std::string run_data_set(const onnx_ir::onnx_model& model, const fs::path& dir) {
  auto inputs = load_numbered(dir, "input_");
  auto expected = load_numbered(dir, "output_");
  auto& declared = model.info().inputs;
  if (inputs.size() != declared.size())
    return std::to_string(inputs.size()) + " input files for " + std::to_string(declared.size()) +
           " graph inputs";
  std::map<std::string, tensor> feed;
  for (size_t i = 0; i < inputs.size(); ++i) {
    retype_bfloat16(inputs[i], declared[i].type);
    feed[declared[i].name] = std::move(inputs[i]);
  }
  auto outputs = model.run(feed);
  if (outputs.size() != expected.size())
    return std::to_string(outputs.size()) + " outputs, expected " + std::to_string(expected.size());
  for (size_t k = 0; k < outputs.size(); ++k) {
    if (outputs[k].maps)
      return "output " + std::to_string(k) + " is a map sequence";
    retype_bfloat16(expected[k], outputs[k].t.type);
    auto diff = first_mismatch(outputs[k].t, expected[k]);
    if (!diff.empty())
      return "output " + std::to_string(k) + " " + diff;
  }
  return "";
}

// Runs one case folder; tallies under its first node's op.
void run_case(const fs::path& dir, report& r) {
  auto name = dir.filename().string();
  auto& tally = r.ops[first_op(dir / "model.onnx")];
  if (auto ex = excluded_cases.find(name); ex != excluded_cases.end()) {
    ++tally.excluded;
    r.exclusions.push_back(name + ": " + ex->second);
    return;
  }
  std::shared_ptr<const onnx_ir::onnx_model> model;
  std::string failure;
  try {
    model = onnx_ir::onnx_model::load((dir / "model.onnx").string());
    std::vector<fs::path> sets;
    for (auto& entry : fs::directory_iterator(dir))
      if (entry.path().filename().string().rfind("test_data_set_", 0) == 0)
        sets.push_back(entry.path());
    std::sort(sets.begin(), sets.end());
    for (size_t s = 0; s < sets.size() && failure.empty(); ++s)
      failure = run_data_set(*model, sets[s]);
  } catch (const std::exception& e) {
    std::string what = e.what();
    if (!model && what.find("unsupported operator") != std::string::npos) {
      ++tally.not_implemented;
      return;
    }
    failure = what;
  }
  ++tally.run;
  if (failure.empty()) {
    ++tally.passed;
    return;
  }
  ++tally.failed;
  r.failures.push_back(name + ": " + failure);
}

void print_report(const report& r) {
  std::printf("%-28s %5s %6s %6s %8s\n", "operator", "run", "passed", "failed", "excluded");
  std::string missing;
  int skipped = 0, passed = 0, failed = 0, excluded = 0;
  for (auto& [op, t] : r.ops) {
    skipped += t.not_implemented, passed += t.passed, failed += t.failed, excluded += t.excluded;
    if (t.run + t.excluded > 0)
      std::printf("%-28s %5d %6d %6d %8d\n", op.c_str(), t.run, t.passed, t.failed, t.excluded);
    else
      missing += (missing.empty() ? "" : ", ") + op;
  }
  std::printf("\nnot implemented (%d cases): %s\n", skipped, missing.c_str());
  std::printf("\nfailures (%zu):\n", r.failures.size());
  for (auto& f : r.failures)
    std::printf("  %s\n", f.c_str());
  std::printf("\nexcluded (%zu):\n", r.exclusions.size());
  for (auto& e : r.exclusions)
    std::printf("  %s\n", e.c_str());
  std::printf("\n%d passed, %d failed, %d skipped, %d excluded\n", passed, failed, skipped,
              excluded);
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <onnx node test folder>\n", argv[0]);
    return 2;
  }
  std::vector<fs::path> cases;
  std::error_code ec;
  for (auto& entry : fs::directory_iterator(argv[1], ec))
    if (entry.path().filename().string().rfind("test_", 0) == 0 &&
        fs::exists(entry.path() / "model.onnx"))
      cases.push_back(entry.path());
  if (ec || cases.empty()) {
    std::fprintf(stderr, "no test cases under %s\n", argv[1]);
    return 2;
  }
  std::sort(cases.begin(), cases.end());
  report r;
  for (auto& dir : cases)
    run_case(dir, r);
  print_report(r);
  return r.failures.empty() ? 0 : 1;
}
