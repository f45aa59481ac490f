// 8-bit float (FP8 e4m3) and symmetric int8 quantization arithmetic, bit-exact
// and identical on host and device (MOE_HD): the CPU references and the GPU
// kernels call these same functions, so they cannot round differently.
//
// ---- Formats ----------------------------------------------------------------
// Both formats: 1 sign bit S, 4 exponent bits E, 3 mantissa bits M; no infinity.
//
//   E4M3FN  (OCP FP8 "e4m3fn": NVIDIA sm_89+, AMD MI350/gfx950, torch.float8_e4m3fn)
//     bias 7. E = 1..15: (-1)^S * 2^(E-7) * (1 + M/8); E = 0: (-1)^S * 2^-6 * M/8.
//     S.1111.111 (0x7F, 0xFF) = NaN. Max finite 448 (0x7E), min normal 2^-6,
//     min subnormal 2^-9. Has -0 (0x80).
//   E4M3FNUZ  (AMD MI300/gfx94x, torch.float8_e4m3fnuz)
//     bias 8. E = 1..15: (-1)^S * 2^(E-8) * (1 + M/8); E = 0: (-1)^S * 2^-7 * M/8.
//     0x80 (the would-be -0) = NaN, the only NaN. Max finite 240 (0x7F), min normal
//     2^-7, min subnormal 2^-10. No -0.
//
// ---- Encoding rule (float -> code), the same for both formats ------------------
//   * finite x: round |x| to the nearest representable magnitude, ties to the code
//     with even mantissa (round to nearest even, RNE), over normals and subnormals.
//   * SATURATING: a finite |x| above max (448 / 240) gives +-max, not NaN. Values in
//     (max, max + half ulp) would round to max under RNE anyway; larger ones are
//     clamped. (torch's .to(float8) instead returns NaN from |x| >= 480 for e4m3fn;
//     every quantizer here keeps |x * inv_scale| <= max, where both agree.)
//   * +-Inf -> +-max (saturates, like NVIDIA's cvt.rn.satfinite and AMD's clamped
//     cvt). The quantizers reject Inf inputs before this matters.
//   * NaN (any sign, any payload) -> the canonical NaN code: 0x7F (e4m3fn), 0x80 (fnuz).
//   * Zero and values that round to zero keep their sign in e4m3fn (-0 -> 0x80) and
//     become 0x00 in e4m3fnuz (it has no -0).
// Decoding is exact (every code is a float); NaN codes decode to a quiet float NaN
// with the code's sign bit.
//
// On sm_89+ (including sm_90) the e4m3fn encoders used by kernels go through the
// hardware `cvt.rn.satfinite.e4m3x2.f32`, which implements exactly this rule; a GPU
// test compares it with the software path over all 2^32 float bit patterns.
// Define MOE_FP8_SOFTWARE_CVT to force the software path everywhere.
//
// ---- Int8 rule ------------------------------------------------------------------
// Symmetric: q = clamp(round_half_even(v), -127, 127), so -128 is never produced and
// the grid is symmetric around 0; NaN -> 0 (quantizers reject NaN inputs anyway).
// Round half to even is rintf in the default rounding mode: torch.round and
// CUDA's __float2int_rn do the same.
//
// ---- Scales (shared by every quantization granularity) ----------------------------
//   scale = amax / qmax (fp32 division), where amax = max |x| over the segment that
//           shares the scale and qmax = 448, 240 or 127;
//     amax == 0            -> scale = 0, and every code is +0 (dequantizes to 0; no NaN);
//     amax / qmax < 2^-126 -> scale = 2^-126 (FLT_MIN), so 1/scale stays finite;
//     amax Inf or NaN      -> scale = NaN (the quantizer reports an input error).
//   inv   = 1 / scale (fp32 division; 0 when scale is 0)
//   code  = encode(x * inv) (fp32 multiply), or 0 when scale is 0.
// Multiplying by the reciprocal (as vLLM's kernels do) instead of aiter's
// `x / scale` can move x * inv by one float ulp (2^-24 relative), which changes a
// code only when x / scale sits within that ulp of a rounding boundary.
//
// Dequantization: x_hat = decode(code) * scale. In double this product is exact
// (4 + 24 significant bits); references that must "dequantize exactly" use double.
#pragma once
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <string_view>

#include "moe/dtype.hpp"
#include "moe/gpu_runtime.hpp"

