// Launch of the fused MoE reduce kernel (the tile kernels are launched from the
// stage TUs; validation and grid sizing live in fused_moe_host.cpp).
#include <cstdint>
#include <cstdlib>

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

bool pdl_enabled() {
  static const bool on = [] {
#if defined(MOE_HIP_COMPAT_CUDA)
    const char* env = std::getenv("MOE_FUSED_MOE_PDL");
    if (env && env[0] == '0') return false;
    int dev = 0, major = 0;
    MOE_GPU_CHECK(hipGetDevice(&dev));
    MOE_GPU_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    return major >= 9;
#else
    return false;
#endif
  }();
  return on;
}

void launch_reduce_kernel(const ReduceParams& p, DType dtype, int grid, int threads, hipStream_t s) {
  if (dtype == DType::F16) {
    launch_maybe_pdl(&dev::fused_moe_reduce_kernel<dev::F16>, grid, threads, 0, s, p);
  } else {
    launch_maybe_pdl(&dev::fused_moe_reduce_kernel<dev::Bf16>, grid, threads, 0, s, p);
  }
}

}  // namespace detail
}  // namespace moe::fused_moe
