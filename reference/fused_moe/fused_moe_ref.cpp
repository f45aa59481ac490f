#include "reference/fused_moe/fused_moe_ref.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <mutex>
#include <thread>

#include <Eigen/Dense>
#include <fmt/format.h>

#include "moe/error.hpp"

namespace moe::ref {

using fused_moe::Activation;
using fused_moe::Problem;
using fused_moe::RouterWeight;

double activation_ref(Activation a, double g) {
  if (a == Activation::SiLU) return g / (1.0 + std::exp(-g));
  const double c = 0.79788456080286535588;  // sqrt(2/pi)
  return 0.5 * g * (1.0 + std::tanh(c * (g + 0.044715 * g * g * g)));
}

FusedMoeRefInputs ref_inputs_from_spec(const InputSpec& spec, const Routing& routing) {
  FusedMoeRefInputs in;
  in.hidden = [spec](uint64_t off, std::span<float> out) { fill_host(spec, rng::Stream::Hidden, off, out); };
  in.w1 = [spec](uint64_t off, std::span<float> out) { fill_host(spec, rng::Stream::W1, off, out); };
  in.w2 = [spec](uint64_t off, std::span<float> out) { fill_host(spec, rng::Stream::W2, off, out); };
  in.topk_weights = routing.topk_weights;
  in.topk_ids = routing.topk_ids;
  return in;
}

FusedMoeRefInputs ref_inputs_from_host(std::span<const float> hidden, std::span<const float> w1,
                                       std::span<const float> w2, std::span<const float> topk_weights,
                                       std::span<const int32_t> topk_ids) {
  auto slicer = [](std::span<const float> src, const char* name) {
    return [src, name](uint64_t off, std::span<float> out) {
      if (off + out.size() > src.size())
        throw InputError(fmt::format("fused_moe_ref: {} slice [{}, {}) beyond its {} elements", name, off,
                                     off + out.size(), src.size()));
      std::copy_n(src.begin() + static_cast<std::ptrdiff_t>(off), out.size(), out.begin());
    };
  };
  FusedMoeRefInputs in;
  in.hidden = slicer(hidden, "hidden");
  in.w1 = slicer(w1, "w1");
  in.w2 = slicer(w2, "w2");
  in.topk_weights = topk_weights;
  in.topk_ids = topk_ids;
  return in;
}

namespace {

// Runs f(i) for i in [0, n) on `threads` threads (dynamic work queue); rethrows
// the first exception.
template <class F>
void parallel_for(int64_t n, int threads, F&& f) {
  if (n <= 0) return;
  const int nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, n)));
  std::atomic<int64_t> next{0};
  std::exception_ptr err;
  std::mutex mu;
  auto body = [&] {
    for (;;) {
      const int64_t i = next.fetch_add(1);
      if (i >= n) return;
      try {
        f(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!err) err = std::current_exception();
        next.store(n);
        return;
      }
    }
  };
  if (nt == 1) {
    body();
  } else {
    std::vector<std::thread> pool;
    pool.reserve(static_cast<size_t>(nt - 1));
    for (int i = 0; i < nt - 1; ++i) pool.emplace_back(body);
    body();
    for (auto& t : pool) t.join();
  }
  if (err) std::rethrow_exception(err);
}

