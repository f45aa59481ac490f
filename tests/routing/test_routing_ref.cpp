// CPU tests of the routing references, the shared bit-exact math, input
// validation and the sigmoid top-1 launch plan. Golden vectors from PyTorch
// (data/routing/make_golden.py) are checked in test_routing_golden.cpp.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <vector>

#include <fmt/format.h>

#include "kernels/routing/routing.hpp"
#include "moe/contract/routing_math.hpp"
#include "moe/error.hpp"
#include "moe/registry.hpp"
#include "moe/rng.hpp"
#include "reference/routing/routing_ref.hpp"

using namespace moe;
using moe::routing::order_key;

namespace moe {
KernelFamily make_routing_family();  // harness/families/routing/routing_verify.cpp
}

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
const float kNaN = std::numeric_limits<float>::quiet_NaN();

double ulp_err(float got, double want) {
  const double u = std::ldexp(1.0, std::ilogb(static_cast<float>(want)) - 23);
  return std::abs(got - want) / u;
}

}  // namespace

TEST_CASE("order_key: total order, -0 == +0, NaN lowest, inverse") {
  const std::vector<float> sorted = {-kInf, -3.4e38f, -1e30f, -1.0f, -1e-45f, 0.0f, 1e-45f, 1.0f, 1e30f, 3.4e38f, kInf};
  for (size_t i = 0; i + 1 < sorted.size(); ++i) CHECK(order_key(sorted[i]) < order_key(sorted[i + 1]));
  CHECK(order_key(-0.0f) == order_key(0.0f));
  CHECK(order_key(kNaN) == routing::kKeyNaN);
  CHECK(order_key(-kNaN) == routing::kKeyNaN);
  CHECK(order_key(-kInf) > routing::kKeyNaN);
  for (float v : sorted) CHECK(routing::key_value(order_key(v)) == v);
  CHECK(std::isnan(routing::key_value(routing::kKeyNaN)));
  uint64_t seed = 7;
  for (int i = 0; i < 100000; ++i) {
    const float a = rng::normal(seed, rng::Stream::Test, 2 * i) * 100, b = rng::normal(seed, rng::Stream::Test, 2 * i + 1);
    CHECK((a < b) == (order_key(a) < order_key(b)));
  }
}

TEST_CASE("det_exp / det_sigmoid: accuracy and special values") {
  CHECK(routing::det_exp(0.0f) == 1.0f);
  CHECK(routing::det_exp(-kInf) == 0.0f);
  CHECK(routing::det_exp(kInf) == kInf);
  CHECK(std::isnan(routing::det_exp(kNaN)));
  CHECK(routing::det_exp(89.0f) == kInf);
  CHECK(routing::det_exp(-200.0f) == 0.0f);
  double worst = 0;
  for (int i = 0; i <= 200000; ++i) {
    const float x = -87.0f + 175.0f * static_cast<float>(i) / 200000.0f;  // normal results
    const double want = std::exp(static_cast<double>(x));
    if (want > 3.0e38) continue;
    worst = std::max(worst, ulp_err(routing::det_exp(x), want));
  }
  MESSAGE("det_exp worst error over [-87, 88]: " << worst << " ulp");
  CHECK(worst <= 2.0);
  // subnormal results: absolute error below one subnormal ulp (2^-149) x 2
  for (float x = -103.0f; x < -87.5f; x += 0.01f) {
    const double want = std::exp(static_cast<double>(x));
    CHECK(std::abs(routing::det_exp(x) - want) <= 2 * 1.401298464324817e-45);
  }
  CHECK(routing::det_sigmoid(0.0f) == 0.5f);
  CHECK(routing::det_sigmoid(kInf) == 1.0f);
  CHECK(routing::det_sigmoid(-kInf) == 0.0f);
  CHECK(std::isnan(routing::det_sigmoid(kNaN)));
  double worst_s = 0;
  for (int i = 0; i <= 100000; ++i) {
    const float x = -80.0f + 160.0f * static_cast<float>(i) / 100000.0f;
    const double want = 1.0 / (1.0 + std::exp(-static_cast<double>(x)));
    worst_s = std::max(worst_s, ulp_err(routing::det_sigmoid(x), want));
  }
  MESSAGE("det_sigmoid worst error over [-80, 80]: " << worst_s << " ulp");
  CHECK(worst_s <= 4.0);
}

