// Pieces of `moe-harness run fused_moe` that the quantized layer's entry
// (fused_moe_q8_run.cpp) shares: the routing inputs (given top-k or router
// logits routed by reference/routing) and a progress line for long references.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "moe/run_kernel.hpp"

namespace moe::run_fused {

// Inputs topk_weights, topk_ids, router_logits, bias (all optional) and the
// routing parameters (routing, top_k, renormalize, grouped top-k's).
std::vector<RunInput> routing_inputs();
std::vector<RunParam> routing_params();
void routing_from_model(const ModelConfig& m, Params& p);
// The layer's own parameters (activation, router_weight_on_input), what --model
// fills (activation and routing), and the output (out: hidden's dtype and shape).
std::vector<RunParam> layer_params();
void layer_from_model(const ModelConfig& m, Params& p);
OutputSpecs layer_output_specs(const Tensors& in, const Params& p);
// What both layers' entries share, appended to k: the routing inputs, the layer's
// and the routing parameters, the output, --model, the output's shape and the
// entry's validate / reference / check.
void add_layer_common(RunKernel& k, decltype(RunKernel::validate) validate, decltype(RunKernel::reference) reference,
                      decltype(RunKernel::check) check);

bool routes_from_logits(const Tensors& in);
int32_t experts_of(const Tensors& in);  // w1's first extent
int32_t top_k_of(const Tensors& in, const Params& p);
// InputError unless exactly one routing form is given with shapes (M, k) / (M, E),
// ids in [0, E) (ids_in_range) or [-1, E), finite weights, valid routing params.
void validate_routing(const Tensors& in, const Params& p, int64_t M, int32_t E, bool ids_in_range);

struct Routed {
  std::vector<float> weights;  // (M, k)
  std::vector<int32_t> ids;    // (M, k)
  int32_t top_k = 0;
};
Routed routed(const Tensors& in, const Params& p);

// Prints "<what>: N% after S s, about T s left" on stderr 2 s in, then at most
// every 5 s; add() is thread-safe.
class ProgressMeter {
 public:
  ProgressMeter(std::string what, int64_t total);
  void add(int64_t n);

 private:
  using Clock = std::chrono::steady_clock;
  std::string what_;
  int64_t total_;
  std::atomic<int64_t> done_{0};
  Clock::time_point start_, last_;
  bool printed_ = false;
  std::mutex mu_;
};

}  // namespace moe::run_fused