namespace moe {

enum class Fp8Format : int {
  E4M3FN = 0,    // OCP e4m3fn: bias 7, max 448, NaN = S.1111.111
  E4M3FNUZ = 1,  // e4m3fnuz: bias 8, max 240, NaN = 0x80, no -0
};

// Compile-time properties of a format.
template <Fp8Format F>
struct Fp8Traits;

template <>
struct Fp8Traits<Fp8Format::E4M3FN> {
  static constexpr int kBias = 7;
  static constexpr uint32_t kMaxBits = 0x43E00000u;  // 448.0f
  static constexpr uint8_t kMaxCode = 0x7E;
  static constexpr uint8_t kNanCode = 0x7F;
  static constexpr bool kHasNegZero = true;
  static constexpr float kMax = 448.0f;
  static constexpr float kMinSubnormal = 0.001953125f;  // 2^-9
};

template <>
struct Fp8Traits<Fp8Format::E4M3FNUZ> {
  static constexpr int kBias = 8;
  static constexpr uint32_t kMaxBits = 0x43700000u;  // 240.0f
  static constexpr uint8_t kMaxCode = 0x7F;
  static constexpr uint8_t kNanCode = 0x80;
  static constexpr bool kHasNegZero = false;
  static constexpr float kMax = 240.0f;
  static constexpr float kMinSubnormal = 0.0009765625f;  // 2^-10
};

MOE_HD constexpr float fp8_max(Fp8Format f) { return f == Fp8Format::E4M3FN ? 448.0f : 240.0f; }
MOE_HD constexpr uint8_t fp8_max_code(Fp8Format f) { return f == Fp8Format::E4M3FN ? 0x7E : 0x7F; }
MOE_HD constexpr uint8_t fp8_nan_code(Fp8Format f) { return f == Fp8Format::E4M3FN ? 0x7F : 0x80; }
MOE_HD constexpr int fp8_bias(Fp8Format f) { return f == Fp8Format::E4M3FN ? 7 : 8; }

template <Fp8Format F>
MOE_HD bool fp8_is_nan_t(uint8_t c) {
  if constexpr (F == Fp8Format::E4M3FN) return (c & 0x7Fu) == 0x7Fu;
  else return c == 0x80u;
}
MOE_HD bool fp8_is_nan(uint8_t c, Fp8Format f) {
  return f == Fp8Format::E4M3FN ? fp8_is_nan_t<Fp8Format::E4M3FN>(c) : fp8_is_nan_t<Fp8Format::E4M3FNUZ>(c);
}

// Software encoder: the definition (see the rule at the top of this file).
template <Fp8Format F>
MOE_HD uint8_t fp8_encode_t(float x) {
  using T = Fp8Traits<F>;
  const uint32_t u = f32_bits(x);
  const uint32_t sign = (u >> 24) & 0x80u;
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return T::kNanCode;
  uint32_t mag;
  if (a >= T::kMaxBits) {
    mag = T::kMaxCode;  // saturate (includes Inf)
  } else if (a >= (static_cast<uint32_t>(128 - T::kBias) << 23)) {
    // Normal: |x| >= 2^(1-bias). Round the 23-bit mantissa to 3 bits (RNE); a carry
    // moves into the exponent field, which is what we want.
    const uint32_t r = a + 0x7ffffu + ((a >> 20) & 1u);
    mag = (r >> 20) - (static_cast<uint32_t>(127 - T::kBias) << 3);
  } else {
    // Subnormal range: |x| in units of the smallest subnormal 2^(-bias-2), RNE.
    // |x| = mant * 2^(exp-150) -> q = mant >> shift with shift = 148 - bias - exp.
    const int exp = static_cast<int>(a >> 23);
    const int shift = 148 - T::kBias - exp;  // >= 21 here
    if (shift > 24) {
      mag = 0;  // below half the smallest subnormal (also float subnormals)
    } else {
      const uint32_t mant = (a & 0x7fffffu) | 0x800000u;
      uint32_t q = mant >> shift;
      const uint32_t rem = mant & ((1u << shift) - 1u);
      const uint32_t half = 1u << (shift - 1);
      if (rem > half || (rem == half && (q & 1u))) ++q;
      mag = q;  // may carry to 8 = the smallest normal code, correctly
    }
  }
  if constexpr (!T::kHasNegZero) {
    if (mag == 0) return 0;
  }
  return static_cast<uint8_t>(sign | mag);
}

template <Fp8Format F>
MOE_HD float fp8_decode_t(uint8_t c) {
  using T = Fp8Traits<F>;
  const uint32_t sign = static_cast<uint32_t>(c & 0x80u) << 24;
  if (fp8_is_nan_t<F>(c)) return bits_f32(sign | 0x7fc00000u);
  const uint32_t e = (c >> 3) & 0xFu;
  const uint32_t m = c & 0x7u;
  if (e == 0) {
    const float v = static_cast<float>(m) * T::kMinSubnormal;  // exact
    return sign ? -v : v;
  }
  return bits_f32(sign | ((e + 127u - static_cast<uint32_t>(T::kBias)) << 23) | (m << 20));
}

MOE_HD uint8_t fp8_encode(float x, Fp8Format f) {
  return f == Fp8Format::E4M3FN ? fp8_encode_t<Fp8Format::E4M3FN>(x) : fp8_encode_t<Fp8Format::E4M3FNUZ>(x);
}
MOE_HD float fp8_decode(uint8_t c, Fp8Format f) {
  return f == Fp8Format::E4M3FN ? fp8_decode_t<Fp8Format::E4M3FN>(c) : fp8_decode_t<Fp8Format::E4M3FNUZ>(c);
}

// Encoders for kernels: two floats to two codes, lo in bits 0..7, hi in bits 8..15.
// Same results as fp8_encode_t (hardware cvt on sm_89+ for e4m3fn; see the top).
template <Fp8Format F>
MOE_HD uint16_t fp8x2_encode_fast(float lo, float hi) {
#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 890) && !defined(MOE_FP8_SOFTWARE_CVT)
  if constexpr (F == Fp8Format::E4M3FN) {
    uint16_t r;
    // PTX: the result of converting the first source goes to the upper byte.
    asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(r) : "f"(hi), "f"(lo));
    return r;
  }
#endif
  return static_cast<uint16_t>(fp8_encode_t<F>(lo) | (static_cast<uint16_t>(fp8_encode_t<F>(hi)) << 8));
}
template <Fp8Format F>
MOE_HD uint8_t fp8_encode_fast(float x) {
  return static_cast<uint8_t>(fp8x2_encode_fast<F>(x, 0.0f) & 0xFFu);
}
// Whether fp8x2_encode_fast<E4M3FN> uses the hardware instruction in this
// compilation (device side; always false on the host).
MOE_HD constexpr bool fp8_hw_cvt_compiled() {
#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 890) && !defined(MOE_FP8_SOFTWARE_CVT)
  return true;
#else
  return false;
#endif
}

