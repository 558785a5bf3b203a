// gpu_executor (see gpu_executor.hpp) over the plain C++ API of kernels/cuda/cuda_api.hpp. No
// CUDA header is included here; without ACTORSERVE_WITH_CUDA only the throwing factory remains.
#include "libserve/onnx/gpu_executor.hpp"

#include "libserve/future.hpp"

#ifdef ACTORSERVE_WITH_CUDA

#include <algorithm>
#include <climits>
#include <cstring>
#include <mutex>

#include "kernels/cuda/cuda_api.hpp"
#include "libserve/deployment.hpp"

namespace serve::onnx_ir {

namespace {

namespace cu = kernels::cuda;

/// Smallest workspace, in rows; they grow in powers of two from here.
constexpr int64_t min_capacity_rows = 32;

cu::precision precision_of(const std::string& name) {
  if (name == "fp32")
    return cu::precision::fp32;
  if (name == "fp16")
    return cu::precision::fp16;
  if (name == "bf16")
    return cu::precision::bf16;
  return cu::precision::tf32;
}

cu::activation activation_of(gpu_activation act) {
  switch (act) {
  case gpu_activation::relu:
    return cu::activation::relu;
  case gpu_activation::sigmoid:
    return cu::activation::sigmoid;
  case gpu_activation::tanh:
    return cu::activation::tanh;
  case gpu_activation::none:
    break;
  }
  return cu::activation::none;
}

int to_int(int64_t n, const char* what) {
  if (n < 0 || n > INT_MAX)
    throw serve_exception(errc::internal, std::string("GPU executor: ") + what + " " +
                                            std::to_string(n) + " is out of range");
  return static_cast<int>(n);
}

/// The staging buffers and device workspaces of one batch in flight (see "double buffering").
/// Used by one batch at a time; its previous batch has finished when it is handed out.
struct batch_buffers {
  int64_t capacity_rows = 0;
  cu::pinned_buffer host_in, host_scores, host_normalized, host_indices;
  cu::device_buffer dev_in, dev_hidden[2], dev_scores, dev_normalized, dev_indices;
  cu::device_buffer fused_workspace;
  /// Recorded after the batch's last copy to the host.
  cu::event done;
};

class cuda_executor final : public gpu_executor {
public:
  cuda_executor(std::shared_ptr<const gpu_plan> plan, const gpu_executor_options& opts)
    : plan_(std::move(plan)), device_(opts.device), precision_(precision_of(opts.precision)) {
    check(cu::stream::create(device_, stream_));
    layers_.resize(plan_->layers.size());
    for (size_t i = 0; i < layers_.size(); ++i) {
      const gpu_layer& l = plan_->layers[i];
      check(cu::prepare_linear(l.weight.data(), l.bias.empty() ? nullptr : l.bias.data(),
                               to_int(l.in_features, "in_features"),
                               to_int(l.out_features, "out_features"), activation_of(l.act),
                               precision_, stream_, layers_[i]));
    }
    n_layers_ = static_cast<int>(layers_.size());
    fused_ = n_layers_ > 0 && cu::fused_mlp_supported(layers_.data(), n_layers_, 1);
    for (const gpu_layer& l : plan_->layers)
      hidden_width_ = std::max(hidden_width_, l.out_features);
  }

  ~cuda_executor() override {
    stream_.synchronize(); // nothing may still use the buffers freed below
  }

  const gpu_plan& plan() const override { return *plan_; }

