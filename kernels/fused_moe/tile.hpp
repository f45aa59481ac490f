// A GEMM tile of the fused MoE families (bf16 fused_moe and fused_moe_q8): what
// it is, its name, and the lookup in a family's table of compiled shapes. Host
// code; the structs are literal types, so device code indexes the tables too.
//
// Tile names, produced by Tile::name() and read by parse_tile() only:
//
//   <block_m>x<block_n>x<block_k>-w<warps>-s<stages>-<mma>[-c<cluster>]
//                                                   e.g. 128x256x64-w8-s4-wgmma, 128x256x64-w8-s4-wgmma_ws-c2
//
//   block_m, block_n, block_k, warps, stages   decimal integers in [1, 4096]
//                                              (no sign, no leading zero)
//   mma    mma       the MMA atom: mma.sync on NVIDIA, MFMA on AMD
//          wgmma     Hopper warpgroup MMA (sm_90a builds), every warp loads and multiplies
//          wgmma_ws  Hopper warpgroup MMA, warp-specialized (sm_90a builds): one extra
//                    producer warpgroup loads (weights by TMA, gathered token rows by
//                    cp.async) into an mbarrier ring; `warps` counts the MMA warps only
//   cluster  (wgmma_ws only; absent = 1) thread blocks per cluster: with 2, the blocks of
//            two neighbouring m-blocks of one expert and n-tile each load half of the
//            weight tile and multicast it to both (the cluster takes tile pairs 2j, 2j+1,
//            one pair per cluster or, persistent, walking the pairs)
//
// The fields mean what they mean in TileShape below. The name holds no '/', so
// it is one field of a Google Benchmark name (tile:<name>) and of a verify
// --where filter. A name says nothing about the warp layout (warps_m x warps_n):
// within one table no two shapes differ only there (tests check it).
#pragma once
#include <span>
#include <string>
#include <string_view>

namespace moe::fused_moe {

struct Tile {
  int block_m = 0;  // rows of the aligned routing block (= the align block_size)
  int block_n = 0;  // columns of the output tile (stage 1 of fused_moe: half gate, half up)
  int block_k = 0;  // reduction slice per pipeline stage (elements)
  int warps = 0;    // warps (wavefronts on AMD) per block
  int stages = 0;   // shared-memory pipeline depth
  bool wgmma = false;
  bool ws = false;  // warp-specialized wgmma pipeline (implies wgmma)
  int cluster = 1;  // thread blocks per cluster (wgmma_ws: 1 or 2)

  std::string name() const;
  bool operator==(const Tile&) const = default;
};

// The tile a name says; InputError naming the field that is wrong
// ("tile name '16x64-w4': field 'block_k': missing ...").
Tile parse_tile(std::string_view name);

// One compiled shape: a tile and the layout of its warps.
struct TileShape {
  int block_m, block_n, block_k, warps_m, warps_n, stages;
  bool wgmma;       // Hopper warpgroup MMA main loop (sm_90a builds only); else the MMA atom
  bool ws = false;  // warp-specialized wgmma: warps_m x warps_n MMA warps plus a producer warpgroup
  int cluster = 1;  // wgmma_ws: 2 = weight tiles multicast to the block pair of a cluster
  constexpr int warps() const { return warps_m * warps_n; }
  constexpr Tile tile() const { return Tile{block_m, block_n, block_k, warps(), stages, wgmma, ws, cluster}; }
  std::string name() const { return tile().name(); }
};

// Rows of one weight box (bulk tensor copy) of a wgmma_ws tile: stage 1 loads the
// gate and the up rows of its columns as two boxes; stage 2 one box of all block_n
// rows, or two halves when the cluster's two blocks each load (and multicast) one.
// The host encodes the tensor map with it and the kernel issues its copies by it.
constexpr int ws_weight_box_rows(int block_n, int stage, int cluster) {
  return (stage == 1 || cluster > 1) ? block_n / 2 : block_n;
}

// Shared memory of a wgmma_ws tile's per-slice scales (the 8-bit block scheme): per ring
// slot one float per A row and one weight-block scale per group of columns that share one
// (a whole column half, or, where a half of block_n 192 straddles two 128-row blocks, 16 or
// 32 columns: at most kWsMaxWeightScales over both halves). The producer copies them with the
// slice; the host adds this to the tile's dynamic shared memory and the kernel places them
// after the weight slots.
inline constexpr int kWsMaxWeightScales = 16;
constexpr int ws_slice_scale_floats(int block_m) { return block_m + kWsMaxWeightScales; }
constexpr int ws_slice_scale_bytes(int block_m, int stages) { return stages * ws_slice_scale_floats(block_m) * 4; }

// Index of the shape of `shapes` that is `t`, or -1.
int find_tile_shape(std::span<const TileShape> shapes, const Tile& t);
// The one validity check of a tile: "" when `t` is one of `shapes`, else why
// not, listing the compiled names.
std::string why_not_compiled(std::span<const TileShape> shapes, const Tile& t);

}  // namespace moe::fused_moe
