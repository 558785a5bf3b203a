// Dense layer y = act(x · W + b) with GEMM, bias and activation in one kernel. No CAF header may
// be included here.
//
// Three kernels, picked by linear_forward:
// - rows <= 32 (tf32/fp16/bf16): linear_split_k_kernel, one block per 16 output columns, the
//   block's 8 warps splitting K (tensor_core_tiles.cuh). Small batches are bound by streaming
//   the weights, so the grid spreads over N and no 128-row tile is wasted on 1..32 rows.
// - rows > 32 (tf32/fp16/bf16): linear_tiled_kernel, a BM x BN block tile (128x128 when that
//   gives a block per SM, else 64x64) of 16x16 wmma fragments, K in steps of 32 through shared
//   memory with the next step prefetched into registers while the current one is multiplied.
// - precision::fp32: linear_fp32_kernel, a 64x64 CUDA-core tile (4x4 outputs per thread) with
//   exact fp32 operands, for tests and models that must not lose precision.
// All three mask the M and N edges on load (zeros) and on store; K needs no mask on the weight
// side because prepare_linear zero-pads W to k_padded rows, and x is zero-filled past K.
//
// Hopper: the same wmma code runs on sm_90 (see tensor_core_tiles.cuh for why). A wgmma + TMA
// kernel for rows >= 128 is where sm_90 would gain; it is not written because it could not be
// checked on a device in the session that wrote this file.
// cuDNN is not used: a dense layer is a GEMM with an epilogue, which these kernels fuse, and
// cuDNN's runtime fusion engines would add a heavy dependency for the same thing.
#include <cstring>
#include <vector>

#include "kernels/cuda/linear.hpp"
#include "kernels/cuda/tensor_core_tiles.cuh"

namespace serve::kernels::cuda {

using namespace detail;

namespace {

int round_up(int v, int multiple) {
  return (v + multiple - 1) / multiple * multiple;
}

/// fp32 -> tf32 on the host, as cvt.rna.tf32.f32 does on the device: keep 10 mantissa bits,
/// round to nearest with ties away from zero; inf and NaN unchanged.
float round_to_tf32(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  if ((bits & 0x7f800000u) != 0x7f800000u) {
    bits += 0x1000u; // half of the lowest kept bit; a carry into the exponent is correct
    bits &= 0xffffe000u;
  }
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

// ---- precision::fp32: CUDA-core tile ----------------------------------------------------------

constexpr int fp32_tile = 64;     // block tile is 64 x 64
constexpr int fp32_bk = 16;       // k values per shared-memory step
constexpr int fp32_threads = 256; // 16 x 16 threads, each 4 x 4 outputs strided by 16

__global__ void __launch_bounds__(fp32_threads)
    linear_fp32_kernel(const float* __restrict__ x, int M, layer_args layer,
                       float* __restrict__ y) {
  // a is stored transposed ([k][m]) with one float of padding so that the transposing stores
  // of a warp fall in different banks.
  __shared__ float a[fp32_bk][fp32_tile + 1];
  __shared__ float b[fp32_bk][fp32_tile];
  const float* w = static_cast<const float*>(layer.weight);
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int m0 = blockIdx.y * fp32_tile, n0 = blockIdx.x * fp32_tile;

  float acc[4][4] = {};
  for (int k0 = 0; k0 < layer.k_padded; k0 += fp32_bk) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int e = threadIdx.x + i * fp32_threads;
      const int r = e / fp32_bk, c = e % fp32_bk; // a: 64 rows x 16 k
      const int row = m0 + r, k = k0 + c;
      a[c][r] = (row < M && k < layer.K) ? x[static_cast<size_t>(row) * layer.K + k] : 0.0f;
      const int br = e / fp32_tile, bc = e % fp32_tile; // b: 16 k x 64 columns
      const int col = n0 + bc;
      b[br][bc] = col < layer.ld ? w[static_cast<size_t>(k0 + br) * layer.ld + col] : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < fp32_bk; ++k) {
      float av[4], bv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        av[i] = a[k][ty + 16 * i];
        bv[i] = b[k][tx + 16 * i];
      }
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j)
          acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int row = m0 + ty + 16 * i, col = n0 + tx + 16 * j;
      if (row < M && col < layer.N)
        y[static_cast<size_t>(row) * layer.N + col] =
            apply_activation(layer.act, acc[i][j] + (layer.bias ? layer.bias[col] : 0.0f));
    }
}

// ---- tensor cores, rows > 32: block tiles ---------------------------------------------------

