// GPU MLP micro-benchmark for scripts/bench-gpu: our fused kernels (kernels/cuda) against a
// cuBLASLt GEMM chain with separate bias+activation kernels, on the same device, weights and
// input. Prints one JSON line per measurement:
//
//   {"model": "mlp784", "precision": "tf32", "batch": 8, "impl": "ours", "path": "fused_mlp",
//    "repeat": 1, "runs": 5000, "p50_us": 21.3, "rows_per_s": 375586.0}
//
// and, per model/precision/batch before timing, a check line
//   {"check": true, "model": ..., "max_abs_err": ..., "max_rel_err": ..., "ok": true}
// comparing our output with cuBLAS's (rel = max |ours - cublas| / max |cublas|; limit 5e-3 for
// tf32, 1e-2 for fp16). `--query` prints {"device_count": N, "reason": "...", "name": "..."}.
//
// Models: mlp784 = 784-512-512-10, wide4096 = 4096-4096-4096-4096-4096; ReLU between layers,
// none after the last. Weights U(-1/sqrt(K), 1/sqrt(K)), biases U(-0.1, 0.1), input U(-1, 1),
// fixed seeds. One "run" = enqueue the forward pass + cudaStreamSynchronize, timed on the host
// (what a replica waits for); p50 over the runs of one repeat. Ours and cuBLAS alternate per
// repeat (ours first on odd repeats).
//
// Run: build/apps/bench_gpu --models mlp784,wide4096 --batches 1,8,32,128,1024
//        --precisions tf32,fp16 --seconds 1 --repeats 3
#include <cublasLt.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_api.hpp"
#include "kernels/cuda/device_query.hpp"

namespace cuda = serve::kernels::cuda;

namespace {

[[noreturn]] void fail(const std::string& message) {
  std::string escaped;
  for (char c : message)
    escaped += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
  std::printf("{\"error\": \"%s\"}\n", escaped.c_str());
  std::exit(1);
}

void check(const cuda::status& st, const char* what) {
  if (!st.ok())
    fail(std::string(what) + ": " + st.message);
}

void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    fail(std::string(what) + ": " + cudaGetErrorString(e));
}

void check_cublas(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS)
    fail(std::string(what) + ": cublasStatus " + std::to_string(static_cast<int>(st)));
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos)
      end = text.size();
    if (end > start)
      out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::vector<int> model_widths(const std::string& model) {
  if (model == "mlp784")
    return {784, 512, 512, 10};
  if (model == "wide4096")
    return {4096, 4096, 4096, 4096, 4096};
  fail("unknown model " + model + " (mlp784, wide4096)");
}

struct host_layer {
  std::vector<float> w; // [K, N] row-major
  std::vector<float> bias;
  int K, N;
  cuda::activation act;
};

std::vector<host_layer> make_layers(const std::vector<int>& widths) {
  std::mt19937 rng(1234);
  std::vector<host_layer> layers;
  for (size_t i = 0; i + 1 < widths.size(); ++i) {
    host_layer l;
    l.K = widths[i];
    l.N = widths[i + 1];
    l.act = i + 2 < widths.size() ? cuda::activation::relu : cuda::activation::none;
    const float scale = 1.0f / std::sqrt(static_cast<float>(l.K));
    std::uniform_real_distribution<float> w(-scale, scale), b(-0.1f, 0.1f);
    l.w.resize(static_cast<size_t>(l.K) * l.N);
    for (auto& v : l.w)
      v = w(rng);
    l.bias.resize(l.N);
    for (auto& v : l.bias)
      v = b(rng);
    layers.push_back(std::move(l));
  }
  return layers;
}

// ---- (a) ours ---------------------------------------------------------------------------------

struct ours_mlp {
  std::vector<cuda::linear_weights> layers;
  cuda::device_buffer ping, pong, workspace;

