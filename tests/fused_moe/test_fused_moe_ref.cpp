// CPU tests of the fused MoE reference and its tolerance, and of the host-side
// config chooser.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "kernels/fused_moe/fused_moe.hpp"
#include "kernels/fused_moe/fused_moe_config.hpp"
#include "kernels/moe_align/moe_align.hpp"
#include "moe/check.hpp"
#include "moe/error.hpp"
#include "moe/inputs.hpp"
#include "reference/fused_moe/fused_moe_ref.hpp"

using moe::DType;
using moe::fused_moe::Activation;
using moe::fused_moe::Problem;
using moe::fused_moe::RouterWeight;

namespace {

struct HostProblem {
  Problem p;
  std::vector<float> hidden, w1, w2;
  moe::Routing routing;
};

HostProblem make_host(int64_t M, int64_t H, int64_t I, int32_t E, int32_t k, uint64_t seed,
                      moe::RoutingDist dist = moe::RoutingDist::Softmax, DType dt = DType::BF16) {
  moe::InputSpec spec;
  spec.shape = {M, H, I, E, k};
  spec.dtype = dt;
  spec.values = moe::ValueDist::FanIn;
  spec.routing = dist;
  spec.seed = seed;
  HostProblem hp;
  hp.p.tokens = M;
  hp.p.model_dim = H;
  hp.p.inter_dim = I;
  hp.p.experts = E;
  hp.p.top_k = k;
  hp.p.dtype = dt;
  hp.hidden.resize(static_cast<size_t>(spec.hidden_elems()));
  hp.w1.resize(static_cast<size_t>(spec.w1_elems()));
  hp.w2.resize(static_cast<size_t>(spec.w2_elems()));
  moe::fill_host(spec, moe::rng::Stream::Hidden, 0, hp.hidden);
  moe::fill_host(spec, moe::rng::Stream::W1, 0, hp.w1);
  moe::fill_host(spec, moe::rng::Stream::W2, 0, hp.w2);
  hp.routing = moe::make_routing(spec);
  return hp;
}

moe::ref::FusedMoeRefInputs inputs(const HostProblem& hp) {
  return moe::ref::ref_inputs_from_host(hp.hidden, hp.w1, hp.w2, hp.routing.topk_weights, hp.routing.topk_ids);
}

// Independent triple-loop implementation in double (no Eigen, no chunking).
std::vector<double> naive(const HostProblem& hp, DType inter_dtype) {
  const Problem& p = hp.p;
  const int64_t H = p.model_dim, I = p.inter_dim, k = p.top_k;
  std::vector<double> out(static_cast<size_t>(p.tokens * H), 0.0);
  std::vector<double> h(static_cast<size_t>(I));
  for (int64_t t = 0; t < p.tokens; ++t)
    for (int64_t j = 0; j < k; ++j) {
      const int32_t e = hp.routing.topk_ids[static_cast<size_t>(t * k + j)];
      if (e < 0 || e >= p.experts) continue;
      const double w = hp.routing.topk_weights[static_cast<size_t>(t * k + j)];
      const double s_in = p.router_weight == RouterWeight::OnInput ? w : 1.0;
      const double s_out = p.router_weight == RouterWeight::OnInput ? 1.0 : w;
      for (int64_t i = 0; i < I; ++i) {
        double g = 0, u = 0;
        for (int64_t c = 0; c < H; ++c) {
          const double x = hp.hidden[static_cast<size_t>(t * H + c)];
          g += x * hp.w1[static_cast<size_t>((e * 2 * I + i) * H + c)];
          u += x * hp.w1[static_cast<size_t>((e * 2 * I + I + i) * H + c)];
        }
        const double v = moe::ref::activation_ref(p.act, s_in * g) * (s_in * u);
        h[static_cast<size_t>(i)] = moe::round_to(inter_dtype, static_cast<float>(v));
      }
      for (int64_t n = 0; n < H; ++n) {
        double y = 0;
        for (int64_t i = 0; i < I; ++i) y += h[static_cast<size_t>(i)] * hp.w2[static_cast<size_t>((e * H + n) * I + i)];
        out[static_cast<size_t>(t * H + n)] += s_out * y;
      }
    }
  return out;
}

std::vector<float> to_float(const std::vector<double>& v) { return {v.begin(), v.end()}; }

// The reference in double (the truth) and in float accumulation (a model of a
// correct kernel), both with the intermediate rounded to dt.
struct DoubleAndFloat {
  moe::ref::FusedMoeRefResult r64, r32;
};
DoubleAndFloat double_and_float(const HostProblem& hp, DType dt) {
  moe::ref::FusedMoeRefOptions o64;
  o64.inter_dtype = dt;
  moe::ref::FusedMoeRefOptions o32 = o64;
  o32.fp64 = false;
  return {moe::ref::fused_moe_ref(hp.p, inputs(hp), o64), moe::ref::fused_moe_ref(hp.p, inputs(hp), o32)};
}

}  // namespace

