// Kernel parameter block of the quantized fused MoE GEMMs (internal; by value).
#pragma once
#include <cstdint>

#include "kernels/fused_moe/tensor_map.hpp"

namespace moe::fused_moe_q8::detail {

// One grouped GEMM stage over the aligned blocks, 8-bit codes A and W:
//   C[id, n] = sum_g a_s(row, g) w_s(e, wrow, g) sum_{k in group g} A[row, k] W[e, wrow, k]
// (non-block schemes have one group: the scales factor out of the sum).
// Scale of A row `arow`, K group g:      a_scale[arow * a_rs + g * a_gs]
// Scale of weight row `wrow` of expert e: w_scale[e * w_es + (wrow >> w_rshift) * w_rs + g * w_gs]
//   per tensor / per expert: a_rs = a_gs = 0; w_es = 1, w_rs = w_gs = 0
//   per token / per channel: a_rs = 1;         w_es = rows, w_rs = 1
//   block (1x128 / 128x128): a_rs = groups, a_gs = 1; w_es = rblocks*groups, w_rshift = 7, w_rs = groups, w_gs = 1
// stage 1: A = a1 codes (arow = id / top_k), W = w1, writes act(gate)*up (16-bit) to the intermediate
// stage 2: A = a2 codes (arow = id),         W = w2, writes fp32 partial rows (split, M*k, n)
struct Q8GemmParams {
  // Warp-specialized (wgmma_ws) tiles only: W codes as one 2-D tensor (experts * w_rows,
  // k) in tiles of (block_n or block_n/2) x 128; first, for its 64-byte alignment.
  fused_moe::TensorMap w_map{};
  const uint8_t* a = nullptr;
  const uint8_t* w = nullptr;
  void* out = nullptr;
  const float* a_scale = nullptr;
  const float* w_scale = nullptr;
  int64_t a_rs = 0, a_gs = 0;
  int64_t w_es = 0, w_rs = 0, w_gs = 0;
  int32_t w_rshift = 0;
  const float* topk_weights = nullptr;
  const int32_t* sorted_ids = nullptr;
  const int32_t* expert_ids = nullptr;
  const int32_t* num_post = nullptr;
  // Persistent one-block wgmma_ws grids: a zeroed counter the blocks claim tiles from
  // (left zero at exit); nullptr: the fixed stride (kernels/fused_moe/ws_kernel.cuh).
  int32_t* tile_counter = nullptr;
  int64_t num_valid = 0;     // M*k
  int64_t n = 0;             // output columns (stage 1: inter; stage 2: model_dim)
  int64_t k = 0;             // reduction length (multiple of 16)
  int64_t w_rows = 0;        // weight rows per expert
  int64_t split_stride = 0;  // stage 2: elements of one split's partial rows
  int32_t top_k = 1;
  int32_t experts = 0;
  int32_t act = 0;
  int32_t scale_mode = 0;  // 0 none, 1 routed weight on the gate/up accumulators, 2 on the output
  int32_t out_f16 = 0;     // stage 1 intermediate dtype: 0 bf16, 1 fp16
  int32_t n_tiles = 0;
  int32_t split_k = 1;
  int32_t k_tiles_per_split = 0;
  int32_t max_m_blocks = 0;
  int32_t persistent = 0;
  int32_t group_m = 8;     // m-blocks per tile-order group (L2 reuse): fused_moe::tile_group_m()
};

}  // namespace moe::fused_moe_q8::detail
