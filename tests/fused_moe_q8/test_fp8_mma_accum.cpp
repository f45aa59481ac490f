// CPU tests of the Hopper fp8 wgmma accumulation model (reference/fused_moe_q8/
// fp8_mma_accum.hpp): replays the results an H200 gave for the probe's inputs
// bit for bit, hand cases of each rule, the model's loss against exact sums,
// and the reference layer with the model (which configs get it).
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/families/fused_moe_q8/fused_moe_q8_runner.hpp"
#include "kernels/fused_moe_q8/fused_moe_q8_types.hpp"
#include "moe/check.hpp"
#include "moe/fp8.hpp"
#include "reference/fused_moe_q8/fp8_mma_accum.hpp"
#include "reference/fused_moe_q8/fused_moe_q8_ref.hpp"

namespace {

using moe::ref::fp8_mma_dot;
using moe::ref::fp8_mma_k32_step;

std::vector<double> decode_hex(const std::string& hex) {
  std::vector<double> v(hex.size() / 2);
  for (size_t i = 0; i < v.size(); ++i) {
    const auto code = static_cast<uint8_t>(std::stoul(hex.substr(2 * i, 2), nullptr, 16));
    v[i] = moe::fp8_decode(code, moe::Fp8Format::E4M3FN);
  }
  return v;
}

double rel_l2(const std::vector<float>& got, const std::vector<float>& want) {
  moe::Tolerance any;
  any.atol = 1e30;
  any.max_rel_l2 = 1e30;
  return moe::check_close(got, want, any).rel_l2;
}

double fp8_value(double x) {  // nearest e4m3fn value
  return moe::fp8_decode(moe::fp8_encode(static_cast<float>(x), moe::Fp8Format::E4M3FN), moe::Fp8Format::E4M3FN);
}

}  // namespace

TEST_CASE("hopper fp8 mma model: replays the H200 probe results bit for bit") {
  // MOE_FP8_MMA_GOLDEN: another probe output to replay (scripts/gpu_full_run.sh step probe)
  const char* env = std::getenv("MOE_FP8_MMA_GOLDEN");
  const std::string path = env && *env ? env : "data/fused_moe_q8/hopper_fp8_mma_golden.json";
  CAPTURE(path);
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), path << " not found (tests run from the source root)");
  const auto golden = nlohmann::json::parse(in);
  const auto& cases = golden.at("cases");
  REQUIRE(cases.size() >= 300);
  int mismatches = 0, multi_step = 0, nonzero_c = 0;
  for (const auto& c : cases) {
    const auto a = decode_hex(c.at("a").get<std::string>());
    const auto b = decode_hex(c.at("b").get<std::string>());
    REQUIRE(a.size() == b.size());
    REQUIRE(a.size() % 32 == 0);
    double acc = std::bit_cast<float>(c.at("c_bits").get<uint32_t>());
    nonzero_c += acc != 0;
    for (size_t k = 0; k < a.size(); k += 32) acc = fp8_mma_k32_step(acc, &a[k], &b[k], 32);
    multi_step += a.size() > 32;
    const auto want = c.at("d_bits").get<uint32_t>();
    const auto got = std::bit_cast<uint32_t>(static_cast<float>(acc));
    if (got != want) {
      ++mismatches;
      if (mismatches <= 5)
        MESSAGE(c.at("experiment").get<std::string>() << ": model " << static_cast<float>(acc) << " device "
                                                       << std::bit_cast<float>(want));
    }
  }
  CHECK(mismatches == 0);
  CHECK(multi_step > 0);  // chained steps are covered
  CHECK(nonzero_c > 0);   // C taking part in the alignment is covered
}

