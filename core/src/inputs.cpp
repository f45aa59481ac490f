#include "moe/inputs.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "moe/error.hpp"

namespace moe {

std::string_view value_dist_name(ValueDist d) { return d == ValueDist::Normal ? "normal" : "fanin"; }

std::string_view routing_dist_name(RoutingDist d) {
  switch (d) {
    case RoutingDist::Softmax: return "softmax";
    case RoutingDist::Balanced: return "balanced";
    case RoutingDist::Zipf: return "zipf";
    case RoutingDist::OneExpert: return "one";
  }
  return "?";
}

ValueDist parse_value_dist(std::string_view s) {
  if (s == "normal") return ValueDist::Normal;
  if (s == "fanin") return ValueDist::FanIn;
  throw_input_error(fmt::format("unknown value distribution '{}' (expected normal or fanin)", s));
}

RoutingDist parse_routing_dist(std::string_view s) {
  if (s == "softmax") return RoutingDist::Softmax;
  if (s == "balanced") return RoutingDist::Balanced;
  if (s == "zipf") return RoutingDist::Zipf;
  if (s == "one") return RoutingDist::OneExpert;
  throw_input_error(fmt::format("unknown routing distribution '{}' (expected softmax, balanced, zipf or one)", s));
}

void InputSpec::validate() const {
  MOE_REQUIRE(shape.tokens > 0, fmt::format("tokens (M) must be positive, got {}", shape.tokens));
  MOE_REQUIRE(shape.experts > 0, fmt::format("experts must be positive, got {}", shape.experts));
  MOE_REQUIRE(shape.top_k > 0 && shape.top_k <= shape.experts,
              fmt::format("top_k must be in [1, experts={}], got {}", shape.experts, shape.top_k));
  MOE_REQUIRE(shape.model_dim >= 0 && shape.inter_dim >= 0, "model_dim and inter_dim must be non-negative");
  MOE_REQUIRE(zipf_exponent > 0, "zipf exponent must be positive");
}

float InputSpec::scale(rng::Stream which) const {
  if (values == ValueDist::Normal) return 1.0f;
  switch (which) {
    case rng::Stream::W1: return static_cast<float>(1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(1, shape.model_dim))));
    case rng::Stream::W2: return static_cast<float>(1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(1, shape.inter_dim))));
    default: return 1.0f;
  }
}

void softmax_scores_row(const InputSpec& spec, int64_t token, std::span<float> probs) {
  const int64_t E = spec.shape.experts;
  const uint64_t base = static_cast<uint64_t>(token) * static_cast<uint64_t>(E);
  float mx = -INFINITY;
  for (int64_t e = 0; e < E; ++e) {
    probs[e] = rng::normal(spec.seed, rng::Stream::Scores, base + static_cast<uint64_t>(e));
    mx = std::max(mx, probs[e]);
  }
  double sum = 0;
  for (int64_t e = 0; e < E; ++e) sum += std::exp(static_cast<double>(probs[e]) - mx);
  for (int64_t e = 0; e < E; ++e) probs[e] = static_cast<float>(std::exp(static_cast<double>(probs[e]) - mx) / sum);
}

Routing make_routing(const InputSpec& spec) {
  spec.validate();
  const int64_t M = spec.shape.tokens;
  const int32_t E = spec.shape.experts, k = spec.shape.top_k;
  Routing r;
  r.tokens = M;
  r.top_k = k;
  r.topk_weights.resize(static_cast<size_t>(M * k));
  r.topk_ids.resize(static_cast<size_t>(M * k));
  std::vector<float> probs(static_cast<size_t>(E));
  std::vector<int32_t> order(static_cast<size_t>(E));
  std::vector<double> key(static_cast<size_t>(E));
  std::vector<double> log_pop(static_cast<size_t>(E));
  if (spec.routing == RoutingDist::Zipf)
    for (int32_t e = 0; e < E; ++e) log_pop[e] = -spec.zipf_exponent * std::log(static_cast<double>(e) + 1.0);

  for (int64_t t = 0; t < M; ++t) {
    softmax_scores_row(spec, t, probs);
    int32_t* ids = &r.topk_ids[static_cast<size_t>(t * k)];
    switch (spec.routing) {
      case RoutingDist::Softmax: {
        // Descending probability, ties to the lower expert index.
        std::iota(order.begin(), order.end(), 0);
        std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
          return probs[a] > probs[b] || (probs[a] == probs[b] && a < b);
        });
        std::copy_n(order.begin(), k, ids);
        break;
      }
      case RoutingDist::Balanced:
        for (int32_t j = 0; j < k; ++j) ids[j] = static_cast<int32_t>((t * k + j) % E);
        break;
      case RoutingDist::Zipf: {
        // Gumbel-top-k: k distinct experts drawn without replacement with
        // probability proportional to 1 / (e + 1)^s.
        for (int32_t e = 0; e < E; ++e) {
          const uint64_t idx = static_cast<uint64_t>(t) * static_cast<uint64_t>(E) + static_cast<uint64_t>(e);
          const double u = (static_cast<double>(rng::bits32(spec.seed, rng::Stream::Routing, idx)) + 0.5) / 4294967296.0;
          key[e] = log_pop[e] - std::log(-std::log(u));
        }
        std::iota(order.begin(), order.end(), 0);
        std::partial_sort(order.begin(), order.begin() + k, order.end(),
                          [&](int32_t a, int32_t b) { return key[a] > key[b] || (key[a] == key[b] && a < b); });
        std::copy_n(order.begin(), k, ids);
        break;
      }
      case RoutingDist::OneExpert:
        for (int32_t j = 0; j < k; ++j) ids[j] = j;
        break;
    }
    for (int32_t j = 0; j < k; ++j) r.topk_weights[static_cast<size_t>(t * k + j)] = probs[ids[j]];
  }
  return r;
}

void fill_host(const InputSpec& spec, rng::Stream which, uint64_t offset, std::span<float> out) {
  const float s = spec.scale(which);
  for (size_t i = 0; i < out.size(); ++i) out[i] = round_to(spec.dtype, rng::normal(spec.seed, which, offset + i) * s);
}

void fill_host_bits16(const InputSpec& spec, rng::Stream which, uint64_t offset, std::span<uint16_t> out) {
  MOE_REQUIRE(spec.dtype == DType::BF16 || spec.dtype == DType::F16, "fill_host_bits16 needs a 16-bit dtype");
  const float s = spec.scale(which);
  for (size_t i = 0; i < out.size(); ++i) {
    const float v = rng::normal(spec.seed, which, offset + i) * s;
    out[i] = spec.dtype == DType::BF16 ? f32_to_bf16_bits(v) : f32_to_f16_bits(v);
  }
}

}  // namespace moe
