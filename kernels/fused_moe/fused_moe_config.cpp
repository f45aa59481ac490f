#include "kernels/fused_moe/fused_moe_config.hpp"
#include "kernels/fused_moe/fused_moe.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string>

#include <fmt/format.h>

#include "kernels/fused_moe/fused_moe_params.hpp"
#include "moe/error.hpp"

namespace moe::fused_moe {

std::string TileConfig::why_invalid(int stage) const {
  if (stage != 1 && stage != 2) return fmt::format("stage must be 1 or 2, got {}", stage);
  if (auto w = why_not_compiled(kTileShapes, *this); !w.empty()) return w;
  if (split_k < 1 || split_k > 64) return fmt::format("split_k must be in [1, 64], got {}", split_k);
  // (Whether a wgmma shape can run is a property of the build: the launch checks
  // DeviceLimits::wgmma and throws InputError when it is absent.)
  if (stage == 1 && split_k != 1) return "split_k applies to stage 2 only (stage 1 is followed by a nonlinearity)";
  return {};
}

std::string TileConfig::to_string() const {
  return fmt::format("{} sk{}{}", name(), split_k, persistent ? " persistent" : "");
}

std::string LayerConfig::why_invalid() const {
  if (auto w = stage1.why_invalid(1); !w.empty()) return "stage 1: " + w;
  if (auto w = stage2.why_invalid(2); !w.empty()) return "stage 2: " + w;
  if (stage1.block_m != stage2.block_m)
    return fmt::format("stage 1 and stage 2 must share block_m (the align block size), got {} and {}",
                       stage1.block_m, stage2.block_m);
  return {};
}

std::string LayerConfig::to_string() const { return "s1 " + stage1.to_string() + "; s2 " + stage2.to_string(); }

double expected_rows_per_expert(const Problem& p) {
  const double slots = static_cast<double>(p.slots());
  return slots / std::min(static_cast<double>(p.experts), slots);
}

namespace {

int blocks_resident(const TileShape& t, const DeviceLimits& dev) {
  const int64_t smem = tile_smem_bytes(t) + 1024;
  const int by_smem = static_cast<int>(std::max<int64_t>(1, (dev.max_smem_per_block + 1024) / smem));
  return std::min(by_smem, 4);
}

}  // namespace

namespace {

// Tiles of one stage for a shape, from the expected non-empty blocks.
double est_tiles(const Problem& p, const TileShape& t, int stage) {
  const double rows = expected_rows_per_expert(p);
  const double nonempty = std::min<double>(static_cast<double>(p.experts), static_cast<double>(p.slots()));
  const double blocks = nonempty * std::ceil(rows / t.block_m);
  const double n = stage == 1 ? static_cast<double>(p.inter_dim) / (t.block_n / 2) : static_cast<double>(p.model_dim) / t.block_n;
  return blocks * std::ceil(n);
}

TileConfig stage_config(const Problem& p, const DeviceLimits& dev, int shape_index, int stage) {
  const TileShape& t = kTileShapes[shape_index];
  TileConfig c{t.tile()};
  const double rows = expected_rows_per_expert(p);
  const double nonempty = std::min<double>(static_cast<double>(p.experts), static_cast<double>(p.slots()));
  const double est_blocks = nonempty * std::ceil(rows / t.block_m);
  const int64_t bound_blocks = max_aligned_blocks(p.slots(), p.experts, t.block_m);
  const double slots_on_device = static_cast<double>(dev.sm_count) * blocks_resident(t, dev);
  // Persistent when the worst-case grid would be mostly empty blocks. (For wgmma_ws
  // tiles on the H100 a persistent grid took 4-26 % more time than one block per
  // tile at M = 4096 of all three models: docs/notes/fused_moe.md, v6.)
  c.persistent = t.cluster == 1 && static_cast<double>(bound_blocks) > 2.0 * est_blocks;
  if (stage == 2) {
    // Split-K: aim for >= 2 waves of tiles, keep >= 4 k-tiles per split.
    const double tiles2 = est_tiles(p, t, 2);
    const int64_t k_tiles = (p.inter_dim + t.block_k - 1) / t.block_k;
    int split = 1;
    while (split < 8 && tiles2 * split < 2.0 * slots_on_device && k_tiles / (2 * split) >= 4) split *= 2;
    c.split_k = split;
  }
  return c;
}

}  // namespace

LayerConfig config_for_shape(const Problem& p, const DeviceLimits& dev, int shape_index) {
  MOE_REQUIRE(shape_index >= 0 && shape_index < kNumTileShapes,
              fmt::format("tile shape index {} out of range [0, {})", shape_index, kNumTileShapes));
  LayerConfig cfg;
  cfg.stage1 = stage_config(p, dev, shape_index, 1);
  cfg.stage2 = stage_config(p, dev, shape_index, 2);
  return cfg;
}

bool shape_usable(const TileShape& t, const DeviceLimits& dev) {
  return tile_smem_bytes(t) <= dev.max_smem_per_block && (!t.wgmma || dev.wgmma);
}

bool shape_fits(const TileShape& t, const Problem& p) {
  return !t.ws || (p.model_dim % 8 == 0 && p.inter_dim % 8 == 0);
}

LayerConfig choose_config(const Problem& p, const DeviceLimits& dev) {
  p.validate();
  const double rows = expected_rows_per_expert(p);
  auto usable = [&](const TileShape& t) { return shape_usable(t, dev); };
  auto find = [&](int bm, int bn, bool wgmma, int stages = 0, bool ws = false) {
    for (int i = 0; i < kNumTileShapes; ++i) {
      const TileShape& t = kTileShapes[i];
      if (t.block_m == bm && t.block_n == bn && t.wgmma == wgmma && t.ws == ws && t.cluster == 1 &&
          (stages == 0 || t.stages == stages) && usable(t) && shape_fits(t, p))
        return i;
    }
    return -1;
  };
  // From the H100 sweeps of every compiled shape at the 18 model points
  // (docs/notes/fused_moe.md, runs 3-5, and v6 for wgmma_ws): <= 24 rows per expert:
  // 16-row blocks with the 3-stage pipeline (3 blocks per SM; best or within 1.5 % of
  // best at every decode point); beyond: the warp-specialized 128x256 tile (faster
  // than every other shape at the 6 points with 32-256 rows per expert), else
  // <= 96: 64x256 wgmma (2 warpgroups side by side), else 64x128 mma.sync; beyond:
  // 128x256 wgmma, else 128x128 mma.sync.
  int best = -1;
  if (rows <= 24) {
    best = find(16, 64, false, 3);
    if (best < 0) best = find(16, 64, false);
  } else {
    best = find(128, 256, true, 0, true);
    if (best < 0 && rows <= 96) best = find(64, 256, true);
    if (best < 0 && rows <= 96) best = find(64, 128, false);
    if (best < 0) best = find(128, 256, true);
    if (best < 0) best = find(128, 128, false);
  }
  if (best < 0) {
    // Another backend's table: the largest usable block_m not above the rows.
    for (int i = 0; i < kNumTileShapes; ++i)
      if (usable(kTileShapes[i]) &&
          (best < 0 || (kTileShapes[i].block_m <= std::max(16.0, rows) &&
                        kTileShapes[i].block_m > kTileShapes[best].block_m)))
        best = i;
  }
  MOE_REQUIRE(best >= 0, "fused_moe: no compiled tile shape fits the device's shared memory");
  return config_for_shape(p, dev, best);
}

TileGrid tile_grid(std::string_view family, int64_t slots, int64_t experts, int64_t capacity, const Tile& tile,
                   bool persistent, int64_t tiles_per_m_block, int sm_count, int (*resident_blocks_per_sm)()) {
  MOE_REQUIRE(tile.block_m > 0 && tile.cluster > 0 && tiles_per_m_block >= 0 && sm_count > 0,
              fmt::format("{}: grid sizing of tile {} with {} tiles per m-block on {} SMs", family, tile.name(),
                          tiles_per_m_block, sm_count));
  TileGrid g;
  const int64_t bound = std::min<int64_t>(max_aligned_blocks(slots, experts, tile.block_m), capacity / tile.block_m);
  MOE_REQUIRE(bound < (int64_t{1} << 31), fmt::format("{}: too many aligned blocks ({})", family, bound));
  g.max_m_blocks = static_cast<int>(bound);
  const int64_t total = bound * tiles_per_m_block;
  // Grids are whole clusters: a cluster's blocks take tile pairs (2j, 2j+1) together (a
  // block past the last tile does nothing).
  const int64_t blocks = (total + tile.cluster - 1) / tile.cluster * tile.cluster;
  if (persistent) {
    const int resident = std::max(1, resident_blocks_per_sm ? resident_blocks_per_sm() : 1);
    const int64_t on_device = std::max<int64_t>(tile.cluster, int64_t{sm_count} * resident / tile.cluster * tile.cluster);
    g.grid = static_cast<int>(std::max<int64_t>(tile.cluster, std::min(blocks, on_device)));
  } else {
    MOE_REQUIRE(blocks < (int64_t{1} << 31),
                fmt::format("{}: {} tiles exceed the grid limit; use a persistent config", family, total));
    g.grid = static_cast<int>(blocks);
  }
  return g;
}

int32_t* tile_counter_for(const Tile& tile, bool persistent, const TileGrid& grid, int64_t tiles_per_m_block,
                          int32_t* counter) {
  const char* env = std::getenv("MOE_FUSED_MOE_TILE_COUNTER");
  const std::string v = env ? env : "";
  MOE_REQUIRE(v.empty() || v == "0" || v == "1",
              fmt::format("MOE_FUSED_MOE_TILE_COUNTER=\"{}\": expected 0 (the fixed stride) or 1", v));
  if (!counter || !persistent || !tile.ws || tile.cluster != 1 || v == "0") return nullptr;
  // Claims run up to max(tiles, grid) - 1.
  const int64_t tiles = int64_t{grid.max_m_blocks} * tiles_per_m_block;
  return std::max<int64_t>(tiles, grid.grid) < (int64_t{1} << 31) - 1 ? counter : nullptr;
}

int32_t tile_group_m(int64_t slots, int64_t experts, const Tile& tile) {
  const char* env = std::getenv("MOE_FUSED_MOE_GROUP_M");
  if (!env || !*env) return tile.ws && slots <= experts * tile.block_m ? 1 : 8;
  const std::string v(env);
  int32_t g = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), g);
  MOE_REQUIRE(ec == std::errc{} && end == v.data() + v.size() && g >= 1 && g <= detail::kMaxGroupM,
              fmt::format("MOE_FUSED_MOE_GROUP_M=\"{}\": expected an integer in [1, {}]", v, detail::kMaxGroupM));
  return g;
}