  std::vector<value> run(const tensor& input) override {
    const gpu_plan& plan = *plan_;
    const int64_t rows = input.shape.empty() ? 0 : input.shape[0];
    if (input.type != dtype::float32 || input.numel() != rows * plan.input_width)
      throw serve_exception(errc::internal, "GPU executor: input " + shape_to_string(input.shape) +
                                              " does not hold rows of " +
                                              std::to_string(plan.input_width) + " floats");
    if (rows == 0)
      return run_gpu_plan_reference(plan, input); // nothing to compute
    lease buffers(*this);
    batch_buffers& b = buffers.get();
    try {
      reserve(b, rows);
      // Staging on this thread overlaps the kernels of the batch another executor enqueued.
      std::memcpy(b.host_in.data(), input.data.data(), input.data.size());
      {
        std::lock_guard<std::mutex> guard(stream_mutex_);
        enqueue(b, to_int(rows, "rows"));
      }
      // Blocks this executor's own thread (a detached actor), never a CAF scheduler thread.
      check(b.done.synchronize());
    } catch (...) {
      // Leave no work of this batch on the stream before its buffers are handed out again.
      std::lock_guard<std::mutex> guard(stream_mutex_);
      stream_.synchronize();
      throw;
    }
    auto host = [](cu::pinned_buffer& p) { return static_cast<const float*>(p.data()); };
    return gpu_plan_outputs(plan, rows, input.as<float>(), host(b.host_scores),
                            host(b.host_normalized),
                            static_cast<const int64_t*>(b.host_indices.data()));
  }

private:
  /// A batch_buffers set taken from the pool for one run(), given back by the destructor.
  class lease {
  public:
    explicit lease(cuda_executor& owner) : owner_(owner) {
      std::lock_guard<std::mutex> guard(owner_.pool_mutex_);
      if (owner_.pool_.empty()) {
        buffers_ = std::make_unique<batch_buffers>();
        owner_.check(cu::event::create(owner_.device_, buffers_->done));
      } else {
        buffers_ = std::move(owner_.pool_.back());
        owner_.pool_.pop_back();
      }
    }
    ~lease() {
      std::lock_guard<std::mutex> guard(owner_.pool_mutex_);
      owner_.pool_.push_back(std::move(buffers_));
    }
    lease(const lease&) = delete;
    lease& operator=(const lease&) = delete;
    batch_buffers& get() { return *buffers_; }

  private:
    cuda_executor& owner_;
    std::unique_ptr<batch_buffers> buffers_;
  };

  /// Turns a failed status into the exception the file comment promises.
  void check(const cu::status& s) const {
    if (s.ok())
      return;
    const std::string what = "CUDA error on cuda:" + std::to_string(device_) + ": " + s.message;
    if (s.sticky)
      throw replica_failure(what);
    throw serve_exception(errc::internal, what);
  }

  /// Grows b to hold `rows` rows (powers of two). Its previous batch has finished.
  void reserve(batch_buffers& b, int64_t rows) {
    if (rows <= b.capacity_rows)
      return;
    int64_t cap = min_capacity_rows;
    while (cap < rows)
      cap *= 2;
    const gpu_plan& plan = *plan_;
    const size_t in_bytes = size_t(cap * plan.input_width) * sizeof(float);
    const size_t out_bytes = size_t(cap * plan.width()) * sizeof(float);
    const size_t hidden_bytes = size_t(cap * hidden_width_) * sizeof(float);
    b.capacity_rows = 0; // until every buffer has its new size
    check(b.host_in.allocate(in_bytes));
    check(b.dev_in.allocate(in_bytes, device_));
    if (n_layers_ > 1) {
      check(b.dev_hidden[0].allocate(hidden_bytes, device_));
      check(b.dev_hidden[1].allocate(hidden_bytes, device_));
    }
    if (n_layers_ > 0)
      check(b.dev_scores.allocate(out_bytes, device_));
    if (plan.outputs_read(gpu_value::scores))
      check(b.host_scores.allocate(out_bytes));
    if (plan.normalize != gpu_plan::normalization::none)
      check(b.dev_normalized.allocate(out_bytes, device_));
    if (plan.outputs_read(gpu_value::normalized))
      check(b.host_normalized.allocate(out_bytes));
    if (plan.argmax_of) {
      check(b.dev_indices.allocate(size_t(cap) * sizeof(int64_t), device_));
      check(b.host_indices.allocate(size_t(cap) * sizeof(int64_t)));
    }
    if (fused_ && b.fused_workspace.bytes() == 0) // sized once for the largest fused batch
      check(b.fused_workspace.allocate(
        cu::fused_mlp_workspace_bytes(layers_.data(), n_layers_, cu::fused_mlp_limits::max_rows),
        device_));
    b.capacity_rows = cap;
  }

