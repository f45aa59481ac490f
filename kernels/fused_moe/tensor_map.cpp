// Host side of the TMA tensor maps (see tensor_map.hpp). The driver's encoder is
// reached through the runtime's entry-point query, so nothing links libcuda.
#include "kernels/fused_moe/tensor_map.hpp"

#include <cstring>

#include <fmt/format.h>

#include "moe/error.hpp"
#include "moe/gpu_runtime.hpp"

#if defined(MOE_BACKEND_CUDA)
#include <cuda.h>
#include <cudaTypedefs.h>
static_assert(sizeof(CUtensorMap) == sizeof(moe::fused_moe::TensorMap), "TensorMap must hold a CUtensorMap");
static_assert(alignof(CUtensorMap) <= alignof(moe::fused_moe::TensorMap), "TensorMap must be aligned as CUtensorMap");
#endif

namespace moe::fused_moe {

void validate_tile_map(const TileMapSpec& s) {
  const int64_t elem = static_cast<int64_t>(dtype_size(s.dtype));
  const auto where = [&] {
    return fmt::format("tile map {}x{} (box {}x{}, {}, row stride {} B)", s.rows, s.cols, s.box_rows, s.box_cols,
                       dtype_name(s.dtype), s.row_stride_bytes);
  };
  MOE_REQUIRE(s.base != nullptr, where() + ": base is null");
  MOE_REQUIRE(reinterpret_cast<uintptr_t>(s.base) % 16 == 0, where() + ": base must be 16-byte aligned");
  MOE_REQUIRE(s.rows >= 1 && s.rows < (int64_t{1} << 32) && s.cols >= 1 && s.cols < (int64_t{1} << 32),
              where() + ": rows and cols must be in [1, 2^32)");
  MOE_REQUIRE(s.row_stride_bytes % 16 == 0 && s.row_stride_bytes >= s.cols * elem,
              where() + ": the row stride must be a multiple of 16 bytes and hold a row");
  MOE_REQUIRE(s.box_cols * elem == 128, where() + ": a box row must be 128 bytes (the 128-byte swizzle)");
  MOE_REQUIRE(s.box_rows >= 1 && s.box_rows <= 256, where() + ": box rows must be in [1, 256]");
}

#if defined(MOE_BACKEND_CUDA)

namespace {

CUtensorMapDataType driver_type(DType t) {
  switch (t) {
    case DType::BF16: return CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
    case DType::F16: return CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
    case DType::F32: return CU_TENSOR_MAP_DATA_TYPE_FLOAT32;
    default: return CU_TENSOR_MAP_DATA_TYPE_UINT8;  // 8-bit codes are copied as bytes
  }
}

PFN_cuTensorMapEncodeTiled_v12000 encoder() {
  static PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult found{};
    const cudaError_t e = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &found);
    if (e != cudaSuccess || found != cudaDriverEntryPointSuccess || p == nullptr)
      throw GpuError("cuTensorMapEncodeTiled is not available from this driver", static_cast<int>(e));
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
  }();
  return fn;
}

}  // namespace

void encode_tile_map_2d(TensorMap& map, const TileMapSpec& s) {
  validate_tile_map(s);
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(s.cols), static_cast<cuuint64_t>(s.rows)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(s.row_stride_bytes)};
  const cuuint32_t box[2] = {static_cast<cuuint32_t>(s.box_cols), static_cast<cuuint32_t>(s.box_rows)};
  const cuuint32_t elem_strides[2] = {1, 1};
  CUtensorMap m;
  const CUresult r = encoder()(&m, driver_type(s.dtype), 2, const_cast<void*>(s.base), dims, strides, box, elem_strides,
                               CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                               CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS)
    throw GpuError(fmt::format("cuTensorMapEncodeTiled refused a {}x{} map (box {}x{}): error {}", s.rows, s.cols,
                               s.box_rows, s.box_cols, static_cast<int>(r)),
                   static_cast<int>(r));
  std::memcpy(map.bytes, &m, sizeof(m));
}

bool tensor_maps_supported() {
  int dev = 0, major = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return false;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) return false;
  return major >= 9;
}

#else

void encode_tile_map_2d(TensorMap&, const TileMapSpec& s) {
  validate_tile_map(s);
  throw GpuError("tensor maps (TMA) need a CUDA build for sm_90 or newer", 0);
}

bool tensor_maps_supported() { return false; }

#endif

}  // namespace moe::fused_moe