  void prepare(const std::vector<host_layer>& host, cuda::precision prec, int max_batch,
               const cuda::stream& s) {
    layers.resize(host.size());
    int widest = 0;
    for (size_t i = 0; i < host.size(); ++i) {
      check(cuda::prepare_linear(host[i].w.data(), host[i].bias.data(), host[i].K, host[i].N,
                                 host[i].act, prec, s, layers[i]),
            "prepare_linear");
      widest = std::max(widest, host[i].N);
    }
    check(ping.allocate(sizeof(float) * max_batch * widest, s.device()), "allocate");
    check(pong.allocate(sizeof(float) * max_batch * widest, s.device()), "allocate");
    const size_t ws = cuda::fused_mlp_workspace_bytes(
        layers.data(), static_cast<int>(layers.size()), cuda::fused_mlp_limits::max_rows);
    check(workspace.allocate(ws, s.device()), "allocate");
  }

  const char* path(int batch) const {
    return cuda::fused_mlp_supported(layers.data(), static_cast<int>(layers.size()), batch)
               ? "fused_mlp"
               : "linear_chain";
  }

  void forward(const float* x, float* y, int batch, const cuda::stream& s) {
    const int n = static_cast<int>(layers.size());
    if (cuda::fused_mlp_supported(layers.data(), n, batch)) {
      check(cuda::fused_mlp_forward(x, layers.data(), n, y, batch, workspace, s),
            "fused_mlp_forward");
      return;
    }
    const float* in = x;
    for (int i = 0; i < n; ++i) {
      float* out = i + 1 == n ? y : static_cast<float*>(i % 2 ? pong.data() : ping.data());
      check(cuda::linear_forward(in, layers[i], out, batch, s), "linear_forward");
      in = out;
    }
  }
};

// ---- (b) cuBLASLt GEMM chain + separate epilogue kernels -----------------------------------

/// y = act(y + bias) in place when `out_half` is null; otherwise the result goes to out_half as
/// fp16 (the next layer's input in the fp16 chain).
__global__ void bias_act_kernel(float* y, const float* bias, int rows, int cols, bool relu,
                                __half* out_half) {
  const long long n = static_cast<long long>(rows) * cols;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    float v = y[i] + bias[i % cols];
    if (relu)
      v = v < 0.0f ? 0.0f : v;
    if (out_half)
      out_half[i] = __float2half_rn(v);
    else
      y[i] = v;
  }
}

__global__ void to_half_kernel(const float* x, __half* y, long long n) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    y[i] = __float2half_rn(x[i]);
}

unsigned elementwise_blocks(long long n) {
  return static_cast<unsigned>(std::min<long long>((n + 255) / 256, 4096));
}

struct cublas_layer {
  cuda::device_buffer w, bias; // w: fp32 or fp16 [K, N] row-major = [N, K] column-major
  int K, N;
  bool relu;
};

struct cublas_plan { // one per (layer, batch)
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
};

struct cublas_mlp {
  cublasLtHandle_t handle = nullptr;
  bool half = false;
  std::vector<cublas_layer> layers;
  std::vector<std::vector<cublas_plan>> plans; // [batch index][layer]
  std::vector<int> batches;
  cuda::device_buffer act32, act16a, act16b, gemm_out, workspace;
  static constexpr size_t workspace_bytes = 32u << 20;

  cublas_mlp() = default;
  cublas_mlp(const cublas_mlp&) = delete;
  cublas_mlp& operator=(const cublas_mlp&) = delete;
  ~cublas_mlp() {
    for (auto& per_layer : plans)
      for (auto& p : per_layer) {
        cublasLtMatrixLayoutDestroy(p.a);
        cublasLtMatrixLayoutDestroy(p.b);
        cublasLtMatrixLayoutDestroy(p.d);
        cublasLtMatmulDescDestroy(p.op);
      }
    if (handle)
      cublasLtDestroy(handle);
  }