/// A BM x BN block tile of WM x WN warp tiles, K in steps of 32.
template <class T, int BM, int BN, int WM, int WN> struct tile_config {
  static constexpr int bk = 32;
  static constexpr int warps_n = BN / WN;
  static constexpr int warps = (BM / WM) * warps_n;
  static constexpr int threads = warps * 32;
  static constexpr int fm = WM / 16, fn = WN / 16; // 16x16 fragments per warp tile
  // Shared-memory row strides, padded by 16 bytes against bank conflicts; every fragment
  // pointer stays 32-byte aligned as wmma requires (checked for the instantiated shapes).
  static constexpr int lda = bk + 16 / sizeof(T);
  static constexpr int ldb = BN + 16 / sizeof(T);
  static constexpr int a_per_thread = BM * bk / threads; // fp32 values of x per thread
  static constexpr int b_vec = 16 / sizeof(T);           // T per 16-byte chunk of W
  static constexpr int b_chunks_per_row = BN / b_vec;
  static constexpr int b_per_thread = bk * b_chunks_per_row / threads; // 16-byte chunks
  static_assert(BM * bk % threads == 0 && bk * b_chunks_per_row % threads == 0, "even split");
  static_assert(bk % operand<T>::k_step == 0, "whole k-steps");
};

template <class T, int BM, int BN, int WM, int WN> struct tiled_smem {
  using cfg = tile_config<T, BM, BN, WM, WN>;
  alignas(128) T a[BM * cfg::lda];                 // x tile [BM][bk] as T
  alignas(128) T b[cfg::bk * cfg::ldb];            // W tile [bk][BN]
  alignas(128) float scratch[cfg::warps][16 * 16]; // one accumulator per warp, for the epilogue
};

template <class T, int BM, int BN, int WM, int WN>
__global__ void __launch_bounds__(tile_config<T, BM, BN, WM, WN>::threads)
    linear_tiled_kernel(const float* __restrict__ x, int M, layer_args layer,
                        float* __restrict__ y) {
  using cfg = tile_config<T, BM, BN, WM, WN>;
  using smem = tiled_smem<T, BM, BN, WM, WN>;
  static_assert(sizeof(smem) <= 48 * 1024, "static shared memory limit");
  constexpr int k_step = operand<T>::k_step;
  __shared__ smem sm;
  const T* w = static_cast<const T*>(layer.weight);
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wm = warp / cfg::warps_n, wn = warp % cfg::warps_n;

  // The next k-step's operands, loaded from global memory while the current one is multiplied.
  float a_reg[cfg::a_per_thread];
  uint4 b_reg[cfg::b_per_thread];
  auto load_step = [&](int k0) {
#pragma unroll
    for (int i = 0; i < cfg::a_per_thread; ++i) {
      const int e = threadIdx.x + i * cfg::threads;
      const int row = m0 + e / cfg::bk, k = k0 + e % cfg::bk;
      a_reg[i] =
          (row < M && k < layer.K) ? __ldg(x + static_cast<size_t>(row) * layer.K + k) : 0.0f;
    }
#pragma unroll
    for (int i = 0; i < cfg::b_per_thread; ++i) {
      const int e = threadIdx.x + i * cfg::threads;
      const int k = k0 + e / cfg::b_chunks_per_row; // < k_padded: k_padded is a multiple of bk
      const int col = n0 + e % cfg::b_chunks_per_row * cfg::b_vec;
      // ld is a multiple of 16, so a chunk is wholly inside [0, ld) or wholly outside.
      b_reg[i] =
          col < layer.ld
              ? __ldg(reinterpret_cast<const uint4*>(w + static_cast<size_t>(k) * layer.ld + col))
              : make_uint4(0, 0, 0, 0);
    }
  };
  auto store_step = [&]() {
#pragma unroll
    for (int i = 0; i < cfg::a_per_thread; ++i) {
      const int e = threadIdx.x + i * cfg::threads;
      sm.a[e / cfg::bk * cfg::lda + e % cfg::bk] = operand<T>::from_float(a_reg[i]);
    }
#pragma unroll
    for (int i = 0; i < cfg::b_per_thread; ++i) {
      const int e = threadIdx.x + i * cfg::threads;
      *reinterpret_cast<uint4*>(sm.b + e / cfg::b_chunks_per_row * cfg::ldb +
                                e % cfg::b_chunks_per_row * cfg::b_vec) = b_reg[i];
    }
  };

  acc_fragment<T> acc[cfg::fm][cfg::fn];
#pragma unroll
  for (int i = 0; i < cfg::fm; ++i)
#pragma unroll
    for (int j = 0; j < cfg::fn; ++j)
      wmma::fill_fragment(acc[i][j], 0.0f);

  const int steps = layer.k_padded / cfg::bk;
  load_step(0);
  store_step();
  __syncthreads();
  for (int t = 0; t < steps; ++t) {
    if (t + 1 < steps)
      load_step((t + 1) * cfg::bk);
      // Not unrolled: unrolling lets the compiler hoist every k-step's fragments and spill
      // (ptxas -v, sm_80/sm_90); the fragments of one k-step already give 2-8 independent MMAs.
#pragma unroll 1
    for (int kk = 0; kk < cfg::bk; kk += k_step) {
      a_fragment<T> a[cfg::fm];
      b_fragment<T> b[cfg::fn];
#pragma unroll
      for (int i = 0; i < cfg::fm; ++i)
        wmma::load_matrix_sync(a[i], sm.a + (wm * WM + i * 16) * cfg::lda + kk, cfg::lda);
#pragma unroll
      for (int j = 0; j < cfg::fn; ++j)
        wmma::load_matrix_sync(b[j], sm.b + kk * cfg::ldb + wn * WN + j * 16, cfg::ldb);
#pragma unroll
      for (int i = 0; i < cfg::fm; ++i)
#pragma unroll
        for (int j = 0; j < cfg::fn; ++j)
          wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
    }
    __syncthreads(); // everyone is done reading this step's tiles
    if (t + 1 < steps) {
      store_step();
      __syncthreads();
    }
  }

  // Epilogue: each warp passes its fragments one by one through its scratch tile.
  float* scratch = sm.scratch[warp];
#pragma unroll
  for (int i = 0; i < cfg::fm; ++i)
#pragma unroll
    for (int j = 0; j < cfg::fn; ++j) {
      wmma::store_matrix_sync(scratch, acc[i][j], 16, wmma::mem_row_major);
      __syncwarp();
      const int row0 = m0 + wm * WM + i * 16, col0 = n0 + wn * WN + j * 16;
      for (int e = lane; e < 16 * 16; e += 32) {
        const int row = row0 + e / 16, col = col0 + e % 16;
        if (row < M && col < layer.N)
          y[static_cast<size_t>(row) * layer.N + col] =
              apply_activation(layer.act, scratch[e] + (layer.bias ? layer.bias[col] : 0.0f));
      }
      __syncwarp();
    }
}

