// Internal: builds the kernel tables of one (stage, variant) (included by the
// q8_stage*.hip TUs only, so the instantiations spread over several TUs).
#pragma once
#include <array>
#include <utility>

#include "kernels/fused_moe_q8/q8_dispatch.hpp"
#include "kernels/fused_moe_q8/q8_kernels.cuh"
#include "kernels/fused_moe_q8/q8_ws_op.cuh"
#include "moe/error.hpp"
#include "moe/gpu.hpp"

namespace moe::fused_moe_q8::detail {

template <Variant V, int SHAPE, int STAGE>
struct Q8Instance {
  static constexpr TileShape t = kQ8TileShapes[SHAPE];
  static constexpr bool kInt8 = V == Variant::Int8;
  static constexpr bool kBlock = V == Variant::Fp8Block;
  static constexpr bool kCompiled = !kBlock || q8_block_compiled(t);
  static constexpr int kThreads = (t.warps() + (t.ws ? 4 : 0)) * dev::kWarpSize;  // wgmma_ws: + a producer warpgroup
  static constexpr int kSmem = static_cast<int>(q8_tile_smem_bytes(t));
  static_assert(!t.ws || (t.wgmma && t.block_k == 128 && t.warps_n == 1 && t.warps_m * 16 == t.block_m),
                "wgmma_ws shapes: block_k 128 (128-byte rows), one warpgroup per m64 slab, all columns per warpgroup");
  using Kernel = void (*)(const Q8GemmParams);
  static Kernel kernel() {
    if constexpr (kCompiled && t.ws)
      return &fused_moe::dev::grouped_gemm_ws_kernel<dev::Q8WsOp<kInt8, kBlock>, t.block_m, t.block_n, t.stages, STAGE,
                                                     t.cluster>;
    else if constexpr (kCompiled)
      return &dev::q8_gemm_kernel<kInt8, t.block_m, t.block_n, t.block_k, t.warps_m, t.warps_n, t.stages, STAGE,
                                  t.wgmma, kBlock, q8_min_blocks_per_sm(t, kBlock)>;
    else
      return nullptr;
  }
  static void prepare() {
    static const bool once = [] {
      MOE_GPU_CHECK(hipFuncSetAttribute(reinterpret_cast<const void*>(kernel()),
                                        hipFuncAttributeMaxDynamicSharedMemorySize, kSmem));
      return true;
    }();
    (void)once;
  }
  static void launch(const Q8GemmParams& p, int grid, hipStream_t s) {
    prepare();
    fused_moe::detail::launch_maybe_pdl(kernel(), grid, kThreads, kSmem, s, p, t.cluster);
  }
  // Blocks per SM, asked of the runtime once (at least 1).
  static int resident() {
    static const int n = [] {
      prepare();
      int r = 0;
      MOE_GPU_CHECK(hipOccupancyMaxActiveBlocksPerMultiprocessor(&r, kernel(), kThreads, static_cast<size_t>(kSmem)));
      return r > 1 ? r : 1;
    }();
    return n;
  }
  static Q8KernelEntry entry() {
    if constexpr (kCompiled) return Q8KernelEntry{&launch, &resident, kThreads, kSmem};
    else return Q8KernelEntry{};
  }
};

template <Variant V, int STAGE, int... I>
std::array<Q8KernelEntry, sizeof...(I)> make_q8_table(std::integer_sequence<int, I...>) {
  return {{Q8Instance<V, I, STAGE>::entry()...}};
}

}  // namespace moe::fused_moe_q8::detail

// Defines `const Q8KernelEntry& FN(int shape)` for one (variant, stage).
#define MOE_Q8_TABLE(FN, VARIANT, STAGE)                                                                       \
  namespace moe::fused_moe_q8::detail {                                                                        \
  const Q8KernelEntry& FN(int shape) {                                                                         \
    static const auto table = make_q8_table<VARIANT, STAGE>(std::make_integer_sequence<int, kNumQ8TileShapes>{}); \
    MOE_REQUIRE(shape >= 0 && shape < kNumQ8TileShapes, "fused_moe_q8: tile shape index out of range");      \
    return table[static_cast<size_t>(shape)];                                                                  \
  }                                                                                                            \
  }