TEST_CASE("softmax_topk reference: the worked example of routing.hpp") {
  routing::SoftmaxTopkParams p{.tokens = 2, .experts = 4, .top_k = 2};
  const std::vector<float> x = {1.0f, 3.0f, kNaN, 3.0f, -kInf, kNaN, kNaN, kNaN};
  const auto r = ref::softmax_topk(x, p);
  CHECK(r.ids == std::vector<int32_t>{1, 3, 0, 1});
  const double e = std::exp(3.0) / (std::exp(1.0) + 2 * std::exp(3.0));
  CHECK(r.weights[0] == doctest::Approx(e).epsilon(1e-7));
  CHECK(r.weights[1] == doctest::Approx(e).epsilon(1e-7));
  CHECK(r.weights[2] == 1.0f);
  CHECK(std::isnan(r.weights[3]));
}

TEST_CASE("softmax_topk reference: ties, infinities, renormalize, E = 1") {
  SUBCASE("ties go to the lower index, weights non-increasing") {
    routing::SoftmaxTopkParams p{.tokens = 1, .experts = 6, .top_k = 4};
    const std::vector<float> x = {0.5f, 2.0f, 0.5f, 2.0f, 2.0f, -1.0f};
    const auto r = ref::softmax_topk(x, p);
    CHECK(r.ids == std::vector<int32_t>{1, 3, 4, 0});
    CHECK(r.weights[0] == r.weights[1]);
    CHECK(r.weights[2] >= r.weights[3]);
  }
  SUBCASE("+inf entries share the mass; -1e30 is a number") {
    routing::SoftmaxTopkParams p{.tokens = 2, .experts = 4, .top_k = 3};
    const std::vector<float> x = {kInf, 1.0f, kInf, kNaN, -1e30f, -1e30f, -kInf, kNaN};
    const auto r = ref::softmax_topk(x, p);
    CHECK(r.ids == std::vector<int32_t>{0, 2, 1, 0, 1, 2});
    CHECK(r.weights[0] == 0.5f);
    CHECK(r.weights[1] == 0.5f);
    CHECK(r.weights[2] == 0.0f);
    CHECK(r.weights[3] == 0.5f);  // -1e30 twice: finite max, equal mass
    CHECK(r.weights[4] == 0.5f);
    CHECK(r.weights[5] == 0.0f);
  }
  SUBCASE("all -inf: uniform") {
    routing::SoftmaxTopkParams p{.tokens = 1, .experts = 4, .top_k = 4};
    const std::vector<float> x(4, -kInf);
    const auto r = ref::softmax_topk(x, p);
    CHECK(r.ids == std::vector<int32_t>{0, 1, 2, 3});
    for (float w : r.weights) CHECK(w == 0.25f);
  }
  SUBCASE("renormalize, NaN selected last keeps NaN") {
    routing::SoftmaxTopkParams p{.tokens = 1, .experts = 4, .top_k = 3, .renormalize = true};
    const std::vector<float> x = {1.0f, kNaN, kNaN, 2.0f};
    const auto r = ref::softmax_topk(x, p);
    CHECK(r.ids == std::vector<int32_t>{3, 0, 1});
    CHECK(r.weights[0] + r.weights[1] == doctest::Approx(1.0).epsilon(1e-7));
    CHECK(std::isnan(r.weights[2]));
  }
  SUBCASE("E = 1") {
    routing::SoftmaxTopkParams p{.tokens = 3, .experts = 1, .top_k = 1};
    const std::vector<float> x = {-5.0f, kNaN, kInf};
    const auto r = ref::softmax_topk(x, p);
    CHECK(r.ids == std::vector<int32_t>{0, 0, 0});
    CHECK(r.weights[0] == 1.0f);
    CHECK(std::isnan(r.weights[1]));
    CHECK(r.weights[2] == 1.0f);
  }
}

