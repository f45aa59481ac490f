// Two benchmark runs compared point by point: a change counts only when the
// repetitions show it (Mann-Whitney U test) and it is large enough to matter.
#pragma once
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "moe/bench_names.hpp"

namespace moe {

struct CompareOptions {
  double threshold_pct = 5.0;  // minimum effect: |delta| must exceed it
  double alpha = 0.05;         // significance level of the two-sided U test
};

struct CompareRow {
  std::string name;
  std::string kernel;                    // first name component (of A)
  double a_us = 0, a_sd = 0, b_us = 0, b_sd = 0;  // mean and stddev over repetitions
  double a_median = 0, b_median = 0;     // median over repetitions: what delta and ratio use
  int a_n = 0, b_n = 0;                  // repetitions with their own time (the test's samples)
  double delta_pct = 0;                  // (b_median - a_median) / a_median * 100
  double ratio = 1;                      // b_median / a_median
  double p = 1;                          // two-sided U test p-value (1 when not tested)
  bool tested = false;                   // whether p comes from a test (2+ repetitions in both runs)
  std::string verdict;  // "regression" | "speedup" | "same" | "not significant" | "unknown" | "error"
  std::string reason;   // why "unknown" (or "error")
};

struct KernelGeomean {
  double ratio = 1;
  int points = 0;
};

struct CompareResult {
  CompareOptions options;
  int min_repetitions = 0;  // n vs n repetitions needed for p < alpha to be possible
  std::vector<CompareRow> rows;
  std::vector<std::string> only_a, only_b;
  std::vector<std::string> warnings;  // printed first, in order
  int regressions = 0, speedups = 0, unknown = 0;
  int timed = 0;                      // rows with times in both runs (the geometric means' points)
  double geomean_ratio = 1;           // geometric mean of B/A median ratios over the timed rows
  std::map<std::string, KernelGeomean> geomean_by_kernel;
  nlohmann::json to_json() const;
};

// Per point (rows of names in both runs):
//   error            either run failed or has no positive time;
//   same             |delta| <= threshold (too small to matter, whatever the test says);
//   unknown          |delta| > threshold but the repetitions cannot reach alpha: a run
//                    with fewer than 2 repetitions, no per-repetition times, or n_a vs n_b
//                    whose smallest possible p (complete separation) is not below alpha;
//   regression /     |delta| > threshold and p < alpha (sign of delta);
//   speedup
//   not significant  |delta| > threshold, p >= alpha.
CompareResult compare_benchmarks(const std::vector<BenchPoint>& a, const std::vector<BenchPoint>& b,
                                 const CompareOptions& opt = {});

// The text output: warnings, the rule, the table (medians, stddevs, repetitions,
// delta, p, verdict), names in one run only, the counts and the geometric means.
std::string format_compare(const CompareResult& r, const std::string& a_label, const std::string& b_label);

// Where a benchmark file ran, from its Google Benchmark context and, in
// `moe-harness bench` files, the per-executable contexts (bench_common.hpp
// records moe_device and the measured ceilings).
struct BenchDevice {
  std::string name;                        // moe_device; distinct names joined by " + "; "" when none recorded
  std::map<std::string, double> ceilings;  // moe_read_gbps, moe_copy_gbps, moe_bf16_tflops when measured (> 0)
};
BenchDevice read_bench_device(const nlohmann::json& doc);

// Measured ceilings of one device vary by a few percent between runs; beyond
// this relative difference the runs did not see the same hardware.
inline constexpr double kCeilingTolerance = 0.10;

// Runs from different devices, or with a ceiling measured on both sides more
// than kCeilingTolerance apart, are not comparable: InputError naming both
// files and the field, unless `force`, which returns the difference as a
// warning ("WARNING: comparing runs from different devices: A=... B=...").
// A file without a device name gives a warning either way.
std::vector<std::string> check_comparable_devices(const BenchDevice& a, const BenchDevice& b, const std::string& a_source,
                                                  const std::string& b_source, bool force);

}  // namespace moe
