// FP8 e4m3fn / e4m3fnuz and int8 conversions (core/include/moe/fp8.hpp) against
// tables and oracles built here from the format definitions alone.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "moe/fp8.hpp"
#include "moe/rng.hpp"

using moe::Fp8Format;

namespace {

struct Def {
  int bias;
  double max;
  bool nan_all_ones;  // e4m3fn: S.1111.111 is NaN; e4m3fnuz: only 0x80
};
Def def(Fp8Format f) { return f == Fp8Format::E4M3FN ? Def{7, 448.0, true} : Def{8, 240.0, false}; }

// Independent table: the value of code c from its sign / exponent / mantissa fields,
// with ldexp in double (NaN codes -> quiet NaN).
double table_value(Fp8Format f, int c) {
  const Def d = def(f);
  const int s = (c >> 7) & 1, e = (c >> 3) & 15, m = c & 7;
  if (d.nan_all_ones && e == 15 && m == 7) return std::numeric_limits<double>::quiet_NaN();
  if (!d.nan_all_ones && c == 0x80) return std::numeric_limits<double>::quiet_NaN();
  const double mag = e == 0 ? std::ldexp(m / 8.0, 1 - d.bias) : std::ldexp(1.0 + m / 8.0, e - d.bias);
  return s ? -mag : mag;
}

// Oracle encoder: nearest finite table value by exhaustive search in double; ties to
// the even code (mantissa LSB 0); saturate beyond max; NaN -> canonical NaN; the sign
// of zero per format. Slow but obviously right.
uint8_t oracle_encode(Fp8Format f, float xf) {
  const Def d = def(f);
  if (std::isnan(xf)) return f == Fp8Format::E4M3FN ? 0x7F : 0x80;
  const double x = xf;
  const bool neg = std::signbit(xf);
  const double a = std::fabs(x);
  if (a >= d.max) return static_cast<uint8_t>((neg ? 0x80 : 0) | (f == Fp8Format::E4M3FN ? 0x7E : 0x7F));
  int best = 0;
  double best_err = INFINITY;
  for (int c = 0; c < 128; ++c) {
    const double v = table_value(f, c);
    if (std::isnan(v)) continue;
    const double err = std::fabs(v - a);
    if (err < best_err || (err == best_err && (c & 1) == 0)) {
      best = c;
      best_err = err;
    }
  }
  if (best == 0 && f == Fp8Format::E4M3FNUZ) return 0;
  return static_cast<uint8_t>((neg ? 0x80 : 0) | best);
}

bool same_float(float a, double b) {
  if (std::isnan(b)) return std::isnan(a);
  return static_cast<double>(a) == b && std::signbit(a) == std::signbit(b);
}

const Fp8Format kFormats[] = {Fp8Format::E4M3FN, Fp8Format::E4M3FNUZ};

}  // namespace

TEST_CASE("fp8: all 256 codes decode to the independent table") {
  for (Fp8Format f : kFormats) {
    CAPTURE(moe::fp8_format_name(f));
    int nans = 0;
    for (int c = 0; c < 256; ++c) {
      CAPTURE(c);
      const double t = table_value(f, c);
      CHECK(same_float(moe::fp8_decode(static_cast<uint8_t>(c), f), t));
      CHECK(moe::fp8_is_nan(static_cast<uint8_t>(c), f) == std::isnan(t));
      nans += std::isnan(t);
    }
    CHECK(nans == (f == Fp8Format::E4M3FN ? 2 : 1));
  }
  // Spot values from the format definitions.
  CHECK(moe::fp8_decode(0x7E, Fp8Format::E4M3FN) == 448.0f);
  CHECK(moe::fp8_decode(0xFE, Fp8Format::E4M3FN) == -448.0f);
  CHECK(moe::fp8_decode(0x01, Fp8Format::E4M3FN) == 0x1p-9f);
  CHECK(moe::fp8_decode(0x08, Fp8Format::E4M3FN) == 0x1p-6f);
  CHECK(moe::fp8_decode(0x38, Fp8Format::E4M3FN) == 1.0f);
  CHECK(std::signbit(moe::fp8_decode(0x80, Fp8Format::E4M3FN)));
  CHECK(moe::fp8_decode(0x7F, Fp8Format::E4M3FNUZ) == 240.0f);
  CHECK(moe::fp8_decode(0xFF, Fp8Format::E4M3FNUZ) == -240.0f);
  CHECK(moe::fp8_decode(0x01, Fp8Format::E4M3FNUZ) == 0x1p-10f);
  CHECK(moe::fp8_decode(0x40, Fp8Format::E4M3FNUZ) == 1.0f);
  CHECK(std::isnan(moe::fp8_decode(0x80, Fp8Format::E4M3FNUZ)));
  CHECK(std::isnan(moe::fp8_decode(0x7F, Fp8Format::E4M3FN)));
  CHECK(std::isnan(moe::fp8_decode(0xFF, Fp8Format::E4M3FN)));
  CHECK(moe::fp8_max(Fp8Format::E4M3FN) == 448.0f);
  CHECK(moe::fp8_max(Fp8Format::E4M3FNUZ) == 240.0f);
}

