#include "tma_test_kernels.hpp"

#include "kernels/fused_moe/tma.cuh"
#include "kernels/fused_moe/wgmma.cuh"

namespace moe::test {
namespace {

__global__ void tma_two_boxes_kernel(const FMOE_GRID_CONSTANT fused_moe::TensorMap map, int box_bytes, int col0,
                                     int row0, int col1, int row1, uint8_t* out) {
#if defined(FMOE_HAVE_TMA)
  using namespace fused_moe::dev;
  extern __shared__ unsigned char smem_raw[];
  // The 128-byte swizzle repeats every 1024 bytes: boxes start 1024-byte aligned.
  unsigned char* smem = smem_raw + ((1024 - (smem_addr(smem_raw) & 1023)) & 1023);
  __shared__ alignas(8) uint64_t bar;
  if (threadIdx.x == 0) {
    mbar_init(&bar, 1);
    fence_barrier_init();
  }
  __syncthreads();
  for (int round = 0; round < 2; ++round) {
    if (threadIdx.x == 0) {
      mbar_arrive_expect_tx(&bar, static_cast<uint32_t>(box_bytes));
      tma_load_2d(smem + round * box_bytes, &map, &bar, round ? col1 : col0, round ? row1 : row0);
    }
    mbar_wait(&bar, static_cast<uint32_t>(round & 1));
    // Nobody may still wait on this phase's parity when the next phase completes.
    __syncthreads();
  }
  for (int i = threadIdx.x; i < 2 * box_bytes; i += blockDim.x) out[i] = smem[i];
#elif defined(__CUDA_ARCH__)
  __trap();
#endif
}


constexpr int kGemmBM = 64, kGemmBN = 128, kGemmBK = 64, kGemmStages = 4;
constexpr int kGemmABytes = kGemmBM * kGemmBK * 2, kGemmBBytes = kGemmBN * kGemmBK * 2;
constexpr int kGemmSmem = kGemmStages * (kGemmABytes + kGemmBBytes) + 1024;

// Warps 0-3: the consumer warpgroup; warp 4: the producer (one lane issues).
__global__ void __launch_bounds__(160) tma_wgmma_gemm_kernel(const FMOE_GRID_CONSTANT fused_moe::TensorMap map_a,
                                                             const FMOE_GRID_CONSTANT fused_moe::TensorMap map_b,
                                                             int M, int N, int K, float* c) {
#if defined(FMOE_HAVE_TMA) && FMOE_HAVE_WGMMA
  using namespace fused_moe::dev;
  extern __shared__ unsigned char smem_raw[];
  unsigned char* smem = smem_raw + ((1024 - (smem_addr(smem_raw) & 1023)) & 1023);
  unsigned char* a_s = smem;
  unsigned char* b_s = smem + kGemmStages * kGemmABytes;
  __shared__ alignas(8) uint64_t full[kGemmStages], empty[kGemmStages];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (threadIdx.x == 0) {
    for (int s = 0; s < kGemmStages; ++s) {
      mbar_init(&full[s], 1);     // the producer's arrive_expect_tx, then the copies' bytes
      mbar_init(&empty[s], 128);  // every consumer thread, once it is done with the slot
    }
    fence_barrier_init();
  }
  __syncthreads();
  const int m0 = blockIdx.y * kGemmBM, n0 = blockIdx.x * kGemmBN;
  const int nk = (K + kGemmBK - 1) / kGemmBK;
  if (warp == 4) {
    if (lane == 0)
      for (int kt = 0; kt < nk; ++kt) {
        const int s = kt % kGemmStages, round = kt / kGemmStages;
        if (round > 0) mbar_wait(&empty[s], static_cast<uint32_t>((round - 1) & 1));
        mbar_arrive_expect_tx(&full[s], kGemmABytes + kGemmBBytes);
        tma_load_2d(a_s + s * kGemmABytes, &map_a, &full[s], kt * kGemmBK, m0);
        tma_load_2d(b_s + s * kGemmBBytes, &map_b, &full[s], kt * kGemmBK, n0);
      }
    return;
  }
  float acc[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) acc[i] = 0.0f;
  for (int kt = 0; kt < nk; ++kt) {
    const int s = kt % kGemmStages;
    mbar_wait(&full[s], static_cast<uint32_t>((kt / kGemmStages) & 1));
    const uint32_t a_addr = smem_addr(a_s + s * kGemmABytes), b_addr = smem_addr(b_s + s * kGemmBBytes);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kGemmBK / 16; ++kk)
      wgmma_m64k16<kGemmBN, Bf16>(acc, wgmma_desc(a_addr + kk * 32), wgmma_desc(b_addr + kk * 32));
    wgmma_commit();
    wgmma_wait<0>();
    mbar_arrive(&empty[s]);
  }
  // Accumulator layout (wgmma.cuh): warp w holds rows 16w.., d[4j + i] at
  // row g + 8 (i / 2), column 8 j + 2 t + i % 2 with g = lane / 4, t = lane % 4.
  const int g = lane / 4, t = lane % 4;
#pragma unroll
  for (int j = 0; j < kGemmBN / 8; ++j)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int row = m0 + 16 * warp + g + 8 * (i / 2), col = n0 + 8 * j + 2 * t + i % 2;
      if (row < M && col < N) c[static_cast<int64_t>(row) * N + col] = acc[4 * j + i];
    }
#elif defined(__CUDA_ARCH__)
  __trap();
#endif
}

}  // namespace

hipError_t launch_tma_two_boxes(const fused_moe::TensorMap& map, int box_bytes, int col0, int row0, int col1,
                                int row1, uint8_t* out, hipStream_t s) {
  const int smem = 2 * box_bytes + 1024;
  hipLaunchKernelGGL(tma_two_boxes_kernel, dim3(1), dim3(128), smem, s, map, box_bytes, col0, row0, col1, row1, out);
  return hipGetLastError();
}

hipError_t launch_tma_wgmma_gemm(const fused_moe::TensorMap& map_a, const fused_moe::TensorMap& map_b, int M, int N,
                                 int K, float* c, hipStream_t s) {
  const hipError_t e = hipFuncSetAttribute(reinterpret_cast<const void*>(&tma_wgmma_gemm_kernel),
                                           hipFuncAttributeMaxDynamicSharedMemorySize, kGemmSmem);
  if (e != hipSuccess) return e;
  const dim3 grid((N + kGemmBN - 1) / kGemmBN, (M + kGemmBM - 1) / kGemmBM);
  hipLaunchKernelGGL(tma_wgmma_gemm_kernel, grid, dim3(160), kGemmSmem, s, map_a, map_b, M, N, K, c);
  return hipGetLastError();
}

}  // namespace moe::test
