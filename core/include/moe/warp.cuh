// Warp primitives for both backends: CUDA warps of 32 lanes, HIP gfx9 wavefronts
// of 64. One wrapper per intrinsic, so kernels never name the backend's spelling;
// lanemask_t holds one bit per lane. Include only from .hip translation units.
#pragma once
#include <cstdint>

#include "moe/gpu_runtime.hpp"

namespace moe::warp {

#if defined(MOE_BACKEND_HIP)
using lanemask_t = unsigned long long;
#if defined(__AMDGCN_WAVEFRONT_SIZE)
inline constexpr int kWarp = __AMDGCN_WAVEFRONT_SIZE;
#else
inline constexpr int kWarp = 64;
#endif
#else
using lanemask_t = unsigned int;
inline constexpr int kWarp = 32;
#endif

__device__ __forceinline__ int lane_id() { return static_cast<int>(threadIdx.x) & (kWarp - 1); }

// Bit j set <=> lane j has pred (the whole warp must call it).
__device__ __forceinline__ lanemask_t ballot(bool pred) {
#if defined(MOE_BACKEND_HIP)
  return __ballot(pred);
#else
  return __ballot_sync(0xffffffffu, pred);
#endif
}

// Shuffles within aligned groups of `width` lanes (a power of two <= kWarp).
template <typename T>
__device__ __forceinline__ T shfl(T v, int src_lane, int width = kWarp) {
#if defined(MOE_BACKEND_HIP)
  return __shfl(v, src_lane, width);
#else
  return __shfl_sync(0xffffffffu, v, src_lane, width);
#endif
}

template <typename T>
__device__ __forceinline__ T shfl_up(T v, int delta, int width = kWarp) {
#if defined(MOE_BACKEND_HIP)
  return __shfl_up(v, static_cast<unsigned int>(delta), width);
#else
  return __shfl_up_sync(0xffffffffu, v, static_cast<unsigned int>(delta), width);
#endif
}

template <typename T>
__device__ __forceinline__ T shfl_xor(T v, int mask, int width = kWarp) {
#if defined(MOE_BACKEND_HIP)
  return __shfl_xor(v, mask, width);
#else
  return __shfl_xor_sync(0xffffffffu, v, mask, width);
#endif
}

// Sum over the warp; every lane gets it.
__device__ __forceinline__ int warp_sum(int v) {
#pragma unroll
  for (int m = kWarp / 2; m >= 1; m >>= 1) v += shfl_xor(v, m);
  return v;
}

__device__ __forceinline__ int popc(lanemask_t m) {
#if defined(MOE_BACKEND_HIP)
  return static_cast<int>(__popcll(m));
#else
  return __popc(m);
#endif
}

// Index of the lowest set bit (m != 0).
__device__ __forceinline__ int first_lane(lanemask_t m) {
#if defined(MOE_BACKEND_HIP)
  return static_cast<int>(__ffsll(static_cast<unsigned long long>(m))) - 1;
#else
  return __ffs(static_cast<int>(m)) - 1;
#endif
}

// The lanes below this one.
__device__ __forceinline__ lanemask_t lanemask_lt() { return (lanemask_t{1} << lane_id()) - 1; }

// Orders shared-memory accesses of the lanes of one warp.
__device__ __forceinline__ void warp_sync() {
#if defined(MOE_BACKEND_HIP)
  __builtin_amdgcn_fence(__ATOMIC_RELEASE, "wavefront");
  __builtin_amdgcn_wave_barrier();
  __builtin_amdgcn_fence(__ATOMIC_ACQUIRE, "wavefront");
#else
  __syncwarp();
#endif
}

}  // namespace moe::warp
