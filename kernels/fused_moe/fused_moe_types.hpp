// Host-side types of the fused MoE family, shared by the kernels, the CPU
// reference, the heuristic config chooser, tests and benchmarks. No GPU code:
// this header compiles in every backend (-Dgpu=none included).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "kernels/fused_moe/tile.hpp"
#include "moe/dtype.hpp"

namespace moe::fused_moe {

// act(gate) * up of stage 1.
enum class Activation : int {
  SiLU = 0,      // g / (1 + exp(-g))
  GeluTanh = 1,  // 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3)))
};

// Where the routed weight w_j of (token, slot j) is applied.
enum class RouterWeight : int {
  // out = sum_j w_j * W2 (act(W1g x) * (W1u x))       (default)
  OnOutput = 0,
  // out = sum_j W2 (act(W1g (w_j x)) * (W1u (w_j x)))  (vLLM's apply_router_weight_on_input):
  // the kernel scales the fp32 gate/up accumulators by w_j, which equals scaling x
  // in exact arithmetic (x * w_j is never rounded to the input dtype).
  OnInput = 1,
};

std::string_view activation_name(Activation a);
std::string_view router_weight_name(RouterWeight r);
Activation parse_activation(std::string_view s);      // "silu" | "gelu_tanh"
RouterWeight parse_router_weight(std::string_view s);  // "output" | "input"

// Sizes of one MoE layer.
//   hidden (M, model_dim); w1 (E, 2*inter, model_dim), rows [0, inter) gate,
//   [inter, 2*inter) up; w2 (E, model_dim, inter); topk_weights (M, top_k) fp32;
//   topk_ids (M, top_k) int32; out (M, model_dim).
struct Problem {
  int64_t tokens = 0;     // M
  int64_t model_dim = 0;  // K of stage 1, N of stage 2
  int64_t inter_dim = 0;  // N of stage 1 (per half), K of stage 2
  int32_t experts = 0;    // E
  int32_t top_k = 0;
  DType dtype = DType::BF16;  // hidden, w1, w2, intermediate and out
  Activation act = Activation::SiLU;
  RouterWeight router_weight = RouterWeight::OnOutput;

  int64_t slots() const { return tokens * top_k; }  // M*k: rows of the intermediate
  // Throws InputError naming the first bad field (sizes, top_k, dtype).
  void validate() const;
  // Useful FLOPs of the layer: 2*M*k*(2*inter*model_dim) + 2*M*k*(model_dim*inter).
  double flops() const { return 6.0 * static_cast<double>(slots()) * static_cast<double>(inter_dim) * static_cast<double>(model_dim); }
};

// Tile configuration of one stage: a compiled tile (kTileShapes; the Tile
// fields are described in tile.hpp) and its run-time choices.
//   split_k    stage 2 only: K split into split_k slices, each writing its own
//              fp32 partial rows, summed in fixed order by the reduce kernel
//   persistent grid = SMs x resident blocks, each block walks the tile list
//              (tile count read from the device's num_tokens_post_padded);
//              otherwise one block per tile of the worst-case block count.
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
};
#endif
inline constexpr int kNumTileShapes = static_cast<int>(sizeof(kTileShapes) / sizeof(kTileShapes[0]));
// Dynamic shared memory of a shape (bytes).
// (wgmma tiles add 1 KiB to align the swizzle atoms to 1024 bytes.)
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
