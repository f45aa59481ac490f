// Host API of the fused MoE layer (bf16/fp16 in and out, fp32 accumulation):
//
//   out = sum_j w_j * W2[e_j] ( act(W1_gate[e_j] x) * (W1_up[e_j] x) )
//
// as two grouped GEMMs over the aligned routing blocks plus a fixed-order reduce:
//   stage 1  inter[s, :]    = act(gate) * up for every routed slot s = token*k + j
//            (gate and up tiles of the same columns computed together; the
//            (M*k, 2*inter) gate/up tensor never exists)
//   stage 2  partial[q, s, :] = inter[s, :] . W2[e_s]^T (* w_s), K split q < split_k
//   reduce   out[t, :]      = sum_q sum_j partial[q, t*k + j, :]   (fixed order)
//
// Layout example (Mixtral-8x7B, M = 3 tokens, E = 8, top_k = 2, model_dim 4096,
// inter 14336, block_size 16, bf16):
//   hidden        (3, 4096)            bf16, row-major
//   w1            (8, 28672, 4096)     rows [0, 14336) gate, [14336, 28672) up
//   w2            (8, 4096, 14336)
//   topk_weights  (3, 2) fp32          e.g. [[.6 .4] [.7 .3] [.5 .5]]
//   topk_ids      (3, 2) int32         e.g. [[1 5] [5 0] [1 2]]
//   slots s = t*2 + j:  0:e1 1:e5 2:e5 3:e0 4:e1 5:e2
//   aligned routing (from moe_align_block_size, block_size 16, sentinel 6):
//     sorted_token_ids  [3 6 6 .. 6 | 0 4 6 .. 6 | 5 6 .. 6 | 1 2 6 .. 6]  (4 blocks of 16)
//     expert_ids        [0 1 2 5]
//     num_tokens_post_padded = 64   (device scalar)
//   workspace: intermediate (6, 14336) bf16; partial (split_k, 6, 4096) fp32;
//              tile_counters (2) int32, zeroed once (optional)
//   out           (3, 4096)            bf16
//
// All three routing arrays are device inputs, so the layer works with any
// producer (the GPU align kernel, or arrays uploaded from the CPU reference) and
// can be captured in a graph: the kernels read num_tokens_post_padded on the
// device; the host only knows the worst case (max_aligned_blocks).
//
// Every offset is 64-bit (M*k*model_dim above 2^31 works). Inputs are validated
// on the host before any launch (InputError). Routed slots whose topk_id is
// outside [0, E) contribute nothing (the align kernel drops them too); a block
// whose expert_id is outside [0, E) writes zeros.
#pragma once
#include <cstdint>
#include <string_view>

#include "kernels/fused_moe/fused_moe_config.hpp"
#include "kernels/fused_moe/fused_moe_types.hpp"
#include "moe/gpu_runtime.hpp"

namespace moe::fused_moe {

// Device pointers of the layer's tensors (dtype = Problem::dtype unless noted).
struct Tensors {
  const void* hidden = nullptr;         // (M, model_dim)
  const void* w1 = nullptr;             // (E, 2*inter, model_dim)
  const void* w2 = nullptr;             // (E, model_dim, inter)
  const float* topk_weights = nullptr;  // (M, top_k) fp32
  const int32_t* topk_ids = nullptr;    // (M, top_k) int32
  void* out = nullptr;                  // (M, model_dim)
};

// The aligned routing arrays (contract of reference/moe_align/moe_align_ref.hpp).
struct AlignedRouting {
  const int32_t* sorted_token_ids = nullptr;        // capacity entries; padding = M*k
  const int32_t* expert_ids = nullptr;              // capacity / block_size entries
  const int32_t* num_tokens_post_padded = nullptr;  // device scalar
  int64_t capacity = 0;                             // allocated length of sorted_token_ids
  int32_t block_size = 0;                           // must equal the config's block_m
};

struct Workspace {
  void* intermediate = nullptr;  // (M*k, inter), dtype
  float* partial = nullptr;      // (split_k, M*k, model_dim) fp32
  // Optional: kTileCounters int32, zeroed once before the first use (every launch leaves
  // them zero). With them the persistent grids of wgmma_ws tiles hand out tiles in order
  // through a counter (stage 1 the first, stage 2 the second); without, a fixed stride.
  // One set per stream: two layers in flight at once must not share it.
  int32_t* tile_counters = nullptr;
};
inline constexpr int kTileCounters = 2;
// Stage `stage`'s (1 or 2) counter of a tile_counters set, or nullptr without a set.
inline int32_t* stage_tile_counter(int32_t* counters, int stage) { return counters ? counters + (stage - 1) : nullptr; }

struct WorkspaceBytes {
  int64_t intermediate = 0;
  int64_t partial = 0;
};
WorkspaceBytes workspace_bytes(const Problem& p, const LayerConfig& cfg);

// Capacity of sorted_token_ids that any routing needs for this block size:
// block_size * floor((M*k + min(E, M*k)*(block_size-1)) / block_size), the exact
// worst case (= moe::align::align_capacity).
int64_t aligned_capacity(const Problem& p, int32_t block_size);

// InputError, its message starting with `what` ("fused_moe stage 1"), unless the
// arrays of `r` are set and blocked by `block_m` (the tile's).
void check_aligned_routing(const AlignedRouting& r, int block_m, std::string_view what);

#if MOE_HAVE_GPU
// Device properties the chooser needs (cached per device).
DeviceLimits device_limits();

// Individual stages (enqueue only; no synchronisation).
// tile_counter: one of Workspace::tile_counters, or nullptr.
void launch_stage1(const Problem& p, const Tensors& t, const AlignedRouting& r, void* intermediate,
                   const TileConfig& cfg, hipStream_t s, int32_t* tile_counter = nullptr);
void launch_stage2(const Problem& p, const Tensors& t, const AlignedRouting& r, const void* intermediate,
                   float* partial, const TileConfig& cfg, hipStream_t s, int32_t* tile_counter = nullptr);
void launch_reduce(const Problem& p, const Tensors& t, const float* partial, int split_k, hipStream_t s);

// Stage 1 + stage 2 + reduce over given aligned routing.
void fused_moe(const Problem& p, const Tensors& t, const AlignedRouting& r, const Workspace& ws,
               const LayerConfig& cfg, hipStream_t s);
#endif

}  // namespace moe::fused_moe
