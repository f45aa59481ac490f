// inputs.hpp: InputSpec, routing distributions and host fills.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "moe/error.hpp"
#include "moe/inputs.hpp"

namespace {

moe::InputSpec make_spec(int64_t M, int32_t E, int32_t k, moe::RoutingDist r, uint64_t seed = 0) {
  moe::InputSpec s;
  s.shape = {M, 256, 128, E, k};
  s.routing = r;
  s.seed = seed;
  return s;
}

// Ids in range and distinct within each token.
void check_ids_valid(const moe::Routing& r, int32_t E) {
  REQUIRE(r.topk_ids.size() == static_cast<size_t>(r.tokens * r.top_k));
  REQUIRE(r.topk_weights.size() == r.topk_ids.size());
  for (int64_t t = 0; t < r.tokens; ++t) {
    std::set<int32_t> s;
    for (int32_t j = 0; j < r.top_k; ++j) {
      const int32_t id = r.topk_ids[static_cast<size_t>(t * r.top_k + j)];
      REQUIRE(id >= 0);
      REQUIRE(id < E);
      s.insert(id);
    }
    REQUIRE(s.size() == static_cast<size_t>(r.top_k));
  }
}

std::vector<int64_t> expert_counts(const moe::Routing& r, int32_t E) {
  std::vector<int64_t> c(static_cast<size_t>(E));
  for (int32_t id : r.topk_ids) ++c[static_cast<size_t>(id)];
  return c;
}

}  // namespace

TEST_CASE("inputs: tensor sizes follow input_helper_e2e") {
  moe::InputSpec s;
  s.shape = {33, 7168, 2048, 256, 8};
  CHECK(s.hidden_elems() == 33 * 7168);
  CHECK(s.w1_elems() == int64_t{256} * 2 * 2048 * 7168);  // > 2^31: 64-bit arithmetic
  CHECK(s.w2_elems() == int64_t{256} * 7168 * 2048);
  CHECK(s.w1_elems() > (int64_t{1} << 32));
}

TEST_CASE("inputs: validation rejects bad shapes with InputError") {
  auto ok = make_spec(4, 8, 2, moe::RoutingDist::Softmax);
  CHECK_NOTHROW(ok.validate());
  auto bad = ok;
  bad.shape.tokens = 0;
  CHECK_THROWS_AS(bad.validate(), moe::InputError);
  CHECK_THROWS_AS(moe::make_routing(bad), moe::InputError);
  bad = ok;
  bad.shape.tokens = -3;
  CHECK_THROWS_AS(bad.validate(), moe::InputError);
  bad = ok;
  bad.shape.top_k = 9;  // > experts
  CHECK_THROWS_AS(moe::make_routing(bad), moe::InputError);
  bad = ok;
  bad.shape.top_k = 0;
  CHECK_THROWS_AS(bad.validate(), moe::InputError);
  bad = ok;
  bad.shape.experts = 0;
  CHECK_THROWS_AS(bad.validate(), moe::InputError);
  bad = ok;
  bad.shape.model_dim = -1;
  CHECK_THROWS_AS(bad.validate(), moe::InputError);
  bad = ok;
  bad.zipf_exponent = 0;
  CHECK_THROWS_AS(bad.validate(), moe::InputError);
  // The message is one line and names the problem.
  bad = ok;
  bad.shape.top_k = 9;
  try {
    bad.validate();
    FAIL("no throw");
  } catch (const moe::InputError& e) {
    const std::string m = e.what();
    CHECK(m.find("top_k") != std::string::npos);
    CHECK(m.find('\n') == std::string::npos);
  }
}

TEST_CASE("inputs: distribution names parse and round-trip") {
  using moe::RoutingDist;
  for (auto r : {RoutingDist::Softmax, RoutingDist::Balanced, RoutingDist::Zipf, RoutingDist::OneExpert})
    CHECK(moe::parse_routing_dist(moe::routing_dist_name(r)) == r);
  for (auto v : {moe::ValueDist::Normal, moe::ValueDist::FanIn})
    CHECK(moe::parse_value_dist(moe::value_dist_name(v)) == v);
  CHECK_THROWS_AS(moe::parse_routing_dist("uniform"), moe::InputError);
  CHECK_THROWS_AS(moe::parse_value_dist("gauss"), moe::InputError);
}