  void prepare(const std::vector<host_layer>& host, cuda::precision prec,
               const std::vector<int>& batch_sizes, const cuda::stream& s) {
    half = prec == cuda::precision::fp16;
    batches = batch_sizes;
    check_cublas(cublasLtCreate(&handle), "cublasLtCreate");
    const int max_batch = *std::max_element(batches.begin(), batches.end());
    int widest = 0;
    for (const host_layer& h : host) {
      cublas_layer l;
      l.K = h.K;
      l.N = h.N;
      l.relu = h.act == cuda::activation::relu;
      widest = std::max({widest, h.K, h.N});
      if (half) {
        std::vector<__half> w16(h.w.size());
        for (size_t i = 0; i < w16.size(); ++i)
          w16[i] = __float2half_rn(h.w[i]);
        check(l.w.allocate(w16.size() * sizeof(__half), s.device()), "allocate");
        check(cuda::copy_to_device_async(l.w.data(), w16.data(), w16.size() * sizeof(__half), s),
              "copy");
        check(s.synchronize(), "synchronize");
      } else {
        check(l.w.allocate(h.w.size() * sizeof(float), s.device()), "allocate");
        check(cuda::copy_to_device_async(l.w.data(), h.w.data(), h.w.size() * sizeof(float), s),
              "copy");
      }
      check(l.bias.allocate(h.bias.size() * sizeof(float), s.device()), "allocate");
      check(cuda::copy_to_device_async(l.bias.data(), h.bias.data(), h.bias.size() * sizeof(float),
                                       s),
            "copy");
      check(s.synchronize(), "synchronize");
      layers.push_back(std::move(l));
    }
    const size_t act_elems = static_cast<size_t>(max_batch) * widest;
    check(act32.allocate(act_elems * sizeof(float), s.device()), "allocate");
    check(gemm_out.allocate(act_elems * sizeof(float), s.device()), "allocate");
    check(act16a.allocate(act_elems * sizeof(__half), s.device()), "allocate");
    check(act16b.allocate(act_elems * sizeof(__half), s.device()), "allocate");
    check(workspace.allocate(workspace_bytes, s.device()), "allocate");

    const cudaDataType ab_type = half ? CUDA_R_16F : CUDA_R_32F;
    const cublasComputeType_t compute = half ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_FAST_TF32;
    for (int batch : batches) {
      std::vector<cublas_plan> per_layer;
      for (const cublas_layer& l : layers) {
        cublas_plan p;
        // Column-major view: D[N, batch] = W^T[N, K] · X^T[K, batch].
        check_cublas(cublasLtMatmulDescCreate(&p.op, compute, CUDA_R_32F), "MatmulDescCreate");
        check_cublas(cublasLtMatrixLayoutCreate(&p.a, ab_type, l.N, l.K, l.N), "layout a");
        check_cublas(cublasLtMatrixLayoutCreate(&p.b, ab_type, l.K, batch, l.K), "layout b");
        check_cublas(cublasLtMatrixLayoutCreate(&p.d, CUDA_R_32F, l.N, batch, l.N), "layout d");
        cublasLtMatmulPreference_t pref = nullptr;
        check_cublas(cublasLtMatmulPreferenceCreate(&pref), "PreferenceCreate");
        size_t ws = workspace_bytes;
        check_cublas(cublasLtMatmulPreferenceSetAttribute(
                         pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws),
                     "PreferenceSetAttribute");
        cublasLtMatmulHeuristicResult_t result{};
        int found = 0;
        check_cublas(cublasLtMatmulAlgoGetHeuristic(handle, p.op, p.a, p.b, p.d, p.d, pref, 1,
                                                    &result, &found),
                     "AlgoGetHeuristic");
        cublasLtMatmulPreferenceDestroy(pref);
        if (found < 1)
          fail("cuBLASLt found no algorithm");
        p.algo = result.algo;
        per_layer.push_back(p);
      }
      plans.push_back(std::move(per_layer));
    }
  }