TEST_CASE("fp8: encode(decode(c)) == c for every non-NaN code; NaN -> canonical NaN") {
  for (Fp8Format f : kFormats) {
    CAPTURE(moe::fp8_format_name(f));
    for (int c = 0; c < 256; ++c) {
      CAPTURE(c);
      const float v = moe::fp8_decode(static_cast<uint8_t>(c), f);
      if (moe::fp8_is_nan(static_cast<uint8_t>(c), f)) {
        CHECK(moe::fp8_encode(v, f) == moe::fp8_nan_code(f));
      } else {
        CHECK(moe::fp8_encode(v, f) == c);
      }
    }
  }
  CHECK(moe::fp8_nan_code(Fp8Format::E4M3FN) == 0x7F);
  CHECK(moe::fp8_nan_code(Fp8Format::E4M3FNUZ) == 0x80);
}

TEST_CASE("fp8: round to nearest even at every midpoint, and just off it") {
  for (Fp8Format f : kFormats) {
    CAPTURE(moe::fp8_format_name(f));
    const uint8_t maxc = moe::fp8_max_code(f);
    for (int c = 0; c < maxc; ++c) {
      CAPTURE(c);
      const double lo = table_value(f, c), hi = table_value(f, c + 1);
      const double mid = (lo + hi) / 2;  // exact: fp8 values have <= 4 significant bits
      const float m = static_cast<float>(mid);
      REQUIRE(static_cast<double>(m) == mid);
      const int even = (c % 2 == 0) ? c : c + 1;
      CHECK(moe::fp8_encode(m, f) == even);
      CHECK(moe::fp8_encode(std::nextafter(m, 0.0f), f) == c);
      CHECK(moe::fp8_encode(std::nextafter(m, INFINITY), f) == c + 1);
      // Negative side mirrors (sign bit set), except that fnuz has no -0.
      const int neg_even = (even == 0 && f == Fp8Format::E4M3FNUZ) ? 0 : (0x80 | even);
      CHECK(moe::fp8_encode(-m, f) == neg_even);
    }
    // The midpoint between max and the (non-existent) next binade step saturates.
    const double mx = table_value(f, maxc), step = mx - table_value(f, maxc - 1);
    CHECK(moe::fp8_encode(static_cast<float>(mx + step / 2), f) == maxc);
  }
}

TEST_CASE("fp8: saturation, just above max, +-Inf, NaN, +-0") {
  for (Fp8Format f : kFormats) {
    CAPTURE(moe::fp8_format_name(f));
    const float mx = moe::fp8_max(f);
    const uint8_t mc = moe::fp8_max_code(f);
    CHECK(moe::fp8_encode(mx, f) == mc);
    CHECK(moe::fp8_encode(-mx, f) == (0x80 | mc));
    CHECK(moe::fp8_encode(std::nextafter(mx, INFINITY), f) == mc);
    CHECK(moe::fp8_encode(mx * 1.0625f, f) == mc);  // beyond the RNE tie above max: saturates
    CHECK(moe::fp8_encode(mx * 1.07f, f) == mc);    // would round up: saturates
    CHECK(moe::fp8_encode(1e30f, f) == mc);
    CHECK(moe::fp8_encode(-1e30f, f) == (0x80 | mc));
    CHECK(moe::fp8_encode(std::numeric_limits<float>::max(), f) == mc);
    CHECK(moe::fp8_encode(INFINITY, f) == mc);
    CHECK(moe::fp8_encode(-INFINITY, f) == (0x80 | mc));
    CHECK(moe::fp8_encode(std::numeric_limits<float>::quiet_NaN(), f) == moe::fp8_nan_code(f));
    CHECK(moe::fp8_encode(-std::numeric_limits<float>::quiet_NaN(), f) == moe::fp8_nan_code(f));
    CHECK(moe::fp8_encode(moe::bits_f32(0x7f800001u), f) == moe::fp8_nan_code(f));  // signalling NaN
    CHECK(moe::fp8_encode(0.0f, f) == 0x00);
    CHECK(moe::fp8_encode(-0.0f, f) == (f == Fp8Format::E4M3FN ? 0x80 : 0x00));
    CHECK(moe::fp8_encode(-1e-30f, f) == (f == Fp8Format::E4M3FN ? 0x80 : 0x00));
    CHECK(moe::fp8_encode(moe::bits_f32(0x00000001u), f) == 0x00);  // float subnormal
  }
}