int32_t expert_run_window(int64_t k, const Tile& tile) {
  const char* env = std::getenv("MOE_FUSED_MOE_GROUP_BY_EXPERT");
  const std::string v = env ? env : "";
  MOE_REQUIRE(v.empty() || v == "0" || v == "1",
              fmt::format("MOE_FUSED_MOE_GROUP_BY_EXPERT=\"{}\": expected 0 (fixed groups) or 1 (runs of one expert)", v));
  const bool runs = v.empty() ? tile.ws : v == "1";
  if (!runs || tile.block_m < 64) return 0;
  const int64_t per_block = int64_t{tile.block_m} * std::max<int64_t>(1, k) * 2;  // 16-bit rows
  return static_cast<int32_t>(std::clamp<int64_t>((int64_t{36} << 20) / per_block, 1, detail::kMaxGroupM));
}

std::vector<LayerConfig> tune_candidates(const Problem& p, const DeviceLimits& dev, const TuneSpace& space) {
  p.validate();
  std::vector<LayerConfig> out;
  auto add = [&](const LayerConfig& c) {
    if (!c.is_valid()) return;
    for (const auto& o : out)
      if (o.stage1 == c.stage1 && o.stage2 == c.stage2) return;
    out.push_back(c);
  };
  for (int s = 0; s < kNumTileShapes; ++s) {
    if (!shape_usable(kTileShapes[s], dev) || !shape_fits(kTileShapes[s], p)) continue;
    const LayerConfig base = config_for_shape(p, dev, s);
    const int64_t k_tiles = (p.inter_dim + base.stage2.block_k - 1) / base.stage2.block_k;
    for (bool pers : space.persistent)
      for (int sk : space.split_k) {
        if (sk < 1 || sk > k_tiles) continue;
        LayerConfig c = base;
        c.stage1.persistent = c.stage2.persistent = pers;
        c.stage2.split_k = sk;
        add(c);
      }
  }
  // The heuristic's choice is always a candidate.
  const LayerConfig h = choose_config(p, dev);
  bool have = false;
  for (const auto& o : out) have = have || (o.stage1 == h.stage1 && o.stage2 == h.stage2);
  if (!have) out.push_back(h);
  return out;
}

