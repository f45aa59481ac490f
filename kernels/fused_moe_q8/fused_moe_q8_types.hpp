// Host-side types of the quantized (FP8 e4m3 / INT8 A8W8) fused MoE layer,
// shared by the kernels, the CPU reference, tests and benchmarks. No GPU code:
// compiles in every backend.
//
// Schemes and the scale layouts the GEMMs read (all fp32):
//   scheme          a1 (hidden, M x H)      w1 (E, 2I, H)             a2 (inter, Mk x I)   w2 (E, H, I)
//   fp8_tensor      (1) dynamic per tensor  (E) per expert            (1) per tensor       (E)
//   fp8_token       (M) per token           (E, 2I) per out channel   (Mk) per slot row    (E, H)
//   fp8_block       (M, ceil(H/128))        (E, ceil(2I/128), ceil(H/128))  (Mk, ceil(I/128)) (E, ceil(H/128), ceil(I/128))
//   int8_token      (M) per token           (E, 2I) per out channel   (Mk) per slot row    (E, H)
// i.e. exactly the layouts of kernels/quant (PerTensor, PerRow, PerGroup(128)
// row-major, PerBlock(128x128)), so the quantizers produce them directly.
// Codes: fp8 e4m3fn on NVIDIA (fnuz on gfx94x, not compiled here), int8 symmetric.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "kernels/fused_moe/fused_moe_types.hpp"
#include "kernels/quant/quant.hpp"

namespace moe::fused_moe_q8 {

enum class Scheme : int { Fp8Tensor = 0, Fp8Token = 1, Fp8Block = 2, Int8Token = 3 };
inline constexpr Scheme kAllSchemes[] = {Scheme::Fp8Tensor, Scheme::Fp8Token, Scheme::Fp8Block, Scheme::Int8Token};
std::string_view scheme_name(Scheme s);  // "fp8_tensor" | "fp8_token" | "fp8_block" | "int8_token"
Scheme parse_scheme(std::string_view s);
inline bool is_int8(Scheme s) { return s == Scheme::Int8Token; }
inline bool is_block(Scheme s) { return s == Scheme::Fp8Block; }
inline constexpr int64_t kGroup = 128;  // K group of the block scheme (activation 1x128, weight 128x128)

// One quantized layer: the bf16/fp16 problem (hidden and out dtype = base.dtype;
// the intermediate between the stages is base.dtype too, then quantized) + scheme.
struct Q8Problem {
  fused_moe::Problem base;
  Scheme scheme = Scheme::Fp8Tensor;
  Fp8Format fp8 = Fp8Format::E4M3FN;
  quant::QType qtype() const { return is_int8(scheme) ? quant::QType::INT8 : quant::fp8_qtype(fp8); }
  void validate() const;  // InputError naming the first bad field
  // The quantizer problems of the four tensors (layouts of the table above).
  quant::QuantProblem a1_quant() const;  // hidden (M, H), in dtype base.dtype
  quant::QuantProblem a2_quant() const;  // intermediate (M*k, I), in dtype base.dtype
  quant::QuantProblem w1_quant(DType in = DType::F32) const;  // (E, 2I, H)
  quant::QuantProblem w2_quant(DType in = DType::F32) const;  // (E, H, I)
  std::string summary() const;
  // Weight bytes of the experts hit by `hit_experts` (codes + scales): the fp8 floor.
  double weight_bytes(int64_t hit_experts) const;
};

// A bf16-activation problem of the given sizes (the form every test, verify case
// and benchmark builds): tokens M, model_dim H, inter_dim I, experts E, top_k k.
Q8Problem make_q8_problem(Scheme s, int64_t M, int64_t H, int64_t I, int32_t E, int32_t k);

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
};
#endif
inline constexpr int kNumQ8TileShapes = static_cast<int>(sizeof(kQ8TileShapes) / sizeof(kQ8TileShapes[0]));
constexpr int64_t q8_tile_smem_bytes(const TileShape& t) {
  return int64_t{t.stages} * (t.block_m + t.block_n) * t.block_k + (t.wgmma ? 1024 : 0);
}

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

// Heuristic: block_m from rows per expert (NVIDIA: <= 8 rows 16x128x256 w8, <= 24
// 16x128x128, <= 96 wgmma 64x256 (32x64x256 up to 40 rows without wgmma), else wgmma
// 128x256 / 128x128 for the block scheme; measured by BM_q8_tile), wgmma tiles when
// compiled; split-K of stage 2 when there are fewer than two waves of tiles.
Q8LayerConfig choose_q8_config(const Q8Problem& p, const Q8DeviceLimits& dev);
// Both stages on one shape (tests sweep every shape).
Q8LayerConfig q8_config_for_shape(const Q8Problem& p, const Q8DeviceLimits& dev, int shape);

}  // namespace moe::fused_moe_q8
