// configs/model_configs.json: the committed table's published values, and every
// validation error naming the file, the model and the field.
#include <doctest/doctest.h>

#include <string>

#include "moe/error.hpp"
#include "moe/layer_shapes.hpp"
#include "moe/model_config.hpp"
#include "moe/report.hpp"
#include "tooling_util.hpp"

using namespace moe;
using nlohmann::json;

namespace {

json one_model() {
  return json::parse(R"({"schema": 1, "models": [{
      "name": "m", "model_dim": 1024, "inter_dim": 512, "experts": 16, "top_k": 4,
      "routing": {"type": "grouped_topk", "n_group": 4, "topk_group": 2, "scoring": "sigmoid",
                  "routed_scaling_factor": 2.5, "renormalize": true, "bias": "score_correction"},
      "shared_experts": {"count": 1, "inter_dim": 512},
      "source": "test"}]})");
}

std::string err(const json& doc) {
  try {
    parse_model_configs(doc, "mc.json");
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("model configs: the committed table") {
  const auto models = load_model_configs("configs/model_configs.json");
  CHECK(models.size() >= 9);
  for (const char* n : {"mixtral_8x7b", "mixtral_8x22b", "deepseek_v3", "qwen3_235b", "qwen3_30b", "llama4_scout",
                        "gpt_oss_120b", "deepseek_v2_lite", "kimi_k2"})
    CHECK_NOTHROW(find_model(models, n));
  for (const auto& m : models) {
    CHECK(!m.source.empty());
    CHECK(!m.hf_repo.empty());
    CHECK(m.top_k <= m.experts);
  }
  const auto& mx = find_model(models, "mixtral_8x7b");
  CHECK(mx.model_dim == 4096);
  CHECK(mx.inter_dim == 14336);
  CHECK(mx.experts == 8);
  CHECK(mx.top_k == 2);
  const auto& ds = find_model(models, "deepseek_v3");
  CHECK(ds.model_dim == 7168);
  CHECK(ds.inter_dim == 2048);
  CHECK(ds.experts == 256);
  CHECK(ds.top_k == 8);
  CHECK(ds.routing.type == RoutingType::GroupedTopk);
  CHECK(ds.routing.n_group == 8);
  CHECK(ds.routing.topk_group == 4);
  CHECK(ds.routing.scoring == "sigmoid");
  CHECK(ds.routing.routed_scaling_factor == 2.5);
  CHECK(ds.shared.count == 1);
  // The seed says 2048; the published config says 1536 (and the notes say so).
  const auto& qw = find_model(models, "qwen3_235b");
  CHECK(qw.inter_dim == 1536);
  CHECK(qw.notes.find("2048") != std::string::npos);
  const auto& l4 = find_model(models, "llama4_scout");
  CHECK(l4.routing.type == RoutingType::SigmoidTop1);
  CHECK(l4.top_k == 1);
  CHECK(l4.shared.count == 1);
  const auto shape = ds.shape(33);
  CHECK(shape.tokens == 33);
  CHECK(shape.model_dim == 7168);
  CHECK(shape.experts == 256);
  // to_json round-trips through the parser.
  json doc{{"schema", 1}, {"models", json::array()}};
  for (const auto& m : models) doc["models"].push_back(m.to_json());
  const auto again = parse_model_configs(doc, "roundtrip");
  REQUIRE(again.size() == models.size());
  CHECK(again[2].to_json() == models[2].to_json());
}

TEST_CASE("model configs: the benchmark layer shapes are the table's") {
  const auto models = load_model_configs("configs/model_configs.json");
  for (const LayerShape& s : kLayerShapes) {
    INFO(s.name);
    const ModelConfig& m = find_model(models, s.name);
    CHECK(m.model_dim == s.H);
    CHECK(m.inter_dim == s.I);
    CHECK(m.experts == s.E);
    CHECK(m.top_k == s.k);
  }
}

TEST_CASE("model configs: validation errors name file, model and field") {
  CHECK(err(one_model()) == "(no error)");
  auto d = one_model();
  d["models"][0].erase("model_dim");
  CHECK(err(d) == "mc.json: models[0] (m): model_dim: missing");
  d = one_model();
  d["models"][0]["top_k"] = "4";
  CHECK(err(d) == "mc.json: models[0] (m): top_k: expected an integer, got \"4\"");
  d = one_model();
  d["models"][0]["top_k"] = 17;
  CHECK(err(d) == "mc.json: models[0] (m): top_k: 17 exceeds experts (16)");
  d = one_model();
  d["models"][0]["experts"] = 0;
  CHECK(err(d).find("mc.json: models[0] (m): experts: must be in [1,") == 0);
  d = one_model();
  d["models"][0]["routing"]["n_group"] = 3;
  CHECK(err(d) == "mc.json: models[0] (m): routing.n_group: must divide experts (16), got 3");
  d = one_model();
  d["models"][0]["routing"]["topk_group"] = 5;
  CHECK(err(d) == "mc.json: models[0] (m): routing.topk_group: 5 exceeds n_group (4)");
  d = one_model();
  d["models"][0]["routing"]["topk_group"] = 1;
  d["models"][0]["top_k"] = 5;
  CHECK(err(d) == "mc.json: models[0] (m): top_k: 5 exceeds the experts in the top 1 groups (4)");
  d = one_model();
  d["models"][0]["routing"] = {{"type", "sigmoid_top1"}};
  CHECK(err(d) == "mc.json: models[0] (m): top_k: sigmoid_top1 routing needs top_k = 1, got 4");
  d = one_model();
  d["models"][0]["routing"]["type"] = "softmax";
  CHECK(err(d).find("routing.n_group: n_group/topk_group apply to grouped_topk routing only") != std::string::npos);
  d = one_model();
  d["models"][0]["routing"]["type"] = "topk";
  CHECK(err(d) == "mc.json: models[0] (m): routing.type: 'topk' is not one of: softmax, sigmoid_top1, grouped_topk");
  d = one_model();
  d["models"][0]["routing"]["scale"] = 1;
  CHECK(err(d).find("mc.json: models[0] (m): routing.scale: unknown field") == 0);
  d = one_model();
  d["models"][0]["hidden"] = 1;
  CHECK(err(d).find("mc.json: models[0] (m): hidden: unknown field") == 0);
  d = one_model();
  d["models"][0]["routing"]["routed_scaling_factor"] = -1;
  CHECK(err(d).find("routing.routed_scaling_factor: must be a positive number") != std::string::npos);
  d = one_model();
  d["models"][0]["shared_experts"] = {{"count", 2}};
  CHECK(err(d) == "mc.json: models[0] (m): shared_experts.inter_dim: missing");
  d = one_model();
  d["models"][0].erase("source");
  CHECK(err(d) == "mc.json: models[0] (m): source: missing");
  d = one_model();
  d["models"].push_back(d["models"][0]);
  CHECK(err(d) == "mc.json: models[1] (m): name: duplicate model name");
  d = one_model();
  d["models"][0]["name"] = "a b";
  CHECK(err(d).find("name: 'a b': use letters") != std::string::npos);
  CHECK(err(json::array()) == "mc.json: top level must be an object with a 'models' array");
  CHECK(err(json{{"schema", 2}, {"models", json::array()}}).find("schema: unsupported version 2") != std::string::npos);

  const auto models = parse_model_configs(one_model(), "mc.json");
  CHECK_THROWS_WITH_AS(find_model(models, "nope"), "unknown model 'nope' (known: m)", InputError);
}

TEST_CASE("model configs: invalid JSON names the file and the position") {
  tooling::TempDir dir;
  tooling::spit(dir.path("bad.json"), "{\n  \"models\": [\n    {\"name\": \"x\",,}\n  ]\n}\n");
  try {
    load_model_configs(dir.path("bad.json"));
    FAIL("no error");
  } catch (const InputError& e) {
    const std::string m = e.what();
    CHECK(m.find(dir.path("bad.json") + ": invalid JSON") == 0);
    CHECK(m.find("line 3") != std::string::npos);
  }
}