TEST_CASE("fused_moe_ref: hand-computed 1 token, 2 experts, k=2") {
  // x = [1, 2]; expert 0: gate [1, 0], up [0, 1] -> g=1, u=2; w2 = [[1], [-2]]
  //             expert 1: gate [0, 1], up [1, 0] -> g=2, u=1; w2 = [[1], [1]]
  const std::vector<float> hidden{1, 2};
  const std::vector<float> w1{1, 0, 0, 1, /*e1*/ 0, 1, 1, 0};
  const std::vector<float> w2{1, -2, /*e1*/ 1, 1};
  const std::vector<float> tw{0.5f, 0.25f};
  const std::vector<int32_t> ids{0, 1};
  Problem p;
  p.tokens = 1;
  p.model_dim = 2;
  p.inter_dim = 1;
  p.experts = 2;
  p.top_k = 2;
  const auto in = moe::ref::ref_inputs_from_host(hidden, w1, w2, tw, ids);

  SUBCASE("silu, fp32 intermediate") {
    moe::ref::FusedMoeRefOptions opt;
    opt.inter_dtype = DType::F32;
    const auto r = moe::ref::fused_moe_ref(p, in, opt);
    const double h0 = static_cast<float>(2.0 / (1.0 + std::exp(-1.0)));  // silu(1) * 2
    const double h1 = static_cast<float>(2.0 / (1.0 + std::exp(-2.0)));  // silu(2) * 1
    REQUIRE(r.out.size() == 2);
    CHECK(r.out[0] == doctest::Approx(0.5 * h0 + 0.25 * h1).epsilon(1e-7));
    CHECK(r.out[1] == doctest::Approx(0.5 * -2 * h0 + 0.25 * h1).epsilon(1e-7));
    CHECK(r.intermediate[0] == static_cast<float>(h0));
    CHECK(r.intermediate[1] == static_cast<float>(h1));
    CHECK(r.experts_touched == 2);
  }
  SUBCASE("silu, bf16 intermediate") {
    const auto r = moe::ref::fused_moe_ref(p, in, {});
    // silu(1)*2 = 1.46211... -> bf16 1.4609375; silu(2) = 1.76159... -> bf16 1.7578125
    CHECK(r.intermediate[0] == 1.4609375f);
    CHECK(r.intermediate[1] == 1.7578125f);
    CHECK(r.out[0] == doctest::Approx(0.5 * 1.4609375 + 0.25 * 1.7578125).epsilon(1e-7));
    CHECK(r.out[1] == doctest::Approx(-1.4609375 + 0.25 * 1.7578125).epsilon(1e-7));
  }
  SUBCASE("gelu_tanh, weight on input") {
    p.act = Activation::GeluTanh;
    p.router_weight = RouterWeight::OnInput;
    moe::ref::FusedMoeRefOptions opt;
    opt.inter_dtype = DType::F32;
    const auto r = moe::ref::fused_moe_ref(p, in, opt);
    auto gelu = [](double g) { return 0.5 * g * (1 + std::tanh(std::sqrt(2 / M_PI) * (g + 0.044715 * g * g * g))); };
    const double h0 = static_cast<float>(gelu(0.5 * 1) * (0.5 * 2));
    const double h1 = static_cast<float>(gelu(0.25 * 2) * (0.25 * 1));
    CHECK(r.out[0] == doctest::Approx(h0 + h1).epsilon(1e-7));
    CHECK(r.out[1] == doctest::Approx(-2 * h0 + h1).epsilon(1e-7));
  }
  SUBCASE("an id of -1 contributes nothing") {
    const std::vector<int32_t> ids2{-1, 1};
    const auto in2 = moe::ref::ref_inputs_from_host(hidden, w1, w2, tw, ids2);
    moe::ref::FusedMoeRefOptions opt;
    opt.inter_dtype = DType::F32;
    const auto r = moe::ref::fused_moe_ref(p, in2, opt);
    const double h1 = static_cast<float>(2.0 / (1.0 + std::exp(-2.0)));
    CHECK(r.out[0] == doctest::Approx(0.25 * h1).epsilon(1e-7));
    CHECK(r.out[1] == doctest::Approx(0.25 * h1).epsilon(1e-7));
    CHECK(r.intermediate[0] == 0.0f);
    CHECK(r.experts_touched == 1);
  }
}

