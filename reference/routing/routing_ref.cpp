#include "reference/routing/routing_ref.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <Eigen/Dense>
#include <fmt/format.h>

#include "moe/contract/routing_math.hpp"
#include "moe/error.hpp"

namespace moe::ref {

using routing::kKeyAbsent;
using routing::kKeyNaN;
using routing::order_key;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kU23 = 1.0 / 8388608.0;          // 2^-23
constexpr double kMinNormal = 1.1754943508222875e-38;  // 2^-126

// Indices of the k best keys: key descending, index ascending.
std::vector<int32_t> top_by_key(const std::vector<uint32_t>& key, int k) {
  std::vector<int32_t> order(key.size());
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
    return key[static_cast<size_t>(a)] > key[static_cast<size_t>(b)] ||
           (key[static_cast<size_t>(a)] == key[static_cast<size_t>(b)] && a < b);
  });
  order.resize(static_cast<size_t>(k));
  return order;
}

// Softmax of one row in fp64 with the documented NaN / inf rules.
Eigen::ArrayXd softmax_row64(const float* x, int E) {
  Eigen::ArrayXd p(E);
  uint32_t mk = kKeyAbsent;
  for (int e = 0; e < E; ++e) mk = std::max(mk, order_key(x[e]));
  if (mk <= kKeyNaN) return Eigen::ArrayXd::Constant(E, kNaN);
  const double m = routing::key_value(mk);
  const bool m_inf = std::isinf(m);
  for (int e = 0; e < E; ++e) {
    if (std::isnan(x[e])) {
      p[e] = 0;
    } else {
      p[e] = m_inf ? (x[e] == m ? 1.0 : 0.0) : std::exp(static_cast<double>(x[e]) - m);
    }
  }
  p /= p.sum();
  for (int e = 0; e < E; ++e)
    if (std::isnan(x[e])) p[e] = kNaN;
  return p;
}

double row_max_nonnan(const float* x, int E) {
  uint32_t mk = kKeyAbsent;
  for (int e = 0; e < E; ++e) mk = std::max(mk, order_key(x[e]));
  return mk <= kKeyNaN ? kNaN : static_cast<double>(routing::key_value(mk));
}

void note(CheckResult& r, int64_t i, double got, double want) {
  ++r.n_outside;
  if (r.first_mismatches.size() < CheckResult::kMaxListed) r.first_mismatches.push_back({i, got, want});
}

std::string list(const CheckResult& r) {
  std::string s;
  for (const auto& m : r.first_mismatches) s += fmt::format(" [{}] got {} want {};", m.index, m.got, m.expected);
  return s;
}

// Per-element weight check: |got - want| <= atol + rtol_i * |want|; NaN must
// match NaN, inf must match exactly.
template <typename RtolFn>
CheckResult check_weights(std::span<const float> got, std::span<const float> want, RtolFn rtol_of) {
  CheckResult r;
  r.count = static_cast<int64_t>(want.size());
  if (got.size() != want.size()) {
    r.passed = false;
    r.message = fmt::format("size mismatch: {} vs {}", got.size(), want.size());
    return r;
  }
  double err2 = 0, ref2 = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double g = got[i], w = want[i];
    if (!std::isfinite(w) || !std::isfinite(g)) {
      const bool same = (std::isnan(w) && std::isnan(g)) || (std::isinf(w) && g == w);
      if (!same) {
        ++r.n_nonfinite;
        note(r, static_cast<int64_t>(i), g, w);
        --r.n_outside;
      }
      continue;
    }
    const double d = std::abs(g - w);
    err2 += d * d;
    ref2 += w * w;
    r.max_abs = std::max(r.max_abs, d);
    if (w != 0) r.max_rel = std::max(r.max_rel, d / std::abs(w));
    if (d > kMinNormal + rtol_of(i) * std::abs(w)) note(r, static_cast<int64_t>(i), g, w);
  }
  r.rel_l2 = ref2 > 0 ? std::sqrt(err2 / ref2) : std::sqrt(err2);
  r.passed = r.n_outside == 0 && r.n_nonfinite == 0;
  r.message = r.passed ? fmt::format("ok: max_rel {:.2e}, rel_l2 {:.2e}", r.max_rel, r.rel_l2)
                       : fmt::format("FAIL: {} non-finite mismatches, {} of {} outside tolerance;{}", r.n_nonfinite,
                                     r.n_outside, r.count, list(r));
  return r;
}

