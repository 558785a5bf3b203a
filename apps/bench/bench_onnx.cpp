// ONNX executor micro-benchmark for scripts/bench-kernels: loads a model with
// onnx_model::load, feeds it one random batch over and over for a fixed time and prints one
// JSON line:
//
//   {"model": "...", "batch": 8, "threads": 1, "runs": 12345, "rows_per_s": ..., "p50_us": ...,
//    "p99_us": ..., "blas_core": "skylakex"}  (the OpenBLAS kernels that ran)
//
// The random input follows the declared shape of each user input with the first (batch) dim set
// to --batch and any other unknown dim set to 1; floats are uniform in [-1, 1), integers in
// [0, 4). --threads T sets OPENBLAS_NUM_THREADS and OMP_NUM_THREADS (read by OpenBLAS when it
// loads, so the program re-executes itself once with them set). Runs are timed one by one after
// a warm-up of 10 runs or 0.5 s, whichever ends first. On failure it prints
// {"error": "..."} and exits 1.
//
// Run: build/apps/bench_onnx test/fixtures/models/torch_mlp_784/model.onnx --batch 32 --seconds 3
// (scripts/bench-kernels builds it and compares it with onnxruntime on the same models).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/blas_core.hpp"
#include "libserve/onnx/model.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

struct bench_options {
  std::string model_path;
  /// Rows per run; the first dim of every input. Must be >= 1.
  int64_t batch = 1;
  /// Measured time after the warm-up. Must be > 0.
  double seconds = 3.0;
  /// BLAS/OpenMP threads. Must be >= 1.
  int threads = 1;
};

std::string json_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

[[noreturn]] void fail(const std::string& message) {
  std::printf("{\"error\": \"%s\"}\n", json_escape(message).c_str());
  std::fflush(stdout);
  std::exit(1);
}

const std::string usage = "usage: bench_onnx MODEL.onnx [--batch N] [--seconds S] [--threads T]";

bench_options parse_args(int argc, char** argv) {
  bench_options opts;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc)
        fail(arg + " needs a value; " + usage);
      return argv[++i];
    };
    try {
      if (arg == "--batch")
        opts.batch = std::stoll(next());
      else if (arg == "--seconds")
        opts.seconds = std::stod(next());
      else if (arg == "--threads")
        opts.threads = std::stoi(next());
      else if (arg == "-h" || arg == "--help") {
        std::puts(usage.c_str());
        std::exit(0);
      } else if (!arg.empty() && arg[0] == '-')
        fail("unknown option " + arg + "; " + usage);
      else if (opts.model_path.empty())
        opts.model_path = arg;
      else
        fail("more than one model given; " + usage);
    } catch (const std::logic_error&) {
      fail("bad number for " + arg + "; " + usage);
    }
  }
  if (opts.model_path.empty())
    fail(std::string("no model given; ") + usage);
  if (opts.batch < 1)
    fail("--batch must be >= 1; was " + std::to_string(opts.batch));
  if (!(opts.seconds > 0))
    fail("--seconds must be > 0; was " + std::to_string(opts.seconds));
  if (opts.threads < 1)
    fail("--threads must be >= 1; was " + std::to_string(opts.threads));
  return opts;
}

/// OpenBLAS reads its thread count when the library loads: set it and start over once.
void apply_thread_count(int threads, char** argv) {
  std::string want = std::to_string(threads);
  const char* have = std::getenv("OPENBLAS_NUM_THREADS");
  if (have && want == have)
    return;
  setenv("OPENBLAS_NUM_THREADS", want.c_str(), 1);
  setenv("OMP_NUM_THREADS", want.c_str(), 1);
  execv("/proc/self/exe", argv);
  // exec failed (no /proc): go on; the count is then whatever the environment said.
}

