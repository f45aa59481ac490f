// Tensor maps for the bulk tensor copy engine (TMA, sm_90): a 2-D row-major
// tensor described once on the host, then read by kernels one box (tile) at a
// time with tma_load_2d (kernels/fused_moe/tma.cuh) into shared memory.
//
// Worked layout example: the gate/up weights of expert e of Mixtral-8x7B (bf16,
// w1 is (8, 28672, 4096), K = model_dim contiguous), read in 128 x 64 tiles:
//
//   TensorMap map;
//   encode_tile_map_2d(map, {.base = w1 + e * 28672 * 4096, .dtype = DType::BF16,
//                            .rows = 28672, .cols = 4096, .row_stride_bytes = 4096 * 2,
//                            .box_rows = 128, .box_cols = 64});
//   kernel<<<...>>>(map, ...);     // parameter `const __grid_constant__ TensorMap map`
//   tma_load_2d(smem, &map, bar, /*col=*/k0, /*row=*/n0);
//
// puts rows n0..n0+127, columns k0..k0+63 into smem as 128 rows of 128 bytes in
// the 128-byte swizzle: the 16-byte chunk c of tile row r lands at chunk
// c ^ (r % 8) of that row (the layout wgmma_desc describes, smem 1024-byte
// aligned). Elements outside the tensor (the last tile of a ragged dimension,
// or negative coordinates) read as zero, so no tile needs a bounds check.
//
// Rules (checked by encode_tile_map_2d, InputError): base 16-byte aligned;
// row_stride_bytes a multiple of 16 and >= cols * element size; box_cols *
// element size == 128 (one swizzle row); 1 <= box_rows <= 256; rows and cols in
// [1, 2^32). Only CUDA builds have tensor maps (GpuError elsewhere).
#pragma once
#include <cstdint>

#include "moe/dtype.hpp"

namespace moe::fused_moe {

// CUtensorMap's 128 opaque bytes, without the driver header in device code.
struct alignas(128) TensorMap {
  unsigned char bytes[128];
};

struct TileMapSpec {
  const void* base = nullptr;
  DType dtype = DType::BF16;  // BF16, F16, F32 or an 8-bit type (I8, F8E4M3: bytes)
  int64_t rows = 0, cols = 0;
  int64_t row_stride_bytes = 0;
  int box_rows = 0, box_cols = 0;
};

// The one validity check of a TileMapSpec (InputError naming the rule broken).
void validate_tile_map(const TileMapSpec& s);

// Encodes `map` for spec (validated first). GpuError when the build has no
// tensor maps (not CUDA) or the driver refuses.
void encode_tile_map_2d(TensorMap& map, const TileMapSpec& s);

// True in a CUDA build whose current device is sm_90 or newer.
bool tensor_maps_supported();

}  // namespace moe::fused_moe
