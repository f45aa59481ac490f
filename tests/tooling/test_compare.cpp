// compare: the Mann-Whitney U test, per-repetition times from Google Benchmark
// files, verdicts (significance plus minimum effect), geometric means and the
// device check.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "moe/error.hpp"
#include "moe/report.hpp"
#include "moe/stats.hpp"

using namespace moe;
using nlohmann::json;

namespace {

// Google Benchmark document: per benchmark one iteration entry per repetition
// time (us), plus the mean/median/stddev aggregates when `aggregates`.
json reps_doc(const std::vector<std::pair<std::string, std::vector<double>>>& points, bool aggregates = false,
              json context = {{"moe_device", "GPU X"}}) {
  json d{{"context", std::move(context)}, {"benchmarks", json::array()}};
  for (const auto& [name, ts] : points) {
    const int n = static_cast<int>(ts.size());
    for (int i = 0; i < n; ++i)
      d["benchmarks"].push_back({{"name", name}, {"run_name", name}, {"run_type", "iteration"}, {"repetitions", n},
                                 {"repetition_index", i}, {"real_time", ts[i]}, {"time_unit", "us"}});
    if (!aggregates) continue;
    for (const auto& [agg, v] : {std::pair<std::string, double>{"mean", 100.0}, {"median", 42.0}, {"stddev", 3.0}})
      d["benchmarks"].push_back({{"name", name + "_" + agg}, {"run_name", name}, {"run_type", "aggregate"},
                                 {"aggregate_name", agg}, {"repetitions", n}, {"real_time", v}, {"time_unit", "us"}});
  }
  return d;
}

// n evenly spread times around `median`, +-1 % apart.
std::vector<double> spread(double median, int n, double step = 0.01) {
  std::vector<double> v;
  for (int i = 0; i < n; ++i) v.push_back(median * (1 + (i - (n - 1) / 2.0) * step));
  return v;
}

}  // namespace

TEST_CASE("Mann-Whitney U: p-values counted by hand") {
  // Complete separation: the only two of C(n_a + n_b, n_a) equally likely
  // rank choices at least as extreme are "all lowest" and "all highest".
  auto t = mann_whitney_u_exact({1, 2, 3, 4}, {5, 6, 7, 8});
  CHECK(t.u_a == 0);
  CHECK(t.p == doctest::Approx(2.0 / 70));  // 0.0286 < 0.05
  CHECK(t.exact);
  CHECK(mann_whitney_u_exact({5, 6, 7, 8}, {1, 2, 3, 4}).u_a == 16);
  CHECK(mann_whitney_u_exact({5, 6, 7, 8}, {1, 2, 3, 4}).p == doctest::Approx(2.0 / 70));
  CHECK(mann_whitney_u_exact({1, 2, 3}, {4, 5, 6}).p == doctest::Approx(0.1));  // 2 / 20: 3 vs 3 never below 0.1
  CHECK(mann_whitney_u_exact({1}, {2}).p == 1.0);
  CHECK(mann_whitney_u_exact({1, 2, 3, 4, 5}, {6, 7, 8, 9, 10}).p == doctest::Approx(2.0 / 252));
  // a = {1, 2, 4}, b = {3, 5, 6}: U_a = 1 (4 > 3). Rank sums of a as extreme
  // as R_a = 7 (E = 10.5): {1,2,3} = 6 and {1,2,4} = 7, mirrored 15 and 14:
  // 4 of 20 choices.
  t = mann_whitney_u_exact({1, 2, 4}, {3, 5, 6});
  CHECK(t.u_a == 1);
  CHECK(t.p == doctest::Approx(0.2));
  // Ties: a = {1, 2, 2, 3}, b = {2, 3, 4, 5}; mid-ranks 1, 3, 3, 5.5 for a,
  // 3, 5.5, 7, 8 for b. R_a = 12.5, U_a = 2.5, E[R_a] = 18; of the 70 choices
  // of 4 mid-ranks, 14 have |R - 18| >= 5.5 (counted by enumeration).
  t = mann_whitney_u_exact({1, 2, 2, 3}, {2, 3, 4, 5});
  CHECK(t.u_a == 2.5);
  CHECK(t.p == doctest::Approx(14.0 / 70));
  CHECK(mann_whitney_u_exact({7, 7, 7}, {7, 7}).p == 1.0);

  // Normal approximation: a = 1..5, b = 6..10: U_a = 0, E[U] = 12.5,
  // var = 25/12 * 11 = 22.917, z = (12.5 - 0.5) / 4.7871 = 2.5067,
  // p = erfc(z / sqrt 2) = 0.012186.
  t = mann_whitney_u_normal({1, 2, 3, 4, 5}, {6, 7, 8, 9, 10});
  CHECK(t.u_a == 0);
  CHECK(t.p == doctest::Approx(0.012186).epsilon(1e-4));
  CHECK_FALSE(t.exact);
  // With ties (groups of 3 and 2: sum t^3 - t = 30): var = 16/12 * (9 - 30/56)
  // = 11.2857, z = (5.5 - 0.5) / 3.3594 = 1.48835, p = 0.13666.
  t = mann_whitney_u_normal({1, 2, 2, 3}, {2, 3, 4, 5});
  CHECK(t.u_a == 2.5);
  CHECK(t.p == doctest::Approx(0.13666).epsilon(1e-4));
  CHECK(mann_whitney_u_normal({7, 7}, {7, 7}).p == 1.0);  // no spread at all

  // The dispatcher: exact up to kRankTestExactMaxTotal values in all.
  const int half = kRankTestExactMaxTotal / 2;
  CHECK(mann_whitney_u(spread(10, half), spread(11, half)).exact);
  CHECK_FALSE(mann_whitney_u(spread(10, half + 1), spread(11, half)).exact);
  // Far apart either way: both tiny, the exact one exactly 2 / C(50, 25).
  CHECK(mann_whitney_u(spread(10, half), spread(20, half)).p * 126410606437752.0 == doctest::Approx(2.0));  // C(50, 25)
  CHECK(mann_whitney_u(spread(10, 40), spread(20, 40)).p < 1e-12);
  CHECK_THROWS_AS(mann_whitney_u({}, {1.0}), InputError);
  CHECK_THROWS_AS(mann_whitney_u({NAN}, {1.0}), InputError);
}

