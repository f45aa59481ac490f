#include "tma_test_kernels.hpp"

#include "kernels/fused_moe/tma.cuh"

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

}  // namespace

hipError_t launch_tma_two_boxes(const fused_moe::TensorMap& map, int box_bytes, int col0, int row0, int col1,
                                int row1, uint8_t* out, hipStream_t s) {
  const int smem = 2 * box_bytes + 1024;
  hipLaunchKernelGGL(tma_two_boxes_kernel, dim3(1), dim3(128), smem, s, map, box_bytes, col0, row0, col1, row1, out);
  return hipGetLastError();
}

}  // namespace moe::test