TEST_CASE("fp8: subnormals") {
  for (Fp8Format f : kFormats) {
    CAPTURE(moe::fp8_format_name(f));
    const double sub = std::ldexp(1.0, -def(f).bias - 2);  // smallest subnormal
    for (int m = 1; m < 8; ++m) CHECK(moe::fp8_encode(static_cast<float>(m * sub), f) == m);
    CHECK(moe::fp8_encode(static_cast<float>(sub / 2), f) == 0);                       // tie -> 0 (even)
    CHECK(moe::fp8_encode(std::nextafter(static_cast<float>(sub / 2), 1.0f), f) == 1);  // just above the tie
    CHECK(moe::fp8_encode(static_cast<float>(1.5 * sub), f) == 2);                     // tie -> 2 (even)
    CHECK(moe::fp8_encode(static_cast<float>(2.5 * sub), f) == 2);
    CHECK(moe::fp8_encode(static_cast<float>(7.5 * sub), f) == 8);  // carries into the smallest normal
    CHECK(moe::fp8_decode(8, f) == static_cast<float>(8 * sub));
  }
}

TEST_CASE("fp8: encoder equals the exhaustive-search oracle on a dense float sweep") {
  // Every float whose top 16 bits take each of the 65536 values, with low halves
  // 0, 0x8000, 0xffff and 2 random ones: covers every binade, sign, NaN and Inf.
  for (Fp8Format f : kFormats) {
    CAPTURE(moe::fp8_format_name(f));
    int64_t bad = 0;
    for (uint32_t hi = 0; hi < 65536; ++hi) {
      const uint32_t lows[5] = {0u, 0x8000u, 0xffffu, moe::rng::bits32(1, moe::rng::Stream::Test, hi) & 0xffffu,
                                moe::rng::bits32(2, moe::rng::Stream::Test, hi) & 0xffffu};
      for (uint32_t lo : lows) {
        const float x = moe::bits_f32((hi << 16) | lo);
        if (moe::fp8_encode(x, f) != oracle_encode(f, x)) {
          if (bad < 5) MESSAGE("x bits ", (hi << 16) | lo, " got ", int(moe::fp8_encode(x, f)), " oracle ", int(oracle_encode(f, x)));
          ++bad;
        }
      }
    }
    CHECK(bad == 0);
  }
}

TEST_CASE("fp8: the kernels' fast encoder equals the definition on the host") {
  for (Fp8Format f : kFormats) {
    for (uint32_t i = 0; i < 200000; ++i) {
      const float x = moe::bits_f32(moe::rng::bits32(7, moe::rng::Stream::Test, i));
      const float y = moe::rng::normal(8, moe::rng::Stream::Test, i) * 100.0f;
      const uint16_t w = f == Fp8Format::E4M3FN ? moe::fp8x2_encode_fast<Fp8Format::E4M3FN>(x, y)
                                                : moe::fp8x2_encode_fast<Fp8Format::E4M3FNUZ>(x, y);
      REQUIRE((w & 0xFF) == moe::fp8_encode(x, f));
      REQUIRE((w >> 8) == moe::fp8_encode(y, f));
    }
  }
}