TEST_CASE("rank test: smallest possible p and the repetitions alpha needs") {
  CHECK(rank_test_min_p(1, 1) == 1.0);
  CHECK(rank_test_min_p(2, 2) == doctest::Approx(1.0 / 3));
  CHECK(rank_test_min_p(3, 3) == 0.1);  // exactly: 3 vs 3 cannot reach p < 0.1
  CHECK(rank_test_min_p(3, 4) == doctest::Approx(2.0 / 35));
  CHECK(rank_test_min_p(4, 4) == doctest::Approx(2.0 / 70));
  CHECK(rank_test_min_p(3, 5) == doctest::Approx(2.0 / 56));
  CHECK(rank_test_min_p(2, 8) == doctest::Approx(2.0 / 45));
  CHECK(rank_test_min_p(0, 5) == 1.0);
  CHECK(rank_test_min_repetitions(0.05) == 4);
  CHECK(rank_test_min_repetitions(0.1) == 4);  // p < alpha, and 3 vs 3 gives 0.1 at best
  CHECK(rank_test_min_repetitions(0.11) == 3);
  CHECK(rank_test_min_repetitions(0.01) == 5);  // 2 / 252
  CHECK(rank_test_min_repetitions(0.001) == 7);  // 6 vs 6: 2 / 924 = 0.0022; 7 vs 7: 2 / 3432
  CHECK_THROWS_AS(rank_test_min_repetitions(0.0), InputError);
}

TEST_CASE("geometric mean") {
  CHECK(geometric_mean({2.0, 8.0}) == doctest::Approx(4.0));
  CHECK(geometric_mean({0.5, 2.0}) == doctest::Approx(1.0));
  CHECK(geometric_mean({1.1}) == doctest::Approx(1.1));
  CHECK(geometric_mean({1.1, 1.08, 0.8}) == doctest::Approx(std::cbrt(1.1 * 1.08 * 0.8)));
  CHECK_THROWS_AS(geometric_mean({}), InputError);
  CHECK_THROWS_AS(geometric_mean({1.0, 0.0}), InputError);
}

TEST_CASE("read_bench_points: every repetition's time and the median") {
  // Iteration entries only: mean, stddev and median computed here.
  auto p = read_bench_points(reps_doc({{"k/M:1", {3, 1, 2, 10}}}), "r")[0];
  CHECK(p.rep_us == std::vector<double>{3, 1, 2, 10});
  CHECK(p.us == doctest::Approx(4.0));
  CHECK(p.us_median == doctest::Approx(2.5));
  CHECK(p.samples == 4);
  // With aggregates: Google Benchmark's mean, median and stddev win, the
  // repetitions are kept.
  p = read_bench_points(reps_doc({{"k/M:1", {3, 1, 2}}}, true), "r")[0];
  CHECK(p.rep_us == std::vector<double>{3, 1, 2});
  CHECK(p.us == 100.0);
  CHECK(p.us_median == 42.0);
  CHECK(p.us_stddev == 3.0);
  CHECK(p.samples == 3);
  CHECK(p.to_json()["us_repetitions"] == json::array({3.0, 1.0, 2.0}));
  CHECK(p.to_json()["us_median"] == 42.0);
  // One run: one repetition, its time the median.
  p = read_bench_points(reps_doc({{"k/M:1", {7}}}), "r")[0];
  CHECK(p.rep_us == std::vector<double>{7});
  CHECK(p.us_median == 7.0);
  // Aggregates only (--benchmark_report_aggregates_only): no repetitions; median = mean without one.
  json agg_only{{"benchmarks",
                 {{{"name", "x_mean"}, {"run_name", "x"}, {"run_type", "aggregate"}, {"aggregate_name", "mean"},
                   {"repetitions", 5}, {"real_time", 9.0}, {"time_unit", "us"}}}}};
  p = read_bench_points(agg_only, "g")[0];
  CHECK(p.rep_us.empty());
  CHECK(p.us_median == 9.0);
  CHECK(p.samples == 5);
}
