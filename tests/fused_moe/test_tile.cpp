// Tile names (kernels/fused_moe/tile.hpp): every compiled shape of both tables
// round-trips through its name, names are unique within a table, and malformed
// names are rejected with the field that is wrong.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "kernels/fused_moe/tensor_map.hpp"
#include "kernels/fused_moe/tile.hpp"
#include "kernels/fused_moe/tile_order.hpp"
#include "kernels/fused_moe/fused_moe.hpp"
#include "kernels/fused_moe/fused_moe_config.hpp"
#include "kernels/fused_moe/fused_moe_types.hpp"
#include "kernels/fused_moe_q8/fused_moe_q8_types.hpp"
#include "moe/error.hpp"

using namespace moe;
using namespace moe::fused_moe;

namespace {

void check_table(std::span<const TileShape> shapes) {
  std::set<std::string> names;
  for (size_t i = 0; i < shapes.size(); ++i) {
    const TileShape& s = shapes[i];
    const std::string name = s.name();
    CAPTURE(name);
    CHECK(names.insert(name).second);  // the name alone picks the shape
    const Tile back = parse_tile(name);
    CHECK(back == s.tile());
    CHECK(back.block_m == s.block_m);
    CHECK(back.block_n == s.block_n);
    CHECK(back.block_k == s.block_k);
    CHECK(back.warps == s.warps_m * s.warps_n);
    CHECK(back.stages == s.stages);
    CHECK(back.wgmma == s.wgmma);
    CHECK(back.ws == s.ws);
    CHECK(back.cluster == s.cluster);
    CHECK(back.name() == name);
    CHECK(find_tile_shape(shapes, back) == static_cast<int>(i));
    CHECK(why_not_compiled(shapes, back) == "");
  }
}

}  // namespace

TEST_CASE("tile names: every compiled shape of the bf16 and the q8 table round-trips") {
  check_table(kTileShapes);
  check_table(moe::fused_moe_q8::kQ8TileShapes);
}

TEST_CASE("tile names: the documented form") {
  const Tile t{128, 256, 64, 8, 4, true};
  CHECK(t.name() == "128x256x64-w8-s4-wgmma");
  CHECK(parse_tile("16x64x128-w4-s3-mma") == Tile{16, 64, 128, 4, 3, false});
  const Tile ws{128, 256, 64, 8, 4, true, true};
  CHECK(ws.name() == "128x256x64-w8-s4-wgmma_ws");
  CHECK(parse_tile("128x256x64-w8-s4-wgmma_ws") == ws);
  CHECK_FALSE(parse_tile("128x256x64-w8-s4-wgmma") == ws);
  const Tile pair{128, 256, 64, 8, 4, true, true, 2};
  CHECK(pair.name() == "128x256x64-w8-s4-wgmma_ws-c2");
  CHECK(parse_tile("128x256x64-w8-s4-wgmma_ws-c2") == pair);
  CHECK_FALSE(pair == ws);
}

TEST_CASE("tile names: malformed names are rejected naming the field") {
  const std::pair<const char*, const char*> bad[] = {
      {"", "field 'block_m'"},
      {"x64x128-w4-s3-mma", "field 'block_m'"},
      {"16", "field 'block_m'"},
      {"16x", "field 'block_n'"},
      {"16xabcx128-w4-s3-mma", "field 'block_n'"},
      {"16x64x128", "field 'block_k'"},
      {"16x64x0128-w4-s3-mma", "field 'block_k'"},
      {"16x64x128-4-s3-mma", "field 'warps'"},
      {"16x64x128-w0-s3-mma", "field 'warps'"},
      {"16x64x128-w4-3-mma", "field 'stages'"},
      {"16x64x128-w4-s99999-mma", "field 'stages'"},
      {"16x64x128-w4-s3", "field 'stages'"},
      {"16x64x128-w4-s3-", "field 'mma'"},
      {"16x64x128-w4-s3-mfma", "field 'mma'"},
      {"16x64x128-w4-s3-mma-x", "field 'cluster'"},
      {"16x64x128-w4-s3-mma-c2", "field 'cluster'"},       // not a wgmma_ws tile
      {"16x64x128-w4-s3-wgmma-c2", "field 'cluster'"},
      {"128x256x64-w8-s4-wgmma_ws-c1", "field 'cluster'"},  // the default is not written
      {"128x256x64-w8-s4-wgmma_ws-c", "field 'cluster'"},
      {"128x256x64-w8-s4-wgmma_ws-c02", "field 'cluster'"},
      {"128x256x64-w8-s4-wgmma_ws-2", "field 'cluster'"},
      {"16x64x128-w4-s3-wgmma_ws-", "field 'cluster'"},
      {"16x64x128-w4-s3-wgmma_w", "field 'mma'"},
      {"-16x64x128-w4-s3-mma", "field 'block_m'"},
  };
  for (const auto& name_field : bad) {
    const auto& name = name_field.first;  // named, not bound: doctest's CAPTURE captures it
    const auto& field = name_field.second;
    CAPTURE(name);
    CHECK_THROWS_WITH_AS(parse_tile(name), doctest::Contains(field), InputError);
  }
}

