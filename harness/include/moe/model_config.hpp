// MoE layer shapes and routing of published models, read from
// configs/model_configs.json. Example entry (see configs/README.md):
//
//   { "name": "deepseek_v3", "display_name": "DeepSeek-V3", "hf_repo": "deepseek-ai/DeepSeek-V3",
//     "model_dim": 7168, "inter_dim": 2048, "experts": 256, "top_k": 8, "activation": "silu",
//     "routing": { "type": "grouped_topk", "n_group": 8, "topk_group": 4, "scoring": "sigmoid",
//                  "routed_scaling_factor": 2.5, "renormalize": true, "bias": "score_correction" },
//     "shared_experts": { "count": 1, "inter_dim": 2048 },
//     "source": "...", "notes": "..." }
//
// Loading validates every field; an error names the file, the model and the
// field, e.g. "configs/model_configs.json: models[2] (deepseek_v3): routing.n_group:
// must divide experts (256), got 7".
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "moe/inputs.hpp"

namespace moe {

enum class RoutingType {
  Softmax,      // softmax over all experts, top-k (optionally renormalised over the k)
  SigmoidTop1,  // top-1 expert by logit, weight sigmoid(logit) (Llama 4)
  GroupedTopk,  // DeepSeek-V3 style: score, pick topk_group groups of experts, top-k among them
};
std::string_view routing_type_name(RoutingType t);

struct RoutingConfig {
  RoutingType type = RoutingType::Softmax;
  int32_t n_group = 1;
  int32_t topk_group = 1;
  std::string scoring = "softmax";   // "softmax" | "sigmoid"
  double routed_scaling_factor = 1.0;
  bool renormalize = false;          // weights divided by their sum over the selected k
  // "none"; "score_correction" (a learned per-expert bias added to the scores for
  // selection only: DeepSeek-V3 noaux_tc, Kimi-K2); "router_linear" (the router
  // projection itself has a bias: gpt-oss).
  std::string bias = "none";
};

struct SharedExperts {
  int32_t count = 0;
  int64_t inter_dim = 0;  // per shared expert
};

struct ModelConfig {
  std::string name;           // key used on the command line and in benchmark names, e.g. "deepseek_v3"
  std::string display_name;   // "DeepSeek-V3"
  std::string hf_repo;        // hub repository the config.json comes from
  int64_t model_dim = 0;      // hidden_size
  int64_t inter_dim = 0;      // per-expert intermediate size (moe_intermediate_size where the model has one)
  int32_t experts = 0;        // routed experts
  int32_t top_k = 0;
  std::string activation = "silu";   // "silu" (SwiGLU) | "gelu" | "swiglu_oai" (gpt-oss clamped SwiGLU)
  RoutingConfig routing;
  SharedExperts shared;
  int32_t layers = 0;         // num_hidden_layers (0 = not recorded)
  int32_t moe_layers = 0;     // layers with an MoE block (0 = not recorded)
  std::string weight_dtype;   // as published, e.g. "bf16", "fp8_e4m3 block 128x128", "mxfp4"
  std::string source;
  std::string notes;

  MoeShape shape(int64_t tokens) const { return MoeShape{tokens, model_dim, inter_dim, experts, top_k}; }
  nlohmann::json to_json() const;
};

// Parses and validates a model_configs.json document; `source` names it in errors.
std::vector<ModelConfig> parse_model_configs(const nlohmann::json& doc, const std::string& source);
// Reads and validates a file. InputError names the file, model and field.
std::vector<ModelConfig> load_model_configs(const std::string& path);
// The model called `name`; InputError listing the known names otherwise.
const ModelConfig& find_model(const std::vector<ModelConfig>& models, std::string_view name);

// configs/<file> under the current folder if it exists, else under source_dir.
std::string find_config_file(std::string_view file, std::string_view source_dir);

}  // namespace moe
