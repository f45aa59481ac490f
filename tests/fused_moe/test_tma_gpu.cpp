// The bulk tensor copy path (kernels/fused_moe/tma.cuh, tensor_map.hpp) on the
// device: boxes of a bf16 matrix with a padded row stride, interior, ragged at
// the edges and at negative coordinates, loaded through one mbarrier in two
// phases; the shared-memory image must be the 128-byte swizzle of the box with
// zeros outside the tensor. Then the smallest warp-specialized GEMM built from
// these pieces and wgmma (producer warp, consumer warpgroup, a ring of stages)
// against a double-precision product. Skipped on devices before sm_90, in builds
// without wgmma (the GEMM) and in HIP builds.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <vector>

#include "kernels/fused_moe/fused_moe.hpp"
#include "kernels/fused_moe/tensor_map.hpp"
#include "moe/dtype.hpp"
#include "moe/inputs.hpp"
#include "moe/error.hpp"
#include "moe/gpu.hpp"
#include "tma_test_kernels.hpp"

#if MOE_HAVE_GPU

namespace {

using moe::fused_moe::TensorMap;

constexpr int64_t kRows = 200, kCols = 100, kStrideElems = 104;  // 208-byte rows: padded, ragged last box

uint16_t value_at(int64_t r, int64_t c) { return static_cast<uint16_t>(0x3C00 + (r * 131 + c * 7) % 0x3000); }

// The box at (col0, row0) as the 128-byte swizzle lays it out: 16-byte chunk
// ch of box row r at chunk ch ^ (r % 8); zeros outside the tensor.
std::vector<uint8_t> expected_box(int box_rows, int col0, int row0) {
  std::vector<uint8_t> img(static_cast<size_t>(box_rows) * 128, 0);
  for (int r = 0; r < box_rows; ++r)
    for (int ch = 0; ch < 8; ++ch)
      for (int e = 0; e < 8; ++e) {
        const int64_t gr = int64_t{row0} + r, gc = int64_t{col0} + ch * 8 + e;
        const uint16_t v = (gr >= 0 && gr < kRows && gc >= 0 && gc < kCols) ? value_at(gr, gc) : 0;
        std::memcpy(&img[static_cast<size_t>(r * 128 + ((ch ^ (r % 8)) * 16) + e * 2)], &v, 2);
      }
  return img;
}

}  // namespace

TEST_CASE("tma: boxes of a padded bf16 matrix arrive swizzled, zero outside, through two barrier phases") {
  if (!moe::fused_moe::tensor_maps_supported()) {
    MESSAGE("skipped: tensor maps need a CUDA build on sm_90 or newer");
    return;
  }
  std::vector<uint16_t> host(static_cast<size_t>(kRows * kStrideElems), 0xFFFF);  // padding never read
  for (int64_t r = 0; r < kRows; ++r)
    for (int64_t c = 0; c < kCols; ++c) host[static_cast<size_t>(r * kStrideElems + c)] = value_at(r, c);
  moe::gpu::DeviceBuffer<uint16_t> mat(host.size());
  mat.upload(host);
  const int box_rows = 64, box_bytes = box_rows * 128;
  TensorMap map;
  moe::fused_moe::encode_tile_map_2d(map, {.base = mat.data(), .dtype = moe::DType::BF16, .rows = kRows,
                                           .cols = kCols, .row_stride_bytes = kStrideElems * 2,
                                           .box_rows = box_rows, .box_cols = 64});
  struct Pair {
    int c0, r0, c1, r1;
  };
  for (const Pair& p : {Pair{0, 0, 64, 136}, Pair{-8, -3, 96, 190}, Pair{40, 17, 0, 150}}) {
    CAPTURE(p.c0);
    CAPTURE(p.r0);
    CAPTURE(p.c1);
    CAPTURE(p.r1);
    moe::gpu::DeviceBuffer<uint8_t> out(static_cast<size_t>(2 * box_bytes));
    moe::gpu::fill_blocking(out.data(), 0xAB, static_cast<size_t>(2 * box_bytes));  // poison
    MOE_GPU_CHECK(moe::test::launch_tma_two_boxes(map, box_bytes, p.c0, p.r0, p.c1, p.r1, out.data(), nullptr));
    MOE_GPU_CHECK(hipDeviceSynchronize());
    const std::vector<uint8_t> got = out.download();
    const std::vector<uint8_t> want0 = expected_box(box_rows, p.c0, p.r0);
    const std::vector<uint8_t> want1 = expected_box(box_rows, p.c1, p.r1);
    CHECK(std::vector<uint8_t>(got.begin(), got.begin() + box_bytes) == want0);
    CHECK(std::vector<uint8_t>(got.begin() + box_bytes, got.end()) == want1);
  }
}

