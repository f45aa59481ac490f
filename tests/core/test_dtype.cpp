// dtype.hpp: float <-> bf16 / fp16 bit conversion must be bit-exact round to
// nearest even, checked against references that share no code with it:
//  - an exact "nearest of the two neighbours" rounding done in double, and
//  - the compiler's own _Float16 (and std::bfloat16_t where the compiler has it).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <ios>
#include <limits>
#include <random>
#include <vector>

#if __has_include(<stdfloat>)
#include <stdfloat>
#endif

#include "moe/dtype.hpp"
#include "moe/error.hpp"

namespace {

using moe::bits_f32;
using moe::f32_bits;

bool is_nan16(uint16_t h, int exp_bits) {
  const int mant_bits = 15 - exp_bits;
  const uint16_t exp_mask = static_cast<uint16_t>(((1u << exp_bits) - 1u) << mant_bits);
  return (h & exp_mask) == exp_mask && (h & ((1u << mant_bits) - 1u)) != 0;
}

// Value of a 16-bit float code with `exp_bits` exponent bits, computed with
// ldexp in double (independent of the code under test). Inf/NaN not handled.
double decode16(uint16_t h, int exp_bits) {
  const int mant_bits = 15 - exp_bits;
  const int bias = (1 << (exp_bits - 1)) - 1;
  const int e = (h >> mant_bits) & ((1 << exp_bits) - 1);
  const int m = h & ((1 << mant_bits) - 1);
  const double mag = e == 0 ? std::ldexp(static_cast<double>(m), 1 - bias - mant_bits)
                            : std::ldexp(static_cast<double>(m + (1 << mant_bits)), e - bias - mant_bits);
  return (h & 0x8000) ? -mag : mag;
}

// Reference rounding of a finite or infinite float to the 16-bit format: pick
// the nearer of the two representable neighbours (exact in double), ties to the
// even code; beyond max + half an ulp gives inf, as IEEE 754 says.
uint16_t encode16_ref(float f, int exp_bits) {
  const int mant_bits = 15 - exp_bits;
  const uint16_t inf_code = static_cast<uint16_t>(((1u << exp_bits) - 1u) << mant_bits);
  const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  const double a = std::fabs(static_cast<double>(f));
  if (std::isinf(f)) return sign | inf_code;
  // Largest code whose magnitude is <= a (binary search over the ordered codes).
  uint32_t lo = 0, hi = inf_code;  // decode(lo) <= a; decode(hi) treated as "too big"
  while (hi - lo > 1) {
    const uint32_t mid = (lo + hi) / 2;
    if (decode16(static_cast<uint16_t>(mid), exp_bits) <= a) lo = mid; else hi = mid;
  }
  const double vlo = decode16(static_cast<uint16_t>(lo), exp_bits);
  if (vlo == a) return static_cast<uint16_t>(sign | lo);
  // The next code up; past the largest finite value the "next" value for
  // rounding purposes is 2^(emax+1).
  const int bias = (1 << (exp_bits - 1)) - 1;
  const double vhi = lo + 1 == inf_code ? std::ldexp(1.0, bias + 1) : decode16(static_cast<uint16_t>(lo + 1), exp_bits);
  const double dlo = a - vlo, dhi = vhi - a;
  uint32_t pick = dlo < dhi ? lo : dhi < dlo ? lo + 1 : ((lo & 1u) ? lo + 1 : lo);
  return static_cast<uint16_t>(sign | pick);
}

uint16_t bf16_ref(float f) { return encode16_ref(f, 8); }
uint16_t f16_ref(float f) { return encode16_ref(f, 5); }

// The compiler's own _Float16 where it has one (GCC; clang 15+ on x86); with clang
// 14 (the sanitizer build) the double reference stands in for it.
#if defined(__clang__) && __clang_major__ < 15
#define MOE_TEST_FLOAT16 0
#else
#define MOE_TEST_FLOAT16 1
#endif

uint16_t f16_compiler(float f) {
#if MOE_TEST_FLOAT16
  const _Float16 h = static_cast<_Float16>(f);
  uint16_t b;
  std::memcpy(&b, &h, 2);
  return b;
#else
  return f16_ref(f);
#endif
}

float f16_widen_compiler(uint16_t h) {
#if MOE_TEST_FLOAT16
  _Float16 hc;
  std::memcpy(&hc, &h, 2);
  return static_cast<float>(hc);
#else
  if ((h & 0x7fffu) == 0x7c00u) return (h & 0x8000u) ? -INFINITY : INFINITY;
  if ((h & 0x7fffu) > 0x7c00u) return NAN;
  return static_cast<float>(decode16(h, 5));
#endif
}

// Interesting floats: zeros, ones, limits, subnormals, both formats' boundaries,
// exact ties and their neighbours, and random bit patterns.
std::vector<float> probe_floats() {
  std::vector<float> v = {0.0f,
                          -0.0f,
                          1.0f,
                          -1.0f,
                          std::numeric_limits<float>::min(),
                          std::numeric_limits<float>::denorm_min(),
                          -std::numeric_limits<float>::denorm_min(),
                          std::numeric_limits<float>::max(),
                          -std::numeric_limits<float>::max(),
                          std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity(),
                          65504.0f,
                          65519.996f,
                          65520.0f,
                          -65520.0f,
                          65536.0f,
                          6.103515625e-05f,        // smallest fp16 normal
                          5.9604644775390625e-08f,  // smallest fp16 subnormal
                          2.98023223876953125e-08f, // half of it: tie, rounds to 0
                          2.98023224e-08f * 1.0000001f,
                          8.940696716308594e-08f,   // 1.5 smallest subnormals: tie, rounds to 2
                          3.3895313892515355e+38f}; // largest bf16
  // Exact ties and neighbours for every bf16 exponent (upper 16 bits = code).
  for (uint32_t code = 0; code < 0x7f80u; code += 0x35) {
    for (uint32_t low : {0x7fffu, 0x8000u, 0x8001u, 0x0001u, 0xffffu}) {
      v.push_back(bits_f32((code << 16) | low));
      v.push_back(bits_f32(0x80000000u | (code << 16) | low));
    }
  }
  // Exact fp16 ties: fp32 mantissa bit 12 set, lower bits clear, in the fp16
  // normal and subnormal ranges.
  for (uint32_t e = 100; e < 145; ++e)
    for (uint32_t m : {0x1000u, 0x3000u, 0x2000u, 0x1001u, 0x0fffu, 0x7ff000u, 0x7fe000u, 0x400000u})
      v.push_back(bits_f32((e << 23) | m));
  std::mt19937 gen(12345);
  std::uniform_int_distribution<uint32_t> any;
  for (int i = 0; i < 400000; ++i) {
    const float f = bits_f32(any(gen));
    if (!std::isnan(f)) v.push_back(f);
  }
  // Values in fp16's range, where most of its rounding happens.
  std::uniform_real_distribution<float> r16(-70000.0f, 70000.0f);
  std::uniform_real_distribution<float> small(-1e-4f, 1e-4f);
  for (int i = 0; i < 100000; ++i) {
    v.push_back(r16(gen));
    v.push_back(small(gen));
  }
  return v;
}

}  // namespace