serve::tensor random_input(const serve::onnx_ir::value_info& info, int64_t batch,
                           std::mt19937& rng) {
  std::vector<int64_t> shape = info.dims;
  if (!info.has_shape || shape.empty())
    fail("input " + info.name + " declares no shape; cannot make a batch for it");
  shape[0] = batch;
  for (auto& d : shape)
    if (d < 0)
      d = 1;
  serve::tensor t = serve::tensor::zeros(info.type, shape);
  const int64_t n = t.numel();
  std::uniform_real_distribution<float> real(-1.0f, 1.0f);
  std::uniform_int_distribution<int> small(0, 3);
  switch (info.type) {
  case serve::dtype::float32:
    for (int64_t i = 0; i < n; ++i)
      t.as<float>()[i] = real(rng);
    break;
  case serve::dtype::float64:
    for (int64_t i = 0; i < n; ++i)
      t.as<double>()[i] = real(rng);
    break;
  case serve::dtype::int64:
    for (int64_t i = 0; i < n; ++i)
      t.as<int64_t>()[i] = small(rng);
    break;
  case serve::dtype::int32:
    for (int64_t i = 0; i < n; ++i)
      t.as<int32_t>()[i] = small(rng);
    break;
  default:
    fail("input " + info.name + " has dtype " + serve::dtype_name(info.type) +
         "; the benchmark makes float32/float64/int32/int64 inputs only");
  }
  return t;
}

double percentile_us(std::vector<double>& sorted_us, double p) {
  if (sorted_us.empty())
    return 0;
  size_t index = static_cast<size_t>(p * static_cast<double>(sorted_us.size() - 1) + 0.5);
  return sorted_us[std::min(index, sorted_us.size() - 1)];
}

} // namespace

int main(int argc, char** argv) {
  bench_options opts = parse_args(argc, argv);
  kernels::cpu::run_again_with_better_blas_core(argv); // as `actorserve run` does
  apply_thread_count(opts.threads, argv);

  try {
    auto model = serve::onnx_ir::onnx_model::load(opts.model_path);
    const auto& info = model->info();
    if (info.inputs.empty())
      fail("the model has no user inputs");

    std::mt19937 rng(42);
    std::map<std::string, serve::tensor> inputs;
    for (const auto& in : info.inputs)
      inputs.emplace(in.name, random_input(in, opts.batch, rng));

    // Warm-up: 10 runs or 0.5 s.
    auto warm_end = clock_type::now() + std::chrono::milliseconds(500);
    for (int i = 0; i < 10 && clock_type::now() < warm_end; ++i)
      model->run(inputs);

    std::vector<double> latencies_us;
    latencies_us.reserve(1 << 16);
    const auto start = clock_type::now();
    const auto end = start + std::chrono::duration_cast<clock_type::duration>(
                                 std::chrono::duration<double>(opts.seconds));
    auto now = start;
    while (now < end) {
      auto t0 = clock_type::now();
      auto outputs = model->run(inputs);
      now = clock_type::now();
      latencies_us.push_back(std::chrono::duration<double, std::micro>(now - t0).count());
    }
    double elapsed_s = std::chrono::duration<double>(now - start).count();
    std::sort(latencies_us.begin(), latencies_us.end());
    double rows_per_s =
        static_cast<double>(opts.batch) * static_cast<double>(latencies_us.size()) / elapsed_s;
    std::printf("{\"model\": \"%s\", \"batch\": %lld, \"threads\": %d, \"runs\": %zu, "
                "\"rows_per_s\": %.1f, \"p50_us\": %.1f, \"p99_us\": %.1f, \"blas_core\": \"%s\"}\n",
                json_escape(opts.model_path).c_str(), static_cast<long long>(opts.batch),
                opts.threads, latencies_us.size(), rows_per_s, percentile_us(latencies_us, 0.5),
                percentile_us(latencies_us, 0.99), kernels::cpu::blas_core().c_str());
    return 0;
  } catch (const std::exception& e) {
    fail(e.what());
  }
}
