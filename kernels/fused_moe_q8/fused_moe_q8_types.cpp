// Host-only parts of the quantized fused MoE family: tile-config checks and the
// heuristic chooser.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "kernels/fused_moe_q8/fused_moe_q8_types.hpp"
#include "moe/error.hpp"

namespace moe::fused_moe_q8 {

int64_t q8_k_per_split(int64_t K, const Q8TileConfig& cfg) {
  const int64_t k_tiles = (K + cfg.block_k - 1) / cfg.block_k;
  return (k_tiles + cfg.split_k - 1) / cfg.split_k * cfg.block_k;
}

Q8TileConfig q8_config_of_shape(int shape) {
  MOE_REQUIRE(shape >= 0 && shape < kNumQ8TileShapes, "fused_moe_q8: tile shape index out of range");
  return Q8TileConfig{kQ8TileShapes[shape].tile()};
}

std::string Q8TileConfig::to_string() const {
  return fmt::format("{} sk{}{}", name(), split_k, persistent ? " persistent" : "");
}

std::string Q8TileConfig::why_invalid(int stage, Scheme scheme) const {
  if (stage != 1 && stage != 2) return "stage must be 1 or 2";
  if (auto w = fused_moe::why_not_compiled(kQ8TileShapes, *this); !w.empty()) return w;
  if (split_k < 1 || split_k > 64) return fmt::format("split_k {} outside [1, 64]", split_k);
  if (stage == 1 && split_k != 1) return "split_k applies to stage 2 only";
  const TileShape& t = kQ8TileShapes[fused_moe::find_tile_shape(kQ8TileShapes, *this)];
  if (is_block(scheme) && !q8_block_compiled(t))
    return "the block scheme keeps a second accumulator set: wgmma tiles of at most 128 columns per warpgroup";
  return {};
}

std::string Q8LayerConfig::why_invalid(Scheme scheme) const {
  if (auto w = stage1.why_invalid(1, scheme); !w.empty()) return "stage 1: " + w;
  if (auto w = stage2.why_invalid(2, scheme); !w.empty()) return "stage 2: " + w;
  if (stage1.block_m != stage2.block_m) return "stage 1 and stage 2 must share block_m (the align block size)";
  return {};
}

std::string Q8LayerConfig::to_string() const { return "s1 " + stage1.to_string() + "; s2 " + stage2.to_string(); }

namespace {
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

void finish(const Q8Problem& p, const Q8DeviceLimits& dev, Q8LayerConfig& c) {
  const TileShape& t = kQ8TileShapes[fused_moe::find_tile_shape(kQ8TileShapes, c.stage2)];
  const int64_t blocks = fused_moe::max_aligned_blocks(p.base.slots(), p.base.experts, t.block_m);
  const int64_t tiles = blocks * ceil_div(p.base.model_dim, t.block_n);
  const int64_t k_tiles = ceil_div(p.base.inter_dim, t.block_k);
  int split = 1;
  while (tiles * split * 2 < 2 * dev.sm_count && split * 2 <= 16 && k_tiles / (split * 2) >= 2) split *= 2;
  c.stage2.split_k = split;
  for (Q8TileConfig* s : {&c.stage1, &c.stage2}) {
    const TileShape& ts = kQ8TileShapes[fused_moe::find_tile_shape(kQ8TileShapes, *s)];
    // The worst-case block count launches mostly empty blocks when few experts are hit. The
    // one-block ws tile takes a persistent grid anyway: in the H200 tile sweep at M = 1024/4096
    // it took 0.3-7 % less time at 16 of 18 points and 1-3 % more for fp8 at Mixtral
    // M = 4096 (docs/notes/quant.md; why is not measured).
    const int64_t bound = fused_moe::max_aligned_blocks(p.base.slots(), p.base.experts, ts.block_m);
    const int64_t expected = ceil_div(p.base.slots(), ts.block_m) + std::min<int64_t>(p.base.experts, p.base.slots());
    s->persistent = ts.cluster == 1 && (ts.ws || bound > 4 * expected);
  }
}
}  // namespace

Q8LayerConfig q8_config_for_shape(const Q8Problem& p, const Q8DeviceLimits& dev, int shape) {
  Q8LayerConfig c;
  c.stage1 = c.stage2 = q8_config_of_shape(shape);
  finish(p, dev, c);
  return c;
}

bool q8_shape_fits(const TileShape& t, const Q8Problem& p) {
  const int half = t.block_n / 2;
  if (!t.ws || !is_block(p.scheme)) return true;
  // A half that divides 128 is compiled to lie in one weight block: its tiles must start at
  // multiples of it (inter_dim too, where the up half starts). Other halves (96 columns) may
  // straddle two blocks, which the kernel resolves per 8-column group.
  return 128 % half == 0 ? p.base.inter_dim % half == 0 : half < 128;
}

Q8LayerConfig choose_q8_config(const Q8Problem& p, const Q8DeviceLimits& dev) {
  const double rows = static_cast<double>(p.base.slots()) /
                      static_cast<double>(std::min<int64_t>(p.base.experts, p.base.slots()));
  auto pick = [&](int bm, int bn, bool wg, int stages) {
    for (int i = 0; i < kNumQ8TileShapes; ++i) {
      const TileShape& t = kQ8TileShapes[i];
      if (t.block_m == bm && t.block_n == bn && t.wgmma == wg && !t.ws && (stages == 0 || t.stages == stages) &&
          q8_tile_smem_bytes(t) <= dev.max_smem_per_block && q8_config_of_shape(i).is_valid(1, p.scheme))
        return i;
    }
    return -1;
  };
  // The warp-specialized tile of block_n `bn` (one block; kernels/fused_moe/ws_kernel.cuh), where it fits.
  [[maybe_unused]] auto pick_ws = [&](int bn) {  // (not on HIP: no ws tiles)
    for (int i = 0; i < kNumQ8TileShapes; ++i) {
      const TileShape& t = kQ8TileShapes[i];
      if (t.ws && t.cluster == 1 && t.block_n == bn && q8_tile_smem_bytes(t) <= dev.max_smem_per_block &&
          q8_shape_fits(t, p) &&
          q8_config_of_shape(i).is_valid(1, p.scheme))
        return i;
    }
    return -1;
  };
  int shape = -1;
#if defined(MOE_BACKEND_HIP)
  if (rows <= 12) shape = pick(16, 64, false, 0);
  else if (rows <= 24) shape = pick(32, 64, false, 0);
  else if (rows <= 96) shape = pick(64, 128, false, 0);
  else shape = pick(128, 128, false, 0);
#else
  // The warp-specialized tile, from the H100 tile sweeps at M = 1024/4096 (32-1024 rows per
  // expert; docs/notes/quant.md): fp8 beyond 24 rows per expert (1.06-1.48x less time than the
  // older wgmma tiles for fp8_tensor, 1.48-2.28x for fp8_block); int8 beyond 96 (1.15-1.38x
  // less at 128-1024 rows; at 32 and 64 rows the 64x256 wgmma tile was 4-12 % faster).
  // Its 128x192 form from two 128-row m-blocks per expert on (H100 tile sweep, fp8_tensor and
  // int8_token: 3-10 % less time than 128x128 at Mixtral M = 1024/4096 and Qwen3 M = 4096, 256-1024
  // rows; at 32-128 rows (DeepSeek-V3, Qwen3 M = 1024) from 2.5 % less to 6 % more, more at 4 of
  // the 6 points); the block scheme takes it too (its halves may straddle two weight blocks).
  const bool ws_pays = dev.wgmma && rows > (is_int8(p.scheme) ? 96 : 24);
  int ws = -1;
  if (ws_pays && rows >= 256) ws = pick_ws(192);
  if (ws_pays && ws < 0) ws = pick_ws(128);
  // The swapped wgmma decode tile (weights as wgmma's M, the 16 token rows as N: e4m3 native) at
  // 9-24 rows per expert for fp8 (H100 tile sweep, 16 rows: fp8_tensor 2.7-2.9 %, fp8_block
  // 6.4-6.8 % less time than the 4-warp mma.sync tile; int8 within 0.4 %). At 1-8 rows it lost
  // to the 8-warp mma.sync tile at 14 of 18 fp8 points (0.3-10 %): its 16 token rows are mostly padding.
  const int swapped = dev.wgmma && !is_int8(p.scheme) ? pick(16, 128, true, 0) : -1;
  // The block scheme takes it at 1-8 rows too where each stage has a tile per SM: with its scales
  // held in the slot, fp8_block there took 3.1-6.3 % less time than on the 8-warp mma.sync tile
  // (whose flushes cost it 3.7-6.7 % over fp8_tensor at M >= 16), and 17 % less at Qwen3-235B
  // M = 1 (H100 A/B, reports/h100-92e1b93). With fewer tiles (Mixtral-8x7B M = 1: 64 in stage 2)
  // the swapped tile, half the bytes in flight per block, lost 5 % in the fp8_tensor sweep.
  bool block_swaps = false;
  if (is_block(p.scheme) && swapped >= 0) {
    const TileShape& t = kQ8TileShapes[swapped];
    const int64_t hit = std::min<int64_t>(p.base.experts, p.base.slots());  // at least one m-block each
    const int64_t n_tiles = std::min(ceil_div(p.base.inter_dim, t.block_n / 2), ceil_div(p.base.model_dim, t.block_n));
    block_swaps = hit * n_tiles >= dev.sm_count;
  }
  if (rows <= 8) shape = block_swaps ? swapped : pick(16, 128, false, 3);
  else if (rows <= 24) shape = swapped >= 0 ? swapped : pick(16, 128, false, 4);
  else if (ws >= 0) shape = ws;
  else if (dev.wgmma && rows <= 96) shape = pick(64, 256, true, 0);  // DeepSeek-V3 M=1024 (32 rows): 1.9x the 32-row tile
  else if (rows <= 40) shape = pick(32, 64, false, 0);
  else if (dev.wgmma) shape = is_block(p.scheme) ? pick(128, 128, true, 0) : pick(128, 256, true, 0);
  else shape = pick(64, 128, false, 0);
#endif
  if (shape < 0) shape = 0;
  return q8_config_for_shape(p, dev, shape);
}

}  // namespace moe::fused_moe_q8