TEST_CASE("int8: round half to even, clamp to +-127, NaN -> 0") {
  CHECK(moe::int8_round_clamp(0.5f) == 0);
  CHECK(moe::int8_round_clamp(1.5f) == 2);
  CHECK(moe::int8_round_clamp(2.5f) == 2);
  CHECK(moe::int8_round_clamp(-2.5f) == -2);
  CHECK(moe::int8_round_clamp(-3.5f) == -4);
  CHECK(moe::int8_round_clamp(2.4999998f) == 2);
  CHECK(moe::int8_round_clamp(126.5f) == 126);
  CHECK(moe::int8_round_clamp(127.0f) == 127);
  CHECK(moe::int8_round_clamp(127.49f) == 127);
  CHECK(moe::int8_round_clamp(128.0f) == 127);
  CHECK(moe::int8_round_clamp(-127.0f) == -127);
  CHECK(moe::int8_round_clamp(-128.0f) == -127);  // symmetric: never -128
  CHECK(moe::int8_round_clamp(-1e30f) == -127);
  CHECK(moe::int8_round_clamp(INFINITY) == 127);
  CHECK(moe::int8_round_clamp(-INFINITY) == -127);
  CHECK(moe::int8_round_clamp(std::numeric_limits<float>::quiet_NaN()) == 0);
  CHECK(moe::int8_round_clamp(-0.0f) == 0);
  // Against round-half-even written out, on a dense grid of quarter steps.
  for (int k = -140 * 4; k <= 140 * 4; ++k) {
    const float v = k / 4.0f;
    double fl = std::floor(v), frac = v - fl;
    double r = frac > 0.5 ? fl + 1 : frac < 0.5 ? fl : (std::fmod(fl, 2.0) == 0 ? fl : fl + 1);
    r = std::clamp(r, -127.0, 127.0);
    CHECK(moe::int8_round_clamp(v) == static_cast<int>(r));
  }
}

TEST_CASE("scales: zero, tiny, normal and non-finite amax") {
  CHECK(moe::quant_scale_from_amax(0.0f, 448.0f) == 0.0f);
  CHECK(moe::quant_inv_scale(0.0f) == 0.0f);
  CHECK(moe::fp8_quantize(-3.0f, 0.0f, Fp8Format::E4M3FN) == 0x00);  // scale 0 -> +0, not -0 / NaN
  CHECK(moe::fp8_quantize(-0.0f, 0.0f, Fp8Format::E4M3FN) == 0x00);
  CHECK(moe::int8_quantize(-3.0f, 0.0f) == 0);
  CHECK(moe::fp8_dequantize(0x00, 0.0f, Fp8Format::E4M3FN) == 0.0f);
  CHECK(moe::quant_scale_from_amax(3.5f, 448.0f) == 0x1p-7f);
  CHECK(moe::quant_scale_from_amax(1e-40f, 448.0f) == FLT_MIN);  // subnormal scale clamped
  CHECK(std::isfinite(moe::quant_inv_scale(FLT_MIN)));
  CHECK(std::isnan(moe::quant_scale_from_amax(INFINITY, 448.0f)));
  CHECK(std::isnan(moe::quant_scale_from_amax(std::numeric_limits<float>::quiet_NaN(), 127.0f)));
  // amax itself lands on the max code.
  for (float amax : {1.0f, 3.0f, 0.1f, 1234.5f, 7e-30f}) {
    for (Fp8Format f : kFormats) {
      const float s = moe::quant_scale_from_amax(amax, moe::fp8_max(f));
      const float inv = moe::quant_inv_scale(s);
      CHECK(moe::fp8_quantize(amax, inv, f) == moe::fp8_max_code(f));
      CHECK(moe::fp8_quantize(-amax, inv, f) == (0x80 | moe::fp8_max_code(f)));
    }
    const float s = moe::quant_scale_from_amax(amax, 127.0f);
    CHECK(moe::int8_quantize(amax, moe::quant_inv_scale(s)) == 127);
    CHECK(moe::int8_quantize(-amax, moe::quant_inv_scale(s)) == -127);
  }
}

TEST_CASE("fp8: format chosen by target") {
  CHECK(moe::fp8_format_for_arch("sm_90") == Fp8Format::E4M3FN);
  CHECK(moe::fp8_format_for_arch("sm_89") == Fp8Format::E4M3FN);
  CHECK(moe::fp8_format_for_arch("gfx942") == Fp8Format::E4M3FNUZ);
  CHECK(moe::fp8_format_for_arch("gfx942:sramecc+:xnack-") == Fp8Format::E4M3FNUZ);
  CHECK(moe::fp8_format_for_arch("gfx940") == Fp8Format::E4M3FNUZ);
  CHECK(moe::fp8_format_for_arch("gfx950") == Fp8Format::E4M3FN);
  CHECK(moe::fp8_format_for_arch("gfx90a") == Fp8Format::E4M3FN);
  CHECK(moe::fp8_format_for_arch("") == Fp8Format::E4M3FN);
}
