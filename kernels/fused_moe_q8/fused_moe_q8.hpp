// Host API of the quantized fused MoE layer (FP8 e4m3 / INT8 A8W8):
//
//   a1, a1_scale = quantize(hidden)                         (kernels/quant, scheme's activation granularity)
//   stage 1  inter[s, :] = act(g) * u,  g/u = dequantized GEMM of a1 with w1 (gate/up rows), 16-bit
//   a2, a2_scale = quantize(inter)                          (same granularity, rows = slots)
//   stage 2  partial[q, s, :] = dequantized GEMM of a2 with w2 (* routed weight)
//   reduce   out[t, :] = sum over slots and splits         (kernels/fused_moe's fixed-order reduce)
//
// "Dequantized GEMM": sum_k decode(A[r,k]) decode(W[c,k]) * a_s * w_s with the
// products summed on the tensor cores in fp32 (fp8) or exactly in int32 (int8),
// the scales applied once per row/column (per 128-K group for fp8_block).
//
// Layout example (Mixtral-8x7B, fp8_token, M = 3, E = 8, top_k = 2, block 16):
//   hidden (3, 4096) bf16            -> a1 (3, 4096) e4m3 codes, a1_scale (3) fp32
//   w1 (8, 28672, 4096) e4m3 codes,  w1_scale (8, 28672) fp32 (per output channel)
//   w2 (8, 4096, 14336) e4m3 codes,  w2_scale (8, 4096)
//   routing: as kernels/fused_moe/fused_moe.hpp (sorted_token_ids, expert_ids, num_tokens_post_padded)
//   inter (6, 14336) bf16            -> a2 (6, 14336) codes, a2_scale (6)
//   partial (split_k, 6, 4096) fp32; out (3, 4096) bf16
// fp8_block instead: a1_scale (3, 32), w1_scale (8, 224, 32), a2_scale (6, 112), w2_scale (8, 32, 112).
//
// Contract: topk_ids in [0, E) (a slot outside is skipped by stage 1, so its
// intermediate row is never written and would enter the per-tensor amax);
// model_dim and inter_dim multiples of 16; 16-byte aligned device pointers.
// 64-bit offsets throughout.
#pragma once
#include <cstdint>

#include "kernels/fused_moe/fused_moe.hpp"
#include "kernels/fused_moe_q8/fused_moe_q8_types.hpp"
#include "kernels/quant/quant.hpp"

namespace moe::fused_moe_q8 {

struct Q8Tensors {
  const void* hidden = nullptr;      // (M, model_dim) base.dtype
  const uint8_t* w1 = nullptr;       // (E, 2I, model_dim) codes
  const float* w1_scale = nullptr;   // Q8Problem::w1_quant() scale layout
  const uint8_t* w2 = nullptr;       // (E, model_dim, I) codes
  const float* w2_scale = nullptr;
  const float* topk_weights = nullptr;  // (M, top_k)
  const int32_t* topk_ids = nullptr;    // (M, top_k)
  void* out = nullptr;                  // (M, model_dim) base.dtype
};

struct Q8Workspace {
  uint8_t* a1 = nullptr;        // (M, model_dim)
  float* a1_scale = nullptr;    // a1_quant().num_scales()
  void* intermediate = nullptr; // (M*k, I) base.dtype
  uint8_t* a2 = nullptr;        // (M*k, I)
  float* a2_scale = nullptr;    // a2_quant().num_scales()
  float* partial = nullptr;     // (split_k, M*k, model_dim)
  int32_t* tile_counters = nullptr;  // optional: fused_moe::kTileCounters, as fused_moe::Workspace's
};
struct Q8WorkspaceSizes {
  int64_t a1 = 0, a1_scale = 0, intermediate = 0, a2 = 0, a2_scale = 0, partial = 0;  // elements
};
Q8WorkspaceSizes workspace_sizes(const Q8Problem& p, const Q8LayerConfig& cfg);

#if MOE_HAVE_GPU
Q8DeviceLimits q8_device_limits();

// Stage 1 on quantized activations a1 (codes + scales of a1_quant()).
void launch_q8_stage1(const Q8Problem& p, const uint8_t* a1, const float* a1_scale, const Q8Tensors& t,
                      const fused_moe::AlignedRouting& r, void* intermediate, const Q8TileConfig& cfg, hipStream_t s,
                      int32_t* tile_counter = nullptr);
// Stage 2 on quantized intermediate a2 (codes + scales of a2_quant()).
void launch_q8_stage2(const Q8Problem& p, const uint8_t* a2, const float* a2_scale, const Q8Tensors& t,
                      const fused_moe::AlignedRouting& r, float* partial, const Q8TileConfig& cfg, hipStream_t s,
                      int32_t* tile_counter = nullptr);

// The whole layer. The quantizers run in `mode` (Deferred: graph-capturable; call
// qws.check() later to get the Inf/NaN InputError; Sync: synchronizes after each).
void fused_moe_q8(const Q8Problem& p, const Q8Tensors& t, const fused_moe::AlignedRouting& r, const Q8Workspace& ws,
                  quant::Workspace& qws, const Q8LayerConfig& cfg, hipStream_t s,
                  quant::CheckMode mode = quant::CheckMode::Deferred);
#endif

}  // namespace moe::fused_moe_q8
