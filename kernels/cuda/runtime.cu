// The RAII runtime objects of cuda_api.hpp (stream, event, device and pinned buffers), the
// copies, and the enum names. No CAF header may be included here.
#include <mutex>
#include <utility>
#include <vector>

#include "kernels/cuda/cuda_common.cuh"

namespace serve::kernels::cuda {

using detail::to_status;
using detail::use_device;

const char* to_string(activation act) {
  switch (act) {
  case activation::none:
    return "none";
  case activation::relu:
    return "relu";
  case activation::gelu:
    return "gelu";
  case activation::sigmoid:
    return "sigmoid";
  case activation::tanh:
    return "tanh";
  }
  return "?";
}

const char* to_string(precision prec) {
  switch (prec) {
  case precision::fp32:
    return "fp32";
  case precision::tf32:
    return "tf32";
  case precision::fp16:
    return "fp16";
  case precision::bf16:
    return "bf16";
  }
  return "?";
}

// ---- stream ----------------------------------------------------------------------------------

stream::~stream() {
  if (handle_) {
    use_device(device_);
    cudaStreamDestroy(static_cast<cudaStream_t>(handle_));
  }
}

stream::stream(stream&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)), device_(std::exchange(other.device_, -1)) {}

stream& stream::operator=(stream&& other) noexcept {
  if (this != &other) {
    stream old(std::move(*this));
    handle_ = std::exchange(other.handle_, nullptr);
    device_ = std::exchange(other.device_, -1);
  }
  return *this;
}

status stream::create(int device, stream& out) {
  out = stream();
  if (auto s = use_device(device); !s.ok())
    return s;
  cudaStream_t handle = nullptr;
  if (auto s = to_status(cudaStreamCreateWithFlags(&handle, cudaStreamNonBlocking),
                         "cudaStreamCreateWithFlags");
      !s.ok())
    return s;
  out.handle_ = handle;
  out.device_ = device;
  return {};
}

status stream::synchronize() const {
  if (auto s = detail::enter(*this, "stream::synchronize"); !s.ok())
    return s;
  return to_status(cudaStreamSynchronize(detail::native(*this)), "cudaStreamSynchronize");
}

status stream::query(bool& done) const {
  done = false;
  if (auto s = detail::enter(*this, "stream::query"); !s.ok())
    return s;
  cudaError_t e = cudaStreamQuery(detail::native(*this));
  if (e == cudaErrorNotReady)
    return {};
  done = e == cudaSuccess;
  return to_status(e, "cudaStreamQuery");
}

status stream::enqueue_host_callback(void (*fn)(void* user), void* user) const {
  if (auto s = detail::enter(*this, "stream::enqueue_host_callback"); !s.ok())
    return s;
  return to_status(cudaLaunchHostFunc(detail::native(*this), fn, user), "cudaLaunchHostFunc");
}

// ---- event -----------------------------------------------------------------------------------

event::~event() {
  if (handle_) {
    use_device(device_);
    cudaEventDestroy(static_cast<cudaEvent_t>(handle_));
  }
}

event::event(event&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)), device_(std::exchange(other.device_, -1)) {}

event& event::operator=(event&& other) noexcept {
  if (this != &other) {
    event old(std::move(*this));
    handle_ = std::exchange(other.handle_, nullptr);
    device_ = std::exchange(other.device_, -1);
  }
  return *this;
}

status event::create(int device, event& out, bool timing) {
  out = event();
  if (auto s = use_device(device); !s.ok())
    return s;
  cudaEvent_t handle = nullptr;
  unsigned flags = timing ? cudaEventDefault : cudaEventDisableTiming;
  if (auto s = to_status(cudaEventCreateWithFlags(&handle, flags), "cudaEventCreateWithFlags");
      !s.ok())
    return s;
  out.handle_ = handle;
  out.device_ = device;
  return {};
}

status event::record(const stream& s) {
  if (!handle_)
    return detail::invalid_argument("event::record: the event is empty");
  if (auto st = detail::enter(s, "event::record"); !st.ok())
    return st;
  return to_status(cudaEventRecord(static_cast<cudaEvent_t>(handle_), detail::native(s)),
                   "cudaEventRecord");
}

status event::synchronize() const {
  if (!handle_)
    return detail::invalid_argument("event::synchronize: the event is empty");
  return to_status(cudaEventSynchronize(static_cast<cudaEvent_t>(handle_)), "cudaEventSynchronize");
}

