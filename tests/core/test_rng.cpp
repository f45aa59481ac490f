// rng.hpp: counter-based Philox. The value at (seed, stream, index) is a pure
// function: deterministic, independent across seeds/streams/indices, with the
// advertised uniform and normal statistics, and any slice regenerates exactly.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <unordered_set>
#include <vector>

#include "moe/error.hpp"
#include "moe/inputs.hpp"
#include "moe/rng.hpp"

namespace {

using moe::rng::Stream;

struct Moments {
  double mean = 0, var = 0, excess_kurtosis = 0, min = 1e300, max = -1e300;
};

template <typename F>
Moments moments(int64_t n, F&& draw) {
  // Two passes in double: exact enough for 1e6 draws.
  std::vector<double> x(static_cast<size_t>(n));
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += x[static_cast<size_t>(i)] = draw(i);
  Moments m;
  m.mean = s / static_cast<double>(n);
  double m2 = 0, m4 = 0;
  for (double v : x) {
    const double d = v - m.mean;
    m2 += d * d;
    m4 += d * d * d * d;
    m.min = std::min(m.min, v);
    m.max = std::max(m.max, v);
  }
  m2 /= static_cast<double>(n);
  m4 /= static_cast<double>(n);
  m.var = m2;
  m.excess_kurtosis = m4 / (m2 * m2) - 3.0;
  return m;
}

}  // namespace

TEST_CASE("rng: Philox4x32-10 matches the published known-answer vectors") {
  // Random123 kat_vectors: philox4x32_10 with counter/key all zero, all ones,
  // and the pi digits vector.
  auto a = moe::rng::philox4x32_10(0, 0, 0, 0, 0, 0);
  CHECK(a.v[0] == 0x6627e8d5u);
  CHECK(a.v[1] == 0xe169c58du);
  CHECK(a.v[2] == 0xbc57ac4cu);
  CHECK(a.v[3] == 0x9b00dbd8u);
  auto b = moe::rng::philox4x32_10(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu);
  CHECK(b.v[0] == 0x408f276du);
  CHECK(b.v[1] == 0x41c83b0eu);
  CHECK(b.v[2] == 0xa20bc7c6u);
  CHECK(b.v[3] == 0x6d5451fdu);
  auto c = moe::rng::philox4x32_10(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u);
  CHECK(c.v[0] == 0xd16cfe09u);
  CHECK(c.v[1] == 0x94fdccebu);
  CHECK(c.v[2] == 0x5001e420u);
  CHECK(c.v[3] == 0x24126ea1u);
}

TEST_CASE("rng: a pure function of (seed, stream, index)") {
  for (uint64_t i : {uint64_t{0}, uint64_t{1}, uint64_t{12345}, (uint64_t{1} << 32) + 7, ~uint64_t{0}}) {
    CHECK(moe::rng::normal(42, Stream::W1, i) == moe::rng::normal(42, Stream::W1, i));
    CHECK(moe::rng::uniform(42, Stream::W1, i) == moe::rng::uniform(42, Stream::W1, i));
    CHECK(moe::rng::bits32(42, Stream::W1, i) == moe::rng::bits32(42, Stream::W1, i));
  }
  // Order of evaluation does not matter: backwards equals forwards.
  std::vector<float> fwd(1000), bwd(1000);
  for (int i = 0; i < 1000; ++i) fwd[i] = moe::rng::normal(7, Stream::Hidden, i);
  for (int i = 999; i >= 0; --i) bwd[i] = moe::rng::normal(7, Stream::Hidden, i);
  CHECK(fwd == bwd);
}

TEST_CASE("rng: seeds, streams and indices are independent") {
  // The high halves of seed and index take part too.
  CHECK(moe::rng::bits32(1, Stream::W1, 5) != moe::rng::bits32(1 + (uint64_t{1} << 32), Stream::W1, 5));
  CHECK(moe::rng::bits32(1, Stream::W1, 5) != moe::rng::bits32(1, Stream::W1, 5 + (uint64_t{1} << 32)));

  const int n = 200000;
  const std::pair<std::pair<uint64_t, Stream>, std::pair<uint64_t, Stream>> pairs[] = {
      {{0, Stream::W1}, {0, Stream::W2}},
      {{0, Stream::W1}, {1, Stream::W1}},
      {{0, Stream::Hidden}, {0, Stream::Scores}},
      {{123456789, Stream::W1}, {123456789 + (uint64_t{1} << 32), Stream::W1}},
  };
  for (const auto& [p, q] : pairs) {
    // Correlation of two streams at the same indices: ~N(0, 1/n), so |r| < 5/sqrt(n).
    double sxy = 0, sxx = 0, syy = 0;
    int equal = 0;
    for (int i = 0; i < n; ++i) {
      const double x = moe::rng::normal(p.first, p.second, i), y = moe::rng::normal(q.first, q.second, i);
      sxy += x * y;
      sxx += x * x;
      syy += y * y;
      equal += moe::rng::bits32(p.first, p.second, i) == moe::rng::bits32(q.first, q.second, i);
    }
    CHECK(std::abs(sxy / std::sqrt(sxx * syy)) < 5.0 / std::sqrt(double(n)));
    CHECK(equal <= 2);
  }
  // Neighbouring indices of one stream are uncorrelated (lag-1 and lag-4096).
  for (int lag : {1, 4096}) {
    double sxy = 0, sxx = 0;
    for (int i = 0; i < n; ++i) {
      const double x = moe::rng::normal(3, Stream::W1, i), y = moe::rng::normal(3, Stream::W1, i + lag);
      sxy += x * y;
      sxx += x * x;
    }
    CHECK(std::abs(sxy / sxx) < 5.0 / std::sqrt(double(n)));
  }
  // 32-bit words over 2^17 indices: the expected number of birthday collisions
  // is n^2 / 2^33 = 2; allow a generous margin.
  std::unordered_set<uint32_t> seen;
  int collisions = 0;
  for (uint64_t i = 0; i < (1u << 17); ++i) collisions += !seen.insert(moe::rng::bits32(9, Stream::Test, i)).second;
  CHECK(collisions < 12);
}