TEST_CASE("grouped_topk reference: the worked example, bias, NaN rows, group size 1") {
  // logits whose sigmoid is the example's scores
  auto logit = [](double s) { return static_cast<float>(std::log(s / (1 - s))); };
  const std::vector<double> s = {.9, .1, .5, .6, .95, .2, .3, .4};
  std::vector<float> x;
  for (double v : s) x.push_back(logit(v));
  routing::GroupedTopkParams p{.tokens = 1, .experts = 8, .n_group = 4, .topk_group = 2, .top_k = 2,
                               .scoring = routing::Scoring::Sigmoid, .renormalize = false};
  auto r = ref::grouped_topk(x, {}, p);
  CHECK(r.ids == std::vector<int32_t>{4, 0});
  CHECK(r.weights[0] == doctest::Approx(0.95).epsilon(1e-6));
  CHECK(r.weights[1] == doctest::Approx(0.9).epsilon(1e-6));
  p.renormalize = true;
  p.routed_scaling_factor = 2.5f;
  r = ref::grouped_topk(x, {}, p);
  CHECK(r.weights[0] == doctest::Approx(2.5 * .95 / 1.85).epsilon(1e-6));

  SUBCASE("bias changes the groups (top-2 sum) and the experts, weights stay unbiased") {
    // group sums of biased scores: g0 = .9+.1+0.5 = 1.5 (bias on expert 1), g1 = 1.1, g2 = 1.15, g3 = .7 + .6
    const std::vector<float> bias = {0, 0.5f, 0, 0, 0, 0, 0, 0.6f};
    p.renormalize = false;
    p.routed_scaling_factor = 1.0f;
    const auto rb = ref::grouped_topk(x, bias, p);
    // g0: .9 + .6 = 1.5; g1: .6 + .5 = 1.1; g2: .95 + .2 = 1.15; g3: 1.0 + .3 = 1.3 -> keep g0, g3
    // biased: e0 .9, e1 .6, e6 .3, e7 1.0 -> ids 7, 0
    CHECK(rb.ids == std::vector<int32_t>{7, 0});
    CHECK(rb.weights[0] == doctest::Approx(0.4).epsilon(1e-6));
    CHECK(rb.weights[1] == doctest::Approx(0.9).epsilon(1e-6));
  }
  SUBCASE("all-NaN row selects 0..k-1 with NaN weights") {
    routing::GroupedTopkParams q{.tokens = 1, .experts = 8, .n_group = 4, .topk_group = 2, .top_k = 3};
    const std::vector<float> nan_row(8, kNaN);
    const auto rn = ref::grouped_topk(nan_row, std::vector<float>(8, 0.1f), q);
    CHECK(rn.ids == std::vector<int32_t>{0, 1, 2});
    for (float w : rn.weights) CHECK(std::isnan(w));
  }
  SUBCASE("one expert per group (E == n_group)") {
    routing::GroupedTopkParams q{.tokens = 1, .experts = 4, .n_group = 4, .topk_group = 2, .top_k = 2,
                                 .renormalize = false};
    const std::vector<float> row = {0.0f, 2.0f, -1.0f, 3.0f};
    const auto rq = ref::grouped_topk(row, std::vector<float>{0, 0, 5, 0}, q);
    CHECK(rq.ids == std::vector<int32_t>{2, 3});  // biased: .5 2.88 5.27 .95
    CHECK(rq.weights[0] == doctest::Approx(1.0 / (1.0 + std::exp(1.0))).epsilon(1e-6));
  }
}

TEST_CASE("sigmoid_top1 reference: argmax, ties, NaN, shared expert") {
  routing::SigmoidTop1Params p{.tokens = 3, .hidden = 2, .experts = 3, .dtype = DType::BF16, .shared_expert = true};
  // w columns: e0 = (1, 0), e1 = (0, 1), e2 = (1, 0) (same as e0)
  const std::vector<float> w = {1, 0, 1, 0, 1, 0};
  const std::vector<float> x = {2, 1, 1, 3, kNaN, 1};
  const auto r = ref::sigmoid_top1(x, w, p);
  // tie e0/e2 -> 0; NaN*0 is NaN, so every logit of row 2 is NaN -> expert 0, weight NaN
  CHECK(r.out.ids == std::vector<int32_t>{0, 3, 1, 3, 0, 3});
  CHECK(r.out.weights[0] == doctest::Approx(1 / (1 + std::exp(-2.0))));
  CHECK(r.out.weights[1] == 1.0f);
  CHECK(r.out.weights[2] == doctest::Approx(1 / (1 + std::exp(-3.0))));
  CHECK(std::isnan(r.out.weights[4]));
  CHECK(r.abs_dot[0] == 2.0);
}

