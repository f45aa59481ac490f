// Device helper of tests/fused_moe/test_tma_gpu.cpp (compiled from
// tma_test_kernels.hip): two boxes of a tensor map loaded by TMA in turn through
// one mbarrier (phases 0 and 1), and the raw shared-memory image copied out.
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

}  // namespace moe::test
#endif