// ---- tensor cores, rows <= 32: split-K over 16-column tiles -------------------------------

template <class T, int MF>
__global__ void __launch_bounds__(split_k_threads)
    linear_split_k_kernel(const float* x, int rows, layer_args layer, float* y) {
  __shared__ split_k_smem<T, MF> sm;
  const int tiles = static_cast<int>(ceil_div(layer.N, column_tile));
  for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x)
    split_k_column_tile<T, MF>(x, rows, layer, y, tile * column_tile, sm);
}

// ---- host side -------------------------------------------------------------------------------

/// W [K, N] fp32 -> [k_padded, ld] of T as bytes, zeros outside [K, N) (+0 is all-zero bits in
/// every storage type).
template <class T, class Convert>
std::vector<unsigned char> padded_weights(const float* w, int K, int N, int ld, int k_padded,
                                          Convert convert) {
  std::vector<unsigned char> bytes(sizeof(T) * static_cast<size_t>(k_padded) * ld, 0);
  T* dst = reinterpret_cast<T*>(bytes.data());
  for (int k = 0; k < K; ++k)
    for (int n = 0; n < N; ++n)
      dst[static_cast<size_t>(k) * ld + n] = convert(w[static_cast<size_t>(k) * N + n]);
  return bytes;
}

layer_args args_of(const linear_weights& layer) {
  layer_args a;
  a.weight = layer.weight.data();
  a.bias = static_cast<const float*>(layer.bias.data());
  a.K = layer.in_features;
  a.N = layer.out_features;
  a.ld = layer.ld;
  a.k_padded = layer.k_padded;
  a.act = layer.act;
  return a;
}