RoutingCheck combine(CheckResult ids, CheckResult w, const char* what) {
  RoutingCheck c;
  c.ids = std::move(ids);
  c.weights = std::move(w);
  c.passed = c.ids.passed && c.weights.passed;
  c.message = c.passed ? fmt::format("{}: ids exact ({}), weights {}", what, c.ids.count, c.weights.message)
                       : fmt::format("{}: ids {} | weights {}", what, c.ids.message, c.weights.message);
  return c;
}

}  // namespace

std::vector<float> widen(std::span<const uint16_t> bits, DType t) {
  MOE_REQUIRE(t == DType::BF16 || t == DType::F16, "widen: dtype must be bf16 or fp16");
  std::vector<float> out(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) out[i] = t == DType::BF16 ? bf16_bits_to_f32(bits[i]) : f16_bits_to_f32(bits[i]);
  return out;
}

// ------------------------------------------------------------- softmax top-k
TopkResult softmax_topk(std::span<const float> logits, const routing::SoftmaxTopkParams& p) {
  p.validate();
  const int E = p.experts, k = p.top_k;
  MOE_REQUIRE(static_cast<int64_t>(logits.size()) == p.tokens * E, "softmax_topk ref: logits size != M*E");
  TopkResult r;
  r.tokens = p.tokens;
  r.cols = k;
  r.weights.resize(static_cast<size_t>(p.tokens * k));
  r.ids.resize(static_cast<size_t>(p.tokens * k));
  std::vector<uint32_t> key(static_cast<size_t>(E));
  for (int64_t t = 0; t < p.tokens; ++t) {
    const float* x = logits.data() + t * E;
    for (int e = 0; e < E; ++e) key[static_cast<size_t>(e)] = order_key(x[e]);
    const auto sel = top_by_key(key, k);
    const Eigen::ArrayXd prob = softmax_row64(x, E);
    double sum = 0;
    for (int j = 0; j < k; ++j)
      if (!std::isnan(prob[sel[static_cast<size_t>(j)]])) sum += prob[sel[static_cast<size_t>(j)]];
    const double denom = (p.renormalize && sum != 0) ? sum : 1.0;
    for (int j = 0; j < k; ++j) {
      const int32_t e = sel[static_cast<size_t>(j)];
      r.ids[static_cast<size_t>(t * k + j)] = e;
      r.weights[static_cast<size_t>(t * k + j)] = static_cast<float>(prob[e] / denom);
    }
  }
  return r;
}

