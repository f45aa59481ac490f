// Launch of the fused MoE reduce kernel (the tile kernels are launched from the
// stage TUs; validation and grid sizing live in fused_moe_host.cpp).
#include <cstdint>

#include "kernels/fused_moe/fused_moe_dispatch.hpp"
#include "kernels/fused_moe/fused_moe_kernels.cuh"
#include "moe/error.hpp"
#include "moe/gpu.hpp"

namespace moe::fused_moe {
namespace detail {

namespace {
__global__ void wgmma_probe_kernel(int* out) { *out = FMOE_HAVE_WGMMA; }
}  // namespace

bool wgmma_compiled() {
  static const bool compiled = [] {
    gpu::DeviceBuffer<int> flag(1);
    flag.poison(0);
    hipLaunchKernelGGL(wgmma_probe_kernel, dim3(1), dim3(1), 0, nullptr, flag.data());
    MOE_GPU_CHECK(hipGetLastError());
    return flag.download()[0] == 1;
  }();
  return compiled;
}

void launch_reduce_kernel(const ReduceParams& p, DType dtype, int grid, int threads, hipStream_t s) {
  if (dtype == DType::F16) {
    hipLaunchKernelGGL(dev::fused_moe_reduce_kernel<dev::F16>, dim3(grid), dim3(threads), 0, s, p);
  } else {
    hipLaunchKernelGGL(dev::fused_moe_reduce_kernel<dev::Bf16>, dim3(grid), dim3(threads), 0, s, p);
  }
  MOE_GPU_CHECK(hipGetLastError());
}

}  // namespace detail
}  // namespace moe::fused_moe
