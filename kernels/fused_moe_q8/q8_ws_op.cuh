// The 8-bit layer's operand policy of the warp-specialized grouped-GEMM core
// (kernels/fused_moe/ws_kernel.cuh, wgmma_ws tiles, sm_90a): e4m3 or s8 codes, one
// K slice = 128 codes = 4 wgmma k32 steps.
//   fp8, per-tensor and per-token scales: every slice's accumulator is promoted into
//     fp32 unscaled; the finished sum is multiplied by a_s(row) * w_s(col) in the
//     epilogue. (Hopper's fp8 wgmma keeps 13 fraction bits: chains of 128 instead
//     of all of K, the two-level accumulation the reference models with
//     segment_k = 128.)
//   fp8 block scheme (1x128 activation groups, 128x128 weight blocks): every slice
//     is one group, promoted times a_s(row, g) * w_s(col block, g).
//   int8: exact int32 accumulation over all of K, scaled in the epilogue.
// Scale layouts: kernels/fused_moe_q8/q8_params.hpp.
#pragma once
#include <cstdint>
#include <type_traits>

#include "kernels/fused_moe/ws_kernel.cuh"
#include "kernels/fused_moe_q8/q8_kernels.cuh"
#include "kernels/fused_moe_q8/q8_params.hpp"
#include "kernels/fused_moe_q8/q8_wgmma.cuh"
#include "moe/contract/fused_moe_q8.hpp"

namespace moe::fused_moe_q8::dev {

template <bool INT8, bool BLOCK>
struct Q8WsOp {
  static_assert(!(INT8 && BLOCK), "int8 uses per-token x per-channel scales");
  using Params = detail::Q8GemmParams;
  using Acc = std::conditional_t<INT8, int32_t, float>;
  static constexpr int kElemBytes = 1;
  static constexpr bool kPromote = !INT8;

  // fresh: the slice's first k32 step overwrites the accumulator (promoted schemes).
  template <int BN>
  __device__ static void mma(Acc* acc, uint32_t a_addr, uint32_t b_addr, bool fresh) {
#if FMOE_HAVE_WGMMA
    using fused_moe::dev::wgmma_desc;
#pragma unroll
    for (int k32 = 0; k32 < 4; ++k32)
      wgmma8_m64k32<BN, INT8>(acc, wgmma_desc(a_addr + k32 * 32), wgmma_desc(b_addr + k32 * 32),
                              (fresh && k32 == 0) ? 0 : 1);
#else
    (void)acc, (void)a_addr, (void)b_addr, (void)fresh;
#endif
  }
  // Weight scales of an expert id outside [0, experts) (a tile without K slices) are
  // read from expert 0: its sum is 0 anyway.
  __device__ static const float* expert_w_scale(const Params& p, int expert) {
    return p.w_scale + static_cast<int64_t>(expert >= 0 && expert < p.experts ? expert : 0) * p.w_es;
  }
  // The block scheme's scales of slice g (one slice = one 128-K group), which the producer
  // copies into shared memory with the slice: a_s(arow, g), and w_s of the 128-row block
  // of weight row wrow (< w_rows) of the expert.
  static constexpr bool kSliceScales = BLOCK;
  // Fixed tile groups only: the expert-run walk made the block scheme's 128x192 stage-1 tile
  // spill (sm_90a ptxas: 16 bytes), and the fp8_tensor layer was -1.7 to +4.6 % with it (H100 A/B,
  // docs/notes/fused_moe.md v21).
  static constexpr bool kExpertRuns = false;
  static constexpr int kScaleBlockRows = 128;  // the block scheme's 128x128 weight blocks (w_rshift 7)
  static constexpr int kInterDimMultiple = kDimMultiple;  // Q8Problem::validate
  __device__ static const float* a_slice_scale(const Params& p, int64_t arow, int64_t g) {
    return p.a_scale + arow * p.a_rs + g * p.a_gs;
  }
  __device__ static const float* w_slice_scale(const Params& p, int64_t wrow, int expert, int64_t g) {
    return expert_w_scale(p, expert) + (wrow >> p.w_rshift) * p.w_rs + g * p.w_gs;
  }
  // Non-block schemes: a_s(row) and w_s(col) (a weight row past the expert's reads row 0:
  // its column is not stored). The block scheme's are per slice (a_slice_scale, w_slice_scale).
  __device__ static float row_scale(const Params& p, int64_t arow) {
    if constexpr (BLOCK) {
      (void)p, (void)arow;
      return 1.0f;
    } else {
      return __ldg(p.a_scale + arow * p.a_rs);
    }
  }
  __device__ static float col_scale(const Params& p, int64_t wrow, int expert) {
    if constexpr (BLOCK) {
      (void)p, (void)wrow, (void)expert;
      return 1.0f;
    } else {
      return __ldg(expert_w_scale(p, expert) + (wrow < p.w_rows ? wrow : 0) * p.w_rs);
    }
  }
  // Per-tensor weight scales (w_rs 0): one value per expert for all columns.
  static constexpr bool kColScales = !BLOCK;
  __device__ static bool col_scale_uniform(const Params& p) { return p.w_rs == 0; }
  __device__ static uint16_t store16(const Params& p, float v) { return q8_store16(v, p.out_f16); }
};

}  // namespace moe::fused_moe_q8::dev
