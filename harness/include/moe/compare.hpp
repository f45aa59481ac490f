// Two benchmark runs compared point by point: regressions and speedups beyond
// the measured noise.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "moe/bench_names.hpp"

namespace moe {

struct CompareRow {
  std::string name;
  double a_us = 0, a_sd = 0, b_us = 0, b_sd = 0;
  int a_n = 1, b_n = 1;
  double delta_pct = 0;      // (b - a) / a * 100
  double noise_pct = 0;      // noise_k * sqrt(a_sd^2 + b_sd^2) / a * 100
  double bar_pct = 0;        // max(threshold, noise_pct)
  std::string verdict;       // "regression" | "speedup" | "same" | "error"
};
struct CompareResult {
  std::vector<CompareRow> rows;
  std::vector<std::string> only_a, only_b;
  int regressions = 0, speedups = 0;
  nlohmann::json to_json() const;
};
// A point is a regression when delta > max(threshold_pct, noise), a speedup
// when delta < -max(threshold_pct, noise); noise = noise_k combined stddevs.
CompareResult compare_benchmarks(const std::vector<BenchPoint>& a, const std::vector<BenchPoint>& b,
                                 double threshold_pct = 5.0, double noise_k = 3.0);
std::string format_compare_table(const CompareResult& r);

}  // namespace moe
