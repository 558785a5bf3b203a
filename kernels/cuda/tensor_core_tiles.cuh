// Tensor-core building blocks shared by linear.cu and fused_mlp.cu (nvcc only, internal).
//
// - operand<T>: the storage type of a precision (float for tf32, __half, __nv_bfloat16), its
//   wmma fragment types and the fp32 -> T conversion applied when activations are staged.
// - split_k_column_tile: the small-batch routine. One block of 8 warps computes
//   y[0:rows, n0:n0+16) = act(x · W + b) for rows <= 16 * MF (MF = 1 or 2): x is staged through
//   shared memory chunk by chunk (converted to T, zero-filled outside [rows, K)), the 8 warps
//   split the k-steps of each chunk between them, every warp loads its weight fragments straight
//   from global memory (each weight is used once per block, so staging it in shared memory
//   would only add a copy), and the warps' partial sums are added in shared memory before the
//   epilogue (bias, activation, masked store).
//
// Why wmma (sm_80 path) on sm_90 too: Hopper's wgmma/TMA pay off for large tiles in a deep
// asynchronous pipeline; these kernels target small batches, where the time goes to streaming
// weights and to launches, not to the MMA issue rate. wmma compiles for both architectures from
// one readable source; a wgmma large-tile kernel is future work (see linear.cu).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <mma.h>

#include "kernels/cuda/cuda_common.cuh"

