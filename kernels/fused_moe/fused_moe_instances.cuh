// Internal: builds the KernelEntry tables of one stage (included by the stage
// TUs only, so each stage's instantiations compile in their own TU).
#pragma once
#include <array>
#include <utility>

#include "kernels/fused_moe/fused_moe_dispatch.hpp"
#include "kernels/fused_moe/fused_moe_kernels.cuh"
#include "moe/error.hpp"
#include "moe/gpu.hpp"

namespace moe::fused_moe::detail {

template <class Elem, int SHAPE, int STAGE>
struct Instance {
  static constexpr TileShape t = kTileShapes[SHAPE];
  static constexpr int kThreads = t.warps() * dev::kWarpSize;
  static constexpr int kSmem = static_cast<int>(tile_smem_bytes(t));
  using Kernel = void (*)(const GemmParams);
  static Kernel kernel() {
    return &dev::fused_moe_gemm_kernel<Elem, t.block_m, t.block_n, t.block_k, t.warps_m, t.warps_n, t.stages, STAGE,
                                          t.wgmma>;
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
    launch_maybe_pdl(kernel(), grid, kThreads, kSmem, s, p);
  }
  static int resident() {
    prepare();
    int n = 0;
    MOE_GPU_CHECK(hipOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel(), kThreads, static_cast<size_t>(kSmem)));
    return n;
  }
};

template <class Elem, int STAGE, int... I>
std::array<KernelEntry, sizeof...(I)> make_table(std::integer_sequence<int, I...>) {
  return {{KernelEntry{&Instance<Elem, I, STAGE>::launch, &Instance<Elem, I, STAGE>::resident,
                       Instance<Elem, I, STAGE>::kThreads, Instance<Elem, I, STAGE>::kSmem}...}};
}

}  // namespace moe::fused_moe::detail