TEST_CASE("hopper fp8 mma model: the rules one at a time") {
  std::vector<double> a(32, 0.0), b(32, 0.0);
  a[0] = b[0] = 1.0;
  a[1] = 0x1p-13;
  b[1] = 1.0;
  CHECK(fp8_mma_k32_step(0.0, a.data(), b.data(), 32) == 1.0 + 0x1p-13);  // 13 fraction bits kept
  a[1] = 0x1p-14;
  CHECK(fp8_mma_k32_step(0.0, a.data(), b.data(), 32) == 1.0);  // the 14th is truncated away
  a[1] = -0x1p-14;
  CHECK(fp8_mma_k32_step(0.0, a.data(), b.data(), 32) == 1.0);  // toward zero, not down: -2^-14 -> 0
  // C takes part in the alignment: with C = 2^10, a product of 2^-4 is 2^-14 C: lost
  a[1] = 0.0;
  a[0] = 0x1p-4;
  CHECK(fp8_mma_k32_step(1024.0, a.data(), b.data(), 32) == 1024.0);
  CHECK(fp8_mma_k32_step(0.0, a.data(), b.data(), 32) == 0x1p-4);
  // the alignment exponent of 1.875 * 1.875 = 3.515625 is 0 + 0, so its quantum
  // is 2^-13 (one bit finer than the result's own exponent allows) ...
  a[0] = b[0] = 1.875;
  a[1] = 0x1p-13;
  b[1] = 1.0;
  // ... and the sum is then truncated to 13 fraction bits of its exponent (1): 2^-12
  CHECK(fp8_mma_k32_step(0.0, a.data(), b.data(), 32) == 3.515625);
  a[2] = 0x1p-13;
  b[2] = 1.0;
  CHECK(fp8_mma_k32_step(0.0, a.data(), b.data(), 32) == 3.515625 + 0x1p-12);
  // zeros only: the accumulator stays
  std::vector<double> z(32, 0.0);
  CHECK(fp8_mma_k32_step(0.0, z.data(), z.data(), 32) == 0.0);
  CHECK(fp8_mma_k32_step(-3.0, z.data(), z.data(), 32) == -3.0);
  // segments restart from zero; a K tail is a short last step
  std::vector<double> ones(100, 1.0);
  std::vector<double> parts(4);
  fp8_mma_dot(ones.data(), ones.data(), 100, 32, parts.data());
  CHECK(parts == std::vector<double>{32, 32, 32, 4});
  fp8_mma_dot(ones.data(), ones.data(), 100, 0, parts.data());
  CHECK(parts[0] == 100.0);
  CHECK_THROWS(fp8_mma_dot(ones.data(), ones.data(), 100, 48, parts.data()));
}

TEST_CASE("hopper fp8 mma model: loss against exact sums, chained and restarted every 128") {
  // The table of fp8_mma_accum.hpp, reproduced here: rel-L2 of 300 dot products of
  // N(0,1)-scaled fp8 operands against their exact sums, per K.
  struct Row {
    int64_t K;
    double chained;
  };
  const Row table[] = {{128, 1.2e-4}, {512, 3.5e-4}, {2048, 8.4e-4}, {4096, 1.3e-3}, {7168, 1.9e-3}};
  std::mt19937_64 rng(7);
  std::normal_distribution<double> nd(0.0, 1.0);
  for (const Row& row : table) {
    const int64_t K = row.K;
    double err_chain = 0, err_128 = 0, norm = 0;
    std::vector<double> a(static_cast<size_t>(K)), b(a.size()), parts(static_cast<size_t>(K / 128));
    for (int t = 0; t < 300; ++t) {
      double exact = 0;
      for (int64_t k = 0; k < K; ++k) {
        a[k] = fp8_value(64 * nd(rng));
        b[k] = fp8_value(64 * nd(rng));
        exact += a[k] * b[k];
      }
      double chained = 0;
      fp8_mma_dot(a.data(), b.data(), K, 0, &chained);
      fp8_mma_dot(a.data(), b.data(), K, 128, parts.data());
      double restarted = 0;
      for (double p : parts) restarted += static_cast<float>(p);
      err_chain += (chained - exact) * (chained - exact);
      err_128 += (restarted - exact) * (restarted - exact);
      norm += exact * exact;
    }
    const double chain = std::sqrt(err_chain / norm), seg = std::sqrt(err_128 / norm);
    CAPTURE(K);
    CAPTURE(chain);
    CAPTURE(seg);
    // within 25 % of the documented figure (300 samples); a real loss, far above fp32's ~1e-7
    CHECK(chain > 0.75 * row.chained);
    CHECK(chain < 1.25 * row.chained);
    CHECK(seg < 1.6e-4);  // restarting every 128 keeps the K = 128 figure at any K
  }
}

