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
// The top-level "sweeps" object names, for each benchmark / verify / tune sweep,
// the models it runs and the token counts M (see configs/README.md):
//
//   "sweeps": { "layer": { "models": ["mixtral_8x7b", ...], "M": [1, 16, ...], "quick_M": [1, 256, 4096] }, ... }
//
// Loading validates every field; an error names the file, the model (or sweep)
// and the field, e.g. "configs/model_configs.json: models[2] (deepseek_v3): routing.n_group:
// must divide experts (256), got 7", "configs/model_configs.json: sweeps.layer.models[1]: unknown model 'x' (known: ...)".
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

// One sweep of "sweeps": every model at every M (model-major), or with `pairwise`
// model i at M[i] only. The quick subset (verify --quick) keeps quick_models and
// quick_M (empty: all of them).
struct Sweep {
  std::string name;  // key in "sweeps", e.g. "layer"
  std::vector<std::string> models;
  std::vector<int64_t> M;
  std::vector<std::string> quick_models;
  std::vector<int64_t> quick_M;
  bool pairwise = false;
};

struct SweepPoint {
  ModelConfig model;
  int64_t M = 0;
};

// The parsed file: models and sweeps. Passed to whatever builds points from it.
struct ModelTable {
  std::string source;  // the file, as named in errors
  std::vector<ModelConfig> models;
  std::vector<Sweep> sweeps;

  const ModelConfig& model(std::string_view name) const;  // InputError listing the known names
  const Sweep& sweep(std::string_view name) const;        // InputError "<source>: sweeps.<name>: missing"
  // The sweep's points in order (model-major); the quick subset with quick = true.
  std::vector<SweepPoint> points(std::string_view sweep, bool quick = false) const;
  // The sweep's models in order, each once.
  std::vector<ModelConfig> sweep_models(std::string_view sweep, bool quick = false) const;
  // The sweep's token counts (quick_M with quick = true); InputError for a pairwise sweep.
  std::vector<int64_t> sweep_tokens(std::string_view sweep, bool quick = false) const;
};

// Parses and validates a model_configs.json document; `source` names it in errors.
ModelTable parse_model_table(const nlohmann::json& doc, const std::string& source);
// Reads and validates a file. InputError names the file, model (or sweep) and field.
ModelTable load_model_table(const std::string& path);
// The models alone (the whole document is validated, sweeps included).
std::vector<ModelConfig> parse_model_configs(const nlohmann::json& doc, const std::string& source);
std::vector<ModelConfig> load_model_configs(const std::string& path);
// The model called `name`; InputError listing the known names otherwise.
const ModelConfig& find_model(const std::vector<ModelConfig>& models, std::string_view name);

// The inputs of a model's layer at M tokens: bf16, weights scaled by
// 1/sqrt(fan-in), softmax routing of normal scores (benchmarks, GPU tests, verify).
InputSpec layer_input_spec(const ModelConfig& m, int64_t M, uint64_t seed = 0);

// Where the harness finds its configs and golden data, first hit wins:
//   1. configs/<file> (data/) under the current folder;
//   2. <prefix>/share/moe-harness/configs/<file> (data/) of an installed binary
//      (<prefix>/bin/moe-harness, <prefix>/libexec/moe-harness/bench_*), found from
//      the executable's own path, so a relocated prefix works too;
//   3. the source tree the binary was built from (source_dir).
std::string find_config_file(std::string_view file, std::string_view source_dir);
std::string find_data_dir(std::string_view source_dir);
// <prefix>/share/moe-harness when this executable runs from an installed prefix, else empty.
std::string installed_share_dir();

}  // namespace moe