TEST_CASE("check_*: the comparisons catch wrong ids, weights and NaN") {
  routing::SoftmaxTopkParams p{.tokens = 2, .experts = 4, .top_k = 2};
  const std::vector<float> x = {1.0f, 3.0f, 0.0f, 2.0f, 0.5f, -1.0f, 4.0f, 1.0f};
  const auto r = ref::softmax_topk(x, p);
  CHECK(ref::check_softmax_topk(r.weights, r.ids, r, x, p).passed);
  auto ids = r.ids;
  std::swap(ids[0], ids[1]);
  CHECK_FALSE(ref::check_softmax_topk(r.weights, ids, r, x, p).passed);
  auto w = r.weights;
  w[1] *= 1.001f;
  CHECK_FALSE(ref::check_softmax_topk(w, r.ids, r, x, p).passed);
  w = r.weights;
  w[3] = kNaN;
  CHECK_FALSE(ref::check_softmax_topk(w, r.ids, r, x, p).passed);
  w = r.weights;
  w[2] = std::nextafter(w[2], 2.0f);  // one ulp is within tolerance
  CHECK(ref::check_softmax_topk(w, r.ids, r, x, p).passed);
}

TEST_CASE("validation: every bad input throws InputError with a message") {
  using routing::SoftmaxTopkParams;
  CHECK_THROWS_AS((SoftmaxTopkParams{.tokens = 1, .experts = 0, .top_k = 1}.validate()), InputError);
  CHECK_THROWS_AS((SoftmaxTopkParams{.tokens = 1, .experts = 513, .top_k = 1}.validate()), InputError);
  CHECK_THROWS_AS((SoftmaxTopkParams{.tokens = 1, .experts = 8, .top_k = 9}.validate()), InputError);
  CHECK_THROWS_AS((SoftmaxTopkParams{.tokens = 1, .experts = 64, .top_k = 33}.validate()), InputError);
  CHECK_THROWS_AS((SoftmaxTopkParams{.tokens = -1, .experts = 8, .top_k = 2}.validate()), InputError);
  CHECK_THROWS_AS((SoftmaxTopkParams{.tokens = 1, .experts = 8, .top_k = 2, .dtype = DType::I32}.validate()),
                  InputError);
  CHECK_NOTHROW((SoftmaxTopkParams{.tokens = 0, .experts = 512, .top_k = 32}.validate()));
  CHECK_NOTHROW((SoftmaxTopkParams{.tokens = 5, .experts = 3, .top_k = 3}.validate()));

  using routing::GroupedTopkParams;
  GroupedTopkParams g{.tokens = 4, .experts = 256, .n_group = 8, .topk_group = 4, .top_k = 8};
  CHECK_NOTHROW(g.validate());
  auto bad = g;
  bad.n_group = 7;
  CHECK_THROWS_AS(bad.validate(), InputError);
  bad = g;
  bad.n_group = 64;
  bad.experts = 512;
  CHECK_THROWS_AS(bad.validate(), InputError);
  bad = g;
  bad.topk_group = 9;
  CHECK_THROWS_AS(bad.validate(), InputError);
  bad = g;
  bad.topk_group = 1;
  bad.top_k = 33;
  CHECK_THROWS_AS(bad.validate(), InputError);
  bad = g;
  bad.experts = 8;
  bad.n_group = 8;
  bad.topk_group = 2;
  bad.top_k = 3;  // only 2 candidates
  CHECK_THROWS_AS(bad.validate(), InputError);
  bad = g;
  bad.routed_scaling_factor = std::numeric_limits<float>::infinity();
  CHECK_THROWS_AS(bad.validate(), InputError);

  using routing::SigmoidTop1Params;
  CHECK_THROWS_AS((SigmoidTop1Params{.tokens = 1, .hidden = 0, .experts = 16}.validate()), InputError);
  CHECK_THROWS_AS((SigmoidTop1Params{.tokens = 1, .hidden = 16385, .experts = 16}.validate()), InputError);
  CHECK_THROWS_AS((SigmoidTop1Params{.tokens = 1, .hidden = 64, .experts = 513}.validate()), InputError);
  CHECK_THROWS_AS((SigmoidTop1Params{.tokens = 1, .hidden = 64, .experts = 16, .dtype = DType::F32}.validate()),
                  InputError);
  try {
    SoftmaxTopkParams{.tokens = 1, .experts = 8, .top_k = 9}.validate();
  } catch (const InputError& e) {
    CHECK(std::string(e.what()).find("top_k") != std::string::npos);
  }
}