TEST_CASE("dtype: every bf16 code widens exactly and round-trips") {
  for (uint32_t c = 0; c < 65536; ++c) {
    const uint16_t h = static_cast<uint16_t>(c);
    const float f = moe::bf16_bits_to_f32(h);
    if (is_nan16(h, 8)) {
      REQUIRE(std::isnan(f));
      // The sign and payload survive widening; narrowing a NaN gives a NaN.
      REQUIRE(is_nan16(moe::f32_to_bf16_bits(f), 8));
      continue;
    }
    if ((h & 0x7fffu) == 0x7f80u) {
      REQUIRE(std::isinf(f));
    } else {
      REQUIRE(static_cast<double>(f) == decode16(h, 8));
    }
    REQUIRE(moe::f32_to_bf16_bits(f) == h);  // bit-exact, signed zero included
  }
}

TEST_CASE("dtype: every fp16 code widens exactly and round-trips") {
  for (uint32_t c = 0; c < 65536; ++c) {
    const uint16_t h = static_cast<uint16_t>(c);
    const float f = moe::f16_bits_to_f32(h);
    const float fc = f16_widen_compiler(h);
    if (is_nan16(h, 5)) {
      REQUIRE(std::isnan(f));
      REQUIRE(std::isnan(fc));
      REQUIRE(is_nan16(moe::f32_to_f16_bits(f), 5));
      continue;
    }
    REQUIRE(f32_bits(f) == f32_bits(fc));  // same bits as the compiler's widening
    if ((h & 0x7fffu) != 0x7c00u) REQUIRE(static_cast<double>(f) == decode16(h, 5));
    REQUIRE(moe::f32_to_f16_bits(f) == h);
  }
}

TEST_CASE("dtype: float -> bf16 is round-to-nearest-even (reference in double)") {
  const auto v = probe_floats();
  int64_t checked = 0;
  for (float f : v) {
    const uint16_t got = moe::f32_to_bf16_bits(f);
    const uint16_t want = bf16_ref(f);
    if (got != want) {
      INFO("f = " << f << " bits 0x" << std::hex << f32_bits(f) << " got 0x" << got << " want 0x" << want);
      REQUIRE(got == want);
    }
#if defined(__STDCPP_BFLOAT16_T__)
    const std::bfloat16_t b = static_cast<std::bfloat16_t>(f);
    uint16_t bb;
    std::memcpy(&bb, &b, 2);
    REQUIRE(got == bb);
#endif
    ++checked;
  }
  CHECK(checked > 500000);
}

