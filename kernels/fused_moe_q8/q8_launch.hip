// Probe of the 8-bit MMA instructions compiled for the device.
#include "kernels/fused_moe_q8/q8_dispatch.hpp"
#include "kernels/fused_moe_q8/q8_kernels.cuh"
#include "moe/error.hpp"
#include "moe/gpu.hpp"

namespace moe::fused_moe_q8::detail {
namespace {
__global__ void q8_probe_kernel(int* out) {
#if defined(__CUDA_ARCH__)
  *out = __CUDA_ARCH__ >= 890 ? 1 : 0;
#else
  *out = 1;  // AMD: fp8 codes widened to bf16 MFMA
#endif
}
}  // namespace

bool q8_fp8_compiled() {
  static const bool ok = [] {
    gpu::DeviceBuffer<int> flag(1);
    flag.poison(0);
    hipLaunchKernelGGL(q8_probe_kernel, dim3(1), dim3(1), 0, nullptr, flag.data());
    MOE_GPU_CHECK(hipGetLastError());
    return flag.download()[0] == 1;
  }();
  return ok;
}

}  // namespace moe::fused_moe_q8::detail