TEST_CASE("tma: the driver refuses nothing that validate_tile_map accepts for the layer's shapes") {
  if (!moe::fused_moe::tensor_maps_supported()) return;
  // DeepSeek-V3 w1 of one expert: (4096, 7168) bf16, boxes 128 x 64; and its fp8 codes, boxes 128 x 128.
  moe::gpu::DeviceBuffer<uint16_t> w(static_cast<size_t>(4096) * 7168);
  TensorMap map;
  CHECK_NOTHROW(moe::fused_moe::encode_tile_map_2d(
      map, {.base = w.data(), .dtype = moe::DType::BF16, .rows = 4096, .cols = 7168, .row_stride_bytes = 7168 * 2,
            .box_rows = 128, .box_cols = 64}));
  CHECK_NOTHROW(moe::fused_moe::encode_tile_map_2d(
      map, {.base = w.data(), .dtype = moe::DType::F8E4M3, .rows = 4096, .cols = 7168, .row_stride_bytes = 7168,
            .box_rows = 128, .box_cols = 128}));
}

TEST_CASE("tma + wgmma: a warp-specialized GEMM over a ring of stages equals the product (ragged M and K)") {
  if (!moe::fused_moe::tensor_maps_supported() || !moe::fused_moe::device_limits().wgmma) {
    MESSAGE("skipped: needs an sm_90a build on sm_90");
    return;
  }
  for (const auto& [M, N, K] : {std::tuple{100, 256, 520}, std::tuple{64, 128, 64}, std::tuple{130, 384, 4096}}) {
    CAPTURE(M);
    CAPTURE(N);
    CAPTURE(K);
    // Random bf16 operands from the project's generator.
    std::vector<uint16_t> a(static_cast<size_t>(M) * K), b(static_cast<size_t>(N) * K);
    moe::InputSpec spec;
    spec.shape = {M, K, N, 2, 1};
    spec.dtype = moe::DType::BF16;
    spec.seed = static_cast<uint64_t>(M * 7 + K);
    moe::fill_host_bits16(spec, moe::rng::Stream::Hidden, 0, a);
    moe::fill_host_bits16(spec, moe::rng::Stream::W1, 0, b);
    moe::gpu::DeviceBuffer<uint16_t> da(a.size()), db(b.size());
    da.upload(a);
    db.upload(b);
    moe::gpu::DeviceBuffer<float> dc(static_cast<size_t>(M) * N);
    moe::gpu::fill_blocking(dc.data(), 0xFF, dc.size() * sizeof(float));  // NaN poison
    TensorMap map_a, map_b;
    moe::fused_moe::encode_tile_map_2d(map_a, {.base = da.data(), .dtype = moe::DType::BF16, .rows = M, .cols = K,
                                               .row_stride_bytes = int64_t{K} * 2, .box_rows = 64, .box_cols = 64});
    moe::fused_moe::encode_tile_map_2d(map_b, {.base = db.data(), .dtype = moe::DType::BF16, .rows = N, .cols = K,
                                               .row_stride_bytes = int64_t{K} * 2, .box_rows = 128, .box_cols = 64});
    MOE_GPU_CHECK(moe::test::launch_tma_wgmma_gemm(map_a, map_b, M, N, K, dc.data(), nullptr));
    MOE_GPU_CHECK(hipDeviceSynchronize());
    const std::vector<float> c = dc.download();
    // fp32 accumulation of K exact bf16 products: |error| <= K u_32 sum |a b| (worst case).
    int bad = 0;
    for (int i = 0; i < M; ++i)
      for (int j = 0; j < N; ++j) {
        double want = 0, mag = 0;
        for (int k = 0; k < K; ++k) {
          const double p = double(moe::bf16_bits_to_f32(a[static_cast<size_t>(i) * K + k])) *
                           moe::bf16_bits_to_f32(b[static_cast<size_t>(j) * K + k]);
          want += p;
          mag += std::abs(p);
        }
        const double got = c[static_cast<size_t>(i) * N + j];
        if (!(std::abs(got - want) <= K * 0x1p-24 * mag + 1e-30) && bad++ < 5)
          MESSAGE("C[" << i << "][" << j << "] = " << got << ", want " << want);
      }
    CHECK(bad == 0);
  }
}

#endif