// ------------------------------------------------------------- grouped top-k
TopkResult grouped_topk(std::span<const float> logits, std::span<const float> bias,
                        const routing::GroupedTopkParams& p) {
  p.validate();
  const int E = p.experts, k = p.top_k, gs = p.group_size(), V = p.values_per_lane();
  MOE_REQUIRE(static_cast<int64_t>(logits.size()) == p.tokens * E, "grouped_topk ref: logits size != M*E");
  MOE_REQUIRE(bias.empty() || static_cast<int>(bias.size()) == E, "grouped_topk ref: bias must have E values");
  const bool has_bias = !bias.empty();
  TopkResult r;
  r.tokens = p.tokens;
  r.cols = k;
  r.weights.resize(static_cast<size_t>(p.tokens * k));
  r.ids.resize(static_cast<size_t>(p.tokens * k));
  std::vector<float> sc(static_cast<size_t>(E));
  std::vector<uint32_t> bkey(static_cast<size_t>(E)), gkey(static_cast<size_t>(p.n_group)), ekey;
  for (int64_t t = 0; t < p.tokens; ++t) {
    const float* x = logits.data() + t * E;
    // 1. fp32 scores, bit-identical to the kernel
    if (p.scoring == routing::Scoring::Sigmoid) {
      for (int e = 0; e < E; ++e) sc[static_cast<size_t>(e)] = routing::det_sigmoid(x[e]);
    } else {
      uint32_t mk = kKeyAbsent;
      for (int e = 0; e < E; ++e) mk = std::max(mk, order_key(x[e]));
      const float m = routing::key_value(mk);
      const bool m_inf = std::isinf(m);
      std::vector<float> ex(static_cast<size_t>(E), 0.0f);
      for (int e = 0; e < E; ++e)
        if (order_key(x[e]) > kKeyNaN)
          ex[static_cast<size_t>(e)] = m_inf ? (x[e] == m ? 1.0f : 0.0f) : routing::det_exp(routing::rt_sub(x[e], m));
      // canonical order: 32 lane partials of V experts, then butterfly
      float part[32];
      for (int j = 0; j < 32; ++j) {
        float acc = 0.0f;
        for (int i = 0; i < V; ++i) {
          const int e = j * V + i;
          acc = routing::rt_add(acc, e < E ? ex[static_cast<size_t>(e)] : 0.0f);
        }
        part[j] = acc;
      }
      for (int mm = 16; mm >= 1; mm >>= 1) {
        float nxt[32];
        for (int j = 0; j < 32; ++j) nxt[j] = routing::rt_add(part[j], part[j ^ mm]);
        std::copy(nxt, nxt + 32, part);
      }
      const float s = part[0];
      for (int e = 0; e < E; ++e)
        sc[static_cast<size_t>(e)] = order_key(x[e]) > kKeyNaN ? routing::det_div(ex[static_cast<size_t>(e)], s)
                                                               : std::numeric_limits<float>::quiet_NaN();
    }
    // 2. biased selection keys
    for (int e = 0; e < E; ++e) {
      float b = sc[static_cast<size_t>(e)];
      if (has_bias) b = routing::rt_add(b, bias[static_cast<size_t>(e)]);
      bkey[static_cast<size_t>(e)] = order_key(b);
    }
    // 3. group scores
    for (int g = 0; g < p.n_group; ++g) {
      uint32_t t1 = kKeyAbsent, t2 = kKeyAbsent;
      for (int e = g * gs; e < (g + 1) * gs; ++e) {
        const uint32_t v = bkey[static_cast<size_t>(e)];
        if (v > t1) {
          t2 = t1;
          t1 = v;
        } else if (v > t2) {
          t2 = v;
        }
      }
      float gv = routing::key_value(t1);
      if (has_bias && t2 != kKeyAbsent) gv = routing::rt_add(gv, routing::key_value(t2));
      gkey[static_cast<size_t>(g)] = order_key(gv);
    }
    // 4. kept groups, 5. experts of kept groups
    const auto kept = top_by_key(gkey, p.topk_group);
    ekey.assign(static_cast<size_t>(E), kKeyAbsent);
    for (int32_t g : kept)
      for (int e = g * gs; e < (g + 1) * gs; ++e) ekey[static_cast<size_t>(e)] = bkey[static_cast<size_t>(e)];
    const auto sel = top_by_key(ekey, k);
    // 6. weights in fp64
    Eigen::ArrayXd s64(E);
    if (p.scoring == routing::Scoring::Sigmoid) {
      for (int e = 0; e < E; ++e) s64[e] = 1.0 / (1.0 + std::exp(-static_cast<double>(x[e])));
    } else {
      s64 = softmax_row64(x, E);
    }
    double sum = 0;
    for (int32_t e : sel)
      if (!std::isnan(s64[e])) sum += s64[e];
    const double denom = (p.renormalize && sum != 0) ? sum : 1.0;
    for (int j = 0; j < k; ++j) {
      const int32_t e = sel[static_cast<size_t>(j)];
      r.ids[static_cast<size_t>(t * k + j)] = e;
      r.weights[static_cast<size_t>(t * k + j)] =
          static_cast<float>(s64[e] / denom * static_cast<double>(p.routed_scaling_factor));
    }
  }
  return r;
}

