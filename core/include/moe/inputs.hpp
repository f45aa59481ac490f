// Input generation equivalent to aiter's input_helper_e2e (its Triton MoE tests):
//   hidden (M, model_dim), w1 (E, 2*inter_dim, model_dim) gate rows then up rows,
//   w2 (E, model_dim, inter_dim), scores (M, E) -> softmax -> top-k weights/ids.
// Every element comes from the counter-based RNG, so the GPU fills big tensors in
// place and a CPU reference regenerates any slice: element i of w1 is
//   round_to(dtype, normal(seed, Stream::W1, i) * scale(W1)).
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "moe/dtype.hpp"
#include "moe/rng.hpp"

namespace moe {

// Plain standard normal (torch.randn, as aiter's tests draw), or divided by sqrt(fan_in)
// so GEMM outputs stay O(1) (what the anchors use).
enum class ValueDist { Normal, FanIn };
// Softmax of normal scores then top-k (default, as aiter's tests); balanced round-robin;
// Zipf-skewed expert popularity; every token to the same experts.
enum class RoutingDist { Softmax, Balanced, Zipf, OneExpert };

std::string_view value_dist_name(ValueDist d);
std::string_view routing_dist_name(RoutingDist d);
ValueDist parse_value_dist(std::string_view s);      // "normal" | "fanin"
RoutingDist parse_routing_dist(std::string_view s);  // "softmax" | "balanced" | "zipf" | "one"

struct MoeShape {
  int64_t tokens = 0;     // M
  int64_t model_dim = 0;  // K of stage 1, N of stage 2
  int64_t inter_dim = 0;  // per-expert intermediate width
  int32_t experts = 0;    // E
  int32_t top_k = 0;
};

struct InputSpec {
  MoeShape shape;
  DType dtype = DType::BF16;
  ValueDist values = ValueDist::Normal;
  RoutingDist routing = RoutingDist::Softmax;
  uint64_t seed = 0;
  double zipf_exponent = 1.2;

  // Throws InputError for non-positive sizes or top_k > experts.
  void validate() const;
  // Element counts of each tensor.
  int64_t hidden_elems() const { return shape.tokens * shape.model_dim; }
  int64_t w1_elems() const { return int64_t{shape.experts} * 2 * shape.inter_dim * shape.model_dim; }
  int64_t w2_elems() const { return int64_t{shape.experts} * shape.model_dim * shape.inter_dim; }
  // Multiplier applied to normal() for `which` (1, or 1/sqrt(fan_in) for FanIn).
  float scale(rng::Stream which) const;
};

struct Routing {
  int64_t tokens = 0;
  int32_t top_k = 0;
  std::vector<float> topk_weights;  // (M, top_k)
  std::vector<int32_t> topk_ids;    // (M, top_k), distinct experts per token
};

// Deterministic routing for the spec (CPU; O(E) memory per token).
Routing make_routing(const InputSpec& spec);

// Softmax of one row of normal scores: probs[e] for token t.
void softmax_scores_row(const InputSpec& spec, int64_t token, std::span<float> probs);

// Regenerate elements [offset, offset + out.size()) of tensor `which`, rounded to
// spec.dtype and widened to float.
void fill_host(const InputSpec& spec, rng::Stream which, uint64_t offset, std::span<float> out);

// The same values as raw element bits (bf16/fp16: uint16 bits; f32: use fill_host).
void fill_host_bits16(const InputSpec& spec, rng::Stream which, uint64_t offset, std::span<uint16_t> out);

}  // namespace moe
