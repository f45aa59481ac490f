// Device helpers of the routing kernels: group ("G lanes per token")
// reductions, the top-k selection of a token held by G lanes, and vector
// loads of logits. Include only from .hip translation units.
#pragma once
#include <cstdint>
#include <type_traits>
#include <utility>

#include "moe/contract/routing_math.hpp"
#include "moe/dtype.hpp"
#include "moe/gpu_runtime.hpp"
#include "moe/warp.cuh"

namespace moe::routing::dev {

using warp::ballot;
using warp::kWarp;
using warp::lane_id;
using warp::shfl;
using warp::shfl_xor;

// Max over the G lanes of a group (G divides the warp, groups are aligned).
template <int G>
__device__ __forceinline__ uint32_t group_max(uint32_t v) {
  if constexpr (G == 1) {
    return v;
  } else {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    if constexpr (G == 32) {
      return __reduce_max_sync(0xffffffffu, v);
    } else
#endif
    {
#pragma unroll
      for (int m = G / 2; m >= 1; m >>= 1) {
        const uint32_t o = shfl_xor(v, m);
        v = o > v ? o : v;
      }
      return v;
    }
  }
}

// Sum over the group in butterfly order (m = G/2, ..., 1). Every lane gets the
// same bits (fp add is commutative).
template <int G>
__device__ __forceinline__ float group_sum(float v) {
#pragma unroll
  for (int m = G / 2; m >= 1; m >>= 1) v = rt_add(v, shfl_xor(v, m));
  return v;
}

// Bit j set <=> lane j of this lane's group has p.
template <int G>
__device__ __forceinline__ uint32_t group_bits(bool p) {
  const uint64_t b = ballot(p);
  if constexpr (G == kWarp && G == 32) {
    return static_cast<uint32_t>(b);
  } else {
    const int base = lane_id() & ~(G - 1);
    const uint64_t mask = (G >= 64) ? ~uint64_t{0} : ((uint64_t{1} << G) - 1);
    return static_cast<uint32_t>((b >> base) & mask);
  }
}

// Descending compare-exchange on 64-bit composites.
__device__ __forceinline__ void cas_desc(uint64_t& a, uint64_t& b) {
  const uint64_t hi = a > b ? a : b;
  const uint64_t lo = a > b ? b : a;
  a = hi;
  b = lo;
}

// Batcher's odd-even merge sort network for n (a power of two) elements, as a
// compile-time list of compare-exchange pairs (so every array index below is a
// constant and the array stays in registers).
template <int N>
constexpr int net_pairs(int want, int which) {
  int q = 0;
  for (int p = 1; p < N; p <<= 1)
    for (int k = p; k >= 1; k >>= 1)
      for (int j = k % p; j + k < N; j += 2 * k)
        for (int i = 0; i < k && i + j + k < N; ++i)
          if ((i + j) / (2 * p) == (i + j + k) / (2 * p)) {
            if (q == want) return which == 0 ? i + j : i + j + k;
            ++q;
          }
  return want < 0 ? q : -1;  // net_pairs<N>(-1, 0): number of pairs
}

template <int A, int B, int N>
__device__ __forceinline__ void cas_at(uint64_t (&c)[N]) {
  cas_desc(c[A], c[B]);
}

template <int N, int... Q>
__device__ __forceinline__ void apply_net(uint64_t (&c)[N], std::integer_sequence<int, Q...>) {
  (cas_at<net_pairs<N>(Q, 0), net_pairs<N>(Q, 1)>(c), ...);
}

template <int N>
__device__ __forceinline__ void sort_desc(uint64_t (&c)[N]) {
  apply_net<N>(c, std::make_integer_sequence<int, net_pairs<N>(-1, 0)>{});
}

// Ranks of the selected local elements: byte i of lo (i < 8) / hi (i >= 8)
// holds rank+1 of local element i, 0 when it was not selected.
struct Slots {
  uint64_t lo = 0;
  uint64_t hi = 0;
  __device__ __forceinline__ int get(int i) const {
    const uint64_t w = i < 8 ? lo : hi;
    return static_cast<int>((w >> ((i & 7) * 8)) & 0xffu) - 1;
  }
};

// Top-k of one token whose keys are spread over a group of G lanes, lane j of
// the group holding elements j*V .. j*V+V-1 (key 0 = absent: never selected
// while k <= number of present elements). Ties go to the lower element index:
// within a lane by the composite key, across lanes by the lowest lane among
// those holding the maximum. Must be called by every lane of the warp.
template <int G, int V>
__device__ __forceinline__ Slots group_topk(const uint32_t (&key)[V], int k) {
  uint64_t c[V];
#pragma unroll
  for (int i = 0; i < V; ++i) c[i] = (static_cast<uint64_t>(key[i]) << 32) | static_cast<uint32_t>(V - 1 - i);
  if constexpr (V > 1) sort_desc<V>(c);
  Slots s;
  const int gl = G == 1 ? 0 : (lane_id() & (G - 1));
  for (int r = 0; r < k; ++r) {
    bool win = true;
    if constexpr (G > 1) {
      const uint32_t head = static_cast<uint32_t>(c[0] >> 32);
      const uint32_t gmax = group_max<G>(head);
      const uint32_t bits = group_bits<G>(head == gmax);
      win = static_cast<int>(__ffs(static_cast<int>(bits))) - 1 == gl;
    }
    if (win) {
      const int li = V - 1 - static_cast<int>(static_cast<uint32_t>(c[0]) & 0xffu);
      const uint64_t rank = static_cast<uint64_t>(r + 1) << ((li & 7) * 8);
      if (V <= 8 || li < 8) {
        s.lo |= rank;
      } else {
        s.hi |= rank;
      }
#pragma unroll
      for (int i = 0; i + 1 < V; ++i) c[i] = c[i + 1];
      c[V - 1] = 0;
    }
  }
  return s;
}

// ---- logits loads ----------------------------------------------------------
struct F32In {
  using storage = float;
};
struct Bf16In {
  using storage = uint16_t;
};
struct F16In {
  using storage = uint16_t;
};

__device__ __forceinline__ float f16_to_float(uint16_t h) {
#if defined(__CUDA_ARCH__)
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
#elif defined(__HIP_DEVICE_COMPILE__)
  return static_cast<float>(__builtin_bit_cast(_Float16, h));
#else
  return f16_bits_to_f32(h);
#endif
}

template <typename Tag>
__device__ __forceinline__ float to_float(typename Tag::storage v) {
  if constexpr (std::is_same_v<Tag, F32In>) {
    return v;
  } else if constexpr (std::is_same_v<Tag, Bf16In>) {
    return bf16_bits_to_f32(v);
  } else {
    return f16_to_float(v);
  }
}

// v[i] = p[i] for i < n (n <= V), 0 otherwise. 16-byte loads when the whole
// run is present and aligned.
template <typename Tag, int V>
__device__ __forceinline__ void load_run(const typename Tag::storage* p, int n, float (&v)[V]) {
  using S = typename Tag::storage;
  constexpr int per16 = 16 / static_cast<int>(sizeof(S));
  if constexpr (V % per16 == 0) {
    if (n == V && (reinterpret_cast<uintptr_t>(p) & 15u) == 0) {
#pragma unroll
      for (int q = 0; q < V / per16; ++q) {
        const uint4 u = __ldg(reinterpret_cast<const uint4*>(p) + q);
        const uint32_t w[4] = {u.x, u.y, u.z, u.w};
        if constexpr (sizeof(S) == 4) {
#pragma unroll
          for (int j = 0; j < 4; ++j) v[q * 4 + j] = bits_f32(w[j]);
        } else {
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            v[q * 8 + 2 * j] = to_float<Tag>(static_cast<uint16_t>(w[j] & 0xffffu));
            v[q * 8 + 2 * j + 1] = to_float<Tag>(static_cast<uint16_t>(w[j] >> 16));
          }
        }
      }
      return;
    }
  }
#pragma unroll
  for (int i = 0; i < V; ++i) v[i] = i < n ? to_float<Tag>(p[i]) : 0.0f;
}

}  // namespace moe::routing::dev
