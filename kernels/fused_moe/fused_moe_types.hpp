// Host-side launch types of the fused MoE family (tile configs, compiled tile
// shapes), shared by the kernels, the heuristic config chooser, tests and
// benchmarks; the layer's contract (Problem, Activation, RouterWeight) is
// moe/contract/fused_moe.hpp. No GPU code: compiles in every backend.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "kernels/fused_moe/tile.hpp"
#include "moe/contract/fused_moe.hpp"
#include "moe/dtype.hpp"

namespace moe::fused_moe {

// Tile configuration of one stage: a compiled tile (kTileShapes; the Tile
// fields are described in tile.hpp) and its run-time choices.
//   split_k    stage 2 only: K split into split_k slices, each writing its own
//              fp32 partial rows, summed in fixed order by the reduce kernel
//   persistent grid = SMs x resident blocks, each block walks the tile list
//              (tile count read from the device's num_tokens_post_padded);
//              otherwise one block per tile of the worst-case block count
//              (always so for tiles of cluster > 1).
struct TileConfig : Tile {
  int split_k = 1;
  bool persistent = false;

  // Empty when valid; else one line saying why not. `stage` is 1 or 2.
  std::string why_invalid(int stage) const;
  bool is_valid(int stage) const { return why_invalid(stage).empty(); }
  // "<tile name> sk<split_k>[ persistent]"
  std::string to_string() const;
  bool operator==(const TileConfig&) const = default;
};

// Both stages of a layer. They share block_m: the aligned routing arrays are
// blocked by it (the align block_size).
struct LayerConfig {
  TileConfig stage1;
  TileConfig stage2;
  int block_size() const { return stage1.block_m; }
  std::string why_invalid() const;
  bool is_valid() const { return why_invalid().empty(); }
  std::string to_string() const;
};

// The compiled tile shapes, per backend (the CPU-only build uses the CUDA table
// so configs can be checked and chosen without a GPU). A TileConfig is valid
// when its tile is one of these.
#if defined(MOE_BACKEND_HIP)
// gfx90a: 64-wide wavefronts, MFMA 16x16x16 atoms, 64 KiB LDS; loads are synchronous
// so two stages suffice.
inline constexpr TileShape kTileShapes[] = {
    {16, 64, 128, 1, 2, 2, false},
    {32, 64, 128, 1, 2, 2, false},
    {64, 128, 64, 2, 2, 2, false},
    {128, 128, 32, 2, 2, 2, false},
};
#else
// sm_90: mma.sync m16n8k16 atoms with a cp.async pipeline (any sm_80+ build), and
// wgmma shapes (warpgroups of 4 warps x 16 rows = m64 slabs; warps_n warpgroup
// columns; 128-byte swizzled K-major tiles) that exist only in -Dnvcc_arch=sm_90a
// builds (DeviceLimits::wgmma says so at run time).
inline constexpr TileShape kTileShapes[] = {
    {16, 64, 128, 1, 4, 4, false},    // decode: weight streaming, 80 KiB, 2 blocks/SM
    {32, 64, 128, 1, 4, 4, false},    // 96 KiB
    {16, 64, 128, 1, 4, 3, false},    // decode, 3 stages: 60 KiB, 3 blocks/SM (fewer, fuller waves)
    {64, 128, 64, 2, 2, 4, false},    // 96 KiB
    {128, 128, 64, 2, 4, 4, false},   // 128 KiB
    {64, 256, 64, 4, 2, 4, true},     // wgmma: 2 warpgroups side by side, m64n128 each, 161 KiB
    {128, 256, 64, 8, 1, 4, true},    // wgmma: 2 warpgroups stacked, m64n256 each, 193 KiB
    {128, 256, 64, 8, 1, 4, true, true},  // wgmma_ws: + a producer warpgroup (TMA weights, gathered rows), 193 KiB
    // wgmma_ws in 2-block clusters: the blocks of m-blocks 2i, 2i+1 of one expert (same
    // n-tile) each load half of every weight slice and multicast it to both, halving the
    // weight bytes each block reads from L2; one tile pair per cluster, or persistent
    {128, 256, 64, 8, 1, 4, true, true, 2},
};
#endif
inline constexpr int kNumTileShapes = static_cast<int>(sizeof(kTileShapes) / sizeof(kTileShapes[0]));
// Dynamic shared memory of a shape (bytes).
// (wgmma and wgmma_ws tiles add 1 KiB to align the swizzle atoms to 1024 bytes.)
constexpr int64_t tile_smem_bytes(const TileShape& t) {
  return int64_t{t.stages} * (t.block_m + t.block_n) * t.block_k * 2 + (t.wgmma ? 1024 : 0);
}

// Upper bound on the number of aligned blocks: every block holds at least one
// routed slot and each of the at most min(E, M*k) non-empty experts adds at most
// block_size-1 padding slots, so blocks <= (M*k + min(E, M*k)*(block_size-1)) / block_size.
inline int64_t max_aligned_blocks(int64_t slots, int64_t experts, int64_t block_size) {
  const int64_t nonempty = slots < experts ? slots : experts;
  return (slots + nonempty * (block_size - 1)) / block_size;
}

}  // namespace moe::fused_moe
