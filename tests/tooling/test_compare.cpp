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

const CompareRow& row_named(const CompareResult& r, const std::string& name) {
  for (const auto& row : r.rows)
    if (row.name == name) return row;
  throw std::runtime_error("no row " + name);
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

TEST_CASE("median and the indices of the smallest values") {
  CHECK(median({3.0}) == 3.0);
  CHECK(median({3.0, 1.0, 2.0}) == 2.0);
  CHECK(median({4.0, 1.0, 2.0, 10.0}) == doctest::Approx(3.0));
  CHECK_THROWS_AS(median({}), InputError);
  // the tuner's finalists: the fastest first, equal times in index order
  CHECK(smallest_indices({5247, 5234, 4787, 5763}, 3) == std::vector<size_t>{2, 1, 0});
  CHECK(smallest_indices({2.0, 1.0, 2.0, 1.0}, 3) == std::vector<size_t>{1, 3, 0});
  CHECK(smallest_indices({2.0, 1.0}, 5) == std::vector<size_t>{1, 0});
  CHECK(smallest_indices({2.0, 1.0}, 0).empty());
  CHECK(smallest_indices({}, 3).empty());
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

TEST_CASE("compare: significance plus minimum effect, unknown with too few repetitions") {
  const auto a = read_bench_points(reps_doc({{"k1/reg", spread(100, 5)},
                                             {"k1/fast", spread(100, 5)},
                                             {"k1/small", spread(100, 5)},
                                             {"k2/noisy", spread(100, 5)},
                                             {"k2/three", spread(100, 3)},
                                             {"k2/one", {4.7}},
                                             {"k2/aggonly", spread(100, 5)},
                                             {"k2/failed", spread(100, 5)},
                                             {"gone", {5.0}}}),
                                   "A");
  auto bdoc = reps_doc({{"k1/reg", spread(110, 5)},               // +10 %, separated: p = 2/252
                        {"k1/fast", spread(80, 5)},               // -20 %, separated
                        {"k1/small", spread(103, 5, 0.001)},      // +3 %, separated: below the minimum effect
                        {"k2/noisy", spread(110, 5, 0.2)},        // +10 %, spread over A: p = 174/252
                        {"k2/three", spread(110, 3)},             // +10 %, 3 vs 3: min p 0.1
                        {"k2/one", {4.7 * 1.078}},                // +7.8 %, one run each
                        {"k2/failed", spread(100, 5)},
                        {"new", {1.0}}});
  // k2/aggonly: B has only Google Benchmark's aggregates (median 120).
  for (const auto& [agg, v] : {std::pair<std::string, double>{"mean", 120.0}, {"median", 120.0}, {"stddev", 1.0}})
    bdoc["benchmarks"].push_back({{"name", "k2/aggonly_" + agg}, {"run_name", "k2/aggonly"}, {"run_type", "aggregate"},
                                  {"aggregate_name", agg}, {"repetitions", 5}, {"real_time", v}, {"time_unit", "us"}});
  auto b = read_bench_points(bdoc, "B");
  for (auto& p : b)
    if (p.name == "k2/failed") p.error = true;
  const auto r = compare_benchmarks(a, b);
  REQUIRE(r.rows.size() == 8);
  CHECK(r.min_repetitions == 4);
  const auto& reg = row_named(r, "k1/reg");
  CHECK(reg.verdict == "regression");
  CHECK(reg.delta_pct == doctest::Approx(10.0));
  CHECK(reg.p == doctest::Approx(2.0 / 252));
  CHECK(reg.a_n == 5);
  CHECK(row_named(r, "k1/fast").verdict == "speedup");
  CHECK(row_named(r, "k1/small").verdict == "same");
  CHECK(row_named(r, "k1/small").p < 0.05);  // significant, but too small to matter
  CHECK(row_named(r, "k2/noisy").verdict == "not significant");
  CHECK(row_named(r, "k2/noisy").p == doctest::Approx(174.0 / 252));
  const auto& three = row_named(r, "k2/three");
  CHECK(three.verdict == "unknown");
  CHECK(three.reason == "too few repetitions: need 4");
  CHECK(three.tested);  // p shown: as separated as 3 vs 3 can be, still not below 0.05
  CHECK(three.p == doctest::Approx(0.1));
  CHECK_FALSE(row_named(r, "k2/one").tested);
  CHECK(row_named(r, "k2/one").verdict == "unknown");  // never flagged from one run
  CHECK(row_named(r, "k2/one").delta_pct == doctest::Approx(7.8));
  CHECK(row_named(r, "k2/aggonly").verdict == "unknown");
  CHECK(row_named(r, "k2/aggonly").reason == "no per-repetition times in B");
  CHECK(row_named(r, "k2/failed").verdict == "error");
  CHECK(r.regressions == 1);
  CHECK(r.speedups == 1);
  CHECK(r.unknown == 3);
  CHECK(r.only_a == std::vector<std::string>{"gone"});
  CHECK(r.only_b == std::vector<std::string>{"new"});
  // Geometric mean of the B/A median ratios over the 7 timed rows, and per kernel.
  CHECK(r.timed == 7);
  const double k1 = std::cbrt(1.1 * 0.8 * 1.03), k2 = std::pow(1.1 * 1.1 * 1.078 * 1.2, 0.25);
  CHECK(r.geomean_ratio == doctest::Approx(std::pow(1.1 * 0.8 * 1.03 * 1.1 * 1.1 * 1.078 * 1.2, 1.0 / 7)));
  CHECK(r.geomean_by_kernel.at("k1").ratio == doctest::Approx(k1));
  CHECK(r.geomean_by_kernel.at("k1").points == 3);
  CHECK(r.geomean_by_kernel.at("k2").ratio == doctest::Approx(k2));
  CHECK(r.geomean_by_kernel.at("k2").points == 4);
  // One warning: the rows that cannot reach alpha (three, one, aggonly).
  REQUIRE(r.warnings.size() == 1);
  CHECK(r.warnings[0].rfind("WARNING: 3 of 8 point(s) have too few repetitions", 0) == 0);
  CHECK(r.warnings[0].find("needs 4 or more repetitions in each run") != std::string::npos);

  const std::string text = format_compare(r, "a.json", "b.json");
  CHECK(text.rfind("WARNING: 3 of 8", 0) == 0);
  for (const char* part : {"A = a.json\nB = b.json\n", "p < 0.05", "REGRESSION", "unknown (too few repetitions: need 4)",
                           "unknown (no per-repetition times in B)", "not significant", "error (a run failed",
                           "only in A: gone", "only in B: new",
                           "8 compared, 1 regression(s), 1 speedup(s), 1 same, 1 not significant, 3 unknown, 1 error(s)",
                           "geomean B/A median time ratio: ", "  k1: ", "over 3 point(s)"})
    CHECK_MESSAGE(text.find(part) != std::string::npos, part);
  const json j = r.to_json();
  CHECK(j["geomean_ratio"] == doctest::Approx(r.geomean_ratio));
  CHECK(j["geomean_ratio_by_kernel"]["k2"]["points"] == 4);
  CHECK(j["alpha"] == 0.05);
  CHECK(j["rows"][0]["p"].is_number());
  CHECK(j["unknown"] == 3);
  for (const auto& row : j["rows"])
    if (row["name"] == "k2/one") CHECK(row["p"].is_null());

  // A higher threshold hides the regression; a tiny alpha makes 5 vs 5 untestable.
  CHECK(compare_benchmarks(a, b, {.threshold_pct = 15.0}).regressions == 0);
  const auto strict = compare_benchmarks(a, b, {.alpha = 0.001});
  CHECK(strict.regressions == 0);
  CHECK(row_named(strict, "k1/reg").reason == "too few repetitions: need 7");
  // A looser alpha lets 3 vs 3 be tested (p = 0.1 < 0.11).
  CHECK(row_named(compare_benchmarks(a, b, {.alpha = 0.11}), "k2/three").verdict == "regression");
  CHECK_THROWS_AS(compare_benchmarks(a, b, {.threshold_pct = -1.0}), InputError);
  CHECK_THROWS_AS(compare_benchmarks(a, b, {.alpha = 0.0}), InputError);
  CHECK_THROWS_AS(compare_benchmarks(a, b, {.alpha = 1.0}), InputError);
}

TEST_CASE("compare: runs from different devices or ceilings are refused unless forced") {
  const json h100{{"moe_device", "NVIDIA H100 80GB HBM3"}, {"moe_read_gbps", "3086.9"}, {"moe_copy_gbps", "3016.6"},
                  {"moe_bf16_tflops", "802.7"}};
  json h200 = h100;
  h200["moe_device"] = "NVIDIA H200";
  const BenchDevice a = read_bench_device(json{{"context", h100}, {"benchmarks", json::array()}});
  CHECK(a.name == "NVIDIA H100 80GB HBM3");
  CHECK(a.ceilings.at("moe_read_gbps") == 3086.9);
  CHECK(a.ceilings.at("moe_bf16_tflops") == 802.7);
  const BenchDevice b = read_bench_device(json{{"context", h200}});

  // Same device, ceilings a few percent apart (measurement noise): comparable, no warning.
  json h100_again = h100;
  h100_again["moe_bf16_tflops"] = "774.0";
  CHECK(check_comparable_devices(a, read_bench_device(json{{"context", h100_again}}), "a.json", "b.json", false).empty());

  CHECK_THROWS_WITH_AS(check_comparable_devices(a, b, "a.json", "b.json", false),
                       "compare: a.json and b.json ran on different devices: moe_device 'NVIDIA H100 80GB HBM3' vs "
                       "'NVIDIA H200' (--force compares them anyway)",
                       InputError);
  auto w = check_comparable_devices(a, b, "a.json", "b.json", true);
  REQUIRE(w.size() == 1);
  CHECK(w[0] == "WARNING: comparing runs from different devices: A=NVIDIA H100 80GB HBM3 B=NVIDIA H200");

  // Same name, read bandwidth 45 % apart (another memory configuration): refused, field named.
  json slow = h100;
  slow["moe_read_gbps"] = "2100.0";
  const BenchDevice s = read_bench_device(json{{"context", slow}});
  CHECK_THROWS_WITH_AS(check_comparable_devices(a, s, "a.json", "b.json", false),
                       doctest::Contains("a.json and b.json have different ceilings: moe_read_gbps 3086.9 vs 2100"),
                       InputError);
  w = check_comparable_devices(a, s, "a.json", "b.json", true);
  REQUIRE(w.size() == 1);
  CHECK(w[0].rfind("WARNING: comparing runs with different ceilings: A=moe_read_gbps 3086.9", 0) == 0);

  // Ceilings not measured (--no-ceilings: "0.0"; no GEMM: "n/a") are not compared.
  json unmeasured = h100;
  unmeasured["moe_read_gbps"] = "0.0";
  unmeasured["moe_bf16_tflops"] = "n/a";
  const BenchDevice u = read_bench_device(json{{"context", unmeasured}});
  CHECK_FALSE(u.ceilings.count("moe_read_gbps"));
  CHECK_FALSE(u.ceilings.count("moe_bf16_tflops"));
  CHECK(check_comparable_devices(s, u, "a.json", "b.json", false).empty());

  // No device recorded (older files): a warning, never a refusal.
  const BenchDevice none = read_bench_device(json{{"context", {{"host_name", "x"}}}});
  CHECK(none.name.empty());
  w = check_comparable_devices(a, none, "a.json", "old.json", false);
  REQUIRE(w.size() == 1);
  CHECK(w[0].find("old.json records no device") != std::string::npos);

  // bench's merged files: the per-executable contexts count too.
  const BenchDevice merged = read_bench_device(
      json{{"context", {{"moe_device", "GPU X"}}},
           {"contexts", {{"align", {{"moe_device", "GPU X"}}}, {"fused_moe", {{"moe_device", "GPU Y"}}}}}});
  CHECK(merged.name == "GPU X + GPU Y");
}
