// Internal: per-stage tables of the compiled tile kernels (one entry per
// kTileShapes index and dtype), filled by fused_moe_stage{1,2}.hip.
#pragma once
#include <cstdint>

#include "kernels/fused_moe/fused_moe_params.hpp"
#include "kernels/fused_moe/fused_moe_types.hpp"
#include "moe/gpu_runtime.hpp"

#if MOE_HAVE_GPU
namespace moe::fused_moe::detail {

struct KernelEntry {
  void (*launch)(const GemmParams& p, int grid, hipStream_t s) = nullptr;
  int (*resident_blocks_per_sm)() = nullptr;  // occupancy of this kernel
  int threads = 0;
  int64_t smem_bytes = 0;
};

// dtype BF16 or F16; shape in [0, kNumTileShapes).
const KernelEntry& stage1_kernel(DType dtype, int shape);
const KernelEntry& stage2_kernel(DType dtype, int shape);
void launch_reduce_kernel(const ReduceParams& p, DType dtype, int grid, int threads, hipStream_t s);
// Whether the wgmma main loop was compiled for the device (sm_90a build); probed
// once with a one-thread kernel.
bool wgmma_compiled();

}  // namespace moe::fused_moe::detail
#endif