  void forward(const float* x, float* y, int batch, const cuda::stream& s) {
    const size_t bi = std::find(batches.begin(), batches.end(), batch) - batches.begin();
    cudaStream_t cs = static_cast<cudaStream_t>(s.native());
    const float one = 1.0f, zero = 0.0f;
    const void* in = x;
    if (half) {
      const long long n = static_cast<long long>(batch) * layers[0].K;
      to_half_kernel<<<elementwise_blocks(n), 256, 0, cs>>>(x, static_cast<__half*>(act16a.data()),
                                                            n);
      in = act16a.data();
    }
    for (size_t i = 0; i < layers.size(); ++i) {
      const cublas_layer& l = layers[i];
      const cublas_plan& p = plans[bi][i];
      const bool last = i + 1 == layers.size();
      // fp32 chain: layers alternate between two buffers (a GEMM must not write its input).
      float* d = last ? y : static_cast<float*>(i % 2 ? act32.data() : gemm_out.data());
      check_cublas(cublasLtMatmul(handle, p.op, &one, l.w.data(), p.a, in, p.b, &zero, d, p.d, d,
                                  p.d, &p.algo, workspace.data(), workspace_bytes, cs),
                   "cublasLtMatmul");
      const long long n = static_cast<long long>(batch) * l.N;
      __half* next16 = nullptr;
      if (half && !last)
        next16 = static_cast<__half*>(i % 2 ? act16a.data() : act16b.data());
      bias_act_kernel<<<elementwise_blocks(n), 256, 0, cs>>>(
          d, static_cast<const float*>(l.bias.data()), batch, l.N, l.relu, next16);
      check_cuda(cudaGetLastError(), "bias_act_kernel");
      in = half ? static_cast<const void*>(next16) : static_cast<const void*>(d);
    }
  }
};

// ---- timing ------------------------------------------------------------------------------------

template <class Forward>
void measure(const char* model, const char* prec, int batch, const char* impl, const char* path,
             int repeat, double seconds, Forward&& forward, const cuda::stream& s) {
  using clock = std::chrono::steady_clock;
  const auto warm_end = clock::now() + std::chrono::milliseconds(200);
  for (int i = 0; i < 10 || clock::now() < warm_end; ++i) {
    forward();
    check(s.synchronize(), "synchronize");
    if (i > 1000)
      break;
  }
  std::vector<double> us;
  const auto end = clock::now() + std::chrono::duration<double>(seconds);
  while (clock::now() < end && us.size() < 200000) {
    const auto t0 = clock::now();
    forward();
    check(s.synchronize(), "synchronize");
    us.push_back(std::chrono::duration<double, std::micro>(clock::now() - t0).count());
  }
  std::sort(us.begin(), us.end());
  const double p50 = us[us.size() / 2];
  std::printf("{\"model\": \"%s\", \"precision\": \"%s\", \"batch\": %d, \"impl\": \"%s\", "
              "\"path\": \"%s\", \"repeat\": %d, \"runs\": %zu, \"p50_us\": %.2f, "
              "\"rows_per_s\": %.1f}\n",
              model, prec, batch, impl, path, repeat, us.size(), p50, batch / (p50 * 1e-6));
  std::fflush(stdout);
}

struct options {
  std::vector<std::string> models{"mlp784", "wide4096"};
  std::vector<int> batches{1, 8, 32, 128, 1024};
  std::vector<std::string> precisions{"tf32", "fp16"};
  double seconds = 1.0;
  int repeats = 3;
  bool query = false;
};

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        fail(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--query") {
      o.query = true;
    } else if (arg == "--models") {
      o.models = split(value());
    } else if (arg == "--batches") {
      o.batches.clear();
      for (const auto& b : split(value()))
        o.batches.push_back(std::atoi(b.c_str()));
    } else if (arg == "--precisions") {
      o.precisions = split(value());
    } else if (arg == "--seconds") {
      o.seconds = std::atof(value().c_str());
    } else if (arg == "--repeats") {
      o.repeats = std::atoi(value().c_str());
    } else {
      fail("unknown argument " + arg);
    }
  }
  if (o.batches.empty() || *std::min_element(o.batches.begin(), o.batches.end()) < 1 ||
      o.seconds <= 0 || o.repeats < 1)
    fail("batches >= 1, seconds > 0 and repeats >= 1 required");
  return o;
}

} // namespace

