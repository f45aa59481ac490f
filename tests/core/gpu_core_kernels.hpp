// Device helpers for tests/core/test_gpu_core.cpp (compiled by nvcc/hipcc from
// gpu_core_kernels.hip): a trivial kernel and the runtime calls that need a
// kernel symbol (launch, function attributes, occupancy).
#pragma once
#include <cstdint>

#include "moe/gpu_runtime.hpp"

#if MOE_HAVE_GPU
namespace moe::test {

// x[i] += v for i < n, launched through hipLaunchKernelGGL.
hipError_t launch_add(float* x, int64_t n, float v, int block, hipStream_t s);

// Launch with a block size the hardware rejects (returns what hipGetLastError
// returned right after, without clearing anything else).
hipError_t launch_bad_config(float* x, hipStream_t s);

// hipFuncSetAttribute(MaxDynamicSharedMemorySize) on the add kernel.
hipError_t set_add_max_dynamic_smem(int bytes);

// Resident blocks per multiprocessor of the add kernel at `block` threads.
hipError_t add_occupancy(int* blocks_per_sm, int block);

// warpSize as seen by device code (32 on NVIDIA, 64 on gfx90a).
hipError_t device_warp_size(int* out);

}  // namespace moe::test
#endif