TEST_CASE("rng: uniform statistics over 1e6 draws") {
  const int64_t n = 1000000;
  const Moments m = moments(n, [](int64_t i) { return double(moe::rng::uniform(2024, Stream::Test, uint64_t(i))); });
  // Standard errors: mean 0.00029, var ~0.00007.
  CHECK(std::abs(m.mean - 0.5) < 0.0015);
  CHECK(std::abs(m.var - 1.0 / 12) < 0.0005);
  CHECK(std::abs(m.excess_kurtosis - (-1.2)) < 0.01);
  CHECK(m.min >= 0.0);
  CHECK(m.max < 1.0);
  // Ten equal bins: chi-square with 9 degrees of freedom stays below 40
  // (p ~ 1e-5).
  std::vector<int64_t> bins(10);
  for (int64_t i = 0; i < n; ++i) ++bins[static_cast<size_t>(moe::rng::uniform(77, Stream::Test, uint64_t(i)) * 10)];
  double chi2 = 0;
  for (int64_t b : bins) chi2 += double(b - n / 10) * double(b - n / 10) / double(n / 10);
  CHECK(chi2 < 40);
}

TEST_CASE("rng: normal statistics over 1e6 draws") {
  const int64_t n = 1000000;
  for (uint64_t seed : {uint64_t{0}, uint64_t{0x9e3779b97f4a7c15ull}}) {
    const Moments m = moments(n, [&](int64_t i) { return double(moe::rng::normal(seed, Stream::W1, uint64_t(i))); });
    // Standard errors: mean 0.001, variance 0.0014, excess kurtosis 0.005.
    CHECK(std::abs(m.mean) < 0.005);
    CHECK(std::abs(m.var - 1.0) < 0.007);
    // Sum of 16 uniforms: excess kurtosis -6/(5*16) = -0.075 (rng.hpp says so).
    CHECK(std::abs(m.excess_kurtosis - (-0.075)) < 0.03);
    // Bounded tails: |x| <= 8 * sqrt(3)/2 * (1 - 2^-17) = 6.93; and they are reached
    // often enough to matter: 1e6 draws see |x| > 4.
    CHECK(m.max <= 6.93);
    CHECK(m.min >= -6.93);
    CHECK(m.max > 4.0);
    CHECK(m.min < -4.0);
  }
  // The share within one sigma: 0.6796 for a sum of 16 uniforms (a Gaussian
  // would give 0.6827; the difference is the platykurtic shoulder).
  int64_t within = 0;
  for (int64_t i = 0; i < n; ++i) within += std::abs(moe::rng::normal(5, Stream::W2, uint64_t(i))) < 1.0f;
  CHECK(std::abs(double(within) / double(n) - 0.6796) < 0.0025);
}

TEST_CASE("rng: slices regenerate identically (fill_host at an offset)") {
  for (moe::DType dt : {moe::DType::F32, moe::DType::BF16, moe::DType::F16}) {
    moe::InputSpec spec;
    spec.shape = {64, 512, 96, 8, 2};
    spec.dtype = dt;
    spec.values = moe::ValueDist::FanIn;
    spec.seed = 31337;
    const size_t total = 20000;
    std::vector<float> all(total);
    moe::fill_host(spec, Stream::W1, 0, all);
    for (uint64_t off : {uint64_t{0}, uint64_t{1}, uint64_t{4095}, uint64_t{12345}}) {
      std::vector<float> part(std::min<size_t>(3000, total - off));
      moe::fill_host(spec, Stream::W1, off, part);
      CHECK(std::equal(part.begin(), part.end(), all.begin() + static_cast<std::ptrdiff_t>(off)));
    }
    // Element i is exactly round_to(dtype, normal(seed, stream, i) * scale).
    for (size_t i = 0; i < total; i += 997)
      CHECK(all[i] == moe::round_to(dt, moe::rng::normal(spec.seed, Stream::W1, i) * spec.scale(Stream::W1)));
    // An offset past 2^32 works (weights of DeepSeek-V3 exceed 2^32 elements).
    const uint64_t big = (uint64_t{1} << 32) - 5;
    std::vector<float> far(10);
    moe::fill_host(spec, Stream::W1, big, far);
    for (size_t i = 0; i < far.size(); ++i)
      CHECK(far[i] == moe::round_to(dt, moe::rng::normal(spec.seed, Stream::W1, big + i) * spec.scale(Stream::W1)));
    if (dt != moe::DType::F32) {
      std::vector<uint16_t> bits(total);
      moe::fill_host_bits16(spec, Stream::W1, 0, bits);
      for (size_t i = 0; i < total; ++i) {
        const float f = dt == moe::DType::BF16 ? moe::bf16_bits_to_f32(bits[i]) : moe::f16_bits_to_f32(bits[i]);
        REQUIRE(f == all[i]);
      }
    } else {
      std::vector<uint16_t> bits(4);
      CHECK_THROWS_AS(moe::fill_host_bits16(spec, Stream::W1, 0, bits), moe::InputError);
    }
  }
}
