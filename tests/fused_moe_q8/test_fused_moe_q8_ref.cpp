// CPU tests of the quantized fused MoE reference, its tolerances and the tile
// configs: hand-checkable cases, all-zero input, +-448 / +-127 saturation,
// Inf/NaN errors, the quantization-step bound against the unquantized layer.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/fused_moe_q8/fused_moe_q8_types.hpp"
#include "moe/check.hpp"
#include "moe/error.hpp"
#include "reference/fused_moe/fused_moe_ref.hpp"
#include "reference/fused_moe_q8/fused_moe_q8_ref.hpp"

using moe::DType;
using moe::fused_moe_q8::Q8Problem;
using moe::fused_moe_q8::Scheme;

namespace {

// A host layer: float hidden (bf16-rounded), float weights, their quantized codes, routing.
struct HostQ8 {
  Q8Problem p;
  std::vector<float> hidden, w1, w2, topk_w;
  std::vector<int32_t> topk_ids;
  moe::ref::QuantResult q1, q2;
  moe::ref::Q8RefInputs inputs() const {
    moe::ref::Q8RefInputs in;
    in.w1 = moe::ref::q8_weights_from_host(p.w1_quant(), q1.q, q1.scales);
    in.w2 = moe::ref::q8_weights_from_host(p.w2_quant(), q2.q, q2.scales);
    in.topk_weights = topk_w;
    in.topk_ids = topk_ids;
    return in;
  }
};

HostQ8 make_host(const Q8Problem& p, uint64_t seed) {
  HostQ8 h;
  h.p = p;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const auto& b = p.base;
  h.hidden.resize(static_cast<size_t>(b.tokens * b.model_dim));
  for (float& v : h.hidden) v = moe::round_to(DType::BF16, nd(rng));
  h.w1.resize(static_cast<size_t>(b.experts * 2 * b.inter_dim * b.model_dim));
  for (float& v : h.w1) v = nd(rng) / std::sqrt(static_cast<float>(b.model_dim));
  h.w2.resize(static_cast<size_t>(b.experts * b.model_dim * b.inter_dim));
  for (float& v : h.w2) v = nd(rng) / std::sqrt(static_cast<float>(b.inter_dim));
  std::uniform_int_distribution<int32_t> pick(0, b.experts - 1);
  for (int64_t t = 0; t < b.tokens; ++t) {
    std::vector<int32_t> chosen;
    while (static_cast<int32_t>(chosen.size()) < b.top_k) {
      const int32_t e = pick(rng);
      if (std::find(chosen.begin(), chosen.end(), e) == chosen.end()) chosen.push_back(e);
    }
    for (int32_t e : chosen) {
      h.topk_ids.push_back(e);
      h.topk_w.push_back(1.0f / static_cast<float>(b.top_k));
    }
  }
  h.q1 = moe::ref::quantize(p.w1_quant(), h.w1);
  h.q2 = moe::ref::quantize(p.w2_quant(), h.w2);
  return h;
}

double rel_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    den += static_cast<double>(b[i]) * b[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

}  // namespace

TEST_CASE("fused_moe_q8 ref: hand-checkable fp8 per-tensor layer") {
  // hidden all 0.875 -> scale 0.875/448 = 2^-9, codes 448 (0x7E), dequantized exactly 0.875.
  // w1/w2 codes 0x38 (= 1.0) with scale 1/16: g = u = 16 * 0.875 / 16 = 0.875.
  // h = silu(0.875) * 0.875 rounded to bf16; a2 per tensor: all equal -> code 448,
  // deq(h) = 448 * fl32(h/448); out = sum_16 deq(h) / 16 * w (w = 1, k = 1).
  Q8Problem p = moe::fused_moe_q8::make_q8_problem(Scheme::Fp8Tensor, 1, 16, 16, 1, 1);
  std::vector<float> hidden(16, 0.875f);
  std::vector<uint8_t> w1q(2 * 16 * 16, 0x38), w2q(16 * 16, 0x38);
  std::vector<float> w1s{1.0f / 16}, w2s{1.0f / 16}, tw{1.0f};
  std::vector<int32_t> ids{0};
  moe::ref::Q8RefInputs in;
  in.w1 = moe::ref::q8_weights_from_host(p.w1_quant(), w1q, w1s);
  in.w2 = moe::ref::q8_weights_from_host(p.w2_quant(), w2q, w2s);
  in.topk_weights = tw;
  in.topk_ids = ids;
  const auto r = moe::ref::q8_ref_layer(p, hidden, in);
  CHECK(r.a1.scales[0] == std::ldexp(1.0f, -9));
  CHECK(r.a1.q[0] == 0x7E);
  const double g = 0.875;
  const float h = moe::round_to(DType::BF16, static_cast<float>(g / (1 + std::exp(-g)) * g));
  for (float v : r.stage1.intermediate) CHECK(v == h);
  CHECK(r.a2.q[0] == 0x7E);
  const double deq_h = 448.0 * static_cast<double>(h / 448.0f);
  for (float v : r.stage2.out) CHECK(v == doctest::Approx(deq_h).epsilon(1e-7));
  CHECK(std::fabs(deq_h - h) <= h * 0x1p-22);
}

TEST_CASE("fused_moe_q8 ref: hand-checkable int8 per-token layer, +-127 codes") {
  // token 0: +-2 alternating -> scale 2/127, codes +-127; w codes +1, channel scales 1/16.
  Q8Problem p = moe::fused_moe_q8::make_q8_problem(Scheme::Int8Token, 1, 16, 16, 1, 1);
  std::vector<float> hidden(16);
  for (int c = 0; c < 16; ++c) hidden[c] = (c % 2) ? -2.0f : 2.0f;
  std::vector<uint8_t> w1q(2 * 16 * 16, 1), w2q(16 * 16, 1);
  std::vector<float> w1s(32, 1.0f / 16), w2s(16, 1.0f / 16), tw{0.5f};
  std::vector<int32_t> ids{0};
  moe::ref::Q8RefInputs in;
  in.w1 = moe::ref::q8_weights_from_host(p.w1_quant(), w1q, w1s);
  in.w2 = moe::ref::q8_weights_from_host(p.w2_quant(), w2q, w2s);
  in.topk_weights = tw;
  in.topk_ids = ids;
  const auto r = moe::ref::q8_ref_layer(p, hidden, in);
  CHECK(static_cast<int8_t>(r.a1.q[0]) == 127);
  CHECK(static_cast<int8_t>(r.a1.q[1]) == -127);
  // alternating signs cancel: g = u = 0 -> h = 0 -> a2 scale 0, out 0 (no NaN)
  for (float v : r.stage1.intermediate) CHECK(v == 0.0f);
  CHECK(r.a2.scales[0] == 0.0f);
  for (float v : r.stage2.out) CHECK(v == 0.0f);
}

TEST_CASE("fused_moe_q8 ref: all-zero hidden gives scale 0 and a zero output, never NaN") {
  for (Scheme s : moe::fused_moe_q8::kAllSchemes) {
    CAPTURE(std::string(moe::fused_moe_q8::scheme_name(s)));
    Q8Problem p = moe::fused_moe_q8::make_q8_problem(s, 3, 144, 80, 4, 2);
    HostQ8 h = make_host(p, 7);
    std::fill(h.hidden.begin(), h.hidden.end(), 0.0f);
    const auto r = moe::ref::q8_ref_layer(p, h.hidden, h.inputs());
    for (float sc : r.a1.scales) CHECK(sc == 0.0f);
    for (float v : r.stage2.out) CHECK(v == 0.0f);
    for (float sc : r.a2.scales) CHECK(sc == 0.0f);
  }
}

TEST_CASE("fused_moe_q8 ref: +-448 saturation codes and a finite layer") {
  Q8Problem p = moe::fused_moe_q8::make_q8_problem(Scheme::Fp8Token, 2, 32, 16, 2, 1);
  HostQ8 h = make_host(p, 3);
  h.hidden[5] = 1000.0f;   // row 0 amax -> code 0x7E (+448)
  h.hidden[40] = -1000.0f; // row 1 amax -> code 0xFE (-448)
  const auto r = moe::ref::q8_ref_layer(p, h.hidden, h.inputs());
  CHECK(r.a1.q[5] == 0x7E);
  CHECK(r.a1.q[40] == 0xFE);
  CHECK(r.a1.scales[0] == 1000.0f / 448.0f);
  for (float v : r.stage2.out) CHECK(std::isfinite(v));
}

TEST_CASE("fused_moe_q8 ref: Inf/NaN hidden raises InputError naming the tensor") {
  for (Scheme s : moe::fused_moe_q8::kAllSchemes) {
    Q8Problem p = moe::fused_moe_q8::make_q8_problem(s, 3, 144, 80, 4, 2);
    HostQ8 h = make_host(p, 11);
    h.hidden[200] = std::numeric_limits<float>::infinity();
    CHECK_THROWS_AS(moe::ref::q8_ref_layer(p, h.hidden, h.inputs()), moe::InputError);
    h.hidden[200] = std::nanf("");
    try {
      (void)moe::ref::q8_ref_layer(p, h.hidden, h.inputs());
      FAIL("no InputError");
    } catch (const moe::InputError& e) {
      CHECK(std::string(e.what()).find("hidden") != std::string::npos);
    }
  }
}

TEST_CASE("fused_moe_q8 ref: quantized layer within the step model of the unquantized fp64 layer") {
  for (Scheme s : moe::fused_moe_q8::kAllSchemes) {
    for (int act = 0; act < 2; ++act) {
      CAPTURE(std::string(moe::fused_moe_q8::scheme_name(s)));
      Q8Problem p = moe::fused_moe_q8::make_q8_problem(s, 5, 272, 144, 8, 3);  // dims not multiples of 128
      p.base.act = static_cast<moe::fused_moe::Activation>(act);
      p.base.router_weight = act ? moe::fused_moe::RouterWeight::OnInput : moe::fused_moe::RouterWeight::OnOutput;
      HostQ8 h = make_host(p, 100 + act);
      const auto q = moe::ref::q8_ref_layer(p, h.hidden, h.inputs());
      moe::ref::FusedMoeRefOptions o;
      o.inter_dtype = DType::F32;
      const auto exact = moe::ref::fused_moe_ref(
          p.base, moe::ref::ref_inputs_from_host(h.hidden, h.w1, h.w2, h.topk_w, h.topk_ids), o);
      const double e = rel_l2(q.stage2.out, exact.out);
      CAPTURE(e);
      CHECK(e <= moe::ref::q8_vs_exact_rel_l2(p));
      CHECK(e > 0.0);
      // the fp8 layer is measurably quantized but far inside the bound
      CHECK(e < 0.5 * moe::ref::q8_vs_exact_rel_l2(p));
    }
  }
}

TEST_CASE("fused_moe_q8 ref: staged evaluation on a token subset equals the full run") {
  Q8Problem p = moe::fused_moe_q8::make_q8_problem(Scheme::Fp8Block, 9, 400, 272, 6, 2);
  HostQ8 h = make_host(p, 5);
  const auto full = moe::ref::q8_ref_layer(p, h.hidden, h.inputs());
  const std::vector<int64_t> sub{8, 0, 4};
  const auto s1 = moe::ref::q8_ref_stage1(p, full.a1.q, full.a1.scales, h.inputs(), {}, sub);
  const auto s2 = moe::ref::q8_ref_stage2(p, full.a2.q, full.a2.scales, h.inputs(), {}, sub);
  const int64_t I = p.base.inter_dim, H = p.base.model_dim, k = p.base.top_k;
  for (size_t ti = 0; ti < s1.tokens.size(); ++ti) {
    const int64_t t = s1.tokens[ti];
    for (int64_t c = 0; c < k * I; ++c)
      REQUIRE(s1.intermediate[ti * k * I + c] == full.stage1.intermediate[t * k * I + c]);
    for (int64_t c = 0; c < H; ++c) REQUIRE(s2.out[ti * H + c] == full.stage2.out[t * H + c]);
  }
}

TEST_CASE("fused_moe_q8 ref: tolerances pass a float-perturbed result and fail a dropped slot") {
  Q8Problem p = moe::fused_moe_q8::make_q8_problem(Scheme::Fp8Token, 7, 256, 128, 4, 2);
  HostQ8 h = make_host(p, 9);
  const auto r = moe::ref::q8_ref_layer(p, h.hidden, h.inputs());
  const auto tol = moe::ref::q8_out_tolerance(p, r.stage2.out_rms);
  std::vector<float> got = r.stage2.out;
  for (float& v : got) v = moe::round_to(DType::BF16, v);  // the kernel's output rounding
  CHECK(moe::check_close(got, r.stage2.out, tol).passed);
  for (int64_t c = 0; c < p.base.model_dim; ++c) got[static_cast<size_t>(3 * p.base.model_dim + c)] *= 0.5f;
  CHECK_FALSE(moe::check_close(got, r.stage2.out, tol).passed);
  const auto ti = moe::ref::q8_inter_tolerance(p, r.stage1.inter_rms);
  CHECK(ti.rtol > 2 * moe::unit_roundoff(DType::BF16));
}

TEST_CASE("fused_moe_q8 configs: compiled shapes, validity, chooser on the model configs") {
  using namespace moe::fused_moe_q8;
  for (int i = 0; i < kNumQ8TileShapes; ++i) {
    const Q8TileConfig c = q8_config_of_shape(i);
    CHECK(moe::fused_moe::find_tile_shape(kQ8TileShapes, c) == i);
    CHECK(c.is_valid(1, Scheme::Fp8Tensor));
    // the older wgmma tiles wider than 128 columns per warpgroup have no block kernels
    const TileShape& t = kQ8TileShapes[i];
    const bool wide = t.wgmma && !t.ws && t.block_n / t.warps_n > 128;
    CHECK(c.is_valid(2, Scheme::Fp8Block) == !wide);
    CHECK(q8_block_compiled(t) == !wide);
  }
  for (int i = 0; i < kNumQ8TileShapes; ++i) {  // every tile runs on a persistent grid too (clusters walk pairs)
    Q8TileConfig c = q8_config_of_shape(i);
    c.persistent = true;
    CHECK(c.is_valid(1, Scheme::Fp8Tensor));
  }
  // Launch bounds ask for two blocks per SM of the block scheme's 8-warp cp.async tiles whose
  // two blocks fit an SM's shared memory (elsewhere the target would allow more registers), and
  // for as many as fit of the swapped decode tile.
  for (int i = 0; i < kNumQ8TileShapes; ++i) {
    const TileShape& t = kQ8TileShapes[i];
    CAPTURE(t.name());
    if (q8_swapped(t.tile())) {
      CHECK(q8_min_blocks_per_sm(t, false) >= 2);
      CHECK(q8_min_blocks_per_sm(t, true) == q8_min_blocks_per_sm(t, false));
      continue;
    }
    CHECK(q8_min_blocks_per_sm(t, false) == 0);
    if (q8_min_blocks_per_sm(t, true) != 0) CHECK((!t.wgmma && t.warps() == 8));
  }
#if !defined(MOE_BACKEND_HIP)
  CHECK(q8_min_blocks_per_sm({16, 128, 256, 1, 8, 3, false}, true) == 2);   // 108 KiB: two fit
  CHECK(q8_min_blocks_per_sm({16, 128, 128, 1, 4, 4, false}, true) == 0);   // 4 warps
  CHECK(q8_min_blocks_per_sm({16, 128, 256, 1, 8, 4, false}, true) == 0);   // 144 KiB: one fits
#endif
  Q8TileConfig bad;
  bad.block_m = 48;
  CHECK_FALSE(bad.why_invalid(1, Scheme::Fp8Tensor).empty());
  Q8TileConfig split = q8_config_of_shape(0);
  split.split_k = 2;
  CHECK_FALSE(split.is_valid(1, Scheme::Fp8Tensor));
  CHECK(split.is_valid(2, Scheme::Fp8Tensor));
  for (int64_t M : {1, 16, 64, 256, 1024, 4096})
    for (Scheme s : kAllSchemes)
      for (bool wg : {false, true}) {
        Q8Problem p = moe::fused_moe_q8::make_q8_problem(s, M, 7168, 2048, 256, 8);
        Q8DeviceLimits d;
        d.wgmma = wg;
        const Q8LayerConfig c = choose_q8_config(p, d);
        CAPTURE(c.to_string());
        CHECK(c.is_valid(s));
        CHECK((!c.stage1.wgmma || wg));
      }
  // On Hopper the one-block warp-specialized tile where it fits, on a persistent grid: fp8
  // beyond 24 rows per expert, int8 beyond 96; without wgmma the older tiles.
  for (Scheme s : kAllSchemes)
    for (int64_t M : {16, 1024, 4096}) {  // DeepSeek-V3 shape: 0.5, 32, 128 rows per expert
      Q8DeviceLimits d;
      d.wgmma = true;
      const Q8LayerConfig c = choose_q8_config(moe::fused_moe_q8::make_q8_problem(s, M, 7168, 2048, 256, 8), d);
      CAPTURE(c.to_string());
      const bool want_ws = is_int8(s) ? M == 4096 : M > 16;
      CHECK(c.stage1.ws == want_ws);
      CHECK(c.stage2.ws == want_ws);
      CHECK(c.stage1.cluster == 1);
      if (want_ws) CHECK((c.stage1.persistent && c.stage2.persistent));
      d.wgmma = false;
      CHECK_FALSE(choose_q8_config(moe::fused_moe_q8::make_q8_problem(s, M, 7168, 2048, 256, 8), d).stage1.ws);
    }
  // The 128x192 ws tile from 256 rows per expert on (Mixtral-8x7B shape M = 1024: 256, M = 4096:
  // 1024), the block scheme too (its 96-column halves straddle weight blocks); not below
  // (Qwen3-235B M = 1024: 64 rows).
  for (Scheme s : kAllSchemes) {
    Q8DeviceLimits d;
    d.wgmma = true;
    for (int64_t M : {1024, 4096}) {
      const Q8LayerConfig c = choose_q8_config(moe::fused_moe_q8::make_q8_problem(s, M, 4096, 14336, 8, 2), d);
      CAPTURE(c.to_string());
      CHECK(c.stage1.ws);
      CHECK(c.stage1.block_n == 192);
      CHECK(c.is_valid(s));
    }
    const Q8LayerConfig q = choose_q8_config(moe::fused_moe_q8::make_q8_problem(s, 1024, 4096, 1536, 128, 8), d);
    CAPTURE(q.to_string());
    CHECK(q.stage1.block_n != 192);
  }
  // 9-24 rows per expert: fp8 on the swapped wgmma decode tile, int8 (and any scheme without
  // wgmma) on the 4-warp mma.sync tile; 1-8 rows on the 8-warp mma.sync tile, but the block
  // scheme on the swapped tile where both stages have at least a tile per SM (Mixtral-8x7B shape:
  // M = 64 is 16 rows per expert, M = 16 is 4 (8 experts x 32 tiles), M = 1 is 1 (2 x 32 tiles)).
  for (Scheme s : kAllSchemes)
    for (bool wg : {false, true}) {
      Q8DeviceLimits d;
      d.wgmma = wg;
      const Q8LayerConfig c16 = choose_q8_config(moe::fused_moe_q8::make_q8_problem(s, 64, 4096, 14336, 8, 2), d);
      CAPTURE(c16.to_string());
      const bool want_swap = wg && !is_int8(s);
      CHECK(q8_swapped(c16.stage1) == want_swap);
      CHECK(q8_swapped(c16.stage2) == want_swap);
      CHECK(c16.stage1.block_m == 16);
      CHECK(c16.stage1.warps == (want_swap ? 8 : 4));
      CHECK(c16.is_valid(s));
      const Q8LayerConfig c4 = choose_q8_config(moe::fused_moe_q8::make_q8_problem(s, 16, 4096, 14336, 8, 2), d);
      CAPTURE(c4.to_string());
      const bool block_swap = want_swap && is_block(s);
      CHECK(q8_swapped(c4.stage1) == block_swap);
      CHECK(q8_swapped(c4.stage2) == block_swap);
      CHECK(c4.stage1.wgmma == block_swap);
      CHECK(c4.stage1.warps == 8);
      CHECK(c4.is_valid(s));
      const Q8LayerConfig c1 = choose_q8_config(moe::fused_moe_q8::make_q8_problem(s, 1, 4096, 14336, 8, 2), d);
      CAPTURE(c1.to_string());
      CHECK_FALSE(c1.stage1.wgmma);
      CHECK(c1.stage1.warps == 8);
      d.sm_count = 257;  // more SMs than the 256 tiles of M = 16: the mma.sync tile again
      CHECK_FALSE(choose_q8_config(moe::fused_moe_q8::make_q8_problem(s, 16, 4096, 14336, 8, 2), d).stage1.wgmma);
    }
  {  // the block scheme on the 128x128 ws tile needs inter_dim % 64 == 0 (halves inside one block);
     // the 128x192 tile takes any inter_dim (a multiple of 16)
    Q8DeviceLimits d;
    d.wgmma = true;
    for (int i = 0; i < kNumQ8TileShapes; ++i) {
      const TileShape& t = kQ8TileShapes[i];
      if (!t.ws) continue;
      CHECK(q8_shape_fits(t, moe::fused_moe_q8::make_q8_problem(Scheme::Fp8Block, 64, 512, 2000, 8, 2)) == (t.block_n == 192));
      CHECK(q8_shape_fits(t, moe::fused_moe_q8::make_q8_problem(Scheme::Fp8Tensor, 64, 512, 2000, 8, 2)));
    }
  }
  {  // so at 128 rows per expert (128x128 tile) inter_dim 2000 keeps the block scheme off the ws tile
    Q8DeviceLimits d;
    d.wgmma = true;
    const Q8LayerConfig c = choose_q8_config(moe::fused_moe_q8::make_q8_problem(Scheme::Fp8Block, 4096, 7168, 2000, 256, 8), d);
    CHECK_FALSE(c.stage1.ws);
    CHECK(c.stage1.wgmma);
  }
  Q8Problem bad_p = moe::fused_moe_q8::make_q8_problem(Scheme::Fp8Tensor, 1, 100, 64, 2, 1);
  CHECK_THROWS_AS(bad_p.validate(), moe::InputError);
}
