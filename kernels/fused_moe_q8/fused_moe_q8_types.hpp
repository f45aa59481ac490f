// Host-side launch types of the quantized fused MoE layer (compiled tile shapes,
// tile configs, the heuristic chooser); the schemes, scale layouts and the problem
// are moe/contract/fused_moe_q8.hpp. No GPU code: compiles in every backend.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "kernels/fused_moe/fused_moe_types.hpp"
#include "kernels/quant/quant.hpp"
#include "moe/contract/fused_moe_q8.hpp"

namespace moe::fused_moe_q8 {

// Compiled tile shapes (the representation and names of kernels/fused_moe/tile.hpp).
// block_k counts 8-bit elements (= bytes), so the 128-byte rows of the wgmma tiles
// hold 128 K elements = one block-scheme group.
using fused_moe::Tile;
using fused_moe::TileShape;
#if defined(MOE_BACKEND_HIP)
// gfx90a: MFMA 16x16x16 (i8 native; fp8 codes widened exactly to bf16 in registers).
inline constexpr TileShape kQ8TileShapes[] = {
    {16, 64, 256, 1, 2, 2, false},
    {32, 64, 256, 1, 2, 2, false},
    {64, 128, 128, 2, 2, 2, false},
    {128, 128, 64, 2, 2, 2, false},
};
#else
// NVIDIA: mma.sync m16n8k32 (e4m3: sm_89+, s8: sm_80+) with the cp.async
// pipeline; wgmma m64nNk32 (sm_90a builds) on the same 128B-swizzled tiles.
inline constexpr TileShape kQ8TileShapes[] = {
    {16, 64, 256, 1, 4, 4, false},   // decode: 80 KiB in flight, 2 blocks/SM
    {16, 64, 256, 1, 4, 3, false},   // decode, 60 KiB, 3 blocks/SM
    {32, 64, 256, 1, 4, 4, false},   // 96 KiB
    {64, 128, 128, 2, 2, 4, false},  // 96 KiB
    {64, 256, 128, 4, 2, 4, true},   // wgmma: 2 warpgroups side by side, m64n128k32 each, 161 KiB
    {128, 128, 128, 8, 1, 4, true},  // wgmma: 2 warpgroups stacked, m64n128k32 each, 129 KiB
    {128, 256, 128, 8, 1, 4, true},  // wgmma: 2 warpgroups stacked, m64n256k32 each, 193 KiB (not block scheme)
    // decode tiles chosen from the BM_q8_tile sweep (H200, 2026-11-26): at 1-8 rows per
    // expert the 8-warp tile, at 9-24 the 4-warp one, took 1-18 % less time than 16x64x256
    // w4 s3 (1.2x at Mixtral M = 64 and Qwen3 M = 256). A 6-stage 16x64x128 and a
    // one-warpgroup wgmma 64x128 never won.
    {16, 128, 256, 1, 8, 3, false},  // 8 warps x 16 columns, 108 KiB
    {16, 128, 128, 1, 4, 4, false},  // 4 warps x 32 columns, 80 KiB
    // decode on wgmma with swapped operands (q8_swapped): 2 warpgroups of m64n16k32, the weight
    // rows as M and the 16 token rows as N; e4m3 native, promoted every 128 of K; 73.5 KiB with
    // the block scheme's per-slot scales
    {16, 128, 128, 1, 8, 4, true},
    // warp-specialized (kernels/fused_moe/ws_kernel.cuh): a producer warpgroup (TMA weights,
    // gathered rows) and 2 MMA warpgroups m64n128k32, fp8 promoted every 128 of K, 193 KiB
    {128, 128, 128, 8, 1, 6, true, true},
    // the same in 2-block clusters: the m-block pair of one expert shares each weight
    // slice by multicast (kernels/fused_moe/ws_kernel.cuh); one pair per cluster, or persistent
    {128, 128, 128, 8, 1, 6, true, true, 2},
    // wider: m64n192k32 per warpgroup, 5 slots (201 KiB). Per K slice the wgmma read 64 KiB of
    // shared memory and the copies write 40 KiB for 6.3 MFLOP (128x128: 48 + 32 KiB for 4.2),
    // so it leans less on shared-memory bandwidth (the block scheme too: a half of 96 columns
    // may straddle two 128-row weight blocks, so each slot holds two weight scales per half)
    {128, 192, 128, 8, 1, 5, true, true},
};
#endif
inline constexpr int kNumQ8TileShapes = static_cast<int>(sizeof(kQ8TileShapes) / sizeof(kQ8TileShapes[0]));
// A wgmma tile of fewer than 64 rows swaps its operands: the weight slice is wgmma's A (64
// rows per warpgroup), the token rows its N. Like the ws tile, it promotes its fp8
// accumulator into fp32 after every 128 of K.
constexpr bool q8_swapped(const Tile& t) { return t.wgmma && !t.ws && t.block_m < 64; }

// The swapped tile's per-slot scales of the block scheme, copied with the slice's codes: the
// block_m token rows' activation scales, then one weight-block scale per 8 weight rows of the
// slot (an aligned 8-row group lies in one 128-row block; a thread's accumulators cover two such groups).
constexpr int q8_swap_scale_floats(const Tile& t) { return t.block_m + t.block_n / 8; }

// (wgmma tiles: + 1 KiB to align the swizzle atoms; wgmma_ws tiles and swapped tiles: + the block
// scheme's per-slice scales, compiled into every scheme's kernel of the shape.)
constexpr int64_t q8_tile_smem_bytes(const TileShape& t) {
  return int64_t{t.stages} * (t.block_m + t.block_n) * t.block_k + (t.wgmma ? 1024 : 0) +
         (t.ws ? fused_moe::ws_slice_scale_bytes(t.block_m, t.stages) : 0) +
         (q8_swapped(t.tile()) ? int64_t{t.stages} * q8_swap_scale_floats(t.tile()) * 4 : 0);
}
constexpr bool q8_promotes_every_group(const Tile& t) { return t.ws || q8_swapped(t); }

// The cp.async/wgmma tile's static shared memory beside its ring: per tile row a slot id, an
// A row and a routed weight (the kernel asserts its arrays against this).
inline constexpr int64_t kQ8StaticBytesPerRow = sizeof(int32_t) + sizeof(int64_t) + sizeof(float);
// sm_90: shared memory per SM, and what the SM reserves beside each resident block.
inline constexpr int64_t kSm90SmemPerSm = 228 * 1024;
inline constexpr int64_t kSmemReservedPerBlock = 1024;

// The blocks per SM that the register allocation of a cp.async/wgmma kernel aims at (its launch
// bounds; 0: ptxas's own choice). The block scheme's 8-warp tile (16x128x256, 108 KiB: two fit
// in an SM) took 171 registers, so one block per SM, where the other schemes' kernels of the
// tile take 128 on their own and run two; asked for 2 it takes 128 and spills 36 bytes. On the
// 4-warp tiles a target of 2 allows 256 registers, which ptxas takes (16x64x256: 140 -> 244),
// so it is asked only where it caps at 128: 8 warps. (CUDA only: under HIP the launch bounds'
// second argument counts waves per SIMD.)
// The swapped decode tile asks for every block its shared memory allows in all schemes.
constexpr int q8_min_blocks_per_sm(const TileShape& t, bool block_scheme) {
  const int64_t per_block = q8_tile_smem_bytes(t) + kQ8StaticBytesPerRow * t.block_m + kSmemReservedPerBlock;
  const int64_t fit = kSm90SmemPerSm / per_block;
  if (q8_swapped(t.tile())) return fit >= 2 ? static_cast<int>(fit) : 0;
  return block_scheme && !t.wgmma && t.warps() == 8 && fit >= 2 ? 2 : 0;
}

// Whether the block scheme's kernels of a shape exist: the older wgmma tiles keep a second
// accumulator set in that scheme, so at most 128 columns per warpgroup; the ws tile promotes
// every slice into one set in any fp8 scheme.
constexpr bool q8_block_compiled(const TileShape& t) { return !(t.wgmma && !t.ws && t.block_n / t.warps_n > 128); }

// One stage's config: a compiled tile (kQ8TileShapes) and its run-time choices.
struct Q8TileConfig : Tile {
  int split_k = 1;  // stage 2 only
  bool persistent = false;
  // Empty when valid; else one line saying why not. stage 1 or 2.
  std::string why_invalid(int stage, Scheme scheme) const;
  bool is_valid(int stage, Scheme scheme) const { return why_invalid(stage, scheme).empty(); }
  // "<tile name> sk<split_k>[ persistent]"
  std::string to_string() const;
  bool operator==(const Q8TileConfig&) const = default;
};
// K elements each of the cfg.split_k ranges covers (whole block_k tiles; the last may
// run past K): the kernel's k_tiles_per_split * block_k, and where the reference's
// model of Hopper's fp8 accumulation starts a fresh accumulator.
int64_t q8_k_per_split(int64_t K, const Q8TileConfig& cfg);
Q8TileConfig q8_config_of_shape(int shape);

struct Q8LayerConfig {
  Q8TileConfig stage1, stage2;
  int block_size() const { return stage1.block_m; }
  std::string why_invalid(Scheme scheme) const;
  bool is_valid(Scheme scheme) const { return why_invalid(scheme).empty(); }
  std::string to_string() const;
};

struct Q8DeviceLimits {
  int sm_count = 132;
  int64_t max_smem_per_block = 232448;
  bool wgmma = false;  // sm_90a build on a Hopper GPU
  bool fp8_mma = true;  // e4m3 mma.sync (sm_89+) / gfx90a software path
};

// Whether a compiled shape takes the problem's sizes: in the block scheme a wgmma_ws
// tile scales each half of its columns by one 128-row weight block, so the half
// (block_n / 2) must divide 128 and inter_dim.
bool q8_shape_fits(const TileShape& t, const Q8Problem& p);

// Heuristic: block_m from rows per expert (NVIDIA: <= 8 rows 16x128x256 w8, <= 24
// 16x128x128; beyond, fp8 schemes take the warp-specialized 128x128x128 tile where it
// fits, int8 (and fp8 where it does not fit) <= 96 wgmma 64x256 (32x64x256 up to 40
// rows without wgmma), else wgmma 128x256 / 128x128 for the block scheme; measured by
// BM_q8_tile), wgmma tiles when compiled; split-K of stage 2 when there are fewer than
// two waves of tiles.
Q8LayerConfig choose_q8_config(const Q8Problem& p, const Q8DeviceLimits& dev);
// Both stages on one shape (tests sweep every shape).
Q8LayerConfig q8_config_for_shape(const Q8Problem& p, const Q8DeviceLimits& dev, int shape);

}  // namespace moe::fused_moe_q8
