// The fused-MoE layer shapes that the issue-5/6 benchmarks and GPU tests run at
// M = 1..4096: model_dim, inter_dim, experts, top_k of configs/model_configs.json
// (Qwen3-235B-A22B with its published inter_dim 1536). Constants, so benchmarks
// register their points without reading files; a CPU test
// (tests/tooling/test_model_config.cpp) keeps them equal to the JSON table.
#pragma once
#include <cstdint>

#include "moe/inputs.hpp"

namespace moe {

struct LayerShape {
  const char* name;  // the model's name in configs/model_configs.json
  int64_t H;         // model_dim
  int64_t I;         // inter_dim (per expert)
  int32_t E;         // experts
  int32_t k;         // top_k
};

inline constexpr LayerShape kLayerShapes[] = {
    {"mixtral_8x7b", 4096, 14336, 8, 2},
    {"deepseek_v3", 7168, 2048, 256, 8},
    {"qwen3_235b", 4096, 1536, 128, 8},
};
inline constexpr int64_t kLayerTokenCounts[] = {1, 16, 64, 256, 1024, 4096};

// bf16 inputs, weights scaled by 1/sqrt(fan-in), softmax routing of normal scores.
inline InputSpec layer_input_spec(const LayerShape& m, int64_t M, uint64_t seed = 0) {
  InputSpec s;
  s.shape = {M, m.H, m.I, m.E, m.k};
  s.dtype = DType::BF16;
  s.values = ValueDist::FanIn;
  s.routing = RoutingDist::Softmax;
  s.seed = seed;
  return s;
}

}  // namespace moe
