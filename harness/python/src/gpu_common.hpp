// What every moe_harness.gpu entry shares: the stream argument, the device and
// dtype checks across tensors, and stream-ordered scratch. GPU builds only.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include <pybind11/pybind11.h>

#include "dlpack_tensor.hpp"
#include "kernels/fused_moe/fused_moe.hpp"
#include "kernels/moe_align/moe_align.hpp"
#include "moe/gpu.hpp"

namespace moe::python {

// The stream argument: None is the legacy default stream (handle 0), else an int
// handle such as torch.cuda.current_stream().cuda_stream. TypeError/ValueError
// naming `stream` otherwise.
uintptr_t stream_handle(const py::object& stream);

// Every tensor on the current device: our kernels launch there, and the stream
// handle belongs to it. ValueError naming the first tensor elsewhere.
void require_current_device(std::initializer_list<const BorrowedTensor*> tensors);

// TypeError unless t has like's dtype.
void require_same_type(const BorrowedTensor& t, const BorrowedTensor& like);

// Scratch carved from one stream-ordered allocation: taken and given back in
// `stream` order, so nothing waits for the device (hipMalloc/hipFree would).
class StreamScratch {
 public:
  explicit StreamScratch(hipStream_t s) : stream_(s) {}
  StreamScratch(const StreamScratch&) = delete;
  StreamScratch& operator=(const StreamScratch&) = delete;
  ~StreamScratch() {
    if (base_) (void)hipFreeAsync(base_, stream_);  // never throw from a destructor
  }
  // Reserves `bytes` (256-byte aligned) before allocate(); returns its offset.
  size_t reserve(int64_t bytes) {
    const size_t at = size_;
    size_ += (static_cast<size_t>(std::max<int64_t>(bytes, 1)) + 255) / 256 * 256;
    return at;
  }
  void allocate() { MOE_GPU_CHECK(hipMallocAsync(&base_, size_, stream_)); }
  template <typename T>
  T* at(size_t offset) const {
    return static_cast<T*>(static_cast<void*>(static_cast<char*>(base_) + offset));
  }

 private:
  hipStream_t stream_;
  void* base_ = nullptr;
  size_t size_ = 0;
};

// The layer entries' routing: moe_align of topk_ids on the device, into scratch.
// The constructor reserves its buffers (before scratch.allocate()); run() launches
// the align kernel on `s` and returns the view the layer kernels take.
class ScratchAlign {
 public:
  ScratchAlign(StreamScratch& scratch, const align::AlignShape& shape);
  fused_moe::AlignedRouting run(const StreamScratch& scratch, const int32_t* topk_ids, hipStream_t s) const;

 private:
  align::AlignShape shape_;
  align::AlignLaunchConfig cfg_;
  size_t sorted_at_, blocks_at_, post_at_, workspace_at_;
};

// The layer entries' tile counters (fused_moe::kTileCounters int32, for
// Workspace::tile_counters and Q8Workspace::tile_counters): with them the persistent
// one-block ws grids claim tiles instead of taking the fixed stride. The constructor
// reserves them (before scratch.allocate()); zeroed() zeroes them on `s` and returns
// them. Scratch is a fresh allocation per call, not yet zero and never shared with
// another call, so each call zeroes its own set before the layer runs.
class ScratchTileCounters {
 public:
  explicit ScratchTileCounters(StreamScratch& scratch) : at_(scratch.reserve(kBytes)) {}
  int32_t* zeroed(const StreamScratch& scratch, hipStream_t s) const {
    int32_t* const counters = scratch.at<int32_t>(at_);
    MOE_GPU_CHECK(hipMemsetAsync(counters, 0, kBytes, s));
    return counters;
  }

 private:
  static constexpr size_t kBytes = fused_moe::kTileCounters * sizeof(int32_t);
  size_t at_;
};

// Entries of gpu_routing_quant.cpp (routing, quantizers, the FP8/INT8 layer),
// added to the submodule `gpu` by add_gpu_module.
void add_gpu_routing_quant_entries(py::module_& gpu);

}  // namespace moe::python