TEST_CASE("fused_moe_ref: matches an independent triple loop (odd sizes, every option)") {
  for (auto act : {Activation::SiLU, Activation::GeluTanh})
    for (auto rw : {RouterWeight::OnOutput, RouterWeight::OnInput})
      for (auto dist : {moe::RoutingDist::Softmax, moe::RoutingDist::Zipf, moe::RoutingDist::OneExpert}) {
        CAPTURE(static_cast<int>(act));
        CAPTURE(static_cast<int>(rw));
        CAPTURE(static_cast<int>(dist));
        HostProblem hp = make_host(7, 13, 11, 5, 2, 42 + static_cast<uint64_t>(dist), dist);
        hp.p.act = act;
        hp.p.router_weight = rw;
        moe::ref::FusedMoeRefOptions opt;
        opt.inter_dtype = DType::F32;
        opt.chunk_rows = 3;  // several chunks per expert
        opt.threads = 3;
        const auto r = moe::ref::fused_moe_ref(hp.p, inputs(hp), opt);
        const auto want = to_float(naive(hp, DType::F32));
        moe::Tolerance tol;
        tol.rtol = 1e-6;
        tol.atol = 1e-6 * r.out_rms;
        tol.max_rel_l2 = 1e-6;
        const auto c = moe::check_close(r.out, want, tol);
        CHECK_MESSAGE(c.passed, c.message);
        // With the bf16 intermediate both round h the same way (up to rare flips).
        opt.inter_dtype = DType::BF16;
        const auto rb = moe::ref::fused_moe_ref(hp.p, inputs(hp), opt);
        const auto wantb = to_float(naive(hp, DType::BF16));
        const auto cb = moe::check_close(rb.out, wantb, moe::ref::fused_moe_out_tolerance(hp.p, DType::BF16, DType::F32, rb.out_rms));
        CHECK_MESSAGE(cb.passed, cb.message);
      }
}