WorkspaceBytes workspace_bytes(const Problem& p, const LayerConfig& cfg) {
  p.validate();
  WorkspaceBytes b;
  b.intermediate = p.slots() * p.inter_dim * static_cast<int64_t>(dtype_size(p.dtype));
  b.partial = int64_t{cfg.stage2.split_k} * p.slots() * p.model_dim * 4;
  return b;
}

int64_t aligned_capacity(const Problem& p, int32_t block_size) {
  MOE_REQUIRE(block_size > 0, fmt::format("fused_moe: block_size must be positive, got {}", block_size));
  const int64_t slots = p.slots();
  const int64_t nonempty = std::min<int64_t>(p.experts, slots);
  // Same bound as moe::align::align_capacity: the padded total is a multiple of
  // block_size and at most slots + nonempty*(block_size-1).
  return (slots + nonempty * (block_size - 1)) / block_size * block_size;
}

void check_aligned_routing(const AlignedRouting& r, int block_m, std::string_view what) {
  MOE_REQUIRE(r.sorted_token_ids && r.expert_ids && r.num_tokens_post_padded,
              fmt::format("{}: aligned routing arrays (sorted_token_ids, expert_ids, num_tokens_post_padded) must be set",
                          what));
  MOE_REQUIRE(r.block_size == block_m,
              fmt::format("{}: routing block_size {} differs from the tile block_m {}", what, r.block_size, block_m));
  MOE_REQUIRE(r.capacity >= r.block_size && r.capacity % r.block_size == 0,
              fmt::format("{}: sorted_token_ids capacity {} must be a positive multiple of block_size {}", what,
                          r.capacity, r.block_size));
}

}  // namespace moe::fused_moe
