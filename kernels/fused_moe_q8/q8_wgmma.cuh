// Hopper wgmma for 8-bit operands (sm_90a only; MOE_WGMMA_ASM of wgmma.cuh): m64nNk32 with
// e4m3 x e4m3 -> f32 and s8 x s8 -> s32, A and B K-major from 128B-swizzled
// shared memory (same descriptors as the bf16 path: a k32 step of 8-bit codes
// moves the same 32 bytes per row as a bf16 k16 step). Accumulator layout per
// warp = mma.sync m16n8 repeated N/8 times (see kernels/fused_moe/wgmma.cuh).
// 8-bit wgmma has no transpose immediates; the integer form has no scale-a/b.
#pragma once
#include <cstdint>

#include "kernels/fused_moe/wgmma.cuh"

namespace moe::fused_moe_q8::dev {

#if FMOE_HAVE_WGMMA
// scale_d 0: D = A * B (the registers' old values are ignored); 1: D += A * B.
template <int N, bool INT8>
__device__ __forceinline__ void wgmma8_m64k32(void* d, uint64_t desc_a, uint64_t desc_b, int scale_d = 1);

// The fp8 and int8 forms for one N (R = N / 2 accumulator registers per thread, written out:
// MOE_WGMMA_ASM pastes it into its register-list macros).
#define MOE_Q8_WGMMA_N(N, R)                                                                                           \
  template <>                                                                                                          \
  __device__ __forceinline__ void wgmma8_m64k32<N, false>(void* d, uint64_t desc_a, uint64_t desc_b, int scale_d) {    \
    float* r = static_cast<float*>(d);                                                                                 \
    MOE_WGMMA_ASM(R, "wgmma.mma_async.sync.aligned.m64n" #N "k32.f32.e4m3.e4m3", ", 1, 1", "+f", r, desc_a,            \
                  desc_b, scale_d);                                                                                    \
  }                                                                                                                    \
  template <>                                                                                                          \
  __device__ __forceinline__ void wgmma8_m64k32<N, true>(void* d, uint64_t desc_a, uint64_t desc_b, int scale_d) {     \
    uint32_t* r = static_cast<uint32_t*>(d);                                                                           \
    MOE_WGMMA_ASM(R, "wgmma.mma_async.sync.aligned.m64n" #N "k32.s32.s8.s8", "", "+r", r, desc_a, desc_b,              \
                  scale_d);                                                                                            \
  }
MOE_Q8_WGMMA_N(128, 64)
MOE_Q8_WGMMA_N(192, 96)
MOE_Q8_WGMMA_N(256, 128)
#undef MOE_Q8_WGMMA_N

// N = 16 (the swapped decode tile: 64 weight rows x 16 token rows), 8 accumulators.
#define MOE_Q8_WGMMA_N16(INT8, TYPES, TAIL, K, T)                                                                   \
  template <>                                                                                                      \
  __device__ __forceinline__ void wgmma8_m64k32<16, INT8>(void* d, uint64_t desc_a, uint64_t desc_b, int scale_d) { \
    T* r = static_cast<T*>(d);                                                                                     \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %10, 0;\n"                                                      \
                 "wgmma.mma_async.sync.aligned.m64n16k32." TYPES                                                   \
                 " {%0, %1, %2, %3, %4, %5, %6, %7}, %8, %9, p" TAIL ";\n}\n"                                       \
                 : K(r[0]), K(r[1]), K(r[2]), K(r[3]), K(r[4]), K(r[5]), K(r[6]), K(r[7])                           \
                 : "l"(desc_a), "l"(desc_b), "r"(scale_d));                                                         \
  }
#define MOE_Q8_F(x) "+f"(x)
#define MOE_Q8_R(x) "+r"(x)
MOE_Q8_WGMMA_N16(false, "f32.e4m3.e4m3", ", 1, 1", MOE_Q8_F, float)
MOE_Q8_WGMMA_N16(true, "s32.s8.s8", "", MOE_Q8_R, uint32_t)
#undef MOE_Q8_F
#undef MOE_Q8_R
#undef MOE_Q8_WGMMA_N16

#endif

}  // namespace moe::fused_moe_q8::dev