TEST_CASE("fused_moe_ref: float accumulation passes the derived tolerance against double; errors fail it") {
  for (DType dt : {DType::BF16, DType::F16}) {
    CAPTURE(static_cast<int>(dt));
    HostProblem hp = make_host(48, 384, 160, 8, 2, 7, moe::RoutingDist::Softmax, dt);
    const auto [r64, r32] = double_and_float(hp, dt);
    // The kernel also rounds its output: round the float-accumulated result to dt.
    std::vector<float> out32 = r32.out;
    for (float& v : out32) v = moe::round_to(dt, v);
    const auto tol = moe::ref::fused_moe_out_tolerance(hp.p, dt, dt, r64.out_rms);
    const auto c = moe::check_close(out32, r64.out, tol);
    CHECK_MESSAGE(c.passed, c.message);
    CHECK(c.rel_l2 < tol.max_rel_l2 / 2);  // the bound is not loose by orders of magnitude...
    CHECK(c.rel_l2 > 0);                   // ...and the comparison is not vacuous
    const auto ci = moe::check_close(r32.intermediate, r64.intermediate,
                                     moe::ref::fused_moe_inter_tolerance(hp.p, dt, r64.inter_rms));
    CHECK_MESSAGE(ci.passed, ci.message);

    // A dropped slot (one token's second expert) must fail.
    std::vector<float> dropped = out32;
    {
      auto ids = hp.routing.topk_ids;
      ids[1] = -1;
      const auto in2 = moe::ref::ref_inputs_from_host(hp.hidden, hp.w1, hp.w2, hp.routing.topk_weights, ids);
      moe::ref::FusedMoeRefOptions o32;
      o32.inter_dtype = dt;
      o32.fp64 = false;
      const auto rd = moe::ref::fused_moe_ref(hp.p, in2, o32);
      for (int64_t c0 = 0; c0 < hp.p.model_dim; ++c0) dropped[static_cast<size_t>(c0)] = rd.out[static_cast<size_t>(c0)];
    }
    CHECK_FALSE(moe::check_close(dropped, r64.out, tol).passed);
    // A 1% scale error everywhere must fail too.
    std::vector<float> scaled = out32;
    for (float& v : scaled) v *= 1.01f;
    CHECK_FALSE(moe::check_close(scaled, r64.out, tol).passed);
  }
}

TEST_CASE("fused_moe_ref: token subsets, thread counts and streamed sources agree") {
  HostProblem hp = make_host(37, 64, 48, 6, 3, 3);
  moe::ref::FusedMoeRefOptions opt;
  opt.threads = 1;
  const auto full = moe::ref::fused_moe_ref(hp.p, inputs(hp), opt);
  opt.threads = 4;
  opt.chunk_rows = 5;
  const auto full4 = moe::ref::fused_moe_ref(hp.p, inputs(hp), opt);
  // Each work item is computed identically whatever the thread count.
  opt.chunk_rows = 256;
  const auto full4b = moe::ref::fused_moe_ref(hp.p, inputs(hp), opt);
  CHECK(full4b.out == full.out);

  const std::vector<int64_t> pick{36, 0, 17, 17, 5};
  const auto sub = moe::ref::fused_moe_ref(hp.p, inputs(hp), opt, pick);
  REQUIRE(sub.tokens == std::vector<int64_t>{0, 5, 17, 36});
  const auto tol = moe::ref::fused_moe_out_tolerance(hp.p, DType::BF16, DType::F32, full.out_rms);
  for (size_t i = 0; i < sub.tokens.size(); ++i) {
    const int64_t t = sub.tokens[i];
    const std::span<const float> got(sub.out.data() + i * 64, 64);
    const std::span<const float> want(full.out.data() + t * 64, 64);
    CHECK(moe::check_close(got, want, tol).passed);
    const std::span<const float> want4(full4.out.data() + t * 64, 64);
    CHECK(moe::check_close(got, want4, tol).passed);
  }

  // Sources regenerated from the spec (what the GPU tests use for big shapes).
  moe::InputSpec spec;
  spec.shape = {37, 64, 48, 6, 3};
  spec.values = moe::ValueDist::FanIn;
  spec.seed = 3;
  const auto routing = moe::make_routing(spec);
  const auto streamed = moe::ref::fused_moe_ref(hp.p, moe::ref::ref_inputs_from_spec(spec, routing), opt);
  CHECK(streamed.out == full4b.out);
}