TEST_CASE("inputs: softmax routing is the top-k of softmax(normal scores)") {
  // Odd sizes; E=256/k=8 like DeepSeek-V3, where many score ties occur (the
  // normal() grid is 2^-16 fine), so the tie rule is exercised.
  int64_t boundary_ties = 0;
  for (auto [M, E, k] : {std::tuple{37, 8, 2}, std::tuple{1, 1, 1}, std::tuple{4099, 256, 8}, std::tuple{129, 60, 60}}) {
    const auto spec = make_spec(M, E, k, moe::RoutingDist::Softmax, 1234);
    const auto r = moe::make_routing(spec);
    CHECK(r.tokens == M);
    CHECK(r.top_k == k);
    check_ids_valid(r, E);
    std::vector<float> p(static_cast<size_t>(E));
    for (int64_t t = 0; t < M; ++t) {
      moe::softmax_scores_row(spec, t, p);
      // The probabilities are the softmax of normal(seed, Scores, t*E + e),
      // recomputed here in long double.
      long double mx = -1e30L, sum = 0;
      for (int32_t e = 0; e < E; ++e)
        mx = std::max<long double>(mx, moe::rng::normal(spec.seed, moe::rng::Stream::Scores, uint64_t(t * E + e)));
      for (int32_t e = 0; e < E; ++e)
        sum += std::exp(static_cast<long double>(moe::rng::normal(spec.seed, moe::rng::Stream::Scores, uint64_t(t * E + e))) - mx);
      double total = 0;
      for (int32_t e = 0; e < E; ++e) {
        const long double want =
            std::exp(static_cast<long double>(moe::rng::normal(spec.seed, moe::rng::Stream::Scores, uint64_t(t * E + e))) - mx) / sum;
        REQUIRE(std::abs(static_cast<long double>(p[e]) - want) <= 1e-7L * want + 1e-12L);
        total += p[e];
      }
      REQUIRE(total == doctest::Approx(1.0).epsilon(1e-5));
      const int32_t* ids = &r.topk_ids[static_cast<size_t>(t * k)];
      const float* w = &r.topk_weights[static_cast<size_t>(t * k)];
      for (int32_t j = 0; j < k; ++j) REQUIRE(w[j] == p[ids[j]]);  // weights = softmax probs, not renormalised
      // Descending, ties to the lower expert index.
      for (int32_t j = 0; j + 1 < k; ++j) {
        REQUIRE((p[ids[j]] > p[ids[j + 1]] || (p[ids[j]] == p[ids[j + 1]] && ids[j] < ids[j + 1])));
      }
      // Nothing left out beats the last one chosen.
      const std::set<int32_t> chosen(ids, ids + k);
      const int32_t last = ids[k - 1];
      for (int32_t e = 0; e < E; ++e) {
        if (chosen.count(e)) continue;
        REQUIRE((p[e] < p[last] || (p[e] == p[last] && e > last)));
        boundary_ties += p[e] == p[last];
      }
      for (int32_t j = 0; j + 1 < k; ++j) boundary_ties += p[ids[j]] == p[ids[j + 1]];
    }
  }
  MESSAGE("ties at the top-k boundary or inside it: " << boundary_ties);
}

TEST_CASE("inputs: explicit tie order on a constructed row") {
  // Reproduce make_routing's ordering rule on the scores of one token where two
  // experts have equal probability: find such a token, then check the order.
  const int32_t E = 256, k = 256;  // top_k = E: the whole row is sorted
  const auto spec = make_spec(2000, E, k, moe::RoutingDist::Softmax, 99);
  const auto r = moe::make_routing(spec);
  std::vector<float> p(E);
  int64_t ties = 0;
  for (int64_t t = 0; t < spec.shape.tokens; ++t) {
    moe::softmax_scores_row(spec, t, p);
    const int32_t* ids = &r.topk_ids[static_cast<size_t>(t * k)];
    for (int32_t j = 0; j + 1 < k; ++j) {
      if (p[ids[j]] == p[ids[j + 1]]) {
        ++ties;
        REQUIRE(ids[j] < ids[j + 1]);
      }
    }
  }
  CHECK(ties > 0);  // the rule was exercised, not vacuous
}

TEST_CASE("inputs: balanced routing gives every expert the same count") {
  for (auto [M, E, k] : {std::tuple{64, 16, 4}, std::tuple{256, 8, 2}, std::tuple{15, 5, 5}, std::tuple{33, 11, 3}}) {
    const auto r = moe::make_routing(make_spec(M, E, k, moe::RoutingDist::Balanced));
    check_ids_valid(r, E);
    const auto c = expert_counts(r, E);
    REQUIRE((M * k) % E == 0);
    for (int64_t n : c) CHECK(n == M * k / E);
  }
  // Not divisible: counts differ by at most one.
  const auto r = moe::make_routing(make_spec(7, 5, 3, moe::RoutingDist::Balanced));
  const auto c = expert_counts(r, 5);
  CHECK(*std::max_element(c.begin(), c.end()) - *std::min_element(c.begin(), c.end()) <= 1);
}

