// __global__ kernels: softmax top-k and grouped (DeepSeek-V3) top-k.
// Semantics: kernels/routing/routing.hpp. Launchers: topk_launch.hip.
#pragma once
#include <cstdint>

#include "kernels/routing/routing_device.cuh"

namespace moe::routing::dev {

// ----------------------------------------------------------------------------
// Softmax top-k. A group of G lanes handles one token; lane j of the group
// holds logits j*V .. j*V+V-1. One block: blockDim.x / G tokens.
// ----------------------------------------------------------------------------
template <int G, int V, typename Tag>
__global__ void __launch_bounds__(512) softmax_topk_kernel(const typename Tag::storage* __restrict__ logits,
                                                            float* __restrict__ out_w,
                                                            int32_t* __restrict__ out_id, int64_t M, int E,
                                                            int k, int renorm) {
  const int rows_per_block = static_cast<int>(blockDim.x) / G;
  const int gl = G == 1 ? 0 : (static_cast<int>(threadIdx.x) & (G - 1));
  const int64_t row = static_cast<int64_t>(blockIdx.x) * rows_per_block + static_cast<int>(threadIdx.x) / G;
  const bool active = row < M;
  if constexpr (G == 1) {
    if (!active) return;  // no collectives when a lane is its own group
  }
  const int e0 = gl * V;
  int n = E - e0;
  n = n < 0 ? 0 : (n > V ? V : n);
  if (!active) n = 0;

  float v[V];
  load_run<Tag, V>(logits + (active ? row : 0) * static_cast<int64_t>(E) + (n > 0 ? e0 : 0), n, v);

  uint32_t key[V];
  uint32_t lmax = kKeyAbsent;
#pragma unroll
  for (int i = 0; i < V; ++i) {
    key[i] = i < n ? order_key(v[i]) : kKeyAbsent;
    lmax = key[i] > lmax ? key[i] : lmax;
  }
  const uint32_t mk = group_max<G>(lmax);
  const float m = key_value(mk);  // NaN when every logit is NaN
  const bool m_inf = isinf(m);

  float ex[V];
  float ls = 0.0f;
#pragma unroll
  for (int i = 0; i < V; ++i) {
    float e = 0.0f;
    if (key[i] > kKeyNaN) e = m_inf ? (v[i] == m ? 1.0f : 0.0f) : __expf(v[i] - m);
    ex[i] = e;
    ls += e;
  }
  const float s = group_sum<G>(ls);

  const Slots sl = group_topk<G, V>(key, k);

  float denom = s;
  if (renorm) {
    float sel = 0.0f;
#pragma unroll
    for (int i = 0; i < V; ++i)
      if (sl.get(i) >= 0 && key[i] > kKeyNaN) sel += ex[i];
    const float t = group_sum<G>(sel);
    if (t > 0.0f) denom = t;  // a zero sum divides by 1 (weights stay ex/s)
  }
  if (!active) return;
  const int64_t base = row * k;
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int r = sl.get(i);
    if (r >= 0) {
      out_id[base + r] = e0 + i;
      out_w[base + r] = key[i] == kKeyNaN ? __int_as_float(0x7fc00000) : ex[i] / denom;
    }
  }
}

// ----------------------------------------------------------------------------
// Grouped top-k. 32 lanes per token (two tokens per wavefront on AMD), lane j
// holds experts j*V .. j*V+V-1, V = grouped_values_per_lane(E).
// ----------------------------------------------------------------------------
struct GroupedArgs {
  int64_t M;
  int E;
  int n_group;
  int topk_group;
  int k;
  int gsize;
  int sigmoid;
  int renorm;
  float scale;
  int reg_groups;  // group boundaries on lane boundaries, lanes per group a power of two
};