TEST_CASE("fused_moe_ref: input validation") {
  HostProblem hp = make_host(4, 8, 8, 2, 1, 1);
  auto in = inputs(hp);
  std::vector<int32_t> short_ids(3, 0);
  in.topk_ids = short_ids;
  CHECK_THROWS_AS(moe::ref::fused_moe_ref(hp.p, in), moe::InputError);
  const std::vector<int64_t> bad{4};
  CHECK_THROWS_AS(moe::ref::fused_moe_ref(hp.p, inputs(hp), {}, bad), moe::InputError);
  Problem p = hp.p;
  p.top_k = 3;
  CHECK_THROWS_AS(moe::ref::fused_moe_ref(p, inputs(hp)), moe::InputError);
}

TEST_CASE("fused_moe_ref: tolerance values") {
  Problem p;
  p.tokens = 1;
  p.model_dim = 4096;
  p.inter_dim = 14336;
  p.experts = 8;
  p.top_k = 2;
  const auto t = moe::ref::fused_moe_out_tolerance(p, DType::BF16, DType::BF16, 2.0);
  CHECK(t.rtol == doctest::Approx(1.0 / 256));
  const double acc = (std::sqrt(18432.0) + 18432.0 / 8) / 16777216.0;
  CHECK(t.atol == doctest::Approx(2.0 * (8.0 / 256 + 4.0 * acc)));
  // rel-L2: twice the expected noise, below the worst case 3 u + 4 acc.
  const double acc1 = (std::sqrt(4096.0) + 4096.0 / 8) / 16777216.0;
  const double noise = std::sqrt(1.0 / (3 * 256.0 * 256) + 2.0 / 256 * acc1 + acc * acc);
  CHECK(moe::ref::fused_moe_out_noise(p, DType::BF16, DType::BF16) == doctest::Approx(noise));
  CHECK(t.max_rel_l2 == doctest::Approx(2.0 * noise));
  CHECK(t.max_rel_l2 < 3.0 / 256 + 4.0 * acc);
  CHECK(t.max_rel_l2 < 0.005);  // an error of 0.5 % everywhere fails
  const auto th = moe::ref::fused_moe_out_tolerance(p, DType::F16, DType::F16, 1.0);
  CHECK(th.atol < t.atol / 7);
  // Without intermediate rounding twice the noise exceeds the worst case u + 4 acc.
  const auto tf = moe::ref::fused_moe_out_tolerance(p, DType::F32, DType::BF16, 1.0);
  CHECK(tf.max_rel_l2 == doctest::Approx(1.0 / 256 + 4.0 * acc));
}

// A correct kernel (modelled by the float-accumulated reference with its output
// rounded) passes over 20 fresh seeds; an error of 0.5 % in stage 2 or after it
// fails every one of them.
TEST_CASE("fused_moe_ref: the output check tells a 0.5 % stage-2 error from rounding noise") {
  for (DType dt : {DType::BF16, DType::F16}) {
    for (uint64_t seed = 100; seed < 120; ++seed) {
      CAPTURE(static_cast<int>(dt));
      CAPTURE(seed);
      HostProblem hp = make_host(32, 512, 192, 8, 2, seed, moe::RoutingDist::Softmax, dt);
      const auto [r64, r32] = double_and_float(hp, dt);
      const auto tol = moe::ref::fused_moe_out_tolerance(hp.p, dt, dt, r64.out_rms);
      std::vector<float> correct = r32.out, scaled = r32.out;
      for (float& v : correct) v = moe::round_to(dt, v);
      for (float& v : scaled) v = moe::round_to(dt, v * 1.005f);
      const auto ok = moe::check_close(correct, r64.out, tol);
      CHECK_MESSAGE(ok.passed, ok.message);
      CHECK(ok.l2_margin < 0.6);
      const auto bad = moe::check_close(scaled, r64.out, tol);
      CHECK_FALSE(bad.passed);
      CHECK(bad.l2_margin > 1.0);
    }
  }
}

// ------------------------------------------------------------------ config chooser