TEST_CASE("tile names: a well-formed tile that is not compiled is named in the one validity check") {
  const Tile odd{48, 64, 128, 4, 3, false};
  CHECK(find_tile_shape(kTileShapes, odd) == -1);
  const std::string why = why_not_compiled(kTileShapes, odd);
  CHECK(why.find("48x64x128-w4-s3-mma") != std::string::npos);
  CHECK(why.find(kTileShapes[0].name()) != std::string::npos);
  TileConfig cfg{odd};
  CHECK(cfg.why_invalid(1) == why);
}

TEST_CASE("tile configs: a tile of 2-block clusters runs one pair per cluster or persistent") {
  for (int s = 0; s < kNumTileShapes; ++s) {
    if (kTileShapes[s].cluster == 1) continue;
    TileConfig c{kTileShapes[s].tile()};
    CHECK(c.is_valid(1));
    c.persistent = true;
    CHECK(c.is_valid(1));
    // the chooser's rule keeps it one pair per cluster at M = 4096; the tuner tries both grids
    const DeviceLimits dev{.sm_count = 132, .max_smem_per_block = 232448, .wgmma = true};
    Problem p;
    p.tokens = 4096, p.model_dim = 4096, p.inter_dim = 14336, p.experts = 8, p.top_k = 2;
    const LayerConfig lc = config_for_shape(p, dev, s);
    CHECK_FALSE(lc.stage1.persistent);
    CHECK_FALSE(lc.stage2.persistent);
    int clustered[2] = {0, 0};
    for (const LayerConfig& c2 : tune_candidates(p, dev))
      if (c2.stage1.cluster > 1) ++clustered[c2.stage1.persistent ? 1 : 0];
    CHECK(clustered[0] > 0);
    CHECK(clustered[1] > 0);
  }
  // The weight boxes: two halves in stage 1, and in stage 2 when the cluster shares them.
  CHECK(ws_weight_box_rows(256, 1, 1) == 128);
  CHECK(ws_weight_box_rows(256, 2, 1) == 256);
  CHECK(ws_weight_box_rows(256, 2, 2) == 128);
  CHECK(ws_weight_box_rows(128, 1, 2) == 64);
}

namespace {
int resident_calls = 0;
int two_resident() { return ++resident_calls, 2; }
}  // namespace

TEST_CASE("launch grid: one block per tile in whole clusters, or SMs x resident blocks") {
  const Tile one{128, 256, 64, 8, 4, true, true};
  const Tile pair{128, 256, 64, 8, 4, true, true, 2};
  // 1000 slots over 8 experts: at most (1000 + 8 * 127) / 128 = 15 aligned blocks.
  TileGrid g = tile_grid("t", 1000, 8, 1 << 20, one, false, 7, 132, two_resident);
  CHECK(g.max_m_blocks == 15);
  CHECK(g.grid == 15 * 7);
  g = tile_grid("t", 1000, 8, 1 << 20, pair, false, 7, 132, two_resident);
  CHECK(g.grid == 106);  // 105 tiles, rounded up to whole pairs
  g = tile_grid("t", 1000, 8, 10 * 128, one, false, 3, 132, two_resident);
  CHECK(g.max_m_blocks == 10);  // the align capacity bounds it too
  CHECK(g.grid == 30);
  CHECK(resident_calls == 0);  // asked only for persistent grids
  g = tile_grid("t", 1000000, 8, 1 << 30, one, true, 7, 132, two_resident);
  CHECK(g.grid == 264);
  g = tile_grid("t", 1000, 8, 1 << 20, one, true, 7, 132, two_resident);
  CHECK(g.grid == 105);  // never more blocks than tiles
  CHECK(resident_calls == 2);  // once per persistent sizing (the kernel entry caches the runtime's answer)
  // Persistent cluster tiles: whole clusters, never more pairs than the tiles make.
  g = tile_grid("t", 1000000, 8, 1 << 30, pair, true, 7, 131, two_resident);
  CHECK(g.grid == 262);
  g = tile_grid("t", 1000, 8, 1 << 20, pair, true, 7, 131, two_resident);
  CHECK(g.grid == 106);
  g = tile_grid("t", 1000000, 8, 1 << 30, pair, true, 7, 1, [] { return 1; });
  CHECK(g.grid == 2);
  g = tile_grid("t", 0, 8, 0, one, false, 7, 132, two_resident);
  CHECK(g.max_m_blocks == 0);
  CHECK(g.grid == 0);
  CHECK_THROWS_WITH_AS(tile_grid("fused_moe stage 2", int64_t{1} << 40, 8, int64_t{1} << 40, one, false, 64, 132,
                                 two_resident),
                       doctest::Contains("fused_moe stage 2:"), InputError);
}

