#include "harness/families/routing/routing_runner.hpp"

#include <cmath>
#include <cstring>
#include <limits>

#include <fmt/format.h>

#include "moe/dtype.hpp"
#include "moe/error.hpp"
#include "moe/gpu.hpp"
#include "moe/rng.hpp"
#if MOE_HAVE_GPU
#include "kernels/common/common_kernels.hpp"
#endif

namespace moe::ref::routing_run {

const char* pattern_name(Pattern p) {
  switch (p) {
    case Pattern::Normal: return "normal";
    case Pattern::Ties: return "ties";
    case Pattern::Specials: return "specials";
    case Pattern::DupCols: return "dupcols";
  }
  return "?";
}

void apply_specials(std::vector<float>& v, int64_t M, int E, DType dt) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const float big_neg = dt == DType::F16 ? -60000.0f : round_to(dt, -1e30f);
  for (int64_t t = 0; t < M; ++t) {
    float* r = v.data() + t * E;
    switch (t % 8) {
      case 0:
        for (int e = 0; e < E; ++e) r[e] = nan;
        break;
      case 1:
        for (int e = 0; e < E; e += 2) r[e] = nan;
        break;
      case 2:
        r[(t / 8) % E] = inf;
        r[E - 1] = inf;
        break;
      case 3:
        for (int e = 0; e < E; ++e) r[e] = -inf;
        break;
      case 4:
        for (int e = 0; e < E; ++e) r[e] = (e % 3 == 0) ? -inf : big_neg;
        break;
      case 5:
        for (int e = 0; e < E; ++e) r[e] = (e % 4 == 1) ? inf : (e % 4 == 2 ? nan : r[e]);
        break;
      case 6:
        for (int e = 0; e < E; ++e)
          if (e != (t / 8) % E) r[e] = nan;
        break;
      default: break;
    }
  }
}

#if MOE_HAVE_GPU

namespace {

// Device copy of a tensor given as fp32 values, stored as dt.
struct DevTensor {
  gpu::DeviceBuffer<unsigned char> buf;
  std::vector<float> host;  // values (already representable in dt)
};

void upload_as(DevTensor& t, DType dt) {
  const size_t n = t.host.size();
  if (dt == DType::F32) {
    t.buf.upload(reinterpret_cast<const unsigned char*>(t.host.data()), n * 4);
  } else {
    std::vector<uint16_t> b(n);
    for (size_t i = 0; i < n; ++i)
      b[i] = dt == DType::BF16 ? f32_to_bf16_bits(t.host[i]) : f32_to_f16_bits(t.host[i]);
    t.buf.upload(reinterpret_cast<const unsigned char*>(b.data()), n * 2);
  }
  MOE_GPU_CHECK(hipDeviceSynchronize());
}

// n values of N(0,1)*scale from (seed, stream), generated on the GPU, rounded to dt.
DevTensor make_tensor(size_t n, DType dt, uint64_t seed, rng::Stream stream, float scale) {
  DevTensor t;
  const size_t bytes = n * dtype_size(dt);
  t.buf = gpu::DeviceBuffer<unsigned char>(bytes > 0 ? bytes : 16);
  if (n == 0) return t;
  kernels::fill_normal(t.buf.data(), dt, n, seed, stream, 0, scale, nullptr);
  MOE_GPU_CHECK(hipDeviceSynchronize());
  const auto raw = t.buf.download();
  t.host.resize(n);
  if (dt == DType::F32) {
    std::memcpy(t.host.data(), raw.data(), n * 4);
  } else {
    for (size_t i = 0; i < n; ++i) {
      uint16_t b;
      std::memcpy(&b, raw.data() + 2 * i, 2);
      t.host[i] = dt == DType::BF16 ? bf16_bits_to_f32(b) : f16_bits_to_f32(b);
    }
  }
  return t;
}

void apply_pattern(DevTensor& t, int64_t M, int E, DType dt, Pattern pat) {
  if (pat == Pattern::Ties) {
    for (float& v : t.host) v = std::fmin(3.0f, std::fmax(-3.0f, std::round(v * 2.0f) / 2.0f));
  } else if (pat == Pattern::Specials) {
    apply_specials(t.host, M, E, dt);
  } else {
    return;
  }
  upload_as(t, dt);
}

template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

RunResult finish(RoutingCheck c, bool det, const std::string& what) {
  RunResult r;
  r.check = std::move(c);
  r.deterministic = det;
  r.message = fmt::format("{}{}: {}", what, det ? "" : " NOT DETERMINISTIC", r.check.message);
  return r;
}

// The kernel's two poisoned runs (the second checks determinism): launch(w, ids)
// writes `no` weights and ids.
struct TwoRuns {
  std::vector<float> w1, w2;
  std::vector<int32_t> i1, i2;
  bool deterministic() const { return same_bits(w1, w2) && same_bits(i1, i2); }
};

template <class Launch>
TwoRuns run_twice(size_t no, Launch&& launch) {
  gpu::DeviceBuffer<float> w(no > 0 ? no : 1);
  gpu::DeviceBuffer<int32_t> ids(no > 0 ? no : 1);
  TwoRuns r;
  for (int rep = 0; rep < 2; ++rep) {
    w.poison();
    ids.poison();
    launch(w.data(), ids.data());
    MOE_GPU_CHECK(hipDeviceSynchronize());
    auto hw = w.download();
    auto hi = ids.download();
    hw.resize(no);
    hi.resize(no);
    (rep == 0 ? r.w1 : r.w2) = std::move(hw);
    (rep == 0 ? r.i1 : r.i2) = std::move(hi);
  }
  return r;
}

}  // namespace