// ------------------------------------------------------------- sigmoid top-1
Top1Ref sigmoid_top1(std::span<const float> x, std::span<const float> w, const routing::SigmoidTop1Params& p) {
  p.validate();
  const int64_t M = p.tokens, K = p.hidden;
  const int E = p.experts, cols = p.out_cols();
  MOE_REQUIRE(static_cast<int64_t>(x.size()) == M * K, "sigmoid_top1 ref: x size != M*K");
  MOE_REQUIRE(static_cast<int64_t>(w.size()) == K * E, "sigmoid_top1 ref: w size != K*E");
  using RowMajF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using RowMajD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Eigen::Map<const RowMajF> W(w.data(), K, E);
  const RowMajD Wd = W.cast<double>();
  const RowMajD Wa = Wd.cwiseAbs();
  Top1Ref r;
  r.out.tokens = M;
  r.out.cols = cols;
  r.out.weights.resize(static_cast<size_t>(M * cols));
  r.out.ids.resize(static_cast<size_t>(M * cols));
  r.logits.resize(static_cast<size_t>(M * E));
  r.abs_dot.resize(static_cast<size_t>(M * E));
  constexpr int64_t kBlock = 256;
  for (int64_t r0 = 0; r0 < M; r0 += kBlock) {
    const int64_t nr = std::min(kBlock, M - r0);
    const Eigen::Map<const RowMajF> X(x.data() + r0 * K, nr, K);
    const RowMajD Xd = X.cast<double>();
    Eigen::Map<RowMajD>(r.logits.data() + r0 * E, nr, E).noalias() = Xd * Wd;
    Eigen::Map<RowMajD>(r.abs_dot.data() + r0 * E, nr, E).noalias() = Xd.cwiseAbs() * Wa;
  }
  // Eigen's product does not follow IEEE inf/NaN rules for every ordering of
  // the terms (inf*0 inside a blocked kernel is fine, but be explicit): rows
  // with a non-finite input are recomputed with plain loops.
  for (int64_t t = 0; t < M; ++t) {
    bool finite = true;
    for (int64_t kk = 0; kk < K && finite; ++kk) finite = std::isfinite(x[static_cast<size_t>(t * K + kk)]);
    if (finite) continue;
    for (int e = 0; e < E; ++e) {
      double acc = 0, aacc = 0;
      for (int64_t kk = 0; kk < K; ++kk) {
        const double a = x[static_cast<size_t>(t * K + kk)], b = w[static_cast<size_t>(kk * E + e)];
        acc += a * b;
        aacc += std::abs(a) * std::abs(b);
      }
      r.logits[static_cast<size_t>(t * E + e)] = acc;
      r.abs_dot[static_cast<size_t>(t * E + e)] = aacc;
    }
  }
  for (int64_t t = 0; t < M; ++t) {
    // order on doubles: NaN lowest, ties to the lower index (strict >)
    const double* l = r.logits.data() + t * E;
    int bi = 0;
    for (int e = 1; e < E; ++e)
      if (!std::isnan(l[e]) && (std::isnan(l[bi]) || l[e] > l[bi])) bi = e;
    const double lv = r.logits[static_cast<size_t>(t * E + bi)];
    r.out.ids[static_cast<size_t>(t * cols)] = bi;
    r.out.weights[static_cast<size_t>(t * cols)] = static_cast<float>(1.0 / (1.0 + std::exp(-lv)));
    if (cols == 2) {
      r.out.ids[static_cast<size_t>(t * cols + 1)] = E;
      r.out.weights[static_cast<size_t>(t * cols + 1)] = 1.0f;
    }
  }
  return r;
}

// ------------------------------------------------------------- comparisons
RoutingCheck check_softmax_topk(std::span<const float> got_w, std::span<const int32_t> got_ids,
                                const TopkResult& ref, std::span<const float> logits,
                                const routing::SoftmaxTopkParams& p) {
  const int E = p.experts, k = p.top_k;
  std::vector<double> rowmax(static_cast<size_t>(p.tokens));
  for (int64_t t = 0; t < p.tokens; ++t) rowmax[static_cast<size_t>(t)] = row_max_nonnan(logits.data() + t * E, E);
  auto rtol = [&](size_t i) {
    const int64_t t = static_cast<int64_t>(i) / k;
    const int32_t e = ref.ids[i];
    const double d = std::abs(static_cast<double>(logits[static_cast<size_t>(t * E + e)]) - rowmax[static_cast<size_t>(t)]);
    const double dd = std::isfinite(d) ? d : 0.0;
    return (32.0 + 2.0 * E + 2.0 * k + dd) * kU23;
  };
  return combine(check_exact(got_ids, ref.ids), check_weights(got_w, ref.weights, rtol), "softmax_topk");
}

