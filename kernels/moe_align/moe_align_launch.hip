// Host launch code of moe_align_block_size (kernels in moe_align_kernels.cuh).
// No fmt here: fmt 9 does not compile under nvcc; messages are built in moe_align_host.cpp.

#include "kernels/moe_align/moe_align.hpp"
#include "kernels/moe_align/moe_align_kernels.cuh"
#include "moe/error.hpp"
#include "moe/gpu.hpp"

namespace moe::align {
namespace {

// Dynamic shared memory above the default 48 KiB needs an opt-in per kernel
// (and per device, so it is set on every such launch: a cheap host call).
template <typename K>
void allow_smem(K* kernel, int64_t bytes) {
  if (bytes > 48 * 1024)
    MOE_GPU_CHECK(hipFuncSetAttribute(reinterpret_cast<const void*>(kernel), hipFuncAttributeMaxDynamicSharedMemorySize,
                                      static_cast<int>(bytes)));
}

int ilog2(int v) {
  int l = 0;
  while ((1 << l) < v) ++l;
  return l;
}

}  // namespace

void moe_align_block_size(const int32_t* topk_ids, const int32_t* expert_map, const AlignShape& shape,
                          const AlignOutputs& out, AlignWorkspace& ws, hipStream_t stream,
                          const AlignLaunchConfig& cfg) {
  shape.validate();
  cfg.validate(shape, AlignDeviceLimits::current());
  ws.reserve(cfg.workspace_bytes(shape));
  moe_align_block_size(topk_ids, expert_map, shape, out, ws.data(), ws.bytes(), stream, cfg);
}

void moe_align_block_size(const int32_t* topk_ids, const int32_t* expert_map, const AlignShape& shape,
                          const AlignOutputs& out, void* workspace, int64_t workspace_bytes, hipStream_t stream,
                          const AlignLaunchConfig& cfg) {
  shape.validate();
  cfg.validate(shape, AlignDeviceLimits::current());
  MOE_REQUIRE(topk_ids != nullptr && out.sorted_token_ids != nullptr && out.expert_ids != nullptr &&
                  out.num_tokens_post_padded != nullptr,
              "moe_align: null device pointer (topk_ids and all three outputs are required)");
  MOE_REQUIRE(workspace != nullptr && workspace_bytes >= cfg.workspace_bytes(shape) &&
                  reinterpret_cast<uintptr_t>(workspace) % 4 == 0,
              "moe_align: workspace must be 4-byte aligned device memory of at least cfg.workspace_bytes(shape) bytes");

  const int32_t E = shape.num_experts;
  auto* base = static_cast<int32_t*>(workspace);
  detail::AlignParams p{};
  p.topk_ids = topk_ids;
  p.expert_map = expert_map;
  p.sorted_ids = out.sorted_token_ids;
  p.expert_ids = out.expert_ids;
  p.num_post = out.num_tokens_post_padded;
  p.status = base;
  p.table = base + 16;
  p.n = shape.num_slots();
  p.capacity = align_capacity(shape);
  p.max_blocks = align_max_blocks(shape);
  p.slots_per_block = cfg.slots_per_block;
  p.num_blocks = cfg.num_blocks;
  p.num_experts = E;
  p.block_size = shape.block_size;
  p.log2_bs = ilog2(shape.block_size);
  p.sentinel = shape.sentinel();
  p.key_bits = ilog2(E + 1);  // bit width of E: keys e+1 in [0, E] fit

  const int64_t smem = cfg.rank_smem_bytes(shape);
  if (cfg.path == AlignPath::Fused) {
    allow_smem(detail::align_fused_kernel, smem);
    hipLaunchKernelGGL(detail::align_fused_kernel, dim3(cfg.num_blocks), dim3(cfg.rank_threads()),
                       static_cast<unsigned>(smem), stream, p);
    MOE_GPU_CHECK(hipGetLastError());
  } else if (cfg.path == AlignPath::SingleBlock) {
    auto* kernel = cfg.stage ? detail::align_single_block_kernel<true> : detail::align_single_block_kernel<false>;
    allow_smem(kernel, smem);
    hipLaunchKernelGGL(kernel, dim3(1), dim3(cfg.rank_threads()), static_cast<unsigned>(smem), stream, p);
    MOE_GPU_CHECK(hipGetLastError());
  } else {
    const int64_t count_smem = cfg.count_smem_bytes(shape);
    allow_smem(detail::align_count_kernel, count_smem);
    hipLaunchKernelGGL(detail::align_count_kernel, dim3(cfg.num_blocks), dim3(cfg.count_threads),
                       static_cast<unsigned>(count_smem), stream, p);
    MOE_GPU_CHECK(hipGetLastError());
    allow_smem(detail::align_scatter_kernel, smem);
    hipLaunchKernelGGL(detail::align_scatter_kernel, dim3(cfg.num_blocks), dim3(cfg.rank_threads()),
                       static_cast<unsigned>(smem), stream, p);
    MOE_GPU_CHECK(hipGetLastError());
  }
}

}  // namespace moe::align
