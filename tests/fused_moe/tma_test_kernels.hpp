// Device helpers of tests/fused_moe/test_tma_gpu.cpp (compiled from
// tma_test_kernels.hip): two boxes of a tensor map loaded by TMA in turn through
// one mbarrier (phases 0 and 1), and the raw shared-memory image copied out; and
// the smallest warp-specialized Hopper GEMM, C = A B^T, to prove the pieces fit:
// one producer warp loads A and B boxes by TMA into a ring of stages guarded by
// full/empty barriers, one consumer warpgroup runs wgmma on them.
#pragma once
#include <cstdint>

#include "kernels/fused_moe/tensor_map.hpp"
#include "moe/gpu_runtime.hpp"

#if MOE_HAVE_GPU
namespace moe::test {

// out[0, box_bytes) = the box at (col0, row0) as it lies in shared memory,
// out[box_bytes, 2 box_bytes) = the box at (col1, row1). box_bytes must be a
// multiple of 1024. Only for sm_90 devices (the kernel traps elsewhere).
hipError_t launch_tma_two_boxes(const fused_moe::TensorMap& map, int box_bytes, int col0, int row0, int col1,
                                int row1, uint8_t* out, hipStream_t s);

// C (M, N) fp32 = A (M, K) bf16 . B (N, K)^T bf16, row-major, through maps of A
// (box 64 x 64) and B (box 128 x 64); tiles of 64 x 128, 4 stages of K = 64.
// Rows of C at or beyond M are not written. Only for sm_90a builds on sm_90.
hipError_t launch_tma_wgmma_gemm(const fused_moe::TensorMap& map_a, const fused_moe::TensorMap& map_b, int M, int N,
                                 int K, float* c, hipStream_t s);

}  // namespace moe::test
#endif
