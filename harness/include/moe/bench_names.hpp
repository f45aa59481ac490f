// Google Benchmark documents read as BenchPoints.
//
// Benchmark naming understood here (set by bench/bench_common.hpp):
//   name  "<kernel>/<model>/<variant parts...>/M:<tokens>[/manual_time]"
//   label "model=<name> [key=value ...]"   (model from the label wins)
//   user counters  us, GBps, TFLOPs, pct_read_bw, pct_bf16_flops, M
//   (pct_bw / pct_flops are accepted as aliases). Latency is the `us` counter,
//   else real_time converted from time_unit. With --benchmark_repetitions the
//   mean, median and stddev aggregates are used; without aggregates, repeated
//   iteration entries of one run_name are averaged here. Either way each
//   repetition's own latency (its iteration entry) is kept too.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace moe {

struct BenchPoint {
  std::string name;     // run_name without aggregate suffix, e.g. "align/deepseek_v3/M:4096/manual_time"
  std::string kernel;   // first name component
  std::string model;    // label model=..., else second component; "" if none
  std::string variant;  // remaining components (not kernel, model, M or Google Benchmark's own), '/'-joined
  int64_t m = -1;       // counter M, else name component M:<n>; -1 if absent
  double us = 0;        // mean latency in microseconds
  double us_stddev = 0; // stddev over repetitions (0 with one sample)
  int samples = 1;      // repetitions behind us / us_stddev
  double us_median = 0; // median over repetitions: the median aggregate, else of rep_us, else us
  std::vector<double> rep_us;  // latency of each repetition (iteration entries, file order);
                               // empty when the file holds only aggregates
  std::map<std::string, double> counters;  // mean of every user counter
  std::string label;
  std::string source;   // file it came from
  bool error = false;   // Google Benchmark reported error_occurred (SkipWithError)
  std::string error_message;
  nlohmann::json to_json() const;
};

// "key=value" tokens of a benchmark label (separated by spaces, commas,
// semicolons or tabs); tokens without '=' are ignored.
std::map<std::string, std::string> parse_bench_label(const std::string& label);

// A measured ceiling from a benchmark context (moe_read_gbps, moe_bf16_tflops, ...):
// bench_common writes them as strings ("3086.9"); numbers are taken too. 0 when
// the key is missing or the value is not a positive finite number ("n/a", "0.0").
double context_ceiling(const nlohmann::json& context, const char* key);

// Parses a Google Benchmark JSON document; InputError naming `source` when it
// is not one.
std::vector<BenchPoint> read_bench_points(const nlohmann::json& doc, const std::string& source);

}  // namespace moe
