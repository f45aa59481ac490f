// Counter-based random numbers: the value at (seed, stream, index) is a pure
// function, bit-identical on CPU and GPU. Large weights are generated on the GPU
// and a CPU reference regenerates only the slices it needs.
//
// Generator: Philox4x32-10 (Salmon et al., SC'11). key = seed, counter =
// (index_lo, index_hi, stream, draw).
//
// normal(): sum of 16 uniform 16-bit integers (two Philox blocks), centred and
// scaled to unit variance. Integer sum + one float multiply, so no libm call can
// differ between host and device. Excess kurtosis -0.075, tails end at +-6.93.
#pragma once
#include <cstdint>

#include "moe/gpu_runtime.hpp"

namespace moe::rng {

// Independent streams per tensor so regenerating one never shifts another.
enum class Stream : uint32_t {
  Hidden = 1,
  W1 = 2,
  W2 = 3,
  Scores = 4,
  Routing = 5,
  Logits = 6,
  RouterWeight = 7,
  Bias = 8,
  Test = 99,
};

struct Philox4 {
  uint32_t v[4];
};

MOE_HD void mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  uint64_t p = static_cast<uint64_t>(a) * b;
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}

MOE_HD Philox4 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo(0xD2511F53u, c0, hi0, lo0);
    mulhilo(0xCD9E8D57u, c2, hi1, lo1);
    uint32_t n0 = hi1 ^ c1 ^ k0;
    uint32_t n1 = lo1;
    uint32_t n2 = hi0 ^ c3 ^ k1;
    uint32_t n3 = lo0;
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return Philox4{{c0, c1, c2, c3}};
}

MOE_HD Philox4 block(uint64_t seed, Stream stream, uint64_t index, uint32_t draw) {
  return philox4x32_10(static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32),
                       static_cast<uint32_t>(stream), draw, static_cast<uint32_t>(seed),
                       static_cast<uint32_t>(seed >> 32));
}

// Uniform in [0, 1) with 24 random bits.
MOE_HD float uniform(uint64_t seed, Stream stream, uint64_t index) {
  Philox4 b = block(seed, stream, index, 0);
  return static_cast<float>(b.v[0] >> 8) * (1.0f / 16777216.0f);
}

MOE_HD uint32_t bits32(uint64_t seed, Stream stream, uint64_t index) { return block(seed, stream, index, 0).v[0]; }

// Approximately standard normal; see the header comment.
MOE_HD float normal(uint64_t seed, Stream stream, uint64_t index) {
  int32_t sum = 0;
  for (uint32_t d = 0; d < 2; ++d) {
    Philox4 b = block(seed, stream, index, d + 1);
    for (int i = 0; i < 4; ++i) sum += static_cast<int32_t>(b.v[i] & 0xffffu) + static_cast<int32_t>(b.v[i] >> 16);
  }
  // Each 16-bit draw u stands for (u + 0.5) / 65536, mean 0.5, variance 1/12.
  // Sum of 16 has mean 8 and variance 4/3: centred integer = sum + 8 - 8 * 65536.
  const int32_t centred = sum + 8 - 8 * 65536;
  return static_cast<float>(centred) * (0.86602540378443865f / 65536.0f);  // sqrt(3)/2 / 65536
}

}  // namespace moe::rng
