// Stage 1 instantiations of the fused MoE tile kernel for every compiled tile
// shape and both 16-bit dtypes.
#include "kernels/fused_moe/fused_moe_instances.cuh"

namespace moe::fused_moe::detail {

const KernelEntry& stage1_kernel(DType dtype, int shape) {
  static const auto bf16 = make_table<dev::Bf16, 1>(std::make_integer_sequence<int, kNumTileShapes>{});
  static const auto f16 = make_table<dev::F16, 1>(std::make_integer_sequence<int, kNumTileShapes>{});
  MOE_REQUIRE(shape >= 0 && shape < kNumTileShapes, "fused_moe: tile shape index out of range");
  return dtype == DType::F16 ? f16[static_cast<size_t>(shape)] : bf16[static_cast<size_t>(shape)];
}

}  // namespace moe::fused_moe::detail
