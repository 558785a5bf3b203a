// A whole MLP (a chain of dense layers) in one cooperative launch, for small batches where
// launch overhead dominates. Implemented in fused_mlp.cu; conventions in cuda_api.hpp.
#pragma once

#include "kernels/cuda/linear.hpp"

namespace serve::kernels::cuda {

/// Limits of the fused whole-MLP path; fused_mlp_supported checks all of them.
struct fused_mlp_limits {
  static constexpr int max_rows = 32;
  static constexpr int max_layers = 16;
  static constexpr int max_width = 4096; // every in_features and out_features
};

/// Whether fused_mlp_forward can run these layers for `rows` rows: 1 <= rows <= max_rows,
/// 1 <= n_layers <= max_layers, each width <= max_width, layer i's out_features == layer i+1's
/// in_features, one precision for all and not fp32, every weight allocated on one device.
/// Does not call CUDA; cheap enough to call per batch.
bool fused_mlp_supported(const linear_weights* layers, int n_layers, int rows);

/// Device bytes fused_mlp_forward needs as workspace for `rows` rows (two fp32 activation
/// buffers of the widest hidden layer).
size_t fused_mlp_workspace_bytes(const linear_weights* layers, int n_layers, int rows);

/// All layers in one cooperative launch: every block takes 16-column tiles of a layer, reads the
/// layer's input (x, then the L2-resident workspace) through shared memory chunk by chunk,
/// streams the weight tiles straight into tensor-core fragments, and a grid-wide barrier
/// separates the layers. x [rows, layers[0].in_features] -> y [rows,
/// layers[n-1].out_features]. Requires fused_mlp_supported (else returns code -1, not sticky).
/// `workspace` is grown (reallocated, which synchronizes the device) when smaller than
/// fused_mlp_workspace_bytes; size it once for max rows to keep the call asynchronous. The
/// workspace must not be used by another stream while the work runs.
status fused_mlp_forward(const float* x_dev, const linear_weights* layers, int n_layers,
                         float* y_dev, int rows, device_buffer& workspace, const stream& s);

} // namespace serve::kernels::cuda