TEST_CASE("fused_moe config: validity, chooser and sizes") {
  using namespace moe::fused_moe;
  const TileConfig c{kTileShapes[0].tile()};
  CHECK(c.is_valid(1));
  CHECK(c.is_valid(2));
  TileConfig bad = c;
  bad.block_n = 96;
  CHECK_FALSE(bad.is_valid(1));
  CHECK(bad.why_invalid(1).find("not a compiled shape") != std::string::npos);
  TileConfig sk = c;
  sk.split_k = 4;
  CHECK_FALSE(sk.is_valid(1));
  CHECK(sk.is_valid(2));
  sk.split_k = 0;
  CHECK_FALSE(sk.is_valid(2));
  CHECK_FALSE(c.is_valid(3));

  const DeviceLimits h100{132, 232448};
  struct M {
    int64_t H, I;
    int32_t E, k;
  };
  for (const M& m : {M{4096, 14336, 8, 2}, M{7168, 2048, 256, 8}, M{4096, 1536, 128, 8}})
    for (int64_t tokens : {1, 16, 64, 256, 1024, 4096, 40000}) {
      Problem p;
      p.tokens = tokens;
      p.model_dim = m.H;
      p.inter_dim = m.I;
      p.experts = m.E;
      p.top_k = m.k;
      const LayerConfig cfg = choose_config(p, h100);
      CAPTURE(cfg.to_string());
      CHECK(cfg.is_valid());
      CHECK(cfg.stage1.split_k == 1);
      // Larger batches never get smaller blocks.
      if (tokens >= 4096 && m.E == 8) CHECK(cfg.block_size() >= 64);
      if (tokens == 1) CHECK(cfg.block_size() == 16);
      const auto ws = workspace_bytes(p, cfg);
      CHECK(ws.intermediate == tokens * m.k * m.I * 2);
      CHECK(ws.partial == int64_t{cfg.stage2.split_k} * tokens * m.k * m.H * 4);
      // Same capacity bound as the align kernel's.
      moe::align::AlignShape as{tokens, m.k, m.E, cfg.block_size()};
      CHECK(aligned_capacity(p, cfg.block_size()) == moe::align::align_capacity(as));
      CHECK(max_aligned_blocks(p.slots(), p.experts, cfg.block_size()) == moe::align::align_max_blocks(as));
    }
  // With the wgmma kernels compiled, large batches take them; decode never does.
  const DeviceLimits h100a{132, 232448, true};
  for (int64_t tokens : {1, 16, 1024, 4096}) {
    Problem p;
    p.tokens = tokens;
    p.model_dim = 4096;
    p.inter_dim = 14336;
    p.experts = 8;
    p.top_k = 2;
    const LayerConfig cfg = choose_config(p, h100a);
    CAPTURE(cfg.to_string());
    CHECK(cfg.is_valid());
#if defined(MOE_BACKEND_HIP)
    CHECK_FALSE(cfg.stage1.wgmma);  // the HIP tile table has no wgmma shapes
#else
    CHECK(cfg.stage1.wgmma == (tokens >= 1024));
    CHECK(cfg.stage1.ws == (tokens >= 1024));  // the warp-specialized tile beyond 24 rows per expert
#endif
    CHECK_FALSE(choose_config(p, h100).stage1.wgmma);
    // Sizes the bulk tensor copies cannot take (rows of 16 bytes): a wgmma tile without ws.
    Problem odd = p;
    odd.model_dim = 4100;
    const LayerConfig c2 = choose_config(odd, h100a);
    CHECK_FALSE(c2.stage1.ws);
#if !defined(MOE_BACKEND_HIP)
    CHECK(c2.stage1.wgmma == (tokens >= 1024));
#endif
  }
  Problem p;
  p.tokens = 4;
  p.model_dim = 8;
  p.inter_dim = 2;
  p.experts = 2;
  p.top_k = 3;
  CHECK_THROWS_AS(choose_config(p, h100), moe::InputError);
  p.top_k = 1;
  p.dtype = DType::F32;
  CHECK_THROWS_AS(choose_config(p, h100), moe::InputError);
  CHECK(parse_activation("silu") == Activation::SiLU);
  CHECK(parse_router_weight("input") == RouterWeight::OnInput);
  CHECK_THROWS_AS(parse_activation("relu"), moe::InputError);
}