TEST_CASE("launch grid: claimed tiles on persistent one-block ws grids only; MOE_FUSED_MOE_TILE_COUNTER=0 turns them off") {
  const Tile ws{128, 256, 64, 8, 4, true, true};
  const Tile ws_pair{128, 256, 64, 8, 4, true, true, 2};
  const Tile wgmma{128, 256, 64, 8, 4, true, false};
  int32_t counters[kTileCounters] = {};
  int32_t* const c = counters;
  const TileGrid g = tile_grid("t", 1000000, 8, 1 << 30, ws, true, 7, 132, [] { return 1; });
  ::unsetenv("MOE_FUSED_MOE_TILE_COUNTER");
  CHECK(tile_counter_for(ws, true, g, 7, c) == c);
  CHECK(tile_counter_for(ws, false, g, 7, c) == nullptr);   // one block per tile: the hardware's order
  CHECK(tile_counter_for(ws_pair, true, g, 7, c) == nullptr);  // cluster pairs walk in lockstep
  CHECK(tile_counter_for(wgmma, true, g, 7, c) == nullptr);    // the older kernels keep the stride
  CHECK(tile_counter_for(ws, true, g, 7, nullptr) == nullptr);  // no workspace counters
  // Claims run up to max(tiles, grid) - 1: a tile count near 2^31 keeps the fixed stride.
  const TileGrid big{132, 1 << 20};
  CHECK(tile_counter_for(ws, true, big, 2047, c) == c);
  CHECK(tile_counter_for(ws, true, big, 2048, c) == nullptr);
  for (const char* v : {"", "1"}) {
    ::setenv("MOE_FUSED_MOE_TILE_COUNTER", v, 1);
    CHECK(tile_counter_for(ws, true, g, 7, c) == c);
  }
  ::setenv("MOE_FUSED_MOE_TILE_COUNTER", "0", 1);
  CHECK(tile_counter_for(ws, true, g, 7, c) == nullptr);
  for (const char* bad : {"2", "yes", "01", " 1"}) {
    CAPTURE(bad);
    ::setenv("MOE_FUSED_MOE_TILE_COUNTER", bad, 1);
    CHECK_THROWS_WITH_AS((void)tile_counter_for(ws, true, g, 7, c), doctest::Contains("MOE_FUSED_MOE_TILE_COUNTER"),
                         InputError);
  }
  ::unsetenv("MOE_FUSED_MOE_TILE_COUNTER");
}

