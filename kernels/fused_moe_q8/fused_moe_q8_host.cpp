// Host side of the quantized fused MoE layer: validation, scale strides, grid
// sizing, the quantizer calls and the layer sequence (g++; kernels in .hip TUs).
#include <algorithm>
#include <mutex>
#include <vector>

#include <fmt/format.h>

#include "kernels/fused_moe/fused_moe_config.hpp"
#include "kernels/fused_moe_q8/fused_moe_q8.hpp"
#include "kernels/fused_moe_q8/q8_dispatch.hpp"
#include "kernels/fused_moe/tensor_map.hpp"
#include "moe/error.hpp"
#include "moe/gpu.hpp"

namespace moe::fused_moe_q8 {

Q8WorkspaceSizes workspace_sizes(const Q8Problem& p, const Q8LayerConfig& cfg) {
  Q8WorkspaceSizes w;
  w.a1 = p.base.tokens * p.base.model_dim;
  w.a1_scale = p.a1_quant().num_scales();
  w.intermediate = p.base.slots() * p.base.inter_dim;
  w.a2 = w.intermediate;
  w.a2_scale = p.a2_quant().num_scales();
  w.partial = int64_t{cfg.stage2.split_k} * p.base.slots() * p.base.model_dim;
  return w;
}

#if MOE_HAVE_GPU
namespace detail {

const Q8KernelEntry& q8_kernel(Variant v, int stage, int shape) {
  switch (v) {
    case Variant::Fp8: return stage == 1 ? q8_stage1_fp8(shape) : q8_stage2_fp8(shape);
    case Variant::Int8: return stage == 1 ? q8_stage1_int8(shape) : q8_stage2_int8(shape);
    case Variant::Fp8Block: return stage == 1 ? q8_stage1_block(shape) : q8_stage2_block(shape);
  }
  throw_input_error("fused_moe_q8: bad variant");
}

namespace {

bool aligned16(const void* q) { return (reinterpret_cast<uintptr_t>(q) & 15u) == 0; }

// Scale strides of the A operand (activations: rows x K) and the weights (E, rows, K).
void set_scales(const Q8Problem& p, Q8GemmParams& g, int64_t a_rows, int64_t w_rows, int64_t K) {
  const int64_t groups = (K + kGroup - 1) / kGroup;
  (void)a_rows;
  switch (p.scheme) {
    case Scheme::Fp8Tensor:
      g.a_rs = g.a_gs = 0;
      g.w_es = 1;
      g.w_rs = g.w_gs = 0;
      break;
    case Scheme::Fp8Token:
    case Scheme::Int8Token:
      g.a_rs = 1;
      g.a_gs = 0;
      g.w_es = w_rows;
      g.w_rs = 1;
      g.w_gs = 0;
      break;
    case Scheme::Fp8Block:
      g.a_rs = groups;
      g.a_gs = 1;
      g.w_es = ((w_rows + kGroup - 1) / kGroup) * groups;
      g.w_rshift = 7;
      g.w_rs = groups;
      g.w_gs = 1;
      break;
  }
}

void validate(const Q8Problem& p, const Q8Tensors& t, const fused_moe::AlignedRouting& r, const Q8TileConfig& cfg,
              int stage, const void* a, const float* a_scale) {
  p.validate();
  if (auto why = cfg.why_invalid(stage, p.scheme); !why.empty())
    throw_input_error(fmt::format("fused_moe_q8 stage {}: invalid tile config: {}", stage, why));
  const Q8DeviceLimits lim = q8_device_limits();
  MOE_REQUIRE(!cfg.wgmma || lim.wgmma,
              fmt::format("fused_moe_q8 stage {}: tile {} needs the wgmma kernels of an sm_90a build on a Hopper GPU",
                          stage, cfg.to_string()));
  MOE_REQUIRE(is_int8(p.scheme) || lim.fp8_mma,
              "fused_moe_q8: the fp8 kernels need e4m3 MMA (sm_89+ build and device)");
  MOE_REQUIRE(q8_tile_smem_bytes(kQ8TileShapes[fused_moe::find_tile_shape(kQ8TileShapes, cfg)]) <= lim.max_smem_per_block,
              fmt::format("fused_moe_q8 stage {}: tile {} needs more shared memory than the device allows", stage,
                          cfg.to_string()));
  fused_moe::check_aligned_routing(r, cfg.block_m, fmt::format("fused_moe_q8 stage {}", stage));
  MOE_REQUIRE(a && a_scale, fmt::format("fused_moe_q8 stage {}: quantized activations and scales must be set", stage));
  const void* w = stage == 1 ? static_cast<const void*>(t.w1) : static_cast<const void*>(t.w2);
  const float* ws = stage == 1 ? t.w1_scale : t.w2_scale;
  MOE_REQUIRE(w && ws, fmt::format("fused_moe_q8 stage {}: weights and weight scales must be set", stage));
  MOE_REQUIRE(aligned16(a) && aligned16(w), "fused_moe_q8: code tensors must be 16-byte aligned");
  const bool need_w = stage == 1 ? p.base.router_weight == fused_moe::RouterWeight::OnInput
                                 : p.base.router_weight == fused_moe::RouterWeight::OnOutput;
  MOE_REQUIRE(t.topk_weights || !need_w, "fused_moe_q8: topk_weights must be set");
}

// Common parameters of both stages.
Q8GemmParams base_params(const Q8Problem& p, const fused_moe::AlignedRouting& r, const Q8Tensors& t) {
  Q8GemmParams g;
  g.topk_weights = t.topk_weights;
  g.sorted_ids = r.sorted_token_ids;
  g.expert_ids = r.expert_ids;
  g.num_post = r.num_tokens_post_padded;
  g.num_valid = p.base.slots();
  g.top_k = p.base.top_k;
  g.experts = p.base.experts;
  g.act = static_cast<int32_t>(p.base.act);
  g.out_f16 = p.base.dtype == DType::F16 ? 1 : 0;
  return g;
}

}  // namespace
}  // namespace detail

Q8DeviceLimits q8_device_limits() {
  static std::mutex mu;
  static std::vector<std::pair<int, Q8DeviceLimits>> cache;
  int dev = 0;
  MOE_GPU_CHECK(hipGetDevice(&dev));
  std::lock_guard<std::mutex> lock(mu);
  for (const auto& c : cache)
    if (c.first == dev) return c.second;
  const fused_moe::DeviceLimits b = fused_moe::device_limits();
  Q8DeviceLimits l;
  l.sm_count = b.sm_count;
  l.max_smem_per_block = b.max_smem_per_block;
  l.wgmma = b.wgmma;
  l.fp8_mma = detail::q8_fp8_compiled();
#if defined(MOE_HIP_COMPAT_CUDA)
  int major = 0, minor = 0;
  MOE_GPU_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  MOE_GPU_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
  l.fp8_mma = l.fp8_mma && (major * 10 + minor >= 89);
#endif
  cache.emplace_back(dev, l);
  return l;
}

namespace detail {
namespace {

// Stage 1 multiplies the hidden codes by w1 (gate and up rows) into the
// intermediate; stage 2 the intermediate codes by w2 into split_k fp32 partials.
void launch_q8_stage(int stage, const Q8Problem& p, const uint8_t* a, const float* a_scale, const Q8Tensors& t,
                     const fused_moe::AlignedRouting& r, void* out, const Q8TileConfig& cfg, hipStream_t s,
                     int32_t* tile_counter) {
  validate(p, t, r, cfg, stage, a, a_scale);
  MOE_REQUIRE(out, fmt::format("fused_moe_q8 stage {}: {} must be set", stage, stage == 1 ? "intermediate" : "partial"));
  const int shape = fused_moe::find_tile_shape(kQ8TileShapes, cfg);
  const TileShape& ts = kQ8TileShapes[shape];
  const auto& k = q8_kernel(variant_of(p.scheme), stage, shape);
  MOE_REQUIRE(k.launch, fmt::format("fused_moe_q8: tile {} is not compiled for {}", cfg.to_string(), scheme_name(p.scheme)));
  Q8GemmParams g = base_params(p, r, t);
  g.a = a;
  g.out = out;
  g.a_scale = a_scale;
  int64_t n_tiles = 0;
  if (stage == 1) {
    g.w = t.w1;
    g.w_scale = t.w1_scale;
    g.n = p.base.inter_dim;
    g.k = p.base.model_dim;
    g.w_rows = 2 * p.base.inter_dim;
    set_scales(p, g, p.base.tokens, g.w_rows, g.k);
    g.scale_mode = p.base.router_weight == fused_moe::RouterWeight::OnInput ? 1 : 0;
    n_tiles = (p.base.inter_dim + ts.block_n / 2 - 1) / (ts.block_n / 2);
    g.split_k = 1;
  } else {
    g.w = t.w2;
    g.w_scale = t.w2_scale;
    g.n = p.base.model_dim;
    g.k = p.base.inter_dim;
    g.w_rows = p.base.model_dim;
    g.split_stride = p.base.slots() * p.base.model_dim;
    set_scales(p, g, p.base.slots(), g.w_rows, g.k);
    g.scale_mode = p.base.router_weight == fused_moe::RouterWeight::OnOutput ? 2 : 0;
    n_tiles = (p.base.model_dim + ts.block_n - 1) / ts.block_n;
    g.split_k = cfg.split_k;
  }
  g.n_tiles = static_cast<int32_t>(n_tiles);
  g.k_tiles_per_split = static_cast<int32_t>(q8_k_per_split(g.k, cfg) / ts.block_k);
  g.persistent = cfg.persistent ? 1 : 0;
  g.group_m = fused_moe::tile_group_m(p.base.slots(), p.base.experts, ts.tile());
  if (ts.ws) {  // the weight tensor map of the warp-specialized tile
    const std::string what = fmt::format("fused_moe_q8 stage {}: tile {}", stage, ts.name());
    MOE_REQUIRE(q8_shape_fits(ts, p), what + fmt::format(" in the block scheme needs inter_dim % {} == 0 (block_n / 2)",
                                                         ts.block_n / 2));
    MOE_REQUIRE(int64_t{p.base.experts} * g.w_rows < (int64_t{1} << 31),
                what + " needs experts * weight rows < 2^31 (32-bit copy coordinates)");
    MOE_REQUIRE(fused_moe::tensor_maps_supported(),
                what + " needs tensor maps (a CUDA device of compute capability 9.0 or newer)");
    fused_moe::encode_tile_map_2d(g.w_map, {.base = g.w, .dtype = is_int8(p.scheme) ? DType::I8 : DType::F8E4M3,
                                            .rows = int64_t{p.base.experts} * g.w_rows, .cols = g.k,
                                            .row_stride_bytes = g.k, .box_rows = fused_moe::ws_weight_box_rows(ts.block_n, stage, ts.cluster),
                                            .box_cols = 128});
  }
  const fused_moe::TileGrid grid =
      fused_moe::tile_grid(fmt::format("fused_moe_q8 stage {}", stage), p.base.slots(), p.base.experts, r.capacity,
                           cfg, cfg.persistent, n_tiles * g.split_k, q8_device_limits().sm_count,
                           k.resident_blocks_per_sm);
  g.max_m_blocks = grid.max_m_blocks;
  if (grid.max_m_blocks == 0) {
    // Stage 2: no block writes the partials; zeroed so the reduce is defined.
    if (stage == 2) MOE_GPU_CHECK(hipMemsetAsync(out, 0, static_cast<size_t>(g.split_stride) * cfg.split_k * 4, s));
    return;
  }
  g.tile_counter = fused_moe::tile_counter_for(cfg, cfg.persistent, grid, n_tiles * g.split_k, tile_counter);
  k.launch(g, grid.grid, s);
}

}  // namespace
}  // namespace detail

void launch_q8_stage1(const Q8Problem& p, const uint8_t* a1, const float* a1_scale, const Q8Tensors& t,
                      const fused_moe::AlignedRouting& r, void* intermediate, const Q8TileConfig& cfg, hipStream_t s,
                      int32_t* tile_counter) {
  detail::launch_q8_stage(1, p, a1, a1_scale, t, r, intermediate, cfg, s, tile_counter);
}

void launch_q8_stage2(const Q8Problem& p, const uint8_t* a2, const float* a2_scale, const Q8Tensors& t,
                      const fused_moe::AlignedRouting& r, float* partial, const Q8TileConfig& cfg, hipStream_t s,
                      int32_t* tile_counter) {
  detail::launch_q8_stage(2, p, a2, a2_scale, t, r, partial, cfg, s, tile_counter);
}

void fused_moe_q8(const Q8Problem& p, const Q8Tensors& t, const fused_moe::AlignedRouting& r, const Q8Workspace& ws,
                  quant::Workspace& qws, const Q8LayerConfig& cfg, hipStream_t s, quant::CheckMode mode) {
  p.validate();
  if (auto why = cfg.why_invalid(p.scheme); !why.empty()) throw_input_error("fused_moe_q8: invalid layer config: " + why);
  MOE_REQUIRE(t.hidden && t.out && t.topk_ids, "fused_moe_q8: hidden, out and topk_ids must be set");
  MOE_REQUIRE(ws.a1 && ws.a1_scale && ws.intermediate && ws.a2 && ws.a2_scale && ws.partial,
              "fused_moe_q8: every workspace buffer must be set");
  quant::quantize(p.a1_quant(), t.hidden, ws.a1, ws.a1_scale, qws, s, mode);
  launch_q8_stage1(p, ws.a1, ws.a1_scale, t, r, ws.intermediate, cfg.stage1, s,
                   fused_moe::stage_tile_counter(ws.tile_counters, 1));
  quant::quantize(p.a2_quant(), ws.intermediate, ws.a2, ws.a2_scale, qws, s, mode);
  launch_q8_stage2(p, ws.a2, ws.a2_scale, t, r, ws.partial, cfg.stage2, s,
                   fused_moe::stage_tile_counter(ws.tile_counters, 2));
  fused_moe::Tensors ft;
  ft.topk_ids = t.topk_ids;
  ft.out = t.out;
  fused_moe::launch_reduce(p.base, ft, ws.partial, cfg.stage2.split_k, s);
}
#endif  // MOE_HAVE_GPU

}  // namespace moe::fused_moe_q8