int main(int argc, char** argv) {
  const options opt = parse(argc, argv);
  const auto devices = cuda::query_devices();
  if (opt.query || devices.device_count == 0) {
    std::string reason;
    for (char c : devices.reason)
      reason += c == '"' ? '\'' : c;
    std::printf("{\"device_count\": %d, \"reason\": \"%s\", \"name\": \"%s\"}\n",
                devices.device_count, reason.c_str(), devices.first_device_name.c_str());
    return 0;
  }
  cuda::stream s;
  check(cuda::stream::create(0, s), "stream::create");
  const int max_batch = *std::max_element(opt.batches.begin(), opt.batches.end());

  for (const std::string& model : opt.models) {
    const auto widths = model_widths(model);
    const auto host = make_layers(widths);
    const int in_width = widths.front(), out_width = widths.back();
    std::vector<float> x(static_cast<size_t>(max_batch) * in_width);
    std::mt19937 rng(99);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (auto& v : x)
      v = dist(rng);
    cuda::device_buffer x_dev, y_ours, y_cublas;
    check(x_dev.allocate(x.size() * sizeof(float), 0), "allocate");
    check(cuda::copy_to_device_async(x_dev.data(), x.data(), x.size() * sizeof(float), s), "copy");
    check(y_ours.allocate(sizeof(float) * max_batch * out_width, 0), "allocate");
    check(y_cublas.allocate(sizeof(float) * max_batch * out_width, 0), "allocate");
    const float* xp = static_cast<const float*>(x_dev.data());
    float* yo = static_cast<float*>(y_ours.data());
    float* yc = static_cast<float*>(y_cublas.data());

    for (const std::string& prec_name : opt.precisions) {
      cuda::precision prec;
      if (prec_name == "tf32")
        prec = cuda::precision::tf32;
      else if (prec_name == "fp16")
        prec = cuda::precision::fp16;
      else
        fail("unknown precision " + prec_name + " (tf32, fp16)");
      ours_mlp ours;
      ours.prepare(host, prec, max_batch, s);
      cublas_mlp theirs;
      theirs.prepare(host, prec, opt.batches, s);

      for (int batch : opt.batches) {
        // Agreement before timing.
        ours.forward(xp, yo, batch, s);
        theirs.forward(xp, yc, batch, s);
        check(s.synchronize(), "synchronize");
        std::vector<float> a(static_cast<size_t>(batch) * out_width), b(a.size());
        check(cuda::copy_to_host_async(a.data(), yo, a.size() * sizeof(float), s), "copy");
        check(cuda::copy_to_host_async(b.data(), yc, b.size() * sizeof(float), s), "copy");
        check(s.synchronize(), "synchronize");
        double max_abs = 0, max_ref = 0;
        for (size_t i = 0; i < a.size(); ++i) {
          max_abs = std::max(max_abs, std::fabs(static_cast<double>(a[i]) - b[i]));
          max_ref = std::max(max_ref, std::fabs(static_cast<double>(b[i])));
        }
        const double rel = max_ref > 0 ? max_abs / max_ref : max_abs;
        const double limit = prec == cuda::precision::fp16 ? 1e-2 : 5e-3;
        std::printf("{\"check\": true, \"model\": \"%s\", \"precision\": \"%s\", \"batch\": %d, "
                    "\"max_abs_err\": %.3g, \"max_rel_err\": %.3g, \"limit\": %.g, \"ok\": %s}\n",
                    model.c_str(), prec_name.c_str(), batch, max_abs, rel, limit,
                    rel <= limit ? "true" : "false");
        std::fflush(stdout);

        for (int rep = 1; rep <= opt.repeats; ++rep) {
          auto run_ours = [&] {
            measure(
                model.c_str(), prec_name.c_str(), batch, "ours", ours.path(batch), rep, opt.seconds,
                [&] { ours.forward(xp, yo, batch, s); }, s);
          };
          auto run_cublas = [&] {
            measure(
                model.c_str(), prec_name.c_str(), batch, "cublas", "cublaslt+epilogue", rep,
                opt.seconds, [&] { theirs.forward(xp, yc, batch, s); }, s);
          };
          if (rep % 2) {
            run_ours();
            run_cublas();
          } else {
            run_cublas();
            run_ours();
          }
        }
      }
    }
  }
  return 0;
}
