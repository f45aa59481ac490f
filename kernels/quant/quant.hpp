// Host API of the FP8 / INT8 quantizer kernels: launch configuration, workspace and
// the launcher. The contract (granularities, tensor and scale layouts, the worked
// example, Inf/NaN handling) is core/include/moe/contract/quant.hpp.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "moe/contract/quant.hpp"
#include "moe/gpu_runtime.hpp"

#if MOE_HAVE_GPU
#include "moe/gpu.hpp"
#endif

namespace moe::quant {

// ---- launch configuration ------------------------------------------------------------
// threads: block size (0 = chosen per problem; else 64, 128, 256, 512 or 1024).
// force_scalar: use the element-at-a-time kernels even where the 16-byte vector
// path applies (tests use it to cover both paths on the same shapes).
struct LaunchConfig {
  int threads = 0;
  bool force_scalar = false;
  std::string why_invalid() const;  // empty when valid
};

enum class CheckMode : int {
  Sync = 0,      // clear status, launch, synchronize, throw InputError on Inf/NaN
  Deferred = 1,  // launch only (graph-capturable); status accumulates until check()
};

#if MOE_HAVE_GPU
// Device scratch of the quantizers: a status word (Inf/NaN reports) and, for
// PerTensor, one amax accumulator per batch entry.
class Workspace {
 public:
  explicit Workspace(int64_t max_batch = 1);
  int64_t max_batch() const { return max_batch_; }
  // Synchronizes `s`, reads and clears the status; throws InputError
  // (p.nonfinite_message) when any launch since the last clear saw Inf/NaN.
  void check(const QuantProblem& p, hipStream_t s);
  // Clears the status (enqueued on s).
  void clear(hipStream_t s);
  unsigned long long* status() { return status_.data(); }
  uint32_t* amax() { return amax_.data(); }

 private:
  int64_t max_batch_;
  gpu::DeviceBuffer<unsigned long long> status_;  // [0] reports, [1] ~first bad segment
  gpu::DeviceBuffer<uint32_t> amax_;              // |x| bit patterns, one per batch entry
};

// Quantizes x (device, p.in_dtype elements, p.shape contiguous) into q (device,
// numel bytes: uint8 fp8 codes or int8) and scales (device, num_scales floats;
// written, or read when spec.static_scale). Validates everything on the host
// before any launch.
void quantize(const QuantProblem& p, const void* x, void* q, float* scales, Workspace& ws, hipStream_t s,
              CheckMode mode = CheckMode::Sync, const LaunchConfig& cfg = {});

namespace testing {
// Decodes every code of `f` on the device: out[c] = fp8_decode(c) (256 floats).
std::vector<float> device_decode_all(Fp8Format f);
// Encodes xs on the device with the kernels' encoder (fp8x2_encode_fast).
std::vector<uint8_t> device_encode(Fp8Format f, const std::vector<float>& xs);
// Encodes all 2^32 float bit patterns on the device with the kernels' encoder and
// the software definition; returns the number that differ and, if any, the first
// differing pattern (bits) and both codes.
struct SweepResult {
  uint64_t mismatches = 0;
  uint32_t first_bits = 0;
  uint8_t fast_code = 0;
  uint8_t soft_code = 0;
  bool hw_cvt = false;  // whether the fast encoder is the hardware instruction
};
SweepResult device_sweep_all_floats(Fp8Format f);
}  // namespace testing
#endif

}  // namespace moe::quant