TEST_CASE("configs: validity checks and auto picks") {
  routing::SoftmaxTopkParams p{.tokens = 10, .experts = 512, .top_k = 8};
  CHECK(routing::SoftmaxTopkConfig{}.why_invalid(p).empty());
  CHECK(routing::SoftmaxTopkConfig::pick(p).lanes_per_row == 32);
  CHECK(routing::SoftmaxTopkConfig{.lanes_per_row = 16}.why_invalid(p) != "");  // 32 per lane
  CHECK(routing::SoftmaxTopkConfig{.lanes_per_row = 3}.why_invalid(p) != "");
  CHECK(routing::SoftmaxTopkConfig{.lanes_per_row = 32, .block_threads = 100}.why_invalid(p) != "");
  CHECK_THROWS_AS(routing::SoftmaxTopkConfig{.lanes_per_row = 16}.resolved(p), InputError);
  p.experts = 8;
  CHECK(routing::SoftmaxTopkConfig::pick(p).lanes_per_row == 1);
  p.experts = 128;
  CHECK(routing::SoftmaxTopkConfig::pick(p).lanes_per_row == 16);
  CHECK(routing::SoftmaxTopkConfig{.lanes_per_row = 8}.why_invalid(p) != "");  // 16 values with 8 lanes
  CHECK(routing::SoftmaxTopkConfig{.lanes_per_row = 8}.resolved({.tokens = 1, .experts = 60, .top_k = 2})
            .values_per_lane({.tokens = 1, .experts = 60, .top_k = 2}) == 8);

  routing::GroupedTopkParams g{.tokens = 4, .experts = 256, .n_group = 8, .topk_group = 4, .top_k = 8};
  CHECK(g.values_per_lane() == 8);
  CHECK(routing::GroupedTopkConfig::register_groups(g));
  g.experts = 160;  // group size 20, 8 values per lane: shared-memory path
  CHECK_FALSE(routing::GroupedTopkConfig::register_groups(g));
  CHECK(routing::GroupedTopkConfig{}.shared_bytes(g) == 8 * 32 * 8 * 4);
  CHECK(routing::GroupedTopkConfig{.block_threads = 512}.why_invalid(g).empty());
}

TEST_CASE("sigmoid_top1 plan: tiles, splits, workspace") {
  routing::SigmoidTop1Params p{.tokens = 65536, .hidden = 5120, .experts = 16};
  auto pl = routing::plan_sigmoid_top1(p, {}, 132, true);
  CHECK(pl.impl == routing::Top1Impl::TensorCore);
  CHECK(pl.bn == 16);
  CHECK(pl.splits == 1);
  CHECK(pl.direct());
  CHECK(pl.workspace_bytes == 0);
  p.tokens = 256;
  CHECK(routing::plan_sigmoid_top1(p, {}, 132, true).splits == 8);  // sweep optimum for 64 <= M <= 1024
  p.tokens = 1;
  pl = routing::plan_sigmoid_top1(p, {}, 132, true);
  CHECK(pl.splits == 20);  // two 128-wide chunks per split at tiny M
  CHECK(pl.k_chunk % 128 == 0);
  CHECK(pl.k_chunk * pl.splits >= p.hidden);
  CHECK(pl.k_chunk * (pl.splits - 1) < p.hidden);
  CHECK(pl.workspace_bytes >= static_cast<size_t>(pl.splits) * 16 * 4);
  p.experts = 512;
  p.tokens = 1000;
  pl = routing::plan_sigmoid_top1(p, {.impl = routing::Top1Impl::Simt, .k_splits = 1}, 132, true);
  CHECK(pl.impl == routing::Top1Impl::Simt);
  CHECK(pl.col_tiles == 16);
  CHECK_FALSE(pl.direct());
  CHECK(pl.workspace_bytes > 0);
  CHECK_THROWS_AS(routing::plan_sigmoid_top1(p, {.impl = routing::Top1Impl::TensorCore}, 132, false), InputError);
  CHECK_THROWS_AS(routing::plan_sigmoid_top1(p, {.k_splits = -1}, 132, true), InputError);
  p.hidden = 100;  // one chunk: never split
  pl = routing::plan_sigmoid_top1(p, {.k_splits = 8}, 132, true);
  CHECK(pl.splits == 1);
}