template <class T>
status launch_tensor_core(const float* x, int rows, const layer_args& a, float* y, int device,
                          cudaStream_t s) {
  if (rows <= 32) {
    const dim3 grid(ceil_div(a.N, column_tile));
    if (rows <= 16)
      linear_split_k_kernel<T, 1><<<grid, split_k_threads, 0, s>>>(x, rows, a, y);
    else
      linear_split_k_kernel<T, 2><<<grid, split_k_threads, 0, s>>>(x, rows, a, y);
    return check_launch("linear_split_k_kernel");
  }
  // 128x128 tiles when they give every multiprocessor a block, else 64x64 (4x the blocks).
  const long long big_tiles = static_cast<long long>(ceil_div(rows, 128)) * ceil_div(a.N, 128);
  if (big_tiles >= multiprocessor_count(device)) {
    using cfg = tile_config<T, 128, 128, 64, 32>;
    const dim3 grid(ceil_div(a.N, 128), ceil_div(rows, 128));
    linear_tiled_kernel<T, 128, 128, 64, 32><<<grid, cfg::threads, 0, s>>>(x, rows, a, y);
  } else {
    using cfg = tile_config<T, 64, 64, 32, 32>;
    const dim3 grid(ceil_div(a.N, 64), ceil_div(rows, 64));
    linear_tiled_kernel<T, 64, 64, 32, 32><<<grid, cfg::threads, 0, s>>>(x, rows, a, y);
  }
  return check_launch("linear_tiled_kernel");
}

} // namespace

status prepare_linear(const float* w, const float* bias, int in_features, int out_features,
                      activation act, precision prec, const stream& s, linear_weights& out) {
  out = linear_weights();
  if (!w || in_features < 1 || out_features < 1)
    return invalid_argument("prepare_linear: need weights and in_features, out_features >= 1; "
                            "were " +
                            std::to_string(in_features) + ", " + std::to_string(out_features));
  if (auto st = enter(s, "prepare_linear"); !st.ok())
    return st;
  const int k_padded = round_up(in_features, 32), ld = round_up(out_features, 16);

  std::vector<unsigned char> host;
  switch (prec) {
  case precision::fp32:
    host = padded_weights<float>(w, in_features, out_features, ld, k_padded,
                                 [](float v) { return v; });
    break;
  case precision::tf32:
    host = padded_weights<float>(w, in_features, out_features, ld, k_padded, round_to_tf32);
    break;
  case precision::fp16:
    host = padded_weights<__half>(w, in_features, out_features, ld, k_padded,
                                  [](float v) { return __float2half_rn(v); });
    break;
  case precision::bf16:
    host = padded_weights<__nv_bfloat16>(w, in_features, out_features, ld, k_padded,
                                         [](float v) { return __float2bfloat16_rn(v); });
    break;
  }

  linear_weights result;
  result.in_features = in_features;
  result.out_features = out_features;
  result.k_padded = k_padded;
  result.ld = ld;
  result.act = act;
  result.prec = prec;
  if (auto st = result.weight.allocate(host.size(), s.device()); !st.ok())
    return st;
  if (auto st = copy_to_device_async(result.weight.data(), host.data(), host.size(), s); !st.ok())
    return st;
  if (bias) {
    const size_t bytes = sizeof(float) * out_features;
    if (auto st = result.bias.allocate(bytes, s.device()); !st.ok())
      return st;
    if (auto st = copy_to_device_async(result.bias.data(), bias, bytes, s); !st.ok())
      return st;
  }
  if (auto st = s.synchronize(); !st.ok()) // `host` and the caller's arrays die after return
    return st;
  out = std::move(result);
  return {};
}

status linear_forward(const float* x_dev, const linear_weights& layer, float* y_dev, int rows,
                      const stream& s) {
  if (rows < 0 || !layer.weight.data())
    return invalid_argument("linear_forward: rows must be >= 0 and the layer prepared; rows was " +
                            std::to_string(rows));
  if (rows == 0)
    return {};
  if (!x_dev || !y_dev)
    return invalid_argument("linear_forward: x and y must not be null");
  if (layer.weight.device() != s.device())
    return invalid_argument("linear_forward: the weights are on device " +
                            std::to_string(layer.weight.device()) + ", the stream on device " +
                            std::to_string(s.device()));
  if (auto st = enter(s, "linear_forward"); !st.ok())
    return st;
  const layer_args a = args_of(layer);
  cudaStream_t cs = native(s);
  switch (layer.prec) {
  case precision::fp32: {
    const dim3 grid(ceil_div(a.N, fp32_tile), ceil_div(rows, fp32_tile));
    linear_fp32_kernel<<<grid, fp32_threads, 0, cs>>>(x_dev, rows, a, y_dev);
    return check_launch("linear_fp32_kernel");
  }
  case precision::tf32:
    return launch_tensor_core<float>(x_dev, rows, a, y_dev, s.device(), cs);
  case precision::fp16:
    return launch_tensor_core<__half>(x_dev, rows, a, y_dev, s.device(), cs);
  case precision::bf16:
    return launch_tensor_core<__nv_bfloat16>(x_dev, rows, a, y_dev, s.device(), cs);
  }
  return invalid_argument("linear_forward: unknown precision");
}

} // namespace serve::kernels::cuda