RoutingCheck check_grouped_topk(std::span<const float> got_w, std::span<const int32_t> got_ids,
                                const TopkResult& ref, std::span<const float> logits,
                                const routing::GroupedTopkParams& p) {
  const int E = p.experts, k = p.top_k;
  const bool softmax = p.scoring == routing::Scoring::Softmax;
  std::vector<double> rowmax(static_cast<size_t>(p.tokens));
  if (softmax)
    for (int64_t t = 0; t < p.tokens; ++t) rowmax[static_cast<size_t>(t)] = row_max_nonnan(logits.data() + t * E, E);
  auto rtol = [&](size_t i) {
    double extra = 0;
    if (softmax) {
      const int64_t t = static_cast<int64_t>(i) / k;
      const int32_t e = ref.ids[i];
      const double d =
          std::abs(static_cast<double>(logits[static_cast<size_t>(t * E + e)]) - rowmax[static_cast<size_t>(t)]);
      extra = 2.0 * E + (std::isfinite(d) ? d : 0.0);
    }
    return (32.0 + 2.0 * k + extra) * kU23;
  };
  return combine(check_exact(got_ids, ref.ids), check_weights(got_w, ref.weights, rtol), "grouped_topk");
}

RoutingCheck check_sigmoid_top1(std::span<const float> got_w, std::span<const int32_t> got_ids, const Top1Ref& ref,
                                const routing::SigmoidTop1Params& p) {
  const int64_t M = p.tokens;
  const int E = p.experts, cols = p.out_cols();
  const double gamma = (static_cast<double>(p.hidden) + 32.0) * kU23;  // fp32 accumulation bound (x2 margin)
  RoutingCheck c;
  c.ids.count = M * cols;
  c.weights.count = M * cols;
  if (static_cast<int64_t>(got_w.size()) != M * cols || static_cast<int64_t>(got_ids.size()) != M * cols) {
    c.passed = false;
    c.message = "sigmoid_top1: output size mismatch";
    return c;
  }
  for (int64_t t = 0; t < M; ++t) {
    const size_t o = static_cast<size_t>(t * cols);
    const int32_t rid = ref.out.ids[o], gid = got_ids[o];
    if (gid < 0 || gid >= E) {
      note(c.ids, static_cast<int64_t>(o), gid, rid);
      continue;
    }
    const double lr = ref.logits[static_cast<size_t>(t * E + rid)], lg = ref.logits[static_cast<size_t>(t * E + gid)];
    const double ar = ref.abs_dot[static_cast<size_t>(t * E + rid)], ag = ref.abs_dot[static_cast<size_t>(t * E + gid)];
    if (gid != rid) {
      const bool near = std::isfinite(lr) && std::isfinite(lg) && lr - lg <= gamma * (ar + ag);
      if (!near) {
        note(c.ids, static_cast<int64_t>(o), gid, rid);
        continue;
      }
      ++c.near_ties;
    }
    // weight: sigmoid of the chosen expert's logit, within the GEMM error
    const double want = 1.0 / (1.0 + std::exp(-lg));
    const double g = got_w[o];
    if (std::isnan(want) || std::isnan(g)) {
      if (!(std::isnan(want) && std::isnan(g))) {
        ++c.weights.n_nonfinite;
        note(c.weights, static_cast<int64_t>(o), g, want);
        --c.weights.n_outside;
      }
    } else {
      const double tol = kMinNormal + 0.25 * gamma * (std::isfinite(ag) ? ag : 0.0) + 8.0 * kU23 * std::abs(want);
      const double d = std::abs(g - want);
      c.weights.max_abs = std::max(c.weights.max_abs, d);
      if (d > tol) note(c.weights, static_cast<int64_t>(o), g, want);
    }
    if (cols == 2) {
      if (got_ids[o + 1] != E) note(c.ids, static_cast<int64_t>(o + 1), got_ids[o + 1], E);
      if (got_w[o + 1] != 1.0f) note(c.weights, static_cast<int64_t>(o + 1), got_w[o + 1], 1.0);
    }
  }
  c.ids.passed = c.ids.n_outside == 0;
  c.weights.passed = c.weights.n_outside == 0 && c.weights.n_nonfinite == 0;
  c.ids.message = c.ids.passed ? fmt::format("ok: {} exact, {} near-ties within the fp32 bound", M - c.near_ties,
                                             c.near_ties)
                               : fmt::format("FAIL: {} wrong ids;{}", c.ids.n_outside, list(c.ids));
  c.weights.message = c.weights.passed ? fmt::format("ok: max_abs {:.2e}", c.weights.max_abs)
                                       : fmt::format("FAIL: {} non-finite, {} outside;{}", c.weights.n_nonfinite,
                                                     c.weights.n_outside, list(c.weights));
  c.passed = c.ids.passed && c.weights.passed;
  c.message = fmt::format("sigmoid_top1: ids {} | weights {}", c.ids.message, c.weights.message);
  return c;
}

}  // namespace moe::ref