template <int V, typename Tag>
__global__ void __launch_bounds__(512) grouped_topk_kernel(const typename Tag::storage* __restrict__ logits,
                                                            const float* __restrict__ bias,
                                                            float* __restrict__ out_w,
                                                            int32_t* __restrict__ out_id, GroupedArgs a) {
  extern __shared__ uint32_t grouped_smem[];
  constexpr int G = 32;
  const int gl = static_cast<int>(threadIdx.x) & 31;
  const int rib = static_cast<int>(threadIdx.x) / 32;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (static_cast<int>(blockDim.x) / 32) + rib;
  const bool active = row < a.M;
  const int e0 = gl * V;
  int n = a.E - e0;
  n = n < 0 ? 0 : (n > V ? V : n);
  if (!active) n = 0;

  float v[V];
  load_run<Tag, V>(logits + (active ? row : 0) * static_cast<int64_t>(a.E) + (n > 0 ? e0 : 0), n, v);
  float bv[V];  // bias, loaded up front so its latency overlaps the logits'
  if (bias != nullptr) {
    load_run<F32In, V>(bias + (n > 0 ? e0 : 0), n, bv);
  } else {
#pragma unroll
    for (int i = 0; i < V; ++i) bv[i] = 0.0f;
  }

  // 1. scores, bit-exact (moe/contract/routing_math.hpp)
  float sc[V];
  if (a.sigmoid) {
#pragma unroll
    for (int i = 0; i < V; ++i) sc[i] = det_sigmoid(v[i]);
  } else {
    uint32_t lmax = kKeyAbsent;
    uint32_t lk[V];
#pragma unroll
    for (int i = 0; i < V; ++i) {
      lk[i] = i < n ? order_key(v[i]) : kKeyAbsent;
      lmax = lk[i] > lmax ? lk[i] : lmax;
    }
    const float m = key_value(group_max<G>(lmax));
    const bool m_inf = isinf(m);
    float acc = 0.0f;
    float ex[V];
#pragma unroll
    for (int i = 0; i < V; ++i) {
      float e = 0.0f;
      if (lk[i] > kKeyNaN) e = m_inf ? (v[i] == m ? 1.0f : 0.0f) : det_exp(rt_sub(v[i], m));
      ex[i] = e;
      acc = rt_add(acc, e);
    }
    const float s = group_sum<G>(acc);
#pragma unroll
    for (int i = 0; i < V; ++i) sc[i] = lk[i] > kKeyNaN ? det_div(ex[i], s) : __int_as_float(0x7fc00000);
  }

  // 2. biased selection scores
  uint32_t bkey[V];
#pragma unroll
  for (int i = 0; i < V; ++i) {
    float b = sc[i];
    if (bias != nullptr && i < n) b = rt_add(b, bv[i]);
    bkey[i] = i < n ? order_key(b) : kKeyAbsent;
  }
  const bool top2 = bias != nullptr;

  // 3. group scores: lane g < n_group ends with the key of group g
  uint32_t gk = kKeyAbsent;
  if (a.reg_groups) {
    const int L = a.gsize / V;  // lanes per group
    uint32_t t1 = kKeyAbsent, t2 = kKeyAbsent;
#pragma unroll
    for (int i = 0; i < V; ++i) {
      const uint32_t x = bkey[i];
      const uint32_t lo = x < t1 ? x : t1;
      t1 = x > t1 ? x : t1;
      t2 = lo > t2 ? lo : t2;
    }
    for (int mm = L / 2; mm >= 1; mm >>= 1) {
      const uint32_t o1 = shfl_xor(t1, mm), o2 = shfl_xor(t2, mm);
      const uint32_t mn = t1 < o1 ? t1 : o1;
      const uint32_t mx2 = t2 > o2 ? t2 : o2;
      t1 = t1 > o1 ? t1 : o1;
      t2 = mn > mx2 ? mn : mx2;
    }
    float gv = key_value(t1);
    if (top2 && t2 != kKeyAbsent) gv = rt_add(gv, key_value(t2));
    const uint32_t mine = order_key(gv);
    const int src = (gl < a.n_group ? gl * L : 0) + (lane_id() & ~31);
    const uint32_t got = shfl(mine, src);
    gk = gl < a.n_group ? got : kKeyAbsent;
  } else {
    uint32_t* rowbuf = grouped_smem + rib * (32 * V);
#pragma unroll
    for (int i = 0; i < V; ++i) rowbuf[e0 + i] = bkey[i];
    __syncthreads();
    if (gl < a.n_group) {
      uint32_t t1 = kKeyAbsent, t2 = kKeyAbsent;
      const int gb = gl * a.gsize;
      for (int e = gb; e < gb + a.gsize; ++e) {
        const uint32_t x = rowbuf[e];
        const uint32_t lo = x < t1 ? x : t1;
        t1 = x > t1 ? x : t1;
        t2 = lo > t2 ? lo : t2;
      }
      float gv = key_value(t1);
      if (top2 && t2 != kKeyAbsent) gv = rt_add(gv, key_value(t2));
      gk = order_key(gv);
    }
  }

  // 4. keep topk_group groups
  const uint32_t gka[1] = {gk};
  const Slots gsel = group_topk<G, 1>(gka, a.topk_group);
  const uint32_t gmask = group_bits<G>(gsel.get(0) >= 0);

  // 5. top-k among the experts of the kept groups
  uint32_t ek[V];
  if (a.reg_groups) {
    const int grp = e0 / a.gsize;
    const bool keep = grp < 32 && ((gmask >> grp) & 1u);
#pragma unroll
    for (int i = 0; i < V; ++i) ek[i] = keep ? bkey[i] : kKeyAbsent;
  } else {
#pragma unroll
    for (int i = 0; i < V; ++i) {
      const int grp = (e0 + i) / a.gsize;
      ek[i] = (i < n && ((gmask >> grp) & 1u)) ? bkey[i] : kKeyAbsent;
    }
  }
  const Slots sl = group_topk<G, V>(ek, a.k);

  // 6. weights: unbiased scores, renormalized, scaled
  float denom = 1.0f;
  if (a.renorm) {
    float sel = 0.0f;
#pragma unroll
    for (int i = 0; i < V; ++i)
      if (sl.get(i) >= 0 && !isnan(sc[i])) sel += sc[i];
    const float t = group_sum<G>(sel);
    if (t != 0.0f) denom = t;
  }
  if (!active) return;
  const int64_t base = row * a.k;
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int r = sl.get(i);
    if (r >= 0) {
      out_id[base + r] = e0 + i;
      out_w[base + r] = (sc[i] / denom) * a.scale;
    }
  }
}

}  // namespace moe::routing::dev
