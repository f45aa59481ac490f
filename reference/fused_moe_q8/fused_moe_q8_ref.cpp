#include "reference/fused_moe_q8/fused_moe_q8_ref.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <mutex>
#include <thread>

#include <Eigen/Dense>
#include <fmt/format.h>

#include "moe/error.hpp"
#include "reference/fused_moe/fused_moe_ref.hpp"
#include "reference/fused_moe_q8/fp8_mma_accum.hpp"

namespace moe::ref {

namespace {

using DMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using fused_moe_q8::Q8Problem;

// Work items [0, n) on a pool of threads pulling from an atomic counter; the
// first exception is rethrown after all threads stop.
void run_items(int64_t n, int threads, const std::function<void(int64_t)>& item) {
  std::atomic<int64_t> counter{0};
  std::exception_ptr first;
  std::mutex guard;
  const int workers = static_cast<int>(std::clamp<int64_t>(threads, 1, std::max<int64_t>(1, n)));
  auto worker = [&] {
    for (int64_t i = counter++; i < n; i = counter++) {
      try {
        item(i);
      } catch (...) {
        const std::lock_guard<std::mutex> g(guard);
        if (!first) first = std::current_exception();
        counter = n;
      }
    }
  };
  std::vector<std::thread> extra;
  for (int w = 1; w < workers; ++w) extra.emplace_back(worker);
  worker();
  for (auto& t : extra) t.join();
  if (first) std::rethrow_exception(first);
}

int thread_count(const Q8RefOptions& opt) {
  return opt.threads > 0 ? opt.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

std::vector<int64_t> select_tokens(int64_t M, std::span<const int64_t> tokens) {
  std::vector<int64_t> sel;
  if (tokens.empty()) {
    for (int64_t t = 0; t < M; ++t) sel.push_back(t);
    return sel;
  }
  sel.assign(tokens.begin(), tokens.end());
  std::sort(sel.begin(), sel.end());
  sel.erase(std::unique(sel.begin(), sel.end()), sel.end());
  MOE_REQUIRE(sel.front() >= 0 && sel.back() < M, fmt::format("fused_moe_q8_ref: selected token outside [0, {})", M));
  return sel;
}

// Slots (ti*k + j over the selected tokens) of each expert, in slot order.
std::vector<std::vector<int64_t>> slots_per_expert(const Q8Problem& p, const Q8RefInputs& in,
                                                   const std::vector<int64_t>& sel) {
  const int64_t k = p.base.top_k;
  MOE_REQUIRE(static_cast<int64_t>(in.topk_ids.size()) == p.base.slots() &&
                  static_cast<int64_t>(in.topk_weights.size()) == p.base.slots(),
              "fused_moe_q8_ref: topk_ids / topk_weights must have M*top_k entries");
  MOE_REQUIRE(in.w1 && in.w2, "fused_moe_q8_ref: weight sources must be set");
  std::vector<std::vector<int64_t>> rows(static_cast<size_t>(p.base.experts));
  for (size_t ti = 0; ti < sel.size(); ++ti)
    for (int64_t j = 0; j < k; ++j) {
      const int32_t e = in.topk_ids[static_cast<size_t>(sel[ti] * k + j)];
      if (e >= 0 && e < p.base.experts) rows[static_cast<size_t>(e)].push_back(static_cast<int64_t>(ti) * k + j);
    }
  return rows;
}

// Rows `idx` (activation row numbers) of a quantized activation tensor, dequantized
// (decoded: the code values without scales, when not null).
DMat gather_rows(const quant::QuantProblem& ap, std::span<const uint8_t> q, std::span<const float> s,
                 const std::vector<int64_t>& idx, DMat* decoded = nullptr) {
  DMat x(static_cast<Eigen::Index>(idx.size()), ap.shape.cols);
  if (decoded) decoded->resize(x.rows(), x.cols());
  for (size_t r = 0; r < idx.size(); ++r) {
    const auto row = static_cast<Eigen::Index>(r);
    dequantize_rows(ap, q, s, 0, idx[r], 1, x.row(row).data(), 0, decoded ? decoded->row(row).data() : nullptr);
  }
  return x;
}

bool models_hopper_fp8(const Q8Problem& p, const Q8RefOptions& o) {
  return o.accumulation == Q8Accumulation::HopperFp8Mma && !fused_moe_q8::is_int8(p.scheme);
}

// K elements per accumulator of the modelled kernel.
int64_t model_segment(const Q8Problem& p, const Q8RefOptions& o, int64_t K) {
  if (fused_moe_q8::is_block(p.scheme)) return fused_moe_q8::kGroup;
  return o.segment_k > 0 ? o.segment_k : K;
}

// Scale of each K segment of one row: value / decoded at a nonzero code (exact,
// since value = decoded * scale in double with 4 + 24 significant bits); 0 for
// an all-zero segment, whose accumulator is 0 anyway.
void segment_scales(const double* value, const double* decoded, int64_t K, int64_t seg, double* out) {
  for (int64_t s = 0; s * seg < K; ++s) {
    out[s] = 0.0;
    for (int64_t k = s * seg; k < std::min(K, (s + 1) * seg); ++k)
      if (decoded[k] != 0) {
        out[s] = value[k] / decoded[k];
        break;
      }
  }
}

// X W^T as Hopper's fp8 wgmma tiles compute it: per row pair, the modelled
// accumulator of every K segment times that segment's two scales, summed.
DMat hopper_fp8_gemm(const DMat& X, const DMat& Xd, const DMat& W, const DMat& Wd, int64_t seg) {
  const int64_t K = X.cols(), nseg = (K + seg - 1) / seg;
  DMat sx(X.rows(), nseg), sw(W.rows(), nseg);
  for (Eigen::Index r = 0; r < X.rows(); ++r) segment_scales(X.row(r).data(), Xd.row(r).data(), K, seg, sx.row(r).data());
  for (Eigen::Index j = 0; j < W.rows(); ++j) segment_scales(W.row(j).data(), Wd.row(j).data(), K, seg, sw.row(j).data());
  DMat out(X.rows(), W.rows());
  std::vector<double> partial(static_cast<size_t>(nseg));
  for (Eigen::Index r = 0; r < X.rows(); ++r)
    for (Eigen::Index j = 0; j < W.rows(); ++j) {
      fp8_mma_dot(Xd.row(r).data(), Wd.row(j).data(), K, seg, partial.data());
      double v = 0;
      for (int64_t s = 0; s < nseg; ++s) v += partial[static_cast<size_t>(s)] * sx(r, s) * sw(j, s);
      out(r, j) = v;
    }
  return out;
}

double rms(const std::vector<float>& v, int64_t count) {
  double sq = 0;
  for (float x : v) sq += static_cast<double>(x) * x;
  return count > 0 ? std::sqrt(sq / static_cast<double>(count)) : 0.0;
}

}  // namespace

Q8WeightFn q8_weights_from_host(const quant::QuantProblem& p, std::span<const uint8_t> q, std::span<const float> scales) {
  MOE_REQUIRE(static_cast<int64_t>(q.size()) == p.numel() && static_cast<int64_t>(scales.size()) == p.num_scales(),
              fmt::format("fused_moe_q8_ref: {} codes / {} scales for '{}' ({} / {})", q.size(), scales.size(), p.name,
                          p.numel(), p.num_scales()));
  return [p, q, scales](int32_t e, int64_t row0, int64_t nrows, double* out, double* decoded) {
    dequantize_rows(p, q, scales, e, row0, nrows, out, 0, decoded);
  };
}

namespace {
// What both stages start from: the selected tokens, each expert's slots among
// them, and the experts hit.
// What both stages start from: the selected tokens, each hit expert's slots
// (global t*k + j), and each hit expert's activation rows dequantized (and, when
// Hopper's fp8 accumulation is modelled, decoded for it in Xd).
struct StagePlan {
  std::vector<int64_t> tokens;
  std::vector<std::vector<int64_t>> rows;
  std::vector<int32_t> hit;
  bool model = false;  // models_hopper_fp8
  int64_t seg = 0;     // model_segment over the stage's K
  std::vector<DMat> X, Xd;
};

// slot_rows: the activation has one row per slot (stage 2's a2), else one per token (a1).
StagePlan plan_stage(const Q8Problem& p, const quant::QuantProblem& ap, std::span<const uint8_t> codes,
                     std::span<const float> scales, const Q8RefInputs& in, std::span<const int64_t> tokens,
                     const Q8RefOptions& opt, int64_t K, bool slot_rows, const char* what) {
  p.validate();
  MOE_REQUIRE(static_cast<int64_t>(codes.size()) == ap.numel() && static_cast<int64_t>(scales.size()) == ap.num_scales(),
              fmt::format("fused_moe_q8_ref {} codes/scales do not match the scheme's layout ({} codes, {} scales)",
                          what, ap.numel(), ap.num_scales()));
  const int64_t k = p.base.top_k;
  StagePlan plan;
  plan.tokens = select_tokens(p.base.tokens, tokens);
  plan.rows = slots_per_expert(p, in, plan.tokens);
  for (int32_t e = 0; e < p.base.experts; ++e)
    if (!plan.rows[static_cast<size_t>(e)].empty()) plan.hit.push_back(e);
  plan.model = models_hopper_fp8(p, opt);
  plan.seg = model_segment(p, opt, K);
  plan.X.resize(static_cast<size_t>(p.base.experts));
  plan.Xd.resize(plan.X.size());
  for (int32_t e : plan.hit) {
    std::vector<int64_t> arows;
    for (int64_t s : plan.rows[static_cast<size_t>(e)]) {
      const int64_t t = plan.tokens[static_cast<size_t>(s / k)];
      arows.push_back(slot_rows ? t * k + s % k : t);
    }
    plan.X[static_cast<size_t>(e)] =
        gather_rows(ap, codes, scales, arows, plan.model ? &plan.Xd[static_cast<size_t>(e)] : nullptr);
  }
  return plan;
}
}  // namespace

Q8Stage1Result q8_ref_stage1(const Q8Problem& p, std::span<const uint8_t> a1, std::span<const float> a1_scale,
                             const Q8RefInputs& in, const Q8RefOptions& opt, std::span<const int64_t> tokens) {
  const quant::QuantProblem ap = p.a1_quant();
  const int64_t H = p.base.model_dim, I = p.base.inter_dim, k = p.base.top_k;
  Q8Stage1Result res;
  const StagePlan plan = plan_stage(p, ap, a1, a1_scale, in, tokens, opt, H, false, "stage 1: a1");
  res.tokens = plan.tokens;
  const int64_t T = static_cast<int64_t>(res.tokens.size());
  res.intermediate.assign(static_cast<size_t>(T * k * I), 0.0f);
  const int64_t chunk = std::max<int64_t>(128, opt.chunk_rows / 128 * 128);
  const int64_t nchunks = (I + chunk - 1) / chunk;
  const bool on_input = p.base.router_weight == fused_moe::RouterWeight::OnInput;
  run_items(static_cast<int64_t>(plan.hit.size()) * nchunks, thread_count(opt), [&](int64_t item) {
    const int32_t e = plan.hit[static_cast<size_t>(item / nchunks)];
    const int64_t c0 = (item % nchunks) * chunk, nc = std::min(chunk, I - c0);
    // gate rows c0.., up rows I+c0.. (I+c0 need not be a multiple of 128: read the
    // enclosing 128-aligned range and slice)
    DMat wg(nc, H), wg_d(plan.model ? nc : 0, H);
    in.w1(e, c0, nc, wg.data(), plan.model ? wg_d.data() : nullptr);
    const int64_t u0 = (I + c0) / 128 * 128, skip = I + c0 - u0;
    const int64_t urows = std::min<int64_t>(skip + nc, 2 * I - u0);
    DMat wu_all(urows, H), wu_all_d(plan.model ? urows : 0, H);
    in.w1(e, u0, urows, wu_all.data(), plan.model ? wu_all_d.data() : nullptr);
    const DMat& x = plan.X[static_cast<size_t>(e)];
    const DMat& xd = plan.Xd[static_cast<size_t>(e)];
    const DMat G = plan.model ? hopper_fp8_gemm(x, xd, wg, wg_d, plan.seg) : DMat(x * wg.transpose());
    const DMat U = plan.model ? hopper_fp8_gemm(x, xd, wu_all.middleRows(skip, nc), wu_all_d.middleRows(skip, nc), plan.seg)
                         : DMat(x * wu_all.middleRows(skip, nc).transpose());
    const auto& rs = plan.rows[static_cast<size_t>(e)];
    for (Eigen::Index r = 0; r < G.rows(); ++r) {
      const int64_t slot = rs[static_cast<size_t>(r)];
      const double c =
          on_input ? static_cast<double>(in.topk_weights[static_cast<size_t>(res.tokens[slot / k] * k + slot % k)]) : 1.0;
      for (Eigen::Index j = 0; j < nc; ++j) {
        const double h = activation_ref(p.base.act, c * G(r, j)) * (c * U(r, j));
        res.intermediate[static_cast<size_t>(slot * I + c0 + j)] = round_to(p.base.dtype, static_cast<float>(h));
      }
    }
  });
  int64_t valid = 0;
  for (int32_t e : plan.hit) valid += static_cast<int64_t>(plan.rows[static_cast<size_t>(e)].size()) * I;
  res.inter_rms = rms(res.intermediate, valid);
  return res;
}

Q8Stage2Result q8_ref_stage2(const Q8Problem& p, std::span<const uint8_t> a2, std::span<const float> a2_scale,
                             const Q8RefInputs& in, const Q8RefOptions& opt, std::span<const int64_t> tokens) {
  const quant::QuantProblem ap = p.a2_quant();
  const int64_t H = p.base.model_dim, I = p.base.inter_dim, k = p.base.top_k;
  Q8Stage2Result res;
  const StagePlan plan = plan_stage(p, ap, a2, a2_scale, in, tokens, opt, I, true, "stage 2: a2");
  res.tokens = plan.tokens;
  const int64_t T = static_cast<int64_t>(res.tokens.size());
  std::vector<double> y(static_cast<size_t>(T * k * H), 0.0);
  const int64_t chunk = std::max<int64_t>(128, opt.chunk_rows / 128 * 128);
  const int64_t nchunks = (H + chunk - 1) / chunk;
  const bool on_output = p.base.router_weight == fused_moe::RouterWeight::OnOutput;
  run_items(static_cast<int64_t>(plan.hit.size()) * nchunks, thread_count(opt), [&](int64_t item) {
    const int32_t e = plan.hit[static_cast<size_t>(item / nchunks)];
    const int64_t n0 = (item % nchunks) * chunk, nn = std::min(chunk, H - n0);
    DMat w(nn, I), w_d(plan.model ? nn : 0, I);
    in.w2(e, n0, nn, w.data(), plan.model ? w_d.data() : nullptr);
    const DMat& a = plan.X[static_cast<size_t>(e)];
    const DMat Y = plan.model ? hopper_fp8_gemm(a, plan.Xd[static_cast<size_t>(e)], w, w_d, plan.seg) : DMat(a * w.transpose());
    const auto& rs = plan.rows[static_cast<size_t>(e)];
    for (Eigen::Index r = 0; r < Y.rows(); ++r) {
      const int64_t slot = rs[static_cast<size_t>(r)];
      const double c =
          on_output ? static_cast<double>(in.topk_weights[static_cast<size_t>(res.tokens[slot / k] * k + slot % k)]) : 1.0;
      for (Eigen::Index j = 0; j < nn; ++j) y[static_cast<size_t>(slot * H + n0 + j)] = c * Y(r, j);
    }
  });
  res.out.assign(static_cast<size_t>(T * H), 0.0f);
  for (int64_t ti = 0; ti < T; ++ti)
    for (int64_t c = 0; c < H; ++c) {
      double s = 0;
      for (int64_t j = 0; j < k; ++j) s += y[static_cast<size_t>((ti * k + j) * H + c)];
      res.out[static_cast<size_t>(ti * H + c)] = static_cast<float>(s);
    }
  res.out_rms = rms(res.out, static_cast<int64_t>(res.out.size()));
  return res;
}

Q8LayerResult q8_ref_layer(const Q8Problem& p, std::span<const float> hidden, const Q8RefInputs& in,
                           const Q8RefOptions& opt) {
  return q8_ref_layer(p, hidden, in, opt, opt);
}

Q8LayerResult q8_ref_layer(const Q8Problem& p, std::span<const float> hidden, const Q8RefInputs& in,
                           const Q8RefOptions& stage1, const Q8RefOptions& stage2) {
  Q8LayerResult r;
  r.a1 = quantize(p.a1_quant(), hidden);
  r.stage1 = q8_ref_stage1(p, r.a1.q, r.a1.scales, in, stage1);
  r.a2 = quantize(p.a2_quant(), r.stage1.intermediate);
  r.stage2 = q8_ref_stage2(p, r.a2.q, r.a2.scales, in, stage2);
  return r;
}

Tolerance q8_inter_tolerance(const Q8Problem& p, double inter_rms) {
  Tolerance t = fused_moe_inter_tolerance(p.base, p.base.dtype, inter_rms);
  t.rtol += 4.0 * unit_roundoff(DType::F32);
  t.max_rel_l2 += 4.0 * unit_roundoff(DType::F32);
  return t;
}

Tolerance q8_out_tolerance(const Q8Problem& p, double out_rms) {
  Tolerance t = fused_moe_out_tolerance(p.base, DType::F32, p.base.dtype, out_rms);
  t.rtol += 4.0 * unit_roundoff(DType::F32);
  t.max_rel_l2 += 4.0 * unit_roundoff(DType::F32);
  return t;
}

double q8_vs_exact_rel_l2(const Q8Problem& p) {
  // four quantized operands; fp8: 2^-4 relative per element each (worst case,
  // fully correlated); int8 per token: s/2 = amax/254 per element, amax <= ~7 rms
  // for the harness's normal inputs (tails end at 6.93 sigma): 7/254 each.
  return fused_moe_q8::is_int8(p.scheme) ? 4.0 * 7.0 / 254.0 : 4.0 * 0x1p-4;
}

}  // namespace moe::ref
