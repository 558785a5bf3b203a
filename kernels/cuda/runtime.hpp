// CUDA runtime objects without CUDA headers: the status type every call returns, the
// activation and precision enums of the ops, and RAII streams, events, device and pinned
// buffers plus the async copies. Implemented in runtime.cu. The conventions (errors, sticky,
// threads, ownership) are in kernels/cuda/cuda_api.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace serve::kernels::cuda {

/// Result of a CUDA call. code 0 = ok; otherwise the cudaError_t value, or -1 for an argument
/// this API refused before calling CUDA (message says which). See the file comment for sticky.
struct status {
  int code = 0;
  bool sticky = false;
  std::string message;
  bool ok() const { return code == 0; }
};

/// The activation fused into a dense layer's epilogue (and the unary elementwise op).
enum class activation : uint8_t {
  none,
  relu,    // x < 0 ? 0 : x (NaN stays NaN)
  gelu,    // 0.5 x (1 + erf(x / sqrt(2))): the exact form, as ONNX Gelu and PyTorch's default
  sigmoid, // 1 / (1 + exp(-x))
  tanh,
};

/// Compute precision of a dense layer's product. Activations stay fp32 in global memory; inputs
/// are rounded to the precision when loaded, products accumulate in fp32, bias and activation
/// are applied in fp32.
enum class precision : uint8_t {
  fp32, // CUDA-core FMA, no rounding of the operands: exact up to fp32 accumulation (tests)
  tf32, // tensor cores, 10-bit mantissa operands; the default for fp32 models
  fp16, // tensor cores, half operands (|values| must stay below 65504)
  bf16, // tensor cores, bfloat16 operands (8-bit mantissa, fp32 range)
};

const char* to_string(activation act);
const char* to_string(precision prec);

// ---- Runtime objects (RAII, move-only; a moved-from or default object owns nothing) ----------

/// A CUDA stream (created with cudaStreamNonBlocking) on one device. Destroying it waits for
/// nothing: synchronize first if work may still be in flight. Not thread-safe.
class stream {
public:
  stream() = default;
  ~stream();
  stream(stream&& other) noexcept;
  stream& operator=(stream&& other) noexcept;
  stream(const stream&) = delete;
  stream& operator=(const stream&) = delete;

  /// Creates a stream on `device` (0-based) into `out` (whatever `out` held is released first).
  static status create(int device, stream& out);

  /// The cudaStream_t, or nullptr when empty.
  void* native() const { return handle_; }
  /// The device the stream belongs to; -1 when empty.
  int device() const { return device_; }
  bool valid() const { return handle_ != nullptr; }

  /// Blocks the calling thread until all work enqueued so far has finished; returns the first
  /// error of that work (sticky when a kernel faulted).
  status synchronize() const;
  /// Whether all enqueued work has finished, without blocking. `done` is false while work is
  /// pending; an error of the work is returned as a status.
  status query(bool& done) const;
  /// Enqueues `fn(user)` to run on a CUDA-internal host thread once the work enqueued before
  /// it has finished (cudaLaunchHostFunc). `fn` must not call CUDA and must return quickly;
  /// it is not called when the stream fails with a sticky error before reaching it.
  status enqueue_host_callback(void (*fn)(void* user), void* user) const;

private:
  void* handle_ = nullptr;
  int device_ = -1;
};

/// A CUDA event (timing disabled unless asked for), for completion checks and timing.
/// Not thread-safe.
class event {
public:
  event() = default;
  ~event();
  event(event&& other) noexcept;
  event& operator=(event&& other) noexcept;
  event(const event&) = delete;
  event& operator=(const event&) = delete;

  /// Creates an event on `device`. `timing` enables elapsed_ms (slightly slower records).
  static status create(int device, event& out, bool timing = false);

  void* native() const { return handle_; }
  bool valid() const { return handle_ != nullptr; }

  /// Records the event at the current end of `s` (same device).
  status record(const stream& s);
  /// Blocks until the recorded work has finished.
  status synchronize() const;
  /// `done` = whether the recorded work has finished, without blocking.
  status query(bool& done) const;
  /// Milliseconds between two recorded, finished, timing-enabled events.
  static status elapsed_ms(const event& start, const event& end, float& ms);

private:
  void* handle_ = nullptr;
  int device_ = -1;
};

/// Device memory (cudaMalloc) on one device. allocate() on a buffer that already holds memory
/// frees it first (cudaFree synchronizes the device). The memory is uninitialised. Freeing
/// while a stream still uses the memory is the caller's bug. Not thread-safe.
class device_buffer {
public:
  device_buffer() = default;
  ~device_buffer();
  device_buffer(device_buffer&& other) noexcept;
  device_buffer& operator=(device_buffer&& other) noexcept;
  device_buffer(const device_buffer&) = delete;
  device_buffer& operator=(const device_buffer&) = delete;

  /// Allocates `bytes` (0 frees and leaves the buffer empty) on `device`. On failure the buffer
  /// is left empty. The pointer is aligned to at least 256 bytes.
  status allocate(size_t bytes, int device);
  /// Frees the memory (no-op when empty).
  void reset();

  void* data() { return data_; }
  const void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  int device() const { return device_; }

private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  int device_ = -1;
};

/// Page-locked host memory (cudaHostAlloc, portable to every device): the staging buffers of
/// async copies. Same ownership rules as device_buffer. Not thread-safe.
class pinned_buffer {
public:
  pinned_buffer() = default;
  ~pinned_buffer();
  pinned_buffer(pinned_buffer&& other) noexcept;
  pinned_buffer& operator=(pinned_buffer&& other) noexcept;
  pinned_buffer(const pinned_buffer&) = delete;
  pinned_buffer& operator=(const pinned_buffer&) = delete;

  status allocate(size_t bytes);
  void reset();

  void* data() { return data_; }
  const void* data() const { return data_; }
  size_t bytes() const { return bytes_; }

private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

/// cudaMemcpyAsync host -> device / device -> host / device -> device on `s`. The copy is
/// asynchronous only with pinned host memory; with pageable memory CUDA stages it and may
/// return before it finishes reading `src` only for sizes <= 64 KB. bytes == 0 is a no-op.
status copy_to_device_async(void* dst, const void* src, size_t bytes, const stream& s);
status copy_to_host_async(void* dst, const void* src, size_t bytes, const stream& s);
status copy_device_to_device_async(void* dst, const void* src, size_t bytes, const stream& s);
/// cudaMemsetAsync(dst, 0, bytes) on `s`.
status zero_async(void* dst, size_t bytes, const stream& s);

/// Number of streaming multiprocessors of `device` (cached after the first call); 0 on error.
int multiprocessor_count(int device);

} // namespace serve::kernels::cuda