TEST_CASE("tensor maps: one validity check names the rule broken") {
  using moe::fused_moe::TileMapSpec;
  alignas(16) static uint16_t buf[64];
  const TileMapSpec ok{.base = buf, .dtype = moe::DType::BF16, .rows = 4096, .cols = 7168,
                       .row_stride_bytes = 7168 * 2, .box_rows = 128, .box_cols = 64};
  CHECK_NOTHROW(moe::fused_moe::validate_tile_map(ok));
  auto broken = [&](auto edit, const char* rule) {
    TileMapSpec s = ok;
    edit(s);
    CAPTURE(rule);
    try {
      moe::fused_moe::validate_tile_map(s);
      FAIL("accepted");
    } catch (const moe::InputError& e) {
      CHECK(std::string(e.what()).find(rule) != std::string::npos);
    }
  };
  broken([](TileMapSpec& s) { s.base = nullptr; }, "null");
  broken([&](TileMapSpec& s) { s.base = reinterpret_cast<const char*>(buf) + 2; }, "16-byte aligned");
  broken([](TileMapSpec& s) { s.rows = 0; }, "rows and cols");
  broken([](TileMapSpec& s) { s.cols = int64_t{1} << 32; }, "rows and cols");
  broken([](TileMapSpec& s) { s.row_stride_bytes = 7168 * 2 + 8; }, "multiple of 16");
  broken([](TileMapSpec& s) { s.row_stride_bytes = 7168; }, "hold a row");
  broken([](TileMapSpec& s) { s.box_cols = 32; }, "128 bytes");
  broken([](TileMapSpec& s) { s.box_rows = 257; }, "box rows");
  // 8-bit codes: 128 columns make a 128-byte box row.
  TileMapSpec q = ok;
  q.dtype = moe::DType::F8E4M3;
  q.row_stride_bytes = 7168;
  q.box_cols = 128;
  CHECK_NOTHROW(moe::fused_moe::validate_tile_map(q));
#if !defined(MOE_BACKEND_CUDA)
  moe::fused_moe::TensorMap map;
  CHECK_THROWS_AS(moe::fused_moe::encode_tile_map_2d(map, ok), moe::GpuError);
  CHECK_FALSE(moe::fused_moe::tensor_maps_supported());
#endif
}

TEST_CASE("tile order: grouped_tile visits every (m-block, n-tile) once, m fastest within a group") {
  for (int group_m : {1, 2, 3, 8, 16, 64})
    for (int num_m : {1, 2, 7, 8, 9, 33, 130})
      for (int n_tiles : {1, 2, 5, 16}) {
        CAPTURE(group_m);
        CAPTURE(num_m);
        CAPTURE(n_tiles);
        std::vector<int> seen(static_cast<size_t>(num_m) * n_tiles, 0);
        int prev_m = -1, prev_n = -1;
        for (int64_t rest = 0; rest < int64_t{num_m} * n_tiles; ++rest) {
          int m = -1, n = -1;
          moe::fused_moe::grouped_tile(rest, num_m, group_m, n_tiles, m, n);
          REQUIRE((m >= 0 && m < num_m && n >= 0 && n < n_tiles));
          ++seen[static_cast<size_t>(m) * n_tiles + n];
          // inside a group the next tile is the next m-block of the same n-tile, or the
          // group's first m-block of the next n-tile
          if (rest > 0 && m / group_m == prev_m / group_m) {
            if (m == prev_m + 1) {
              CHECK(n == prev_n);
            } else {
              CHECK(n == prev_n + 1);
              CHECK(m == m / group_m * group_m);
            }
          }
          prev_m = m;
          prev_n = n;
        }
        CHECK(std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; }));
      }
}

TEST_CASE("tile order: one m-block per group on a ws tile when the mean expert has one, else 8; MOE_FUSED_MOE_GROUP_M overrides") {
  using moe::fused_moe::parse_tile;
  using moe::fused_moe::tile_group_m;
  const auto ws = parse_tile("128x256x64-w8-s4-wgmma_ws");
  const auto wgmma = parse_tile("128x256x64-w8-s4-wgmma");
  const auto mma = parse_tile("16x64x128-w4-s3-mma");
  ::unsetenv("MOE_FUSED_MOE_GROUP_M");
  CHECK(tile_group_m(4096 * 8, 256, ws) == 1);  // DeepSeek-V3 M = 4096: 128 rows per expert, one block
  CHECK(tile_group_m(4096 * 8 + 1, 256, ws) == 8);
  CHECK(tile_group_m(1024 * 2, 8, ws) == 8);    // Mixtral M = 1024: 256 rows per expert
  CHECK(tile_group_m(1, 8, ws) == 1);
  CHECK(tile_group_m(4096 * 8, 256, wgmma) == 8);  // the older tiles: not measured with 1
  CHECK(tile_group_m(16 * 8, 256, mma) == 8);
  ::setenv("MOE_FUSED_MOE_GROUP_M", "", 1);
  CHECK(tile_group_m(1024 * 2, 8, ws) == 8);
  CHECK(tile_group_m(4096 * 8, 256, ws) == 1);
  for (const char* ok : {"1", "2", "16", "64"}) {
    ::setenv("MOE_FUSED_MOE_GROUP_M", ok, 1);
    CHECK(tile_group_m(1024 * 2, 8, ws) == std::atoi(ok));
    CHECK(tile_group_m(4096 * 8, 256, ws) == std::atoi(ok));
    CHECK(tile_group_m(16 * 8, 256, mma) == std::atoi(ok));
  }
  for (const char* bad : {"0", "65", "-2", "4x", "x", " 4", "99999999999"}) {
    CAPTURE(bad);
    ::setenv("MOE_FUSED_MOE_GROUP_M", bad, 1);
    try {
      (void)tile_group_m(4096 * 8, 256, ws);
      FAIL("accepted");
    } catch (const moe::InputError& e) {
      CHECK(std::string(e.what()).find("MOE_FUSED_MOE_GROUP_M") != std::string::npos);
    }
  }
  ::unsetenv("MOE_FUSED_MOE_GROUP_M");
}