TEST_CASE("inputs: zipf routing is skewed towards low expert indices") {
  const int32_t E = 64, k = 4;
  const auto r = moe::make_routing(make_spec(4096, E, k, moe::RoutingDist::Zipf, 5));
  check_ids_valid(r, E);
  const auto c = expert_counts(r, E);
  CHECK(std::max_element(c.begin(), c.end()) == c.begin());  // expert 0 most frequent
  // Head vs tail: the first 4 experts take far more than the last 32 per expert.
  const double head = std::accumulate(c.begin(), c.begin() + 4, 0.0) / 4;
  const double tail = std::accumulate(c.end() - 32, c.end(), 0.0) / 32;
  CHECK(head > 4 * tail);
  // Roughly monotone: bucket averages of 8 experts decrease.
  for (int b = 0; b + 1 < 8; ++b) {
    const double x = std::accumulate(c.begin() + 8 * b, c.begin() + 8 * b + 8, 0.0);
    const double y = std::accumulate(c.begin() + 8 * (b + 1), c.begin() + 8 * (b + 2), 0.0);
    CHECK(x > y);
  }
  // Weights are still the softmax probabilities of the chosen experts.
  auto spec = make_spec(4096, E, k, moe::RoutingDist::Zipf, 5);
  std::vector<float> p(E);
  moe::softmax_scores_row(spec, 17, p);
  for (int32_t j = 0; j < k; ++j) CHECK(r.topk_weights[17 * k + j] == p[r.topk_ids[17 * k + j]]);
  // Softmax routing, by contrast, is close to uniform over experts.
  const auto s = moe::make_routing(make_spec(4096, E, k, moe::RoutingDist::Softmax, 5));
  const auto cs = expert_counts(s, E);
  CHECK(*std::max_element(cs.begin(), cs.end()) < 2 * 4096 * k / E);
  // A larger exponent is more skewed.
  spec.zipf_exponent = 2.5;
  const auto r2 = moe::make_routing(spec);
  CHECK(expert_counts(r2, E)[0] >= c[0]);
}

TEST_CASE("inputs: one-expert routing sends every token to the same experts") {
  for (int32_t k : {1, 3}) {
    const auto r = moe::make_routing(make_spec(100, 16, k, moe::RoutingDist::OneExpert));
    check_ids_valid(r, 16);
    const auto c = expert_counts(r, 16);
    for (int32_t e = 0; e < 16; ++e) CHECK(c[e] == (e < k ? 100 : 0));
  }
}

TEST_CASE("inputs: routing is deterministic in the seed") {
  const auto a = moe::make_routing(make_spec(50, 32, 4, moe::RoutingDist::Softmax, 1));
  const auto b = moe::make_routing(make_spec(50, 32, 4, moe::RoutingDist::Softmax, 1));
  const auto c = moe::make_routing(make_spec(50, 32, 4, moe::RoutingDist::Softmax, 2));
  CHECK(a.topk_ids == b.topk_ids);
  CHECK(a.topk_weights == b.topk_weights);
  CHECK(a.topk_ids != c.topk_ids);
}

TEST_CASE("inputs: value scales (plain normal and fan-in)") {
  moe::InputSpec s;
  s.shape = {16, 1024, 384, 8, 2};
  s.dtype = moe::DType::F32;
  CHECK(s.scale(moe::rng::Stream::W1) == 1.0f);
  s.values = moe::ValueDist::FanIn;
  CHECK(s.scale(moe::rng::Stream::W1) == doctest::Approx(1.0 / 32));
  CHECK(s.scale(moe::rng::Stream::W2) == doctest::Approx(1.0 / std::sqrt(384.0)));
  CHECK(s.scale(moe::rng::Stream::Hidden) == 1.0f);
  for (moe::DType dt : {moe::DType::F32, moe::DType::BF16, moe::DType::F16}) {
    s.dtype = dt;
    for (const auto& stream_fan_in : {std::pair{moe::rng::Stream::W1, 1024.0}, std::pair{moe::rng::Stream::W2, 384.0},
                                      std::pair{moe::rng::Stream::Hidden, 1.0}}) {
      const auto which = stream_fan_in.first;  // named, not bound: doctest's INFO captures them
      const double fan_in = stream_fan_in.second;
      std::vector<float> v(200000);
      moe::fill_host(s, which, 0, v);
      double sum = 0, sq = 0;
      for (float x : v) {
        sum += x;
        sq += double(x) * x;
      }
      const double mean = sum / double(v.size()), var = sq / double(v.size()) - mean * mean;
      INFO("dtype " << moe::dtype_name(dt) << " fan_in " << fan_in);
      CHECK(std::abs(mean) * std::sqrt(fan_in) < 0.01);
      CHECK(var * fan_in == doctest::Approx(1.0).epsilon(0.02));
    }
  }
}
