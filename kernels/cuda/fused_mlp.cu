// A whole MLP in one cooperative launch (fused_mlp.hpp). No CAF header may be included here.
//
// Why one launch: at batch 1..32 a layer of a narrow MLP is a few microseconds of work, about
// what a kernel launch and the gap between dependent kernels cost. Here the grid stays resident
// for all layers: every block takes 16-column tiles of the current layer (the same split-K tile
// routine as linear_forward's small-batch kernel, tensor_core_tiles.cuh), writes them to an
// L2-resident workspace, and a grid-wide barrier (cooperative groups) separates the layers.
// The layer's input is staged through shared memory chunk by chunk; weight tiles go straight
// from global memory into tensor-core fragments (each weight is used once per block).
//
// Grid: as many blocks as can be resident at once (occupancy x SMs, a cooperative launch
// requires it), but no more than the widest layer has 16-column tiles. Layers ping-pong between
// the workspace's two halves; the last one writes y.
#include <map>
#include <mutex>
#include <utility>

#include <cooperative_groups.h>

#include "kernels/cuda/fused_mlp.hpp"
#include "kernels/cuda/tensor_core_tiles.cuh"

namespace serve::kernels::cuda {

using namespace detail;

namespace {

/// Kernel arguments (passed by value; well under the 4 KB argument limit).
struct mlp_args {
  layer_args layer[fused_mlp_limits::max_layers];
  int n_layers = 0;
  int rows = 0;
  const float* x = nullptr;
  float* y = nullptr;
  float* workspace[2] = {nullptr, nullptr}; // each [rows, widest hidden width]
};

template <class T, int MF>
__global__ void __launch_bounds__(split_k_threads) fused_mlp_kernel(mlp_args args) {
  __shared__ split_k_smem<T, MF> sm;
  cooperative_groups::grid_group grid = cooperative_groups::this_grid();
  const float* in = args.x;
  for (int l = 0; l < args.n_layers; ++l) {
    const layer_args& layer = args.layer[l];
    float* out = l + 1 == args.n_layers ? args.y : args.workspace[l % 2];
    const int tiles = static_cast<int>(ceil_div(layer.N, column_tile));
    for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x)
      split_k_column_tile<T, MF>(in, args.rows, layer, out, tile * column_tile, sm);
    // Every block reaches every barrier (no early exit): the barrier also makes this layer's
    // stores visible to the next layer's loads (which read through L2, see split_k_column_tile).
    if (l + 1 < args.n_layers)
      grid.sync();
    in = out;
  }
}

/// Blocks of `kernel` that fit on one multiprocessor of `device` (cached; 0 on error).
int resident_blocks_per_sm(const void* kernel, int device) {
  static std::mutex mutex;
  static std::map<std::pair<const void*, int>, int> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find({kernel, device});
  if (it != cache.end())
    return it->second;
  int blocks = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, split_k_threads, 0) !=
      cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  cache[{kernel, device}] = blocks;
  return blocks;
}

template <class T, int MF> status launch(mlp_args& args, int max_tiles, const stream& s) {
  const void* kernel = reinterpret_cast<const void*>(&fused_mlp_kernel<T, MF>);
  const int per_sm = resident_blocks_per_sm(kernel, s.device());
  const int sms = multiprocessor_count(s.device());
  if (per_sm < 1 || sms < 1)
    return invalid_argument("fused_mlp_forward: cannot size the cooperative grid");
  const int blocks = std::min(max_tiles, per_sm * sms);
  void* params[] = {&args};
  return to_status(cudaLaunchCooperativeKernel(kernel, dim3(blocks), dim3(split_k_threads), params,
                                               0, native(s)),
                   "fused_mlp_kernel (cudaLaunchCooperativeKernel)");
}

template <class T> status launch_for_rows(mlp_args& args, int max_tiles, const stream& s) {
  return args.rows <= 16 ? launch<T, 1>(args, max_tiles, s) : launch<T, 2>(args, max_tiles, s);
}

} // namespace

bool fused_mlp_supported(const linear_weights* layers, int n_layers, int rows) {
  using limits = fused_mlp_limits;
  if (!layers || n_layers < 1 || n_layers > limits::max_layers || rows < 1 ||
      rows > limits::max_rows)
    return false;
  const linear_weights& first = layers[0];
  for (int i = 0; i < n_layers; ++i) {
    const linear_weights& l = layers[i];
    if (!l.weight.data() || l.prec == precision::fp32 || l.prec != first.prec ||
        l.weight.device() != first.weight.device())
      return false;
    if (l.in_features > limits::max_width || l.out_features > limits::max_width)
      return false;
    if (i + 1 < n_layers && l.out_features != layers[i + 1].in_features)
      return false;
  }
  return true;
}

size_t fused_mlp_workspace_bytes(const linear_weights* layers, int n_layers, int rows) {
  int widest = 0;
  for (int i = 0; i + 1 < n_layers; ++i) // the last layer writes y, not the workspace
    widest = std::max(widest, layers[i].out_features);
  return 2 * sizeof(float) * static_cast<size_t>(std::max(rows, 0)) * widest;
}

status fused_mlp_forward(const float* x_dev, const linear_weights* layers, int n_layers,
                         float* y_dev, int rows, device_buffer& workspace, const stream& s) {
  if (!fused_mlp_supported(layers, n_layers, rows))
    return invalid_argument("fused_mlp_forward: these layers and rows (" + std::to_string(rows) +
                            ") are not supported; check fused_mlp_supported first");
  if (!x_dev || !y_dev)
    return invalid_argument("fused_mlp_forward: x and y must not be null");
  if (layers[0].weight.device() != s.device())
    return invalid_argument("fused_mlp_forward: the weights are on device " +
                            std::to_string(layers[0].weight.device()) + ", the stream on device " +
                            std::to_string(s.device()));
  if (auto st = enter(s, "fused_mlp_forward"); !st.ok())
    return st;
  const size_t needed = fused_mlp_workspace_bytes(layers, n_layers, rows);
  if (workspace.bytes() < needed || (needed > 0 && workspace.device() != s.device()))
    if (auto st = workspace.allocate(needed, s.device()); !st.ok())
      return st;

  mlp_args args;
  args.n_layers = n_layers;
  args.rows = rows;
  args.x = x_dev;
  args.y = y_dev;
  float* ws = static_cast<float*>(workspace.data());
  args.workspace[0] = ws;
  args.workspace[1] = ws ? ws + needed / sizeof(float) / 2 : nullptr;
  int max_tiles = 1;
  for (int i = 0; i < n_layers; ++i) {
    const linear_weights& l = layers[i];
    layer_args& a = args.layer[i];
    a.weight = l.weight.data();
    a.bias = static_cast<const float*>(l.bias.data());
    a.K = l.in_features;
    a.N = l.out_features;
    a.ld = l.ld;
    a.k_padded = l.k_padded;
    a.act = l.act;
    max_tiles = std::max(max_tiles, static_cast<int>(ceil_div(l.out_features, column_tile)));
  }
  switch (layers[0].prec) {
  case precision::tf32:
    return launch_for_rows<float>(args, max_tiles, s);
  case precision::fp16:
    return launch_for_rows<__half>(args, max_tiles, s);
  case precision::bf16:
    return launch_for_rows<__nv_bfloat16>(args, max_tiles, s);
  case precision::fp32:
    break;
  }
  return invalid_argument("fused_mlp_forward: precision fp32 has no fused path");
}

} // namespace serve::kernels::cuda