TEST_CASE("hopper fp8 mma model: which tile configs the reference models") {
  using namespace moe::fused_moe_q8;
  const Q8Problem p = make_q8_problem(Scheme::Fp8Tensor, 64, 400, 208, 16, 4);
  Q8TileConfig wg = q8_config_of_shape(0), sync = q8_config_of_shape(0), ws = q8_config_of_shape(0),
               swapped = q8_config_of_shape(0);
  for (int i = 0; i < kNumQ8TileShapes; ++i) {
    const Q8TileConfig c = q8_config_of_shape(i);
    if (c.wgmma && !c.ws && !q8_swapped(c)) wg = c;
    if (c.ws) ws = c;
    if (q8_swapped(c)) swapped = c;
  }
  // The warp-specialized and the swapped tiles promote into fp32 after every 128 of K, split or not.
  for (const Q8TileConfig& c : {ws, swapped}) {
    if (!q8_promotes_every_group(c)) continue;
    CAPTURE(c.to_string());
    for (int stage : {1, 2}) {
      CHECK(q8_ref_options_for(p, c, stage).accumulation == moe::ref::Q8Accumulation::HopperFp8Mma);
      CHECK(q8_ref_options_for(p, c, stage).segment_k == 128);
    }
    const Q8Problem pi = make_q8_problem(Scheme::Int8Token, 64, 400, 208, 16, 4);
    CHECK(q8_ref_options_for(pi, c, 1).accumulation == moe::ref::Q8Accumulation::Exact);
  }
  if (wg.wgmma) {
    CHECK(moe::fused_moe_q8::q8_ref_options_for(p, wg, 1).accumulation == moe::ref::Q8Accumulation::HopperFp8Mma);
    CHECK(moe::fused_moe_q8::q8_ref_options_for(p, wg, 1).segment_k == 0);
    wg.split_k = 2;  // I = 208: 2 k-tiles of 128, one per split
    CHECK(moe::fused_moe_q8::q8_ref_options_for(p, wg, 2).segment_k == 128);
    const Q8Problem pi = make_q8_problem(Scheme::Int8Token, 64, 400, 208, 16, 4);
    CHECK(moe::fused_moe_q8::q8_ref_options_for(pi, wg, 1).accumulation == moe::ref::Q8Accumulation::Exact);
  }
  CHECK(moe::fused_moe_q8::q8_ref_options_for(p, sync, 1).accumulation == moe::ref::Q8Accumulation::Exact);
  CHECK_THROWS(moe::fused_moe_q8::q8_ref_options_for(p, sync, 3));
}

TEST_CASE("hopper fp8 mma model: the reference layer with the model stays close to the exact one") {
  using namespace moe::fused_moe_q8;
  for (Scheme s : kAllSchemes) {
    CAPTURE(std::string(scheme_name(s)));
    const Q8Problem p = make_q8_problem(s, 6, 400, 208, 4, 2);
    const int64_t E = p.base.experts, H = p.base.model_dim, I = p.base.inter_dim;
    std::mt19937_64 rng(11);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> hidden(static_cast<size_t>(p.base.tokens * H)), w1(static_cast<size_t>(E * 2 * I * H)),
        w2(static_cast<size_t>(E * H * I));
    for (float& v : hidden) v = moe::round_to(moe::DType::BF16, nd(rng));
    for (float& v : w1) v = nd(rng) / 20.0f;
    for (float& v : w2) v = nd(rng) / 14.0f;
    std::vector<float> tw{0.6f, 0.4f, 0.7f, 0.3f, 0.5f, 0.5f, 0.9f, 0.1f, 0.2f, 0.8f, 0.55f, 0.45f};
    std::vector<int32_t> ids{0, 1, 2, 3, 1, 0, 3, 2, 0, 2, 1, 3};
    const auto q1 = moe::ref::quantize(p.w1_quant(), w1), q2 = moe::ref::quantize(p.w2_quant(), w2);
    moe::ref::Q8RefInputs in;
    in.w1 = moe::ref::q8_weights_from_host(p.w1_quant(), q1.q, q1.scales);
    in.w2 = moe::ref::q8_weights_from_host(p.w2_quant(), q2.q, q2.scales);
    in.topk_weights = tw;
    in.topk_ids = ids;
    const auto a1 = moe::ref::quantize(p.a1_quant(), hidden);
    moe::ref::Q8RefOptions model;
    model.accumulation = moe::ref::Q8Accumulation::HopperFp8Mma;
    const auto s1_exact = moe::ref::q8_ref_stage1(p, a1.q, a1.scales, in);
    const auto s1_model = moe::ref::q8_ref_stage1(p, a1.q, a1.scales, in, model);
    const auto a2 = moe::ref::quantize(p.a2_quant(), s1_exact.intermediate);
    const auto s2_exact = moe::ref::q8_ref_stage2(p, a2.q, a2.scales, in);
    const auto s2_model = moe::ref::q8_ref_stage2(p, a2.q, a2.scales, in, model);
    model.segment_k = 128;  // a stage-2 split-K range
    const auto s2_split = moe::ref::q8_ref_stage2(p, a2.q, a2.scales, in, model);
    const double e1 = rel_l2(s1_model.intermediate, s1_exact.intermediate), e2 = rel_l2(s2_model.out, s2_exact.out),
                 e3 = rel_l2(s2_split.out, s2_exact.out);
    CAPTURE(e1);
    CAPTURE(e2);
    CAPTURE(e3);
    if (is_int8(s)) {  // int8 accumulates exactly: the option changes nothing
      CHECK(e1 == 0.0);
      CHECK(e2 == 0.0);
    } else {
      CHECK(e1 < 5e-3);  // bf16 rounding of the intermediate (2^-9) dominates
      CHECK(e2 > 0.0);
      CHECK(e2 < 1e-3);
      CHECK(e3 < 1e-3);
    }
  }
}
