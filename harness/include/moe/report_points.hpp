// How the report reads one benchmark point: the benchmark function, model and
// parameters its name holds, where it is plotted, the math it does, and how far
// it is from its floor (the larger of the bandwidth floor and the compute floor
// at the measured peak of that math).
#pragma once
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "moe/bench_names.hpp"

namespace moe {

// Measured ceilings (0: not measured). A Google Benchmark context records them
// as moe_read_gbps, moe_bf16_tflops, moe_fp8_tflops and moe_int8_tops (numbers
// or numeric strings; "n/a" and anything else that is no positive number: not measured).
struct Peaks {
  double read_gbps = 0;
  double bf16_tflops = 0;
  double fp8_tflops = 0;
  double int8_tops = 0;
  static Peaks from_context(const nlohmann::json& context);
  // The peak of a dtype ("bf16", "fp8", "int8"); 0 when not measured or unknown.
  double of_dtype(const std::string& dtype) const;
};

struct PointShape {
  std::string family;  // BenchPoint::kernel: the executable's family (fused_moe, routing, ...)
  std::string bench;   // the benchmark function without "BM_" (fused_moe_layer, q8_layer, align_cfg);
                       // a function named after a model is the family plus what follows the
                       // model name (BM_deepseek_v3_warm: routing_warm)
  std::string model;   // a model of configs/model_configs.json, or ""
  // The name's other components in order: ("E", "256") for "E:256", ("", "fp8_tensor") for a bare value.
  std::vector<std::pair<std::string, std::string>> params;
  std::string key;      // the name without M and Google Benchmark's suffixes: a baseline matches on (key, M)
  double x = NAN;       // where the point is plotted: M, else the MiB counter
  std::string x_label;  // "M (tokens)" or "MiB"; "" when the point has neither
  std::string dtype;    // the math of its FLOPs: bf16, fp8 or int8; "" when it declares none
  std::string params_text() const;  // "E:256 k:8 fp8_tensor"
};

// `model_names`: the models of configs/model_configs.json, to find the model in a name.
PointShape shape_of(const BenchPoint& p, const std::vector<std::string>& model_names);

struct Floor {
  double bandwidth_us = NAN;  // declared bytes / measured read bandwidth
  double compute_us = NAN;    // declared FLOPs / measured peak of the point's dtype
  double us = NAN;            // the larger of the two
  std::string bound;          // "bandwidth" | "compute" | "" (no floor)
  std::string note;           // why a part is missing ("no fp8 peak measured")
  nlohmann::json to_json() const;
};

// The floor of a point from its `bytes` and `flops` counters.
Floor floor_of(const BenchPoint& p, const std::string& dtype, const Peaks& peaks);

}  // namespace moe