status event::query(bool& done) const {
  done = false;
  if (!handle_)
    return detail::invalid_argument("event::query: the event is empty");
  cudaError_t e = cudaEventQuery(static_cast<cudaEvent_t>(handle_));
  if (e == cudaErrorNotReady)
    return {};
  done = e == cudaSuccess;
  return to_status(e, "cudaEventQuery");
}

status event::elapsed_ms(const event& start, const event& end, float& ms) {
  ms = 0;
  if (!start.handle_ || !end.handle_)
    return detail::invalid_argument("event::elapsed_ms: an event is empty");
  return to_status(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start.handle_),
                                        static_cast<cudaEvent_t>(end.handle_)),
                   "cudaEventElapsedTime");
}

// ---- device_buffer -----------------------------------------------------------------------------

device_buffer::~device_buffer() {
  reset();
}

device_buffer::device_buffer(device_buffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)),
      device_(std::exchange(other.device_, -1)) {}

device_buffer& device_buffer::operator=(device_buffer&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
    device_ = std::exchange(other.device_, -1);
  }
  return *this;
}

void device_buffer::reset() {
  if (data_) {
    use_device(device_);
    cudaFree(data_);
  }
  data_ = nullptr;
  bytes_ = 0;
  device_ = -1;
}

status device_buffer::allocate(size_t bytes, int device) {
  reset();
  if (bytes == 0)
    return {};
  if (auto s = use_device(device); !s.ok())
    return s;
  void* p = nullptr;
  if (auto s = to_status(cudaMalloc(&p, bytes), "cudaMalloc"); !s.ok())
    return s;
  data_ = p;
  bytes_ = bytes;
  device_ = device;
  return {};
}

// ---- pinned_buffer -----------------------------------------------------------------------------

pinned_buffer::~pinned_buffer() {
  reset();
}

pinned_buffer::pinned_buffer(pinned_buffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

pinned_buffer& pinned_buffer::operator=(pinned_buffer&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void pinned_buffer::reset() {
  if (data_)
    cudaFreeHost(data_);
  data_ = nullptr;
  bytes_ = 0;
}

status pinned_buffer::allocate(size_t bytes) {
  reset();
  if (bytes == 0)
    return {};
  void* p = nullptr;
  if (auto s = to_status(cudaHostAlloc(&p, bytes, cudaHostAllocPortable), "cudaHostAlloc"); !s.ok())
    return s;
  data_ = p;
  bytes_ = bytes;
  return {};
}

// ---- copies ----------------------------------------------------------------------------------

namespace {

status copy_async(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, const stream& s,
                  const char* what) {
  if (bytes == 0)
    return {};
  if (auto st = detail::enter(s, what); !st.ok())
    return st;
  return to_status(cudaMemcpyAsync(dst, src, bytes, kind, detail::native(s)), what);
}

} // namespace

status copy_to_device_async(void* dst, const void* src, size_t bytes, const stream& s) {
  return copy_async(dst, src, bytes, cudaMemcpyHostToDevice, s, "copy_to_device_async");
}

status copy_to_host_async(void* dst, const void* src, size_t bytes, const stream& s) {
  return copy_async(dst, src, bytes, cudaMemcpyDeviceToHost, s, "copy_to_host_async");
}

status copy_device_to_device_async(void* dst, const void* src, size_t bytes, const stream& s) {
  return copy_async(dst, src, bytes, cudaMemcpyDeviceToDevice, s, "copy_device_to_device_async");
}

status zero_async(void* dst, size_t bytes, const stream& s) {
  if (bytes == 0)
    return {};
  if (auto st = detail::enter(s, "zero_async"); !st.ok())
    return st;
  return to_status(cudaMemsetAsync(dst, 0, bytes, detail::native(s)), "cudaMemsetAsync");
}

int multiprocessor_count(int device) {
  static std::mutex mutex;
  static std::vector<int> cache; // by device; 0 = not asked yet
  std::lock_guard<std::mutex> lock(mutex);
  if (device < 0)
    return 0;
  if (static_cast<size_t>(device) >= cache.size())
    cache.resize(device + 1, 0);
  if (cache[device] == 0) {
    int count = 0;
    if (cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    cache[device] = count;
  }
  return cache[device];
}

} // namespace serve::kernels::cuda
