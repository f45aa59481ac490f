// Kernel parameter blocks of the fused MoE family (internal: shared by the
// launch code and the device code; passed by value).
#pragma once
#include <cstdint>

#include "kernels/fused_moe/tensor_map.hpp"

namespace moe::fused_moe::detail {

inline constexpr int kMaxGroupM = 64;

// One grouped GEMM stage over the aligned blocks:
//   C[row id, n] = sum_k A[arow(id), k] * W[expert, wrow(n), k]
// stage 1: A = hidden (arow = id / top_k), W = w1, gate and up rows of the same
//          columns in one tile, writes act(gate)*up to the intermediate (M*k, n)
// stage 2: A = intermediate (arow = id), W = w2, writes fp32 partial rows
//          (split_k, M*k, n), scaled by the routed weight when on output.
struct GemmParams {
  // Warp-specialized (wgmma_ws) tiles only: W as one 2-D tensor (experts * w_rows,
  // k) in tiles of (block_n or block_n/2) x 64; first, for its 64-byte alignment.
  TensorMap w_map{};
  const uint16_t* a = nullptr;
  const uint16_t* w = nullptr;
  void* out = nullptr;
  const float* topk_weights = nullptr;  // (M*k)
  const int32_t* sorted_ids = nullptr;
  const int32_t* expert_ids = nullptr;
  const int32_t* num_post = nullptr;    // device scalar num_tokens_post_padded
  // Persistent one-block wgmma_ws grids: a zeroed counter the blocks claim tiles from
  // (left zero at exit); nullptr: the fixed stride (kernels/fused_moe/ws_kernel.cuh).
  int32_t* tile_counter = nullptr;
  int64_t num_valid = 0;                // M*k: ids >= this are padding
  int64_t n = 0;                        // output columns (stage 1: inter; stage 2: model_dim)
  int64_t k = 0;                        // reduction length
  int64_t w_rows = 0;                   // weight rows per expert
  int64_t split_stride = 0;             // stage 2: elements of one split's partial rows
  int32_t top_k = 1;
  int32_t experts = 0;
  int32_t act = 0;                      // Activation
  int32_t scale_mode = 0;               // 0 none, 1 scale gate/up accumulators, 2 scale output
  int32_t aligned = 0;                  // K % 8 == 0 and 16-byte aligned bases: cp.async path
  int32_t n_tiles = 0;
  int32_t split_k = 1;
  int32_t k_tiles_per_split = 0;
  int32_t max_m_blocks = 0;             // grid bound; num_post/block_m is clamped to it
  int32_t persistent = 0;
  int32_t group_m = 8;                  // m-blocks per tile-order group (L2 reuse), <= kMaxGroupM
  int32_t group_mode = 0;               // 0 fixed groups; 1 runs of one expert cut at group_m windows
};

struct ReduceParams {
  const float* partial = nullptr;   // (split_k, M*k, n)
  int64_t split_stride = 0;
  int32_t split_k = 1;
  const int32_t* topk_ids = nullptr;  // (M, k): slots with ids outside [0, E) contribute 0
  int32_t experts = 0;
  int32_t top_k = 1;
  int64_t tokens = 0;
  int64_t n = 0;
  uint16_t* out = nullptr;          // (M, n) 16-bit
  int32_t vec4 = 0;                 // n % 4 == 0 and aligned: float4 path
};

}  // namespace moe::fused_moe::detail