namespace {
// The expert of each m-block as the align step writes them: runs of one expert, experts
// increasing, 1..max_run blocks each, at least min_blocks blocks in all.
std::vector<int> random_expert_runs(std::mt19937& rng, size_t min_blocks, int max_run) {
  std::vector<int> expert_of;
  for (int e = 0; expert_of.size() < min_blocks; ++e)
    expert_of.insert(expert_of.end(), 1 + static_cast<int>(rng() % static_cast<unsigned>(max_run)), e);
  return expert_of;
}
}  // namespace

TEST_CASE("tile order: expert_run_tile visits every (m-block, n-tile) once, an expert's run m fastest") {
  std::mt19937 rng(7);
  for (int window : {1, 2, 3, 8, 19, 64})
    for (int n_tiles : {1, 2, 5, 16})
      for (int trial = 0; trial < 8; ++trial) {
        // runs of 1-9 blocks (a run may straddle windows)
        const std::vector<int> expert_of = random_expert_runs(rng, 40 + 7 * static_cast<size_t>(trial), 9);
        const int valid_m = static_cast<int>(expert_of.size());
        CAPTURE(window);
        CAPTURE(n_tiles);
        CAPTURE(valid_m);
        auto expert_at = [&](int b) { return expert_of[static_cast<size_t>(b)]; };
        std::vector<int> seen(static_cast<size_t>(valid_m) * n_tiles, 0);
        int prev_m = -1, prev_n = -1;
        for (int64_t rest = 0; rest < int64_t{valid_m} * n_tiles; ++rest) {
          int m = -1, n = -1;
          moe::fused_moe::expert_run_tile(rest, valid_m, window, n_tiles, expert_at, m, n);
          REQUIRE((m >= 0 && m < valid_m && n >= 0 && n < n_tiles));
          ++seen[static_cast<size_t>(m) * n_tiles + n];
          // within a window an expert's m-blocks are neighbours for each n-tile: the tile after
          // (m, n) is (m + 1, n) when m + 1 is the same expert in the same window
          if (rest > 0 && prev_m + 1 < valid_m && expert_at(prev_m + 1) == expert_at(prev_m) &&
              (prev_m + 1) / window == prev_m / window)
            CHECK((m == prev_m + 1 && n == prev_n));
          prev_m = m;
          prev_n = n;
        }
        CHECK(std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; }));
        int m = -1, n = -1;  // past the valid blocks: no rows
        moe::fused_moe::expert_run_tile(int64_t{valid_m} * n_tiles, valid_m, window, n_tiles, expert_at, m, n);
        CHECK(m == valid_m);
        moe::fused_moe::expert_run_tile(int64_t{valid_m + 3} * n_tiles + 1, valid_m, window, n_tiles, expert_at, m, n);
        CHECK(m == valid_m);
      }
}

