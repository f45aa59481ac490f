// Small per-backend device helpers of the fused MoE kernels: warp size, 16-byte
// global->shared copies (cp.async on NVIDIA, a synchronous copy elsewhere) and
// the element type tags. Device-only: include from .hip/.cuh files.
#pragma once
#include <cstdint>

#include "kernels/fused_moe/tile_order.hpp"
#include "moe/dtype.hpp"
#include "moe/gpu_runtime.hpp"

namespace moe::fused_moe::dev {

#if defined(__HIP_PLATFORM_AMD__)
inline constexpr int kWarpSize = 64;  // gfx90a wavefront
#else
inline constexpr int kWarpSize = 32;
#endif

// Element tags: storage is raw 16-bit bits; conversions go through moe/dtype.hpp
// so the kernels round exactly as the CPU reference does.
struct Bf16 {
  static constexpr DType dtype = DType::BF16;
  __device__ static float to_float(uint16_t b) { return bf16_bits_to_f32(b); }
  __device__ static uint16_t from_float(float f) { return f32_to_bf16_bits(f); }
};
struct F16 {
  static constexpr DType dtype = DType::F16;
  __device__ static float to_float(uint16_t b) { return f16_bits_to_f32(b); }
  __device__ static uint16_t from_float(float f) { return f32_to_f16_bits(f); }
};

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
#if defined(__CUDA_ARCH__)
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
#else
  return static_cast<uint32_t>(reinterpret_cast<uintptr_t>(p));
#endif
}

// 16 bytes global -> shared. valid=false writes zeros (src is not read).
// NVIDIA: cp.async.cg (L2 only) with src-size 0 for zero fill; completes at
// cp_async_wait. Elsewhere: an ordinary load + store (complete on return).
__device__ __forceinline__ void copy16_async(void* smem_dst, const void* gmem_src, bool valid) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const int src_size = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(smem_dst)), "l"(gmem_src),
               "r"(src_size));
#else
  uint4 v = make_uint4(0, 0, 0, 0);
  if (valid) v = *static_cast<const uint4*>(gmem_src);
  *static_cast<uint4*>(smem_dst) = v;
#endif
}

// 4 bytes global -> shared (cp.async.ca: .cg copies only 16). valid=false writes a zero
// (src is not read, but must be a global address).
__device__ __forceinline__ void copy4_async(void* smem_dst, const void* gmem_src, bool valid) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const int src_size = valid ? 4 : 0;
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_u32(smem_dst)), "l"(gmem_src),
               "r"(src_size));
#else
  *static_cast<uint32_t*>(smem_dst) = valid ? *static_cast<const uint32_t*>(gmem_src) : 0u;
#endif
}

__device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}

// Wait until at most N committed groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#endif
}

// The cp.async software pipeline of the tile kernels' mma.sync main loop, over the
// nk K slices from kt_begin: STAGES-1 slices in flight. At iteration `it` slice
// `it` is visible to every thread and slot (it-1)%STAGES, read by iteration it-1,
// is free to refill.
//   load(slot, k_tile)   issue one slice's copies into `slot`
//   compute(slot, it)    the MMAs of the slice in `slot`
template <int STAGES, class Load, class Compute>
__device__ __forceinline__ void cp_async_mainloop(int nk, int64_t kt_begin, Load&& load, Compute&& compute) {
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < nk) load(s, kt_begin + s);
    cp_async_commit();
  }
  for (int it = 0; it < nk; ++it) {
    cp_async_wait<STAGES - 2>();
    __syncthreads();
    const int pre = it + STAGES - 1;
    if (pre < nk) load(pre % STAGES, kt_begin + pre);
    cp_async_commit();
    compute(it % STAGES, it);
  }
  cp_async_wait<0>();
}

// Programmatic dependent launch (sm_90): both are no-ops when the kernel was
// launched without the programmatic-serialization attribute, and on AMD.
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// The tiles one stage-kernel launch walks: m-blocks of the aligned rows (only the
// valid ones when persistent: the grid then strides over exactly those) times
// n-tiles times K splits. P is any params struct with the stage fields
// (num_post, max_m_blocks, persistent, n_tiles, split_k, k). Call after pdl_wait():
// num_post is written by the align kernel.
struct TileSpace {
  int valid_m;              // m-blocks that hold aligned rows
  int num_m;                // m-blocks walked (valid_m, or max_m_blocks when not persistent)
  int64_t tiles_per_split;  // num_m * n_tiles
  int64_t total;            // tiles_per_split * split_k
  int64_t k_tiles;          // ceil(k / BK)
};
template <int BM, int BK, class P>
__device__ __forceinline__ TileSpace tile_space(const P& p) {
  TileSpace t;
  const int64_t num_post = *p.num_post;
  const int64_t post_blocks = num_post > 0 ? num_post / BM : 0;
  t.valid_m = static_cast<int>(post_blocks < p.max_m_blocks ? post_blocks : p.max_m_blocks);
  t.num_m = p.persistent ? t.valid_m : p.max_m_blocks;
  t.tiles_per_split = static_cast<int64_t>(t.num_m) * p.n_tiles;
  t.total = t.tiles_per_split * p.split_k;
  t.k_tiles = (static_cast<int64_t>(p.k) + BK - 1) / BK;
  return t;
}

using moe::fused_moe::grouped_tile;  // kernels/fused_moe/tile_order.hpp
using moe::fused_moe::expert_run_tile;

// __fdividef: no IEEE division slow path (the result is rounded to 16 bits next); it
// gives 0 where the divisor passes 2^126 (g < -87), where silu(g) is below 1e-36 anyway.
__device__ __forceinline__ float silu(float g) { return __fdividef(g, 1.0f + __expf(-g)); }
__device__ __forceinline__ float gelu_tanh(float g) {
  const float c = 0.7978845608028654f;  // sqrt(2/pi)
  return 0.5f * g * (1.0f + tanhf(c * (g + 0.044715f * g * g * g)));
}

}  // namespace moe::fused_moe::dev
