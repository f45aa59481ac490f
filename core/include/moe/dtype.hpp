// Element types and bit-exact float <-> bf16/fp16 conversion usable on host and
// device, so CPU references and GPU kernels round identically (round to nearest
// even; NaN stays NaN; overflow to fp16 gives inf).
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "moe/gpu_runtime.hpp"

namespace moe {

// I8 and F8E4M3 are the 8-bit codes of the quantized layers, read and written as
// raw bytes (an fp8 code's format, e4m3fn or e4m3fnuz, is a parameter of the
// kernel that reads it, not of the tensor).
enum class DType : int { F32 = 0, BF16 = 1, F16 = 2, I32 = 3, I8 = 4, F8E4M3 = 5 };

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::BF16:
    case DType::F16: return 2;
    case DType::I8:
    case DType::F8E4M3: return 1;
    default: return 4;
  }
}
inline bool is_float_dtype(DType t) { return t == DType::F32 || t == DType::BF16 || t == DType::F16; }
std::string_view dtype_name(DType t);
// Accepts "bf16", "fp16"/"f16", "fp32"/"f32", "i32", "i8", "fp8_e4m3"; throws InputError otherwise.
DType parse_dtype(std::string_view s);

MOE_HD uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
MOE_HD float bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

MOE_HD uint16_t f32_to_bf16_bits(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
MOE_HD float bf16_bits_to_f32(uint16_t b) { return bits_f32(static_cast<uint32_t>(b) << 16); }

MOE_HD uint16_t f32_to_f16_bits(float f) {
  uint32_t u = f32_bits(f);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65520: inf
  if (a < 0x38800000u) {                                              // fp16 subnormal or zero
    // Value in units of 2^-24, rounded to nearest even.
    uint32_t exp = a >> 23;
    if (exp < 102) return static_cast<uint16_t>(sign);  // below half the smallest subnormal
    uint32_t mant = (a & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - exp;  // 14..24 (value = mant * 2^(exp-150); want units of 2^-24)
    uint32_t q = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return static_cast<uint16_t>(sign | q);
  }
  uint32_t r = a + 0xfffu + ((a >> 13) & 1u);  // round mantissa to 10 bits
  uint32_t h = ((r >> 13) - (112u << 10));     // rebias exponent 127 -> 15
  return static_cast<uint16_t>(sign | h);
}
MOE_HD float f16_bits_to_f32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) {
    if (mant == 0) return bits_f32(sign);
    // subnormal: mant * 2^-24, exact in float
    float v = static_cast<float>(mant) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  return bits_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}

// Round a float to the precision of `t` and back (identity for F32).
MOE_HD float round_to(DType t, float f) {
  if (t == DType::BF16) return bf16_bits_to_f32(f32_to_bf16_bits(f));
  if (t == DType::F16) return f16_bits_to_f32(f32_to_f16_bits(f));
  return f;
}

// Unit roundoff u = 2^-p of each float type (p = stored mantissa bits + 1).
inline double unit_roundoff(DType t) {
  switch (t) {
    case DType::BF16: return 1.0 / 256;     // 2^-8
    case DType::F16: return 1.0 / 2048;     // 2^-11
    default: return 1.0 / 16777216;         // 2^-24
  }
}

}  // namespace moe
