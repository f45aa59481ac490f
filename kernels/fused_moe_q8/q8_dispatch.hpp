// Internal: tables of the compiled quantized tile kernels, one entry per
// (variant, stage, kQ8TileShapes index); filled by the q8_stage*.hip TUs.
#pragma once
#include <cstdint>

#include "kernels/fused_moe/fused_moe_dispatch.hpp"
#include "kernels/fused_moe_q8/fused_moe_q8_types.hpp"
#include "kernels/fused_moe_q8/q8_params.hpp"
#include "moe/gpu_runtime.hpp"

#if MOE_HAVE_GPU
namespace moe::fused_moe_q8::detail {

// Kernel variants: fp8 with one scale per row/column (per-tensor, per-token),
// int8 (per-token x per-channel), fp8 block-wise (per-128-K-group flush).
enum class Variant : int { Fp8 = 0, Int8 = 1, Fp8Block = 2 };
inline Variant variant_of(Scheme s) {
  return s == Scheme::Int8Token ? Variant::Int8 : (s == Scheme::Fp8Block ? Variant::Fp8Block : Variant::Fp8);
}

struct Q8KernelEntry {
  void (*launch)(const Q8GemmParams& p, int grid, hipStream_t s) = nullptr;  // null: not compiled
  int (*resident_blocks_per_sm)() = nullptr;
  int threads = 0;
  int64_t smem_bytes = 0;
};

const Q8KernelEntry& q8_kernel(Variant v, int stage, int shape);
const Q8KernelEntry& q8_stage1_fp8(int shape);
const Q8KernelEntry& q8_stage1_int8(int shape);
const Q8KernelEntry& q8_stage1_block(int shape);
const Q8KernelEntry& q8_stage2_fp8(int shape);
const Q8KernelEntry& q8_stage2_int8(int shape);
const Q8KernelEntry& q8_stage2_block(int shape);
// The e4m3 mma.sync / wgmma instructions exist for the device (sm_89+ / sm_90a build).
bool q8_fp8_compiled();

}  // namespace moe::fused_moe_q8::detail
#endif