TEST_CASE("dtype: float -> fp16 matches _Float16 and the double reference") {
  const auto v = probe_floats();
  for (float f : v) {
    const uint16_t got = moe::f32_to_f16_bits(f);
    const uint16_t want = f16_ref(f);
    const uint16_t comp = f16_compiler(f);
    if (got != want || got != comp) {
      INFO("f = " << f << " bits 0x" << std::hex << f32_bits(f) << " got 0x" << got << " want 0x" << want
                  << " _Float16 0x" << comp);
      REQUIRE(got == want);
      REQUIRE(got == comp);
    }
  }
}

TEST_CASE("dtype: edge cases spelled out") {
  // RNE ties: 1 + 2^-8 is halfway between bf16 1.0 and 1.0078125 -> even (1.0);
  // 1 + 3*2^-8 is halfway between 1.0078125 (odd) and 1.015625 -> 1.015625.
  CHECK(moe::f32_to_bf16_bits(1.00390625f) == 0x3f80);
  CHECK(moe::f32_to_bf16_bits(1.01171875f) == 0x3f82);
  CHECK(moe::f32_to_f16_bits(1.00048828125f) == 0x3c00);  // 1 + 2^-11: tie to even
  CHECK(moe::f32_to_f16_bits(1.00146484375f) == 0x3c02);  // 1 + 3*2^-11
  // fp16 overflow: 65504 is the max; 65520 (max + half ulp) rounds to inf.
  CHECK(moe::f32_to_f16_bits(65504.0f) == 0x7bff);
  CHECK(moe::f32_to_f16_bits(65519.99f) == 0x7bff);
  CHECK(moe::f32_to_f16_bits(65520.0f) == 0x7c00);
  CHECK(moe::f32_to_f16_bits(-1e10f) == 0xfc00);
  // bf16 overflow: FLT_MAX rounds up to inf (it is above max bf16 + half ulp).
  CHECK(moe::f32_to_bf16_bits(std::numeric_limits<float>::max()) == 0x7f80);
  // Subnormals.
  CHECK(moe::f32_to_f16_bits(5.9604644775390625e-08f) == 0x0001);
  CHECK(moe::f32_to_f16_bits(2.98023223876953125e-08f) == 0x0000);  // tie -> 0 (even)
  CHECK(moe::f32_to_f16_bits(8.940696716308594e-08f) == 0x0002);     // 1.5 -> 2 (even)
  CHECK(moe::f32_to_f16_bits(-1e-30f) == 0x8000);                     // underflow keeps the sign
  CHECK(moe::f32_to_bf16_bits(std::numeric_limits<float>::denorm_min()) == 0x0000);
  CHECK(moe::f32_to_bf16_bits(bits_f32(0x00018000u)) == 0x0002);  // bf16 subnormal tie -> even
  // NaN stays NaN, including a signalling NaN whose payload is only in the low
  // 16 bits (plain truncation would turn it into inf).
  for (uint32_t nan_bits : {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xff800001u, 0x7fffffffu}) {
    const float n = bits_f32(nan_bits);
    CHECK(is_nan16(moe::f32_to_bf16_bits(n), 8));
    CHECK(is_nan16(moe::f32_to_f16_bits(n), 5));
    CHECK(std::isnan(moe::round_to(moe::DType::BF16, n)));
    CHECK(std::isnan(moe::round_to(moe::DType::F16, n)));
  }
  CHECK(moe::round_to(moe::DType::F32, 0.1f) == 0.1f);
  CHECK(moe::round_to(moe::DType::BF16, 0.1f) == moe::bf16_bits_to_f32(moe::f32_to_bf16_bits(0.1f)));
}

TEST_CASE("dtype: names, sizes and parsing") {
  using moe::DType;
  CHECK(moe::dtype_size(DType::BF16) == 2);
  CHECK(moe::dtype_size(DType::F16) == 2);
  CHECK(moe::dtype_size(DType::F32) == 4);
  CHECK(moe::dtype_size(DType::I32) == 4);
  CHECK(moe::dtype_size(DType::I8) == 1);
  CHECK(moe::dtype_size(DType::F8E4M3) == 1);
  CHECK(!moe::is_float_dtype(DType::F8E4M3));
  for (DType t : {DType::F32, DType::BF16, DType::F16, DType::I32, DType::I8, DType::F8E4M3})
    CHECK(moe::parse_dtype(moe::dtype_name(t)) == t);
  CHECK(moe::parse_dtype("f16") == DType::F16);
  CHECK(moe::parse_dtype("f32") == DType::F32);
  CHECK_THROWS_AS(moe::parse_dtype("float"), moe::InputError);
  CHECK_THROWS_AS(moe::parse_dtype(""), moe::InputError);
  CHECK(moe::unit_roundoff(DType::BF16) == 1.0 / 256);
  CHECK(moe::unit_roundoff(DType::F16) == 1.0 / 2048);
  CHECK(moe::unit_roundoff(DType::F32) == 1.0 / 16777216);
}