RunResult run_softmax_topk(const routing::SoftmaxTopkParams& p, const routing::SoftmaxTopkConfig& cfg, uint64_t seed,
                           Pattern pat) {
  p.validate();
  const size_t n = static_cast<size_t>(p.tokens) * static_cast<size_t>(p.experts);
  DevTensor logits = make_tensor(n, p.dtype, seed, rng::Stream::Logits, 1.0f);
  apply_pattern(logits, p.tokens, p.experts, p.dtype, pat);
  const size_t no = static_cast<size_t>(p.tokens) * static_cast<size_t>(p.top_k);
  const TwoRuns runs = run_twice(no, [&](float* w, int32_t* ids) {
    routing::softmax_topk(logits.buf.data(), w, ids, p, cfg, nullptr);
  });
  const auto ref = softmax_topk(logits.host, p);
  return finish(check_softmax_topk(runs.w1, runs.i1, ref, logits.host, p), runs.deterministic(),
                fmt::format("softmax_topk M={} E={} k={} {} renorm={} {}", p.tokens, p.experts, p.top_k,
                            dtype_name(p.dtype), p.renormalize, pattern_name(pat)));
}

RunResult run_grouped_topk(const routing::GroupedTopkParams& p, const routing::GroupedTopkConfig& cfg, uint64_t seed,
                           Pattern pat, int bias_mode) {
  p.validate();
  const size_t n = static_cast<size_t>(p.tokens) * static_cast<size_t>(p.experts);
  DevTensor logits = make_tensor(n, p.dtype, seed, rng::Stream::Logits, 1.0f);
  apply_pattern(logits, p.tokens, p.experts, p.dtype, pat);
  std::vector<float> bias;
  gpu::DeviceBuffer<float> dbias;
  if (bias_mode > 0) {
    bias.resize(static_cast<size_t>(p.experts));
    const float s = bias_mode == 1 ? 0.1f : 1.0f;
    for (int e = 0; e < p.experts; ++e) bias[static_cast<size_t>(e)] = rng::normal(seed, rng::Stream::Bias, e) * s;
    dbias = gpu::DeviceBuffer<float>(bias.size());
    dbias.upload(bias);
  }
  const size_t no = static_cast<size_t>(p.tokens) * static_cast<size_t>(p.top_k);
  const TwoRuns runs = run_twice(no, [&](float* w, int32_t* ids) {
    routing::grouped_topk(logits.buf.data(), bias_mode > 0 ? dbias.data() : nullptr, w, ids, p, cfg, nullptr);
  });
  const auto ref = grouped_topk(logits.host, bias, p);
  return finish(check_grouped_topk(runs.w1, runs.i1, ref, logits.host, p), runs.deterministic(),
                fmt::format("grouped_topk M={} E={} groups={}/{} k={} {} {} bias={} {}", p.tokens, p.experts,
                            p.topk_group, p.n_group, p.top_k, routing::scoring_name(p.scoring), dtype_name(p.dtype),
                            bias_mode, pattern_name(pat)));
}