TEST_CASE("golden vectors from PyTorch: the verify family's CPU cases") {
  const KernelFamily family = make_routing_family();  // direct: no dependence on the other families
  const KernelFamily* fam = &family;
  VerifyOptions o;
  o.data_dir = "data";
  o.models = load_model_table("configs/model_configs.json");
  int n = 0;
  for (const auto& c : fam->cases(o)) {
    if (c.needs_gpu) continue;
    const CaseResult r = c.run();
    INFO(c.name << ": " << r.message);
    CHECK(r.passed);
    ++n;
  }
  MESSAGE("golden cases checked: " << n);
  CHECK(n >= 10);
}

TEST_CASE("routing ref: a huge token count is an input error, not an overflow") {
  // M * E would overflow int64 and an empty logits span would pass a size check.
  routing::SoftmaxTopkParams sp{.tokens = int64_t{1} << 61, .experts = 8, .top_k = 2};
  CHECK_THROWS_AS(ref::softmax_topk({}, sp), InputError);
  routing::GroupedTopkParams gp{.tokens = int64_t{1} << 61, .experts = 8, .n_group = 1, .topk_group = 1, .top_k = 2};
  CHECK_THROWS_AS(ref::grouped_topk({}, {}, gp), InputError);
  routing::SigmoidTop1Params tp{.tokens = int64_t{1} << 61, .hidden = 64, .experts = 8};
  CHECK_THROWS_AS(tp.validate(), InputError);
  sp.tokens = 0;
  CHECK_NOTHROW(ref::softmax_topk({}, sp));
}

TEST_CASE("routing golden: a corrupt file or case stays inside its case") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / fmt::format("moe-routing-golden-{}", ::getpid());
  fs::create_directories(dir / "routing");
  const KernelFamily family = make_routing_family();
  VerifyOptions o;
  o.data_dir = dir.string();
  o.models = load_model_table("configs/model_configs.json");
  auto golden_results = [&] {
    std::vector<std::pair<std::string, CaseResult>> out;
    for (const auto& c : family.cases(o))
      if (!c.needs_gpu) out.emplace_back(c.name, c.run());
    return out;
  };
  {
    std::ofstream(dir / "routing/golden_routing.json") << "{ \"cases\": [ {\"name\": \"x\"";  // truncated
    const auto r = golden_results();
    REQUIRE(r.size() == 1);
    CHECK(r[0].first == "golden/load");
    CHECK_FALSE(r[0].second.passed);
    CHECK(r[0].second.message.find("did not load") != std::string::npos);
  }
  {
    std::ofstream(dir / "routing/golden_routing.json") << R"({"cases": [{"name": "bad", "kind": "softmax_topk"}, 7]})";
    const auto r = golden_results();
    REQUIRE(r.size() == 2);
    CHECK(r[0].first == "golden/bad");
    CHECK(r[1].first == "golden/#1");
    for (const auto& name_res : r) {
      const auto& name = name_res.first;  // named, not bound: doctest's INFO captures it
      const auto& res = name_res.second;
      INFO(name << ": " << res.message);
      CHECK_FALSE(res.passed);
      CHECK(res.message.find("/cases/") != std::string::npos);
    }
  }
  fs::remove_all(dir);
}