// ---- int8 --------------------------------------------------------------------------
MOE_HD int8_t int8_round_clamp(float v) {
  if (v != v) return 0;  // NaN
  v = v < -127.0f ? -127.0f : (v > 127.0f ? 127.0f : v);
  return static_cast<int8_t>(rintf(v));  // round half to even (default rounding mode)
}

// ---- scales (the rule at the top of this file) ----------------------------------------
MOE_HD float quant_scale_from_amax(float amax, float qmax) {
  if (!(amax <= FLT_MAX)) return bits_f32(0x7fc00000u);  // Inf or NaN amax
  if (amax == 0.0f) return 0.0f;
  const float s = amax / qmax;
  return s < FLT_MIN ? FLT_MIN : s;
}
MOE_HD float quant_inv_scale(float scale) { return scale == 0.0f ? 0.0f : 1.0f / scale; }
// x * inv, with the scale-0 rule (every code +0).
MOE_HD float quant_prescale(float x, float inv) { return inv == 0.0f ? 0.0f : x * inv; }

// One value to its code (software encoders; references use these).
MOE_HD uint8_t fp8_quantize(float x, float inv, Fp8Format f) { return fp8_encode(quant_prescale(x, inv), f); }
MOE_HD int8_t int8_quantize(float x, float inv) { return int8_round_clamp(quant_prescale(x, inv)); }
MOE_HD float fp8_dequantize(uint8_t c, float scale, Fp8Format f) { return fp8_decode(c, f) * scale; }
MOE_HD float int8_dequantize(int8_t q, float scale) { return static_cast<float>(q) * scale; }

// ---- choosing a format by target ------------------------------------------------------
// gfx940/gfx941/gfx942 (MI300 series) -> e4m3fnuz. Everything else -> e4m3fn: NVIDIA
// sm_89+ (native), gfx950/MI350 and later AMD (native OCP), and targets without FP8
// hardware (sm_80, gfx90a), where kernels convert in software and the checkpoint
// format (OCP, as DeepSeek-V3 ships) is the natural choice. Accepts "sm_90",
// "gfx942:sramecc+:xnack-" and the like.
inline Fp8Format fp8_format_for_arch(std::string_view arch) {
  return arch.substr(0, 5) == "gfx94" ? Fp8Format::E4M3FNUZ : Fp8Format::E4M3FN;
}

inline std::string_view fp8_format_name(Fp8Format f) { return f == Fp8Format::E4M3FN ? "e4m3fn" : "e4m3fnuz"; }

}  // namespace moe