template <class Acc>
FusedMoeRefResult run(const Problem& p, const FusedMoeRefInputs& in, const FusedMoeRefOptions& opt,
                      std::vector<int64_t> sel) {
  using Mat = Eigen::Matrix<Acc, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using FMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const int64_t H = p.model_dim, I = p.inter_dim, k = p.top_k;
  const int32_t E = p.experts;
  const int threads = opt.threads > 0 ? opt.threads : std::max(1u, std::thread::hardware_concurrency());
  const int64_t chunk = std::max<int64_t>(1, opt.chunk_rows);
  const bool on_input = p.router_weight == RouterWeight::OnInput;

  FusedMoeRefResult res;
  res.tokens = std::move(sel);
  const int64_t T = static_cast<int64_t>(res.tokens.size());

  // Rows (selected token index, slot) of each expert, in slot order.
  std::vector<std::vector<int64_t>> rows(static_cast<size_t>(E));  // entries ti*k + j
  for (int64_t ti = 0; ti < T; ++ti)
    for (int64_t j = 0; j < k; ++j) {
      const int32_t e = in.topk_ids[static_cast<size_t>(res.tokens[ti] * k + j)];
      if (e >= 0 && e < E) rows[static_cast<size_t>(e)].push_back(ti * k + j);
    }
  std::vector<int32_t> hit;
  for (int32_t e = 0; e < E; ++e)
    if (!rows[e].empty()) hit.push_back(e);
  res.experts_touched = static_cast<int64_t>(hit.size());
  auto weight_of = [&](int64_t r) {
    return static_cast<Acc>(in.topk_weights[static_cast<size_t>(res.tokens[r / k] * k + r % k)]);
  };

  // Phase 0: gather the activations of each hit expert.
  std::vector<Mat> X(static_cast<size_t>(E));
  parallel_for(static_cast<int64_t>(hit.size()), threads, [&](int64_t hi) {
    const int32_t e = hit[static_cast<size_t>(hi)];
    const auto& rs = rows[e];
    Mat& x = X[e];
    x.resize(static_cast<Eigen::Index>(rs.size()), H);
    std::vector<float> buf(static_cast<size_t>(H));
    for (size_t r = 0; r < rs.size(); ++r) {
      in.hidden(static_cast<uint64_t>(res.tokens[rs[r] / k] * H), buf);
      for (int64_t c = 0; c < H; ++c) x(static_cast<Eigen::Index>(r), c) = static_cast<Acc>(buf[c]);
    }
  });

  // Phase A: h = round(act(s g) * (s u)) per (expert, chunk of inter columns).
  std::vector<Mat> Hm(static_cast<size_t>(E));
  for (int32_t e : hit) Hm[e].resize(static_cast<Eigen::Index>(rows[e].size()), I);
  const int64_t ichunks = (I + chunk - 1) / chunk;
  parallel_for(static_cast<int64_t>(hit.size()) * ichunks, threads, [&](int64_t item) {
    const int32_t e = hit[static_cast<size_t>(item / ichunks)];
    const int64_t c0 = (item % ichunks) * chunk, nc = std::min(chunk, I - c0);
    FMat wg(nc, H), wu(nc, H);
    const uint64_t base = static_cast<uint64_t>(e) * static_cast<uint64_t>(2 * I) * static_cast<uint64_t>(H);
    in.w1(base + static_cast<uint64_t>(c0 * H), std::span<float>(wg.data(), static_cast<size_t>(nc * H)));
    in.w1(base + static_cast<uint64_t>((I + c0) * H), std::span<float>(wu.data(), static_cast<size_t>(nc * H)));
    const Mat& x = X[e];
    Mat g, u;
    if constexpr (std::is_same_v<Acc, float>) {
      g.noalias() = x * wg.transpose();
      u.noalias() = x * wu.transpose();
    } else {
      g.noalias() = x * wg.template cast<Acc>().transpose();
      u.noalias() = x * wu.template cast<Acc>().transpose();
    }
    const auto& rs = rows[e];
    for (Eigen::Index r = 0; r < g.rows(); ++r) {
      const Acc s = on_input ? weight_of(rs[static_cast<size_t>(r)]) : Acc(1);
      for (Eigen::Index c = 0; c < nc; ++c) {
        const double gv = static_cast<double>(s * g(r, c)), uv = static_cast<double>(s * u(r, c));
        const double h = activation_ref(p.act, gv) * uv;
        Hm[e](r, c0 + c) = static_cast<Acc>(round_to(opt.inter_dtype, static_cast<float>(h)));
      }
    }
  });

  // Phase B: per-slot output rows y = h W2^T (* w), per (expert, chunk of model_dim rows).
  std::vector<Acc> contrib(static_cast<size_t>(T * k * H), Acc(0));
  const int64_t hchunks = (H + chunk - 1) / chunk;
  parallel_for(static_cast<int64_t>(hit.size()) * hchunks, threads, [&](int64_t item) {
    const int32_t e = hit[static_cast<size_t>(item / hchunks)];
    const int64_t n0 = (item % hchunks) * chunk, nn = std::min(chunk, H - n0);
    FMat w2(nn, I);
    const uint64_t base = static_cast<uint64_t>(e) * static_cast<uint64_t>(H) * static_cast<uint64_t>(I);
    in.w2(base + static_cast<uint64_t>(n0 * I), std::span<float>(w2.data(), static_cast<size_t>(nn * I)));
    Mat y;
    if constexpr (std::is_same_v<Acc, float>) {
      y.noalias() = Hm[e] * w2.transpose();
    } else {
      y.noalias() = Hm[e] * w2.template cast<Acc>().transpose();
    }
    const auto& rs = rows[e];
    for (Eigen::Index r = 0; r < y.rows(); ++r) {
      const int64_t slot = rs[static_cast<size_t>(r)];
      const Acc s = on_input ? Acc(1) : weight_of(slot);
      Acc* dst = contrib.data() + slot * H + n0;
      for (Eigen::Index c = 0; c < nn; ++c) dst[c] = s * y(r, c);
    }
  });

  // Phase C: fixed slot order per token; intermediate copy-out.
  res.out.assign(static_cast<size_t>(T * H), 0.0f);
  res.intermediate.assign(static_cast<size_t>(T * k * I), 0.0f);
  parallel_for(T, threads, [&](int64_t ti) {
    for (int64_t c = 0; c < H; ++c) {
      Acc s = 0;
      for (int64_t j = 0; j < k; ++j) s += contrib[static_cast<size_t>((ti * k + j) * H + c)];
      res.out[static_cast<size_t>(ti * H + c)] = static_cast<float>(s);
    }
  });
  double isq = 0;
  int64_t icount = 0;
  for (int32_t e : hit) {
    const auto& rs = rows[e];
    for (size_t r = 0; r < rs.size(); ++r)
      for (int64_t c = 0; c < I; ++c) {
        const float v = static_cast<float>(Hm[e](static_cast<Eigen::Index>(r), c));
        res.intermediate[static_cast<size_t>(rs[r] * I + c)] = v;
        isq += static_cast<double>(v) * v;
        ++icount;
      }
  }
  double osq = 0;
  for (float v : res.out) osq += static_cast<double>(v) * v;
  res.out_rms = res.out.empty() ? 0.0 : std::sqrt(osq / static_cast<double>(res.out.size()));
  res.inter_rms = icount == 0 ? 0.0 : std::sqrt(isq / static_cast<double>(icount));
  return res;
}

}  // namespace

