#include "moe/model_config.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <cmath>
#include <limits>
#include <set>

#include <fmt/format.h>

#include "moe/error.hpp"
#include "moe/json_numbers.hpp"
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
    if (!json_integer_in(*v, lo, hi)) fail(field, fmt::format("must be in [{}, {}], got {}", lo, hi, v->dump()));
    return v->get<int64_t>();
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

namespace {

std::string join_names(const std::vector<ModelConfig>& models) {
  std::string known;
  for (const auto& m : models) known += fmt::format("{}{}", known.empty() ? "" : ", ", m.name);
  return known;
}

std::vector<int64_t> token_list(const Ctx& c, const json& s, const char* key, const std::string& field, bool required) {
  const json* v = c.find(s, key, field, required);
  if (!v) return {};
  if (!v->is_array() || v->empty()) c.fail(field, fmt::format("expected a non-empty array of token counts, got {}", v->dump()));
  std::vector<int64_t> out;
  for (size_t i = 0; i < v->size(); ++i) {
    const std::string f = fmt::format("{}[{}]", field, i);
    const json& x = (*v)[i];
    if (!x.is_number_integer() || x.get<int64_t>() < 1)
      c.fail(f, fmt::format("expected a positive integer, got {}", x.dump()));
    out.push_back(x.get<int64_t>());
  }
  return out;
}

std::vector<std::string> name_list(const Ctx& c, const json& s, const char* key, const std::string& field, bool required,
                                   const std::vector<ModelConfig>& models) {
  const json* v = c.find(s, key, field, required);
  if (!v) return {};
  if (!v->is_array() || v->empty()) c.fail(field, fmt::format("expected a non-empty array of model names, got {}", v->dump()));
  std::vector<std::string> out;
  for (size_t i = 0; i < v->size(); ++i) {
    const std::string f = fmt::format("{}[{}]", field, i);
    const json& x = (*v)[i];
    if (!x.is_string()) c.fail(f, fmt::format("expected a model name, got {}", x.dump()));
    const std::string n = x.get<std::string>();
    bool known = false;
    for (const auto& m : models) known = known || m.name == n;
    if (!known) c.fail(f, fmt::format("unknown model '{}' (known: {})", n, join_names(models)));
    out.push_back(n);
  }
  return out;
}

// Every entry of `sub` is one of `all`, once.
template <class T>
void check_subset(const Ctx& c, const std::string& field, const std::vector<T>& sub, const std::vector<T>& all,
                  const char* of) {
  for (size_t i = 0; i < sub.size(); ++i) {
    if (std::find(all.begin(), all.end(), sub[i]) == all.end())
      c.fail(fmt::format("{}[{}]", field, i), fmt::format("{} is not in {}", json(sub[i]).dump(), of));
    if (std::find(sub.begin(), sub.begin() + static_cast<std::ptrdiff_t>(i), sub[i]) != sub.begin() + static_cast<std::ptrdiff_t>(i))
      c.fail(fmt::format("{}[{}]", field, i), fmt::format("duplicate {}", json(sub[i]).dump()));
  }
}

std::vector<Sweep> parse_sweeps(const json& doc, const std::string& source, const std::vector<ModelConfig>& models) {
  std::vector<Sweep> out;
  if (!doc.contains("sweeps")) return out;
  const Ctx c{source};
  const json& sw = doc["sweeps"];
  if (!sw.is_object()) c.fail("sweeps", "expected an object of named sweeps");
  for (auto it = sw.begin(); it != sw.end(); ++it) {
    const std::string field = "sweeps." + it.key();
    if (it.key() == "comment") {
      if (!it->is_string()) c.fail(field, "expected a string");
      continue;
    }
    const json& s = *it;
    if (!s.is_object()) c.fail(field, "expected an object {\"models\": [...], \"M\": [...]}");
    c.only_keys(s, field, {"comment", "models", "M", "quick_models", "quick_M", "pairwise"});
    Sweep w;
    w.name = it.key();
    w.models = name_list(c, s, "models", field + ".models", true, models);
    w.M = token_list(c, s, "M", field + ".M", true);
    w.quick_models = name_list(c, s, "quick_models", field + ".quick_models", false, models);
    w.quick_M = token_list(c, s, "quick_M", field + ".quick_M", false);
    w.pairwise = c.boolean(s, "pairwise", field + ".pairwise", false, false);
    if (s.contains("comment") && !s["comment"].is_string()) c.fail(field + ".comment", "expected a string");
    if (w.pairwise) {
      if (w.M.size() != w.models.size())
        c.fail(field + ".M", fmt::format("pairwise: needs one M per model ({}), got {}", w.models.size(), w.M.size()));
      if (!w.quick_M.empty()) c.fail(field + ".quick_M", "pairwise: use quick_models to pick the quick points");
    } else {
      check_subset(c, field + ".models", w.models, w.models, "models");
      check_subset(c, field + ".M", w.M, w.M, "M");
    }
    check_subset(c, field + ".quick_models", w.quick_models, w.models, "models");
    check_subset(c, field + ".quick_M", w.quick_M, w.M, "M");
    out.push_back(std::move(w));
  }
  return out;
}

}  // namespace