namespace serve::kernels::cuda::detail {

namespace wmma = nvcuda::wmma;

template <class T> struct operand;

/// tf32: fp32 storage, values rounded to tf32 (cvt.rna) when staged; k-step 8.
template <> struct operand<float> {
  using fragment_type = wmma::precision::tf32;
  static constexpr int k_step = 8;
  __device__ static float from_float(float v) { return wmma::__float_to_tf32(v); }
};

template <> struct operand<__half> {
  using fragment_type = __half;
  static constexpr int k_step = 16;
  __device__ static __half from_float(float v) { return __float2half_rn(v); }
};

template <> struct operand<__nv_bfloat16> {
  using fragment_type = __nv_bfloat16;
  static constexpr int k_step = 16;
  __device__ static __nv_bfloat16 from_float(float v) { return __float2bfloat16_rn(v); }
};

template <class T>
using a_fragment = wmma::fragment<wmma::matrix_a, 16, 16, operand<T>::k_step,
                                  typename operand<T>::fragment_type, wmma::row_major>;
template <class T>
using b_fragment = wmma::fragment<wmma::matrix_b, 16, 16, operand<T>::k_step,
                                  typename operand<T>::fragment_type, wmma::row_major>;
/// fp32 accumulator; its k must match the a and b fragments it is used with.
template <class T>
using acc_fragment = wmma::fragment<wmma::accumulator, 16, 16, operand<T>::k_step, float>;

/// Block shape of split_k_column_tile.
constexpr int split_k_warps = 8;
constexpr int split_k_threads = split_k_warps * 32;
constexpr int column_tile = 16;

/// Shared memory of split_k_column_tile: the staged x chunk, reused for the partial sums.
template <class T, int MF> struct split_k_smem {
  static constexpr int rows = 16 * MF;
  /// k values of x staged per chunk: 1 KB per row (256 floats, 512 halves); a multiple of 32
  /// so that every chunk of a k_padded (multiple of 32) input is whole k-steps.
  static constexpr int chunk = 1024 / sizeof(T);
  /// Row stride of the staged x: 16 bytes of padding against bank conflicts; keeps every
  /// fragment pointer 32-byte aligned (wmma's requirement).
  static constexpr int lda = chunk + 16 / sizeof(T);
  static constexpr size_t x_bytes = sizeof(T) * rows * lda;
  static constexpr size_t partial_bytes = sizeof(float) * split_k_warps * rows * column_tile;
  static constexpr size_t bytes = x_bytes > partial_bytes ? x_bytes : partial_bytes;

  alignas(128) unsigned char raw[bytes];

  __device__ T* x() { return reinterpret_cast<T*>(raw); }
  /// [warp][row][column] partial sums.
  __device__ float* partial() { return reinterpret_cast<float*>(raw); }
};

/// Everything one dense layer's kernel needs, in kernel-argument form.
struct layer_args {
  const void* weight = nullptr; // [k_padded, ld] of the precision's storage type
  const float* bias = nullptr;  // [N] or null
  int K = 0, N = 0, ld = 0, k_padded = 0;
  activation act = activation::none;
};

/// y[0:rows, n0:n0+16) = act(x[rows, K] · W + b) by the whole block (see the file comment).
/// x is read with ld.global.cg (L2, not L1): in the fused MLP it was written by other blocks
/// of the same launch, and L1 is not coherent. Every thread of the block must call this with
/// the same arguments (it contains __syncthreads()).
template <class T, int MF>
__device__ void split_k_column_tile(const float* x, int rows, const layer_args& layer, float* y,
                                    int n0, split_k_smem<T, MF>& sm) {
  using smem = split_k_smem<T, MF>;
  constexpr int k_step = operand<T>::k_step;
  constexpr int unroll = 4; // k-steps whose weight fragments a warp loads before using them
  const int warp = threadIdx.x / 32;
  const T* w = static_cast<const T*>(layer.weight);

  acc_fragment<T> acc[MF];
#pragma unroll
  for (int mf = 0; mf < MF; ++mf)
    wmma::fill_fragment(acc[mf], 0.0f);

  for (int k0 = 0; k0 < layer.k_padded; k0 += smem::chunk) {
    const int kc = min(smem::chunk, layer.k_padded - k0); // a multiple of 32
    // Stage x[:, k0:k0+kc) as T; rows >= rows and k >= K are zeros.
    T* xs = sm.x();
    for (int r = 0; r < smem::rows; ++r)
      for (int c = threadIdx.x; c < kc; c += split_k_threads) {
        const int k = k0 + c;
        const float v =
            (r < rows && k < layer.K) ? __ldcg(x + static_cast<size_t>(r) * layer.K + k) : 0.0f;
        xs[r * smem::lda + c] = operand<T>::from_float(v);
      }
    __syncthreads();

    // Warp w takes k-steps w, w + 8, w + 16, ... of the chunk (warp-uniform branches only).
    const int steps = kc / k_step;
    for (int s0 = warp; s0 < steps; s0 += split_k_warps * unroll) {
      b_fragment<T> b[unroll];
#pragma unroll
      for (int u = 0; u < unroll; ++u) {
        const int s = s0 + u * split_k_warps;
        if (s < steps)
          wmma::load_matrix_sync(b[u], w + static_cast<size_t>(k0 + s * k_step) * layer.ld + n0,
                                 layer.ld);
      }
#pragma unroll
      for (int u = 0; u < unroll; ++u) {
        const int s = s0 + u * split_k_warps;
        if (s < steps) {
#pragma unroll
          for (int mf = 0; mf < MF; ++mf) {
            a_fragment<T> a;
            wmma::load_matrix_sync(a, xs + mf * 16 * smem::lda + s * k_step, smem::lda);
            wmma::mma_sync(acc[mf], a, b[u], acc[mf]);
          }
        }
      }
    }
    __syncthreads(); // the chunk buffer is overwritten next (or reused for the partial sums)
  }

  // Add the 8 warps' partial sums, then bias, activation and the masked store.
  float* partial = sm.partial();
#pragma unroll
  for (int mf = 0; mf < MF; ++mf)
    wmma::store_matrix_sync(partial + (warp * smem::rows + mf * 16) * column_tile, acc[mf],
                            column_tile, wmma::mem_row_major);
  __syncthreads();
  for (int o = threadIdx.x; o < smem::rows * column_tile; o += split_k_threads) {
    const int r = o / column_tile, c = o % column_tile, col = n0 + c;
    if (r < rows && col < layer.N) {
      float v = 0.0f;
#pragma unroll
      for (int w8 = 0; w8 < split_k_warps; ++w8)
        v += partial[(w8 * smem::rows + r) * column_tile + c];
      if (layer.bias)
        v += layer.bias[col];
      y[static_cast<size_t>(r) * layer.N + col] = apply_activation(layer.act, v);
    }
  }
  __syncthreads(); // the shared memory is staged again by the next tile
}

} // namespace serve::kernels::cuda::detail
