// Scalar building blocks shared by the routing kernels (device) and their CPU
// references (host), so both rank experts identically:
//   order_key()     total order on fp32 (NaN lowest, -0 == +0) as a uint32
//   det_exp(), det_sigmoid(), det_div()
//                   exp / sigmoid built only from IEEE-exact operations
//                   (mul, add, fma, div, rint), in a fixed order, with
//                   contraction disabled: bit-identical on GPU and CPU.
// det_exp: |rel err| <= 2 ulp over the normal range (degree-7 polynomial for
// 2^f on |f| <= 1/2 after Cody-Waite reduction with a two-word log2(e)).
#pragma once
#include <cmath>
#include <cstdint>

#include "moe/dtype.hpp"
#include "moe/gpu_runtime.hpp"

#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
#define MOE_RT_DEVICE_PASS 1
#else
#define MOE_RT_DEVICE_PASS 0
#endif

// Function qualifier for the bit-exact helpers. Host: never inlined and
// compiled without FMA contraction, so a caller's add cannot fuse with a
// multiply inside (or at the return of) the helper.
#if defined(__CUDACC__) || defined(__HIPCC__)
#define MOE_RT_DET __host__ __device__ __forceinline__
#elif defined(__GNUC__) && !defined(__clang__)
#define MOE_RT_DET __attribute__((noinline, optimize("fp-contract=off"))) inline
#else
#define MOE_RT_DET inline
#endif

#if defined(__clang__)
#define MOE_RT_NO_CONTRACT _Pragma("clang fp contract(off)")
#else
#define MOE_RT_NO_CONTRACT
#endif

namespace moe::routing {

inline constexpr uint32_t kKeyAbsent = 0;  // padding / masked / already taken
inline constexpr uint32_t kKeyNaN = 1;     // below every number

// Monotone map float -> uint32: a < b (as numbers) <=> key(a) < key(b);
// key(-0) == key(+0); NaN -> 1 (lowest real key); 0 is never produced.
MOE_HD uint32_t order_key(float x) {
  const uint32_t u = f32_bits(x);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return kKeyNaN;
  if (a == 0) return 0x80000000u;
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Inverse of order_key (keys 0 and 1 give NaN).
MOE_HD float key_value(uint32_t k) {
  if (k <= kKeyNaN) return bits_f32(0x7fc00000u);
  return bits_f32((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

// ---- IEEE-exact primitives (no contraction, no hardware approximations) ----
MOE_HD float rt_mul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  MOE_RT_NO_CONTRACT
  return a * b;
#endif
}
MOE_HD float rt_add(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  MOE_RT_NO_CONTRACT
  return a + b;
#endif
}
MOE_HD float rt_sub(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  MOE_RT_NO_CONTRACT
  return a - b;
#endif
}
MOE_HD float rt_fma(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#elif defined(__HIP_DEVICE_COMPILE__)
  return __builtin_fmaf(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}
MOE_HD float rt_div(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  MOE_RT_NO_CONTRACT
  return a / b;
#endif
}
MOE_HD float rt_rint(float a) {
#if MOE_RT_DEVICE_PASS
  return rintf(a);
#else
  return std::nearbyint(a);
#endif
}

// exp(x), bit-identical on every backend. NaN -> NaN, -inf -> 0, +inf -> inf.
MOE_RT_DET float det_exp(float x) {
  MOE_RT_NO_CONTRACT
  // Clamp: below -110 the result is 0, above 89 inf. NaN computes on 0 (so the
  // float -> int conversion below stays defined) and is returned at the end.
  const float xc = x < -110.0f ? -110.0f : (x > 89.0f ? 89.0f : (x == x ? x : 0.0f));
  const float t = rt_mul(xc, 1.44269502162933349609375f);  // fp32(log2 e)
  const float n = rt_rint(t);
  // f = xc*log2(e) - n with log2(e) = L_hi + L_lo (two fmas, exact-ish)
  float f = rt_fma(xc, 1.44269502162933349609375f, -n);
  f = rt_fma(xc, 1.925963033500213e-08f, f);
  // 2^f = e^(f ln2), Taylor to degree 7 (|f| <= 0.5: error < 1e-8 relative)
  float p = 1.5252733804059841e-05f;            // ln2^7/7!
  p = rt_fma(p, f, 1.5403530393381606e-04f);    // ln2^6/6!
  p = rt_fma(p, f, 1.3333558146428443e-03f);    // ln2^5/5!
  p = rt_fma(p, f, 9.6181291076284772e-03f);    // ln2^4/4!
  p = rt_fma(p, f, 5.5504108664821580e-02f);    // ln2^3/3!
  p = rt_fma(p, f, 2.4022650695910071e-01f);    // ln2^2/2!
  p = rt_fma(p, f, 6.9314718055994531e-01f);    // ln2
  p = rt_fma(p, f, 1.0f);
  // p * 2^n, n in [-159, 129], as two exact power-of-two scalings (the first
  // keeps p normal, the second rounds once, also into the subnormal range).
  const int ni = static_cast<int>(n);
  const int n1 = ni >> 1;   // floor(n/2)
  const int n2 = ni - n1;
  const float s1 = bits_f32(static_cast<uint32_t>(n1 + 127) << 23);
  const float s2 = bits_f32(static_cast<uint32_t>(n2 + 127) << 23);
  const float r = rt_mul(rt_mul(p, s1), s2);
  return x != x ? x : r;
}

// 1 / (1 + exp(-x)). NaN -> NaN, -inf -> 0, +inf -> 1.
MOE_RT_DET float det_sigmoid(float x) {
  MOE_RT_NO_CONTRACT
  return rt_div(1.0f, rt_add(1.0f, det_exp(-x)));
}

MOE_RT_DET float det_div(float a, float b) {
  MOE_RT_NO_CONTRACT
  return rt_div(a, b);
}

// Smallest power of two >= ceil(E / 32), at least 1: values per lane of the
// grouped kernel (and the order of its softmax denominator).
MOE_HD int grouped_values_per_lane(int experts) {
  const int need = (experts + 31) / 32;
  int v = 1;
  while (v < need) v <<= 1;
  return v;
}

}  // namespace moe::routing