RunResult run_sigmoid_top1(const routing::SigmoidTop1Params& p, const routing::SigmoidTop1Config& cfg, uint64_t seed,
                           Pattern pat) {
  p.validate();
  const size_t nx = static_cast<size_t>(p.tokens) * static_cast<size_t>(p.hidden);
  const size_t nw = static_cast<size_t>(p.hidden) * static_cast<size_t>(p.experts);
  DevTensor x = make_tensor(nx, p.dtype, seed, rng::Stream::Hidden, 1.0f);
  DevTensor w = make_tensor(nw, p.dtype, seed, rng::Stream::RouterWeight,
                            static_cast<float>(1.0 / std::sqrt(static_cast<double>(p.hidden))));
  if (pat == Pattern::DupCols) {
    for (int64_t k = 0; k < p.hidden; ++k)
      for (int e = 4; e < p.experts; ++e)
        w.host[static_cast<size_t>(k * p.experts + e)] = w.host[static_cast<size_t>(k * p.experts + e % 4)];
    upload_as(w, p.dtype);
  } else if (pat == Pattern::Specials) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const float inf = std::numeric_limits<float>::infinity();
    for (int64_t t = 0; t < p.tokens; ++t) {
      float* r = x.host.data() + t * p.hidden;
      if (t % 5 == 0) r[(t / 5) % p.hidden] = nan;
      if (t % 5 == 1) r[(t / 5) % p.hidden] = inf;
      if (t % 5 == 2) r[(t / 5) % p.hidden] = -inf;
    }
    upload_as(x, p.dtype);
  } else if (pat == Pattern::Ties) {
    for (float& v : x.host) v = std::round(v * 2.0f) / 2.0f;
    upload_as(x, p.dtype);
  }
  const routing::SigmoidTop1Plan pl = routing::sigmoid_top1_plan(p, cfg);
  gpu::DeviceBuffer<unsigned char> ws(pl.workspace_bytes > 0 ? pl.workspace_bytes : 16);
  routing::sigmoid_top1_workspace_init(ws.data(), pl.workspace_bytes, nullptr);
  const size_t no = static_cast<size_t>(p.tokens) * static_cast<size_t>(p.out_cols());
  const TwoRuns runs = run_twice(no, [&](float* ow, int32_t* oid) {
    routing::sigmoid_top1(x.buf.data(), w.buf.data(), ow, oid, pl.workspace_bytes > 0 ? ws.data() : nullptr,
                          pl.workspace_bytes, p, cfg, nullptr);
  });
  const auto ref = sigmoid_top1(x.host, w.host, p);
  RoutingCheck c = check_sigmoid_top1(runs.w1, runs.i1, ref, p);
  if (pat == Pattern::DupCols) {
    // exact ties: the winner must be the lowest column of its class (< 4)
    for (int64_t t = 0; t < p.tokens; ++t) {
      const int32_t id = runs.i1[static_cast<size_t>(t * p.out_cols())];
      if (p.experts > 4 && (id < 0 || id >= 4)) {
        c.passed = false;
        c.ids.passed = false;
        c.message = fmt::format("dupcols: token {} picked expert {} (a duplicate of {})", t, id, id % 4);
        break;
      }
    }
  }
  return finish(std::move(c), runs.deterministic(),
                fmt::format("sigmoid_top1 M={} K={} E={} {} shared={} impl={} splits={} cols={} {}", p.tokens,
                            p.hidden, p.experts, dtype_name(p.dtype), p.shared_expert, routing::top1_impl_name(pl.impl),
                            pl.splits, pl.col_tiles, pattern_name(pat)));
}

#endif  // MOE_HAVE_GPU

}  // namespace moe::ref::routing_run
