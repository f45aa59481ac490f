#include "gpu_core_kernels.hpp"

namespace moe::test {
namespace {

__global__ void add_kernel(float* x, int64_t n, float v) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] += v;
}

__global__ void warp_size_kernel(int* out) {
  if (threadIdx.x == 0 && blockIdx.x == 0) *out = warpSize;
}

}  // namespace

hipError_t launch_add(float* x, int64_t n, float v, int block, hipStream_t s) {
  const int64_t grid = (n + block - 1) / block;
  hipLaunchKernelGGL(add_kernel, dim3(static_cast<unsigned>(grid)), dim3(block), 0, s, x, n, v);
  return hipGetLastError();
}

hipError_t launch_bad_config(float* x, hipStream_t s) {
  // 4096 threads per block exceeds every GPU's limit of 1024.
  hipLaunchKernelGGL(add_kernel, dim3(1), dim3(4096), 0, s, x, int64_t{1}, 1.0f);
  return hipGetLastError();
}

hipError_t set_add_max_dynamic_smem(int bytes) {
  return hipFuncSetAttribute(reinterpret_cast<const void*>(&add_kernel), hipFuncAttributeMaxDynamicSharedMemorySize,
                             bytes);
}

hipError_t add_occupancy(int* blocks_per_sm, int block) {
  return hipOccupancyMaxActiveBlocksPerMultiprocessor(blocks_per_sm, add_kernel, block, 0);
}

hipError_t device_warp_size(int* out) {
  int* d = nullptr;
  hipError_t e = hipMalloc(&d, sizeof(int));
  if (e != hipSuccess) return e;
  hipLaunchKernelGGL(warp_size_kernel, dim3(1), dim3(64), 0, nullptr, d);
  e = hipGetLastError();
  if (e == hipSuccess) e = hipMemcpy(out, d, sizeof(int), hipMemcpyDeviceToHost);
  (void)hipFree(d);
  return e;
}

}  // namespace moe::test
