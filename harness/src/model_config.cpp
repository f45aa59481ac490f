#include "moe/model_config.hpp"

#include <filesystem>
#include <cctype>
#include <cmath>
#include <limits>
#include <set>

#include <fmt/format.h>

#include "moe/error.hpp"
#include "moe/results.hpp"

namespace moe {
using nlohmann::json;

std::string_view routing_type_name(RoutingType t) {
  switch (t) {
    case RoutingType::Softmax: return "softmax";
    case RoutingType::SigmoidTop1: return "sigmoid_top1";
    case RoutingType::GroupedTopk: return "grouped_topk";
  }
  return "?";
}

json ModelConfig::to_json() const {
  return {{"name", name},
          {"display_name", display_name},
          {"hf_repo", hf_repo},
          {"model_dim", model_dim},
          {"inter_dim", inter_dim},
          {"experts", experts},
          {"top_k", top_k},
          {"activation", activation},
          {"routing",
           {{"type", routing_type_name(routing.type)},
            {"n_group", routing.n_group},
            {"topk_group", routing.topk_group},
            {"scoring", routing.scoring},
            {"routed_scaling_factor", routing.routed_scaling_factor},
            {"renormalize", routing.renormalize},
            {"bias", routing.bias}}},
          {"shared_experts", {{"count", shared.count}, {"inter_dim", shared.inter_dim}}},
          {"layers", layers},
          {"moe_layers", moe_layers},
          {"weight_dtype", weight_dtype},
          {"source", source},
          {"notes", notes}};
}

namespace {

struct Ctx {
  std::string where;  // "file: models[i] (name)"

  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw InputError(fmt::format("{}: {}: {}", where, field, what));
  }
  void only_keys(const json& obj, const std::string& field, std::initializer_list<const char*> keys) const {
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      bool ok = false;
      for (const char* k : keys) ok = ok || it.key() == k;
      if (!ok) {
        std::string known;
        for (const char* k : keys) known += fmt::format("{}{}", known.empty() ? "" : ", ", k);
        fail(field.empty() ? it.key() : field + "." + it.key(), fmt::format("unknown field (known: {})", known));
      }
    }
  }
  const json* find(const json& obj, const char* key, const std::string& field, bool required) const {
    if (!obj.contains(key)) {
      if (required) fail(field, "missing");
      return nullptr;
    }
    return &obj[key];
  }
  int64_t integer(const json& obj, const char* key, const std::string& field, bool required, int64_t dflt,
                  int64_t lo, int64_t hi = std::numeric_limits<int32_t>::max()) const {
    const json* v = find(obj, key, field, required);
    if (!v) return dflt;
    if (!v->is_number_integer()) fail(field, fmt::format("expected an integer, got {}", v->dump()));
    const int64_t x = v->get<int64_t>();
    if (x < lo || x > hi) fail(field, fmt::format("must be in [{}, {}], got {}", lo, hi, x));
    return x;
  }
  double number(const json& obj, const char* key, const std::string& field, bool required, double dflt) const {
    const json* v = find(obj, key, field, required);
    if (!v) return dflt;
    if (!v->is_number()) fail(field, fmt::format("expected a number, got {}", v->dump()));
    return v->get<double>();
  }
  bool boolean(const json& obj, const char* key, const std::string& field, bool required, bool dflt) const {
    const json* v = find(obj, key, field, required);
    if (!v) return dflt;
    if (!v->is_boolean()) fail(field, fmt::format("expected true or false, got {}", v->dump()));
    return v->get<bool>();
  }
  std::string str(const json& obj, const char* key, const std::string& field, bool required, std::string dflt,
                  std::initializer_list<const char*> allowed = {}) const {
    const json* v = find(obj, key, field, required);
    if (!v) return dflt;
    if (!v->is_string()) fail(field, fmt::format("expected a string, got {}", v->dump()));
    std::string s = v->get<std::string>();
    if (required && s.empty()) fail(field, "must not be empty");
    if (allowed.size()) {
      bool ok = false;
      std::string list;
      for (const char* a : allowed) ok = ok || s == a, list += fmt::format("{}{}", list.empty() ? "" : ", ", a);
      if (!ok) fail(field, fmt::format("'{}' is not one of: {}", s, list));
    }
    return s;
  }
};

}  // namespace

