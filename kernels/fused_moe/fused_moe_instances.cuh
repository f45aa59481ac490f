// Internal: builds the KernelEntry tables of one stage (included by the stage
// TUs only, so each stage's instantiations compile in their own TU).
#pragma once
#include <array>
#include <utility>

#include "kernels/fused_moe/fused_moe_dispatch.hpp"
#include "kernels/fused_moe/fused_moe_kernels.cuh"
#include "kernels/fused_moe/ws_kernel.cuh"
#include "moe/error.hpp"
#include "moe/gpu.hpp"

namespace moe::fused_moe::detail {

template <class Elem, int SHAPE, int STAGE>
struct Instance {
  static constexpr TileShape t = kTileShapes[SHAPE];
  // wgmma_ws: the MMA warps plus one producer warpgroup
  static constexpr int kThreads = (t.warps() + (t.ws ? 4 : 0)) * dev::kWarpSize;
  static constexpr int kSmem = static_cast<int>(tile_smem_bytes(t));
  // (dev::WsTile checks the rest of a wgmma_ws shape and derives the same threads and bytes.)
  static_assert(!t.ws || (t.wgmma && t.block_k == 64 && t.warps_n == 1 && t.warps_m * 16 == t.block_m),
                "wgmma_ws shapes: block_k 64, one warpgroup (4 warps) per m64 slab, all columns per warpgroup");
  using Kernel = void (*)(const GemmParams);
  static Kernel kernel() {
    if constexpr (t.ws)
      return &dev::grouped_gemm_ws_kernel<dev::Bf16WsOp<Elem>, t.block_m, t.block_n, t.stages, STAGE, t.cluster>;
    else
      return &dev::fused_moe_gemm_kernel<Elem, t.block_m, t.block_n, t.block_k, t.warps_m, t.warps_n, t.stages,
                                         STAGE, t.wgmma>;
  }
  static void prepare() {
    static const bool once = [] {
      MOE_GPU_CHECK(hipFuncSetAttribute(reinterpret_cast<const void*>(kernel()),
                                        hipFuncAttributeMaxDynamicSharedMemorySize, kSmem));
      return true;
    }();
    (void)once;
  }
  static void launch(const GemmParams& p, int grid, hipStream_t s) {
    prepare();
    launch_maybe_pdl(kernel(), grid, kThreads, kSmem, s, p, t.cluster);
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
};

template <class Elem, int STAGE, int... I>
std::array<KernelEntry, sizeof...(I)> make_table(std::integer_sequence<int, I...>) {
  return {{KernelEntry{&Instance<Elem, I, STAGE>::launch, &Instance<Elem, I, STAGE>::resident,
                       Instance<Elem, I, STAGE>::kThreads, Instance<Elem, I, STAGE>::kSmem}...}};
}

}  // namespace moe::fused_moe::detail
