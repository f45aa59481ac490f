// Host side of the fused MoE layer: validation, grid sizing and dispatch to the
// compiled kernels (g++; the kernels live in the .hip TUs).
#include <algorithm>
#include <cstdlib>
#include <cstdint>
#include <mutex>
#include <vector>

#include <fmt/format.h>

#include "kernels/fused_moe/fused_moe.hpp"
#include "kernels/fused_moe/fused_moe_dispatch.hpp"
#include "kernels/fused_moe/tensor_map.hpp"
#include "moe/error.hpp"
#include "moe/gpu.hpp"

#if MOE_HAVE_GPU
namespace moe::fused_moe {
namespace detail {
namespace {

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Tile order: the runs of one expert's blocks (group_mode 1; by default on the ws tiles,
// expert_run_window), else fixed groups of tile_group_m() m-blocks, m fastest (group_mode 0).
void set_grouping(GemmParams& g, const TileShape& ts) {
  if (const int32_t window = expert_run_window(g.k, ts.tile()); window > 0) {
    g.group_mode = 1;
    g.group_m = window;
  } else {
    g.group_mode = 0;
    g.group_m = tile_group_m(g.num_valid, g.experts, ts.tile());
  }
}

void validate_common(const Problem& p, const Tensors& t, const AlignedRouting& r, const TileConfig& cfg, int stage) {
  p.validate();
  if (auto why = cfg.why_invalid(stage); !why.empty())
    throw_input_error(fmt::format("fused_moe stage {}: invalid tile config: {}", stage, why));
  MOE_REQUIRE(!cfg.wgmma || device_limits().wgmma,
              fmt::format("fused_moe stage {}: tile {} needs the wgmma kernels of an sm_90a build "
                          "(meson -Dnvcc_arch=sm_90a) on a Hopper GPU",
                          stage, cfg.to_string()));
  MOE_REQUIRE(tile_smem_bytes(kTileShapes[find_tile_shape(kTileShapes, cfg)]) <= device_limits().max_smem_per_block,
              fmt::format("fused_moe stage {}: tile {} needs more shared memory than the device allows", stage,
                          cfg.to_string()));
  check_aligned_routing(r, cfg.block_m, fmt::format("fused_moe stage {}", stage));
  MOE_REQUIRE(t.topk_weights != nullptr || (stage == 1 ? p.router_weight != RouterWeight::OnInput
                                                       : p.router_weight != RouterWeight::OnOutput),
              "fused_moe: topk_weights must be set");
}

// The parameters both stages take from the problem and the aligned routing.
GemmParams routing_params(const Problem& p, const Tensors& t, const AlignedRouting& r) {
  GemmParams g;
  g.topk_weights = t.topk_weights;
  g.sorted_ids = r.sorted_token_ids;
  g.expert_ids = r.expert_ids;
  g.num_post = r.num_tokens_post_padded;
  g.num_valid = p.slots();
  g.top_k = p.top_k;
  g.experts = p.experts;
  g.act = static_cast<int32_t>(p.act);
  return g;
}

// wgmma_ws tiles: the weight tensor map (all experts as one 2-D tensor, boxes of
// box_rows x 64 elements), after the kernel's requirements.
void set_weight_map(GemmParams& g, const Problem& p, const TileShape& ts, int stage, int box_rows) {
  if (!ts.ws) return;
  const std::string what = fmt::format("fused_moe stage {}: tile {}", stage, ts.name());
  MOE_REQUIRE(g.aligned, what + " needs a reduction length that is a multiple of 8 and 16-byte aligned "
                                "activations and weights (bulk tensor copies); choose a wgmma or mma tile");
  MOE_REQUIRE(int64_t{p.experts} * g.w_rows < (int64_t{1} << 31),
              what + " needs experts * weight rows < 2^31 (32-bit copy coordinates)");
  MOE_REQUIRE(tensor_maps_supported(), what + " needs tensor maps (a CUDA device of compute capability 9.0 or newer)");
  encode_tile_map_2d(g.w_map, {.base = g.w, .dtype = p.dtype, .rows = int64_t{p.experts} * g.w_rows, .cols = g.k,
                               .row_stride_bytes = g.k * 2, .box_rows = box_rows, .box_cols = 64});
}

}  // namespace
}  // namespace detail

DeviceLimits device_limits() {
  static std::mutex mu;
  struct Cached {
    int device;
    DeviceLimits limits;
  };
  static std::vector<Cached> cache;
  int dev = 0;
  MOE_GPU_CHECK(hipGetDevice(&dev));
  std::lock_guard<std::mutex> lock(mu);
  for (const Cached& c : cache)
    if (c.device == dev) return c.limits;
  DeviceLimits l;
  int v = 0;
  MOE_GPU_CHECK(hipDeviceGetAttribute(&v, hipDeviceAttributeMultiprocessorCount, dev));
  l.sm_count = v;
  MOE_GPU_CHECK(hipDeviceGetAttribute(&v, hipDeviceAttributeMaxSharedMemoryPerBlock, dev));
  l.max_smem_per_block = v;
  l.wgmma = detail::wgmma_compiled();
  hipDeviceProp_t prop{};
  MOE_GPU_CHECK(hipGetDeviceProperties(&prop, dev));
  l.name = prop.name;  // the tuned table's device column (as moe-harness devices shows it)
  cache.push_back(Cached{dev, l});
  return l;
}

void launch_stage1(const Problem& p, const Tensors& t, const AlignedRouting& r, void* intermediate,
                   const TileConfig& cfg, hipStream_t s, int32_t* tile_counter) {
  detail::validate_common(p, t, r, cfg, 1);
  MOE_REQUIRE(t.hidden && t.w1 && intermediate, "fused_moe stage 1: hidden, w1 and intermediate must be set");
  const int shape = find_tile_shape(kTileShapes, cfg);
  const TileShape& ts = kTileShapes[shape];
  const auto& k = detail::stage1_kernel(p.dtype, shape);

  detail::GemmParams g = detail::routing_params(p, t, r);
  g.a = static_cast<const uint16_t*>(t.hidden);
  g.w = static_cast<const uint16_t*>(t.w1);
  g.out = intermediate;
  g.n = p.inter_dim;
  g.k = p.model_dim;
  g.w_rows = 2 * p.inter_dim;
  g.scale_mode = p.router_weight == RouterWeight::OnInput ? 1 : 0;
  g.aligned = (p.model_dim % 8 == 0) && detail::aligned16(t.hidden) && detail::aligned16(t.w1);
  const int64_t n_tiles = (p.inter_dim + ts.block_n / 2 - 1) / (ts.block_n / 2);
  MOE_REQUIRE(n_tiles < (int64_t{1} << 31), "fused_moe stage 1: inter_dim too large");
  g.n_tiles = static_cast<int32_t>(n_tiles);
  g.split_k = 1;
  const int64_t k_tiles = (p.model_dim + ts.block_k - 1) / ts.block_k;
  MOE_REQUIRE(k_tiles < (int64_t{1} << 31), "fused_moe stage 1: model_dim too large");
  g.k_tiles_per_split = static_cast<int32_t>(k_tiles);
  g.persistent = cfg.persistent ? 1 : 0;
  detail::set_grouping(g, ts);
  detail::set_weight_map(g, p, ts, 1, ws_weight_box_rows(ts.block_n, 1, ts.cluster));
  const TileGrid grid = tile_grid("fused_moe stage 1", p.slots(), p.experts, r.capacity, cfg, cfg.persistent,
                                  g.n_tiles, device_limits().sm_count, k.resident_blocks_per_sm);
  g.max_m_blocks = grid.max_m_blocks;
  if (grid.max_m_blocks == 0) return;
  g.tile_counter = tile_counter_for(cfg, cfg.persistent, grid, g.n_tiles, tile_counter);
  k.launch(g, grid.grid, s);
}

void launch_stage2(const Problem& p, const Tensors& t, const AlignedRouting& r, const void* intermediate,
                   float* partial, const TileConfig& cfg, hipStream_t s, int32_t* tile_counter) {
  detail::validate_common(p, t, r, cfg, 2);
  MOE_REQUIRE(t.w2 && intermediate && partial, "fused_moe stage 2: w2, intermediate and partial must be set");
  const int shape = find_tile_shape(kTileShapes, cfg);
  const TileShape& ts = kTileShapes[shape];
  const auto& k = detail::stage2_kernel(p.dtype, shape);

  detail::GemmParams g = detail::routing_params(p, t, r);
  g.a = static_cast<const uint16_t*>(intermediate);
  g.w = static_cast<const uint16_t*>(t.w2);
  g.out = partial;
  g.n = p.model_dim;
  g.k = p.inter_dim;
  g.w_rows = p.model_dim;
  g.split_stride = p.slots() * p.model_dim;
  g.scale_mode = p.router_weight == RouterWeight::OnOutput ? 2 : 0;
  g.aligned = (p.inter_dim % 8 == 0) && detail::aligned16(intermediate) && detail::aligned16(t.w2);
  const int64_t n_tiles = (p.model_dim + ts.block_n - 1) / ts.block_n;
  MOE_REQUIRE(n_tiles < (int64_t{1} << 31), "fused_moe stage 2: model_dim too large");
  g.n_tiles = static_cast<int32_t>(n_tiles);
  const int64_t k_tiles = (p.inter_dim + ts.block_k - 1) / ts.block_k;
  MOE_REQUIRE(k_tiles < (int64_t{1} << 31), "fused_moe stage 2: inter_dim too large");
  g.split_k = cfg.split_k;
  g.k_tiles_per_split = static_cast<int32_t>((k_tiles + cfg.split_k - 1) / cfg.split_k);
  g.persistent = cfg.persistent ? 1 : 0;
  detail::set_grouping(g, ts);
  detail::set_weight_map(g, p, ts, 2, ws_weight_box_rows(ts.block_n, 2, ts.cluster));
  const TileGrid grid = tile_grid("fused_moe stage 2", p.slots(), p.experts, r.capacity, cfg, cfg.persistent,
                                  int64_t{g.n_tiles} * g.split_k, device_limits().sm_count, k.resident_blocks_per_sm);
  g.max_m_blocks = grid.max_m_blocks;
  if (grid.max_m_blocks == 0) {
    // No routed block can exist; partial rows stay unwritten and reduce sums none
    // of them only if every slot is invalid. Zero them so the reduce is defined.
    MOE_GPU_CHECK(hipMemsetAsync(partial, 0, static_cast<size_t>(g.split_stride) * cfg.split_k * 4, s));
    return;
  }
  g.tile_counter = tile_counter_for(cfg, cfg.persistent, grid, int64_t{g.n_tiles} * g.split_k, tile_counter);
  k.launch(g, grid.grid, s);
}

void launch_reduce(const Problem& p, const Tensors& t, const float* partial, int split_k, hipStream_t s) {
  p.validate();
  MOE_REQUIRE(t.out && t.topk_ids && partial, "fused_moe reduce: out, topk_ids and partial must be set");
  MOE_REQUIRE(split_k >= 1, "fused_moe reduce: split_k must be >= 1");
  detail::ReduceParams rp;
  rp.partial = partial;
  rp.split_stride = p.slots() * p.model_dim;
  rp.split_k = split_k;
  rp.topk_ids = t.topk_ids;
  rp.experts = p.experts;
  rp.top_k = p.top_k;
  rp.tokens = p.tokens;
  rp.n = p.model_dim;
  rp.out = static_cast<uint16_t*>(t.out);
  rp.vec4 = (p.model_dim % 4 == 0) && (reinterpret_cast<uintptr_t>(partial) % 16 == 0) &&
            (reinterpret_cast<uintptr_t>(t.out) % 8 == 0);
  const int64_t items = p.tokens * (rp.vec4 ? p.model_dim / 4 : p.model_dim);
  const int threads = 256;
  const int64_t max_grid = int64_t{device_limits().sm_count} * 16;
  const int grid = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>((items + threads - 1) / threads, max_grid)));
  detail::launch_reduce_kernel(rp, p.dtype, grid, threads, s);
}

void fused_moe(const Problem& p, const Tensors& t, const AlignedRouting& r, const Workspace& ws,
               const LayerConfig& cfg, hipStream_t s) {
  p.validate();
  if (auto why = cfg.why_invalid(); !why.empty()) throw_input_error("fused_moe: invalid layer config: " + why);
  MOE_REQUIRE(ws.intermediate && ws.partial, "fused_moe: workspace intermediate and partial must be set");
  launch_stage1(p, t, r, ws.intermediate, cfg.stage1, s, stage_tile_counter(ws.tile_counters, 1));
  launch_stage2(p, t, r, ws.intermediate, ws.partial, cfg.stage2, s, stage_tile_counter(ws.tile_counters, 2));
  launch_reduce(p, t, ws.partial, cfg.stage2.split_k, s);
}

}  // namespace moe::fused_moe
#endif  // MOE_HAVE_GPU