FusedMoeRefResult fused_moe_ref(const Problem& p, const FusedMoeRefInputs& in, const FusedMoeRefOptions& opt,
                                std::span<const int64_t> tokens) {
  MOE_REQUIRE(p.tokens > 0 && p.model_dim > 0 && p.inter_dim > 0 && p.experts > 0 && p.top_k > 0 &&
                  p.top_k <= p.experts,
              fmt::format("fused_moe_ref: bad shape M={} model_dim={} inter={} E={} top_k={}", p.tokens,
                          p.model_dim, p.inter_dim, p.experts, p.top_k));
  MOE_REQUIRE(in.hidden && in.w1 && in.w2, "fused_moe_ref: hidden, w1 and w2 sources must be set");
  MOE_REQUIRE(static_cast<int64_t>(in.topk_ids.size()) == p.slots(),
              fmt::format("fused_moe_ref: topk_ids has {} entries, expected M*top_k = {}", in.topk_ids.size(),
                          p.slots()));
  MOE_REQUIRE(static_cast<int64_t>(in.topk_weights.size()) == p.slots(),
              fmt::format("fused_moe_ref: topk_weights has {} entries, expected M*top_k = {}",
                          in.topk_weights.size(), p.slots()));
  std::vector<int64_t> sel;
  if (tokens.empty()) {
    sel.resize(static_cast<size_t>(p.tokens));
    for (int64_t t = 0; t < p.tokens; ++t) sel[static_cast<size_t>(t)] = t;
  } else {
    sel.assign(tokens.begin(), tokens.end());
    std::sort(sel.begin(), sel.end());
    sel.erase(std::unique(sel.begin(), sel.end()), sel.end());
    MOE_REQUIRE(sel.front() >= 0 && sel.back() < p.tokens,
                fmt::format("fused_moe_ref: selected token out of range [0, {})", p.tokens));
  }
  return opt.fp64 ? run<double>(p, in, opt, std::move(sel)) : run<float>(p, in, opt, std::move(sel));
}

namespace {

// Relative fp32 accumulation error over a reduction of length K (see the header).
double acc_error(int64_t K) {
  const double k = static_cast<double>(K);
  return unit_roundoff(DType::F32) * (std::sqrt(k) + k / 8.0);
}

}  // namespace

Tolerance fused_moe_out_tolerance(const Problem& p, DType inter_dtype, DType out_dtype, double out_rms) {
  const double uh = inter_dtype == DType::F32 ? 0.0 : unit_roundoff(inter_dtype);
  const double uo = out_dtype == DType::F32 ? 0.0 : unit_roundoff(out_dtype);
  const double acc = 4.0 * acc_error(p.model_dim + p.inter_dim);
  Tolerance t;
  t.rtol = uo;
  t.atol = out_rms * (8.0 * uh + acc);
  // The worst case adds every error at full size; a correct kernel's error is
  // noise of rms <= expected_noise. Twice that rms is the tighter limit.
  const double worst_case = uo + 2.0 * uh + acc;
  const double expected_noise = fused_moe_out_noise(p, inter_dtype, out_dtype);
  t.max_rel_l2 = std::min(worst_case, 2.0 * expected_noise);
  return t;
}

double fused_moe_out_noise(const Problem& p, DType inter_dtype, DType out_dtype) {
  const double uh = inter_dtype == DType::F32 ? 0.0 : unit_roundoff(inter_dtype);
  const double uo = out_dtype == DType::F32 ? 0.0 : unit_roundoff(out_dtype);
  const double acc1 = acc_error(p.model_dim);
  const double acc = acc_error(p.model_dim + p.inter_dim);
  return std::sqrt(uo * uo / 3.0 + 2.0 * uh * acc1 + acc * acc);
}

Tolerance fused_moe_inter_tolerance(const Problem& p, DType inter_dtype, double inter_rms) {
  const double uh = inter_dtype == DType::F32 ? 0.0 : unit_roundoff(inter_dtype);
  const double acc = 4.0 * acc_error(p.model_dim);
  Tolerance t;
  t.rtol = 2.0 * uh;
  t.atol = inter_rms * acc;
  t.max_rel_l2 = 2.0 * uh + acc;
  return t;
}

}  // namespace moe::ref
