#include "common_kernels.hpp"
#include "moe/gpu.hpp"

namespace moe::kernels {
namespace {

__global__ void fill_normal_kernel(void* dst, int dtype, uint64_t n, uint64_t seed, uint32_t stream,
                                   uint64_t offset, float scale) {
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  for (uint64_t i = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float v = rng::normal(seed, static_cast<rng::Stream>(stream), offset + i) * scale;
    if (dtype == static_cast<int>(DType::F32)) {
      static_cast<float*>(dst)[i] = v;
    } else if (dtype == static_cast<int>(DType::BF16)) {
      static_cast<uint16_t*>(dst)[i] = f32_to_bf16_bits(v);
    } else {
      static_cast<uint16_t*>(dst)[i] = f32_to_f16_bits(v);
    }
  }
}

__global__ void read_probe_kernel(const uint4* src, uint64_t n16, uint32_t* sink) {
  uint32_t acc = 0;
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  uint64_t i = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  // Four independent loads in flight per iteration.
  for (; i + 3 * stride < n16; i += 4 * stride) {
    const uint4 a = src[i], b = src[i + stride], c = src[i + 2 * stride], d = src[i + 3 * stride];
    acc ^= a.x ^ a.y ^ a.z ^ a.w ^ b.x ^ b.y ^ b.z ^ b.w ^ c.x ^ c.y ^ c.z ^ c.w ^ d.x ^ d.y ^ d.z ^ d.w;
  }
  for (; i < n16; i += stride) {
    const uint4 a = src[i];
    acc ^= a.x ^ a.y ^ a.z ^ a.w;
  }
  if (acc == 0x9e3779b9u) sink[blockIdx.x] = acc;  // practically never taken, but not provably dead
}

}  // namespace

void fill_normal(void* dst, DType dtype, uint64_t n, uint64_t seed, rng::Stream stream, uint64_t offset, float scale,
                 hipStream_t s) {
  if (n == 0) return;
  MOE_REQUIRE(dtype != DType::I32, "fill_normal: integer dtype");
  const int threads = 256;
  const uint64_t want = (n + threads - 1) / threads;
  const int blocks = static_cast<int>(want < 65536 ? want : 65536);
  hipLaunchKernelGGL(fill_normal_kernel, dim3(blocks), dim3(threads), 0, s, dst, static_cast<int>(dtype), n, seed,
                     static_cast<uint32_t>(stream), offset, scale);
  MOE_GPU_CHECK(hipGetLastError());
}

void read_probe(const void* src, uint64_t bytes, uint32_t* sink, int blocks, hipStream_t s) {
  MOE_REQUIRE(bytes % 16 == 0, "read_probe: bytes must be a multiple of 16");
  hipLaunchKernelGGL(read_probe_kernel, dim3(blocks), dim3(512), 0, s, static_cast<const uint4*>(src), bytes / 16,
                     sink);
  MOE_GPU_CHECK(hipGetLastError());
}

}  // namespace moe::kernels