TEST_CASE("tile order: a 2-block cluster's tile pairs (2j, 2j + 1) share a weight slice along the runs, never in group 1") {
  // A cluster shares a slice when its two tiles are one expert's m-blocks at one n-tile. With
  // an even n_tiles every run piece (a run cut at the window) starts at an even tile, so a piece
  // of L m-blocks gives its L * n_tiles / 2 pairs; those whose second tile does not start a new
  // n-tile (2j + 1 not a multiple of L) share: all of them for even L, none for L = 1. The fixed
  // groups of one m-block (DeepSeek-V3 M = 4096: 32768 slots over 256 experts x 128 rows) pair n
  // with n + 1 of one m-block: no pair shares.
  std::mt19937 rng(11);
  for (int window : {1, 3, 20, 64})
    for (int n_tiles : {2, 12, 16, 28})
      for (int trial = 0; trial < 6; ++trial) {
        // runs of 1-3 m-blocks, as at 128 +- 11 rows per expert and beyond
        const std::vector<int> expert_of = random_expert_runs(rng, 60 + 11 * static_cast<size_t>(trial), 3);
        const int valid_m = static_cast<int>(expert_of.size());
        CAPTURE(window);
        CAPTURE(n_tiles);
        CAPTURE(valid_m);
        auto expert_at = [&](int b) { return expert_of[static_cast<size_t>(b)]; };
        int64_t expected = 0;  // from the run pieces
        for (int g0 = 0; g0 < valid_m;) {
          int g1 = g0 + 1;
          while (g1 < valid_m && expert_at(g1) == expert_at(g0) && g1 / window == g0 / window) ++g1;
          const int L = g1 - g0;
          for (int64_t j = 0; j < int64_t{L} * n_tiles / 2; ++j) expected += (2 * j + 1) % L != 0 ? 1 : 0;
          g0 = g1;
        }
        // The pair's two tiles: one n-tile of two m-blocks of one expert.
        auto shares = [&](int m0, int n0, int m1, int n1) {
          return n0 == n1 && m0 != m1 && expert_at(m0) == expert_at(m1) ? 1 : 0;
        };
        int64_t shared_runs = 0, shared_group1 = 0;
        for (int64_t t = 0; t + 1 < int64_t{valid_m} * n_tiles; t += 2) {
          int m0, n0, m1, n1;
          moe::fused_moe::expert_run_tile(t, valid_m, window, n_tiles, expert_at, m0, n0);
          moe::fused_moe::expert_run_tile(t + 1, valid_m, window, n_tiles, expert_at, m1, n1);
          shared_runs += shares(m0, n0, m1, n1);
          moe::fused_moe::grouped_tile(t, valid_m, 1, n_tiles, m0, n0);
          moe::fused_moe::grouped_tile(t + 1, valid_m, 1, n_tiles, m1, n1);
          shared_group1 += shares(m0, n0, m1, n1);
        }
        CHECK(shared_runs == expected);
        CHECK(shared_group1 == 0);
        if (window >= 3) CHECK(shared_runs > 0);  // runs of 2-3 blocks exist and are not all cut
      }
}

TEST_CASE("tile order: expert runs by default on the ws tiles, ~36 MB of rows a window; 0 / 1 force") {
  using moe::fused_moe::expert_run_window;
  using moe::fused_moe::parse_tile;
  const auto ws = parse_tile("128x256x64-w8-s4-wgmma_ws");
  const auto mma = parse_tile("16x64x128-w4-s3-mma");
  const auto wgmma = parse_tile("128x256x64-w8-s4-wgmma");  // not ws: the runs only when asked
  ::unsetenv("MOE_FUSED_MOE_GROUP_BY_EXPERT");
  CHECK(expert_run_window(7168, ws) == 20);  // 36 MiB / (128 rows x 14336 bytes)
  CHECK(expert_run_window(16, ws) == 64);    // at most kMaxGroupM
  CHECK(expert_run_window(7168, wgmma) == 0);
  CHECK(expert_run_window(7168, mma) == 0);
  ::setenv("MOE_FUSED_MOE_GROUP_BY_EXPERT", "0", 1);
  CHECK(expert_run_window(7168, ws) == 0);
  ::setenv("MOE_FUSED_MOE_GROUP_BY_EXPERT", "1", 1);
  CHECK(expert_run_window(7168, ws) == 20);
  CHECK(expert_run_window(7168, wgmma) == 20);  // the older 128-row tile when asked
  CHECK(expert_run_window(7168, mma) == 0);     // 16-row tiles keep the fixed groups
  for (const char* bad : {"2", "yes", " 1", "10"}) {
    CAPTURE(bad);
    ::setenv("MOE_FUSED_MOE_GROUP_BY_EXPERT", bad, 1);
    CHECK_THROWS_AS((void)expert_run_window(7168, ws), moe::InputError);
  }
  ::unsetenv("MOE_FUSED_MOE_GROUP_BY_EXPERT");
}