std::vector<ModelConfig> parse_model_configs(const json& doc, const std::string& source) {
  return parse_model_table(doc, source).models;
}

ModelTable parse_model_table(const json& doc, const std::string& source) {
  if (!doc.is_object()) throw InputError(fmt::format("{}: top level must be an object with a 'models' array", source));
  Ctx top{source};
  top.only_keys(doc, "", {"schema", "comment", "models", "sweeps"});
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
  ModelTable table;
  table.source = source;
  table.sweeps = parse_sweeps(doc, source, out);
  table.models = std::move(out);
  return table;
}

ModelTable load_model_table(const std::string& path) { return parse_model_table(read_json_file(path), path); }

std::vector<ModelConfig> load_model_configs(const std::string& path) { return load_model_table(path).models; }

const ModelConfig& find_model(const std::vector<ModelConfig>& models, std::string_view name) {
  for (const auto& m : models)
    if (m.name == name) return m;
  throw InputError(fmt::format("unknown model '{}' (known: {})", name, join_names(models)));
}

const ModelConfig& ModelTable::model(std::string_view name) const { return find_model(models, name); }

const Sweep& ModelTable::sweep(std::string_view name) const {
  for (const auto& s : sweeps)
    if (s.name == name) return s;
  throw InputError(fmt::format("{}: sweeps.{}: missing", source, name));
}

std::vector<SweepPoint> ModelTable::points(std::string_view name, bool quick) const {
  const Sweep& s = sweep(name);
  auto kept = [](const auto& x, const auto& subset) {
    return subset.empty() || std::find(subset.begin(), subset.end(), x) != subset.end();
  };
  std::vector<SweepPoint> out;
  for (size_t i = 0; i < s.models.size(); ++i) {
    if (quick && !kept(s.models[i], s.quick_models)) continue;
    const ModelConfig& m = model(s.models[i]);
    if (s.pairwise) {
      out.push_back({m, s.M[i]});
      continue;
    }
    for (int64_t M : s.M)
      if (!quick || kept(M, s.quick_M)) out.push_back({m, M});
  }
  return out;
}

std::vector<ModelConfig> ModelTable::sweep_models(std::string_view name, bool quick) const {
  std::vector<ModelConfig> out;
  for (auto& p : points(name, quick))
    if (out.empty() || out.back().name != p.model.name) out.push_back(std::move(p.model));
  return out;
}

std::vector<int64_t> ModelTable::sweep_tokens(std::string_view name, bool quick) const {
  const Sweep& s = sweep(name);
  if (s.pairwise) throw InputError(fmt::format("{}: sweeps.{}: pairwise sweep has no common token list", source, name));
  return quick && !s.quick_M.empty() ? s.quick_M : s.M;
}

InputSpec layer_input_spec(const ModelConfig& m, int64_t M, uint64_t seed) {
  InputSpec s;
  s.shape = m.shape(M);
  s.dtype = DType::BF16;
  s.values = ValueDist::FanIn;
  s.routing = RoutingDist::Softmax;
  s.seed = seed;
  return s;
}

std::string installed_share_dir() {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  // bin/moe-harness -> <prefix>; libexec/moe-harness/bench_x -> <prefix>
  for (fs::path dir = exe.parent_path(); !dir.empty() && dir != dir.root_path(); dir = dir.parent_path()) {
    const fs::path share = dir / "share" / "moe-harness";
    if (fs::is_directory(share / "configs", ec)) return share.string();
    if (dir.filename() != "libexec" && dir.filename() != "moe-harness" && dir.filename() != "bin") break;
  }
  return {};
}

namespace {
std::string find_installed(const std::filesystem::path& rel, std::string_view source_dir) {
  std::error_code ec;
  if (std::filesystem::exists(rel, ec)) return rel.string();
  if (const std::string share = installed_share_dir(); !share.empty()) {
    const auto p = std::filesystem::path(share) / rel;
    if (std::filesystem::exists(p, ec)) return p.string();
  }
  return (std::filesystem::path(source_dir) / rel).string();
}
}  // namespace

std::string find_config_file(std::string_view file, std::string_view source_dir) {
  return find_installed(std::filesystem::path("configs") / file, source_dir);
}

std::string find_data_dir(std::string_view source_dir) { return find_installed("data", source_dir); }

}  // namespace moe