std::vector<ModelConfig> parse_model_configs(const json& doc, const std::string& source) {
  if (!doc.is_object()) throw InputError(fmt::format("{}: top level must be an object with a 'models' array", source));
  Ctx top{source};
  top.only_keys(doc, "", {"schema", "comment", "models"});
  if (doc.contains("schema") && doc["schema"] != 1)
    throw InputError(fmt::format("{}: schema: unsupported version {} (this build reads 1)", source, doc["schema"].dump()));
  if (!doc.contains("models") || !doc["models"].is_array())
    throw InputError(fmt::format("{}: models: missing or not an array", source));
  std::vector<ModelConfig> out;
  std::set<std::string> names;
  const auto& arr = doc["models"];
  for (size_t i = 0; i < arr.size(); ++i) {
    const auto& m = arr[i];
    Ctx c{fmt::format("{}: models[{}]", source, i)};
    if (!m.is_object()) c.fail("(entry)", "expected an object");
    ModelConfig mc;
    mc.name = c.str(m, "name", "name", true, "");
    for (char ch : mc.name)
      if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.'))
        c.fail("name", fmt::format("'{}': use letters, digits, '_', '-', '.' only", mc.name));
    c.where = fmt::format("{}: models[{}] ({})", source, i, mc.name);
    if (!names.insert(mc.name).second) c.fail("name", "duplicate model name");
    c.only_keys(m, "", {"name", "display_name", "hf_repo", "model_dim", "inter_dim", "experts", "top_k", "activation",
                        "routing", "shared_experts", "layers", "moe_layers", "weight_dtype", "source", "notes"});
    mc.display_name = c.str(m, "display_name", "display_name", false, mc.name);
    mc.hf_repo = c.str(m, "hf_repo", "hf_repo", false, "");
    mc.model_dim = c.integer(m, "model_dim", "model_dim", true, 0, 1, int64_t{1} << 20);
    mc.inter_dim = c.integer(m, "inter_dim", "inter_dim", true, 0, 1, int64_t{1} << 20);
    mc.experts = static_cast<int32_t>(c.integer(m, "experts", "experts", true, 0, 1, 1 << 16));
    mc.top_k = static_cast<int32_t>(c.integer(m, "top_k", "top_k", true, 0, 1, 1 << 16));
    if (mc.top_k > mc.experts) c.fail("top_k", fmt::format("{} exceeds experts ({})", mc.top_k, mc.experts));
    mc.activation = c.str(m, "activation", "activation", false, "silu", {"silu", "gelu", "swiglu_oai"});
    mc.layers = static_cast<int32_t>(c.integer(m, "layers", "layers", false, 0, 0, 100000));
    mc.moe_layers = static_cast<int32_t>(c.integer(m, "moe_layers", "moe_layers", false, 0, 0, 100000));
    if (mc.layers > 0 && mc.moe_layers > mc.layers)
      c.fail("moe_layers", fmt::format("{} exceeds layers ({})", mc.moe_layers, mc.layers));
    mc.weight_dtype = c.str(m, "weight_dtype", "weight_dtype", false, "");
    mc.source = c.str(m, "source", "source", true, "");
    mc.notes = c.str(m, "notes", "notes", false, "");

    if (!m.contains("routing") || !m["routing"].is_object()) c.fail("routing", "missing or not an object");
    const auto& r = m["routing"];
    c.only_keys(r, "routing", {"type", "n_group", "topk_group", "scoring", "routed_scaling_factor", "renormalize", "bias"});
    const std::string type = c.str(r, "type", "routing.type", true, "", {"softmax", "sigmoid_top1", "grouped_topk"});
    auto& rc = mc.routing;
    rc.type = type == "softmax" ? RoutingType::Softmax : type == "sigmoid_top1" ? RoutingType::SigmoidTop1 : RoutingType::GroupedTopk;
    rc.n_group = static_cast<int32_t>(c.integer(r, "n_group", "routing.n_group", false, 1, 1, 1 << 16));
    rc.topk_group = static_cast<int32_t>(c.integer(r, "topk_group", "routing.topk_group", false, 1, 1, 1 << 16));
    rc.scoring = c.str(r, "scoring", "routing.scoring", false, type == "sigmoid_top1" ? "sigmoid" : "softmax",
                       {"softmax", "sigmoid"});
    rc.routed_scaling_factor = c.number(r, "routed_scaling_factor", "routing.routed_scaling_factor", false, 1.0);
    if (!(rc.routed_scaling_factor > 0) || !std::isfinite(rc.routed_scaling_factor))
      c.fail("routing.routed_scaling_factor", fmt::format("must be a positive number, got {}", rc.routed_scaling_factor));
    rc.renormalize = c.boolean(r, "renormalize", "routing.renormalize", false, false);
    rc.bias = c.str(r, "bias", "routing.bias", false, "none", {"none", "score_correction", "router_linear"});
    if (rc.type == RoutingType::SigmoidTop1) {
      if (mc.top_k != 1) c.fail("top_k", fmt::format("sigmoid_top1 routing needs top_k = 1, got {}", mc.top_k));
      if (rc.scoring != "sigmoid") c.fail("routing.scoring", "sigmoid_top1 routing scores with sigmoid");
    }
    if (rc.type != RoutingType::GroupedTopk && (rc.n_group != 1 || rc.topk_group != 1))
      c.fail("routing.n_group", fmt::format("n_group/topk_group apply to grouped_topk routing only (type is {})", type));
    if (rc.type == RoutingType::GroupedTopk) {
      if (mc.experts % rc.n_group != 0)
        c.fail("routing.n_group", fmt::format("must divide experts ({}), got {}", mc.experts, rc.n_group));
      if (rc.topk_group > rc.n_group)
        c.fail("routing.topk_group", fmt::format("{} exceeds n_group ({})", rc.topk_group, rc.n_group));
      const int64_t reachable = int64_t{rc.topk_group} * (mc.experts / rc.n_group);
      if (mc.top_k > reachable)
        c.fail("top_k", fmt::format("{} exceeds the experts in the top {} groups ({})", mc.top_k, rc.topk_group, reachable));
    }
    if (m.contains("shared_experts")) {
      const auto& s = m["shared_experts"];
      if (!s.is_object()) c.fail("shared_experts", "expected an object {\"count\": n, \"inter_dim\": d}");
      c.only_keys(s, "shared_experts", {"count", "inter_dim"});
      mc.shared.count = static_cast<int32_t>(c.integer(s, "count", "shared_experts.count", true, 0, 0, 1 << 16));
      mc.shared.inter_dim = c.integer(s, "inter_dim", "shared_experts.inter_dim", mc.shared.count > 0, 0, 0, int64_t{1} << 20);
      if (mc.shared.count > 0 && mc.shared.inter_dim == 0)
        c.fail("shared_experts.inter_dim", "must be positive when count > 0");
    }
    out.push_back(std::move(mc));
  }
  return out;
}

std::vector<ModelConfig> load_model_configs(const std::string& path) {
  return parse_model_configs(read_json_file(path), path);
}

const ModelConfig& find_model(const std::vector<ModelConfig>& models, std::string_view name) {
  for (const auto& m : models)
    if (m.name == name) return m;
  std::string known;
  for (const auto& m : models) known += fmt::format("{}{}", known.empty() ? "" : ", ", m.name);
  throw InputError(fmt::format("unknown model '{}' (known: {})", name, known));
}

std::string find_config_file(std::string_view file, std::string_view source_dir) {
  const std::filesystem::path here = std::filesystem::path("configs") / file;
  if (std::filesystem::exists(here)) return here.string();
  return (std::filesystem::path(source_dir) / "configs" / file).string();
}

}  // namespace moe