  /// Enqueues one batch's copies and kernels on the stream. Called with stream_mutex_ held.
  void enqueue(batch_buffers& b, int rows) {
    const gpu_plan& plan = *plan_;
    const int width = to_int(plan.width(), "width");
    check(cu::copy_to_device_async(b.dev_in.data(), b.host_in.data(),
                                   size_t(rows) * size_t(plan.input_width) * sizeof(float),
                                   stream_));
    const float* x = static_cast<const float*>(b.dev_in.data());
    float* scores = n_layers_ > 0 ? static_cast<float*>(b.dev_scores.data())
                                  : static_cast<float*>(b.dev_in.data());
    if (fused_ && cu::fused_mlp_supported(layers_.data(), n_layers_, rows)) {
      check(cu::fused_mlp_forward(x, layers_.data(), n_layers_, scores, rows, b.fused_workspace,
                                  stream_));
    } else {
      for (int i = 0; i < n_layers_; ++i) {
        const float* in = i == 0 ? x : static_cast<const float*>(b.dev_hidden[(i - 1) % 2].data());
        float* out = i == n_layers_ - 1 ? scores : static_cast<float*>(b.dev_hidden[i % 2].data());
        check(cu::linear_forward(in, layers_[size_t(i)], out, rows, stream_));
      }
    }
    auto* normalized = static_cast<float*>(b.dev_normalized.data());
    if (plan.normalize != gpu_plan::normalization::none)
      check(cu::softmax_forward(scores, normalized, rows, width,
                                plan.normalize == gpu_plan::normalization::log_softmax, stream_));
    if (plan.argmax_of)
      check(cu::argmax_forward(*plan.argmax_of == gpu_value::normalized ? normalized : scores,
                               static_cast<int64_t*>(b.dev_indices.data()), rows, width, stream_));
    const size_t out_bytes = size_t(rows) * size_t(width) * sizeof(float);
    if (plan.outputs_read(gpu_value::scores))
      check(cu::copy_to_host_async(b.host_scores.data(), scores, out_bytes, stream_));
    if (plan.outputs_read(gpu_value::normalized))
      check(cu::copy_to_host_async(b.host_normalized.data(), normalized, out_bytes, stream_));
    if (plan.argmax_of)
      check(cu::copy_to_host_async(b.host_indices.data(), b.dev_indices.data(),
                                   size_t(rows) * sizeof(int64_t), stream_));
    check(b.done.record(stream_));
  }

  // Constant after construction.
  const std::shared_ptr<const gpu_plan> plan_;
  const int device_;
  const cu::precision precision_;
  cu::stream stream_; // the replica's own stream; enqueue only under stream_mutex_
  std::vector<cu::linear_weights> layers_;
  int n_layers_ = 0;
  int64_t hidden_width_ = 0;
  /// The fused whole-MLP kernel can run these layers (for some row counts).
  bool fused_ = false;

  std::mutex stream_mutex_;
  std::mutex pool_mutex_;
  /// Idle buffer sets (protected by pool_mutex_); at most one per concurrent batch.
  std::vector<std::unique_ptr<batch_buffers>> pool_;
};

} // namespace

std::unique_ptr<gpu_executor> make_gpu_executor(std::shared_ptr<const gpu_plan> plan,
                                                const gpu_executor_options& opts) {
  return std::make_unique<cuda_executor>(std::move(plan), opts);
}

} // namespace serve::onnx_ir

#else // no CUDA in this build

namespace serve::onnx_ir {

std::unique_ptr<gpu_executor> make_gpu_executor(std::shared_ptr<const gpu_plan>,
                                                const gpu_executor_options&) {
  throw serve_exception(errc::internal, "built without CUDA: no GPU executor");
}

} // namespace serve::onnx_ir

#endif
