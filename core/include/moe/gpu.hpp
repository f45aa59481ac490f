// GPU helpers shared by every kernel family: the error-check macro, RAII device
// buffers, events and streams. Compiled only in GPU builds (MOE_HAVE_GPU).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "moe/error.hpp"
#include "moe/gpu_runtime.hpp"

#if MOE_HAVE_GPU
namespace moe::gpu {

// Throws GpuError("hipMalloc(&p, n) failed: hipErrorOutOfMemory: out of memory at f.cpp:12").
void check_failed(hipError_t err, const char* call, const char* file, int line);

inline void check(hipError_t err, const char* call, const char* file, int line) {
  if (err != hipSuccess) check_failed(err, call, file, line);
}

}  // namespace moe::gpu

// The one error-check macro: wrap every runtime call. After a kernel launch use
// MOE_GPU_CHECK(hipGetLastError()).
#define MOE_GPU_CHECK(call) ::moe::gpu::check((call), #call, __FILE__, __LINE__)

namespace moe::gpu {

// Number of usable devices; 0 (not an error) where no driver or device exists.
int device_count();

// Copies and fills that are complete when they return. Our Streams are
// non-blocking, so they do not wait for the legacy default stream, and the plain
// hipMemcpy/hipMemset may return before the device has done the work (pageable
// host-to-device copies, memsets of device memory): a kernel on a Stream could
// read the old bytes, or a late poison could overwrite its outputs (seen when other
// processes kept the GPU busy).
inline void copy_blocking(void* dst, const void* src, size_t bytes, hipMemcpyKind kind) {
  if (bytes == 0) return;
  MOE_GPU_CHECK(hipMemcpy(dst, src, bytes, kind));
  MOE_GPU_CHECK(hipStreamSynchronize(nullptr));
}
inline void fill_blocking(void* dst, unsigned char byte, size_t bytes) {
  if (bytes == 0) return;
  MOE_GPU_CHECK(hipMemset(dst, byte, bytes));
  MOE_GPU_CHECK(hipStreamSynchronize(nullptr));
}

// Owning, move-only device allocation of n elements of T.
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t n) : n_(n) {
    if (n_ > 0) MOE_GPU_CHECK(hipMalloc(&ptr_, n_ * sizeof(T)));
  }
  ~DeviceBuffer() { reset(); }
  // n elements, all bytes zero on return (counters that kernels leave zero, e.g.
  // fused_moe::Workspace::tile_counters).
  static DeviceBuffer zeros(size_t n) {
    DeviceBuffer b(n);
    b.poison(0);
    return b;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      ptr_ = std::exchange(o.ptr_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  void reset() {
    if (ptr_) (void)hipFree(ptr_);  // never throw from a destructor path
    ptr_ = nullptr;
    n_ = 0;
  }
  T* data() { return ptr_; }
  const T* data() const { return ptr_; }
  size_t size() const { return n_; }
  size_t bytes() const { return n_ * sizeof(T); }

  // Without a stream: complete on return (copy_blocking); with one: enqueued on it.
  void upload(const T* src, size_t n, hipStream_t s = nullptr) {
    MOE_REQUIRE(n <= n_, "upload larger than device buffer");
    if (!s) return copy_blocking(ptr_, src, n * sizeof(T), hipMemcpyHostToDevice);
    if (n) MOE_GPU_CHECK(hipMemcpyAsync(ptr_, src, n * sizeof(T), hipMemcpyHostToDevice, s));
  }
  void upload(const std::vector<T>& v, hipStream_t s = nullptr) { upload(v.data(), v.size(), s); }
  std::vector<T> download(hipStream_t s = nullptr) const {
    std::vector<T> v(n_);
    if (n_) {
      MOE_GPU_CHECK(hipMemcpyAsync(v.data(), ptr_, bytes(), hipMemcpyDeviceToHost, s));
      MOE_GPU_CHECK(hipStreamSynchronize(s));
    }
    return v;
  }
  // Fill every byte with `byte` so an element the kernel never writes is visible
  // (0xFF: NaN for float/bf16/fp16, -1 for int32). Without a stream: complete on return.
  void poison(unsigned char byte = 0xFF, hipStream_t s = nullptr) {
    if (!s) return fill_blocking(ptr_, byte, bytes());
    if (n_) MOE_GPU_CHECK(hipMemsetAsync(ptr_, byte, bytes(), s));
  }

 private:
  T* ptr_ = nullptr;
  size_t n_ = 0;
};

class Stream {
 public:
  Stream() { MOE_GPU_CHECK(hipStreamCreateWithFlags(&s_, hipStreamNonBlocking)); }
  ~Stream() { (void)hipStreamDestroy(s_); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  hipStream_t get() const { return s_; }
  void sync() const { MOE_GPU_CHECK(hipStreamSynchronize(s_)); }

 private:
  hipStream_t s_{};
};

class Event {
 public:
  Event() { MOE_GPU_CHECK(hipEventCreate(&e_)); }
  ~Event() { (void)hipEventDestroy(e_); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  void record(hipStream_t s) { MOE_GPU_CHECK(hipEventRecord(e_, s)); }
  void sync() { MOE_GPU_CHECK(hipEventSynchronize(e_)); }
  hipEvent_t get() const { return e_; }
  // Milliseconds from `start` to this event.
  float ms_since(const Event& start) const {
    float ms = 0;
    MOE_GPU_CHECK(hipEventElapsedTime(&ms, start.e_, e_));
    return ms;
  }

 private:
  hipEvent_t e_{};
};

}  // namespace moe::gpu
#endif  // MOE_HAVE_GPU
