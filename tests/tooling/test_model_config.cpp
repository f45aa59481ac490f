// configs/model_configs.json: the committed table's published values, its sweeps
// (a model added to the file reaches the verify cases and the sweep points), and
// every validation error naming the file, the model (or sweep) and the field.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "moe/error.hpp"
#include "moe/model_config.hpp"
#include "moe/registry.hpp"
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

namespace {

std::vector<std::string> case_names(const std::string& family, const VerifyOptions& o) {
  std::vector<std::string> names;
  for (const auto& f : kernel_families())
    if (f.name == family)
      for (const auto& c : f.cases(o)) names.push_back(c.name);
  return names;
}

bool has(const std::vector<std::string>& v, const std::string& x) { return std::find(v.begin(), v.end(), x) != v.end(); }

std::string table_err(const json& doc) {
  try {
    parse_model_table(doc, "mc.json");
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

json with_sweeps() {
  json d = one_model();
  d["models"].push_back(d["models"][0]);
  d["models"][1]["name"] = "n";
  d["sweeps"] = json::parse(R"({"comment": "c",
      "a": {"models": ["m", "n"], "M": [1, 16, 64], "quick_M": [1, 64]},
      "p": {"models": ["n", "m"], "M": [7, 9], "pairwise": true, "quick_models": ["m"]}})");
  return d;
}

}  // namespace

TEST_CASE("model configs: sweep points in order, quick subsets, pairwise sweeps") {
  const ModelTable t = parse_model_table(with_sweeps(), "mc.json");
  auto pts = [&](const char* sweep, bool quick) {
    std::vector<std::string> v;
    for (const auto& p : t.points(sweep, quick)) v.push_back(p.model.name + "@" + std::to_string(p.M));
    return v;
  };
  CHECK(pts("a", false) == std::vector<std::string>{"m@1", "m@16", "m@64", "n@1", "n@16", "n@64"});
  CHECK(pts("a", true) == std::vector<std::string>{"m@1", "m@64", "n@1", "n@64"});
  CHECK(pts("p", false) == std::vector<std::string>{"n@7", "m@9"});
  CHECK(pts("p", true) == std::vector<std::string>{"m@9"});
  CHECK(t.sweep_tokens("a") == std::vector<int64_t>{1, 16, 64});
  CHECK(t.sweep_tokens("a", true) == std::vector<int64_t>{1, 64});
  REQUIRE(t.sweep_models("a").size() == 2);
  CHECK(t.sweep_models("a")[1].name == "n");
  CHECK(t.points("a")[3].model.model_dim == 1024);
  CHECK_THROWS_WITH_AS(t.points("nope"), "mc.json: sweeps.nope: missing", InputError);
  CHECK_THROWS_AS(t.sweep_tokens("p"), InputError);
  // layer_input_spec: the model's shape at M, bf16, fan-in weights, softmax routing.
  const InputSpec s = layer_input_spec(t.model("m"), 33, 5);
  CHECK(s.shape.tokens == 33);
  CHECK(s.shape.model_dim == 1024);
  CHECK(s.shape.inter_dim == 512);
  CHECK(s.shape.experts == 16);
  CHECK(s.shape.top_k == 4);
  CHECK(s.dtype == DType::BF16);
  CHECK(s.values == ValueDist::FanIn);
  CHECK(s.routing == RoutingDist::Softmax);
  CHECK(s.seed == 5);
}

TEST_CASE("model configs: a malformed sweeps section names file and field") {
  CHECK(table_err(with_sweeps()) == "(no error)");
  auto d = with_sweeps();
  d["sweeps"]["a"]["models"][1] = "x";
  CHECK(table_err(d) == "mc.json: sweeps.a.models[1]: unknown model 'x' (known: m, n)");
  d = with_sweeps();
  d["sweeps"]["a"]["M"][2] = 0;
  CHECK(table_err(d) == "mc.json: sweeps.a.M[2]: expected a positive integer, got 0");
  d = with_sweeps();
  d["sweeps"]["a"]["M"] = json::array();
  CHECK(table_err(d) == "mc.json: sweeps.a.M: expected a non-empty array of token counts, got []");
  d = with_sweeps();
  d["sweeps"]["a"].erase("models");
  CHECK(table_err(d) == "mc.json: sweeps.a.models: missing");
  d = with_sweeps();
  d["sweeps"]["a"]["quick_M"] = {1, 4096};
  CHECK(table_err(d) == "mc.json: sweeps.a.quick_M[1]: 4096 is not in M");
  d = with_sweeps();
  d["sweeps"]["a"]["M"] = {1, 16, 1};
  CHECK(table_err(d) == "mc.json: sweeps.a.M[2]: duplicate 1");
  d = with_sweeps();
  d["sweeps"]["p"]["M"] = {7};
  CHECK(table_err(d) == "mc.json: sweeps.p.M: pairwise: needs one M per model (2), got 1");
  d = with_sweeps();
  d["sweeps"]["a"]["tokens"] = {1};
  CHECK(table_err(d).find("mc.json: sweeps.a.tokens: unknown field (known: ") == 0);
  d = with_sweeps();
  d["sweeps"]["a"] = json::array();
  CHECK(table_err(d).find("mc.json: sweeps.a: expected an object") == 0);
  d = with_sweeps();
  d["sweeps"] = 3;
  CHECK(table_err(d) == "mc.json: sweeps: expected an object of named sweeps");
  // Every loader validates the sweeps, the models-only one included.
  d = with_sweeps();
  d["sweeps"]["a"]["pairwise"] = "yes";
  CHECK(err(d) == "mc.json: sweeps.a.pairwise: expected true or false, got \"yes\"");
}

TEST_CASE("model configs: a model added to the file reaches the verify cases and the sweep points") {
  // A copy of the committed file with one more model in every sweep.
  json doc = read_json_file("configs/model_configs.json");
  json extra = doc["models"][0];
  extra["name"] = "test_added";
  extra["model_dim"] = 1536;
  extra["inter_dim"] = 640;
  extra["experts"] = 16;
  extra["top_k"] = 4;
  doc["models"].push_back(extra);
  for (const char* s : {"layer", "fused_moe_q8_verify", "align", "quant_verify"}) {
    REQUIRE(doc["sweeps"].contains(s));
    doc["sweeps"][s]["models"].push_back("test_added");
  }
  doc["sweeps"]["fused_moe_q8_verify"]["M"].push_back(32);
  tooling::TempDir dir;
  const std::string path = dir.path("model_configs.json");
  tooling::spit(path, doc.dump(2));

  VerifyOptions o;
  o.models = load_model_table(path);
  const auto layer = o.models.points("layer");
  REQUIRE(!layer.empty());
  CHECK(layer.back().model.name == "test_added");
  CHECK(layer.back().M == doc["sweeps"]["layer"]["M"].back().get<int64_t>());
  CHECK(layer_input_spec(layer.back().model, 4096).shape.model_dim == 1536);

  const auto fm = case_names("fused_moe", o);
  for (const auto& p : o.models.points("layer")) {
    INFO(p.model.name << " M " << p.M);
    CHECK(has(fm, "gpu/model/" + p.model.name + "_M" + std::to_string(p.M)));
  }
  CHECK(has(fm, "gpu/model/test_added_M1"));
  const auto q8 = case_names("fused_moe_q8", o);
  CHECK(std::count_if(q8.begin(), q8.end(), [](const std::string& n) {
          return n.find("/model/test_added_M32") != std::string::npos;
        }) >= 2);  // one per scheme
  const auto al = case_names("moe_align", o);
  CHECK(has(al, "gpu/model/test_added_M65536_E16_k4_b64_softmax_auto"));  // the added model's (E, top_k)
  const auto qu = case_names("quant", o);
  CHECK(has(qu, "gpu/fp8_per_token/test_added/M16"));
  // The committed file's points keep their case names.
  CHECK(has(fm, "gpu/model/qwen3_235b_M4096"));
  CHECK(has(qu, "gpu/int8_per_token/mixtral_8x7b/M1024"));

  // --quick takes the sweep's quick subsets.
  o.quick = true;
  const auto fq = case_names("fused_moe", o);
  CHECK(has(fq, "gpu/model/test_added_M256"));
  CHECK_FALSE(has(fq, "gpu/model/test_added_M16"));
}

TEST_CASE("verify: case names are unique within each family (full and quick, committed model table)") {
  VerifyOptions o;
  o.models = load_model_table("configs/model_configs.json");
  for (bool quick : {false, true}) {
    o.quick = quick;
    for (const auto& f : kernel_families()) {
      std::set<std::string> seen;
      for (const auto& c : f.cases(o)) {
        INFO(f.name << (quick ? " --quick: " : ": ") << c.name);
        CHECK(seen.insert(c.name).second);
      }
      CHECK(!seen.empty());
    }
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
  d["models"][0]["experts"] = 18446744073709551615ull;  // stored unsigned: past int64, not -1
  CHECK(err(d).find("mc.json: models[0] (m): experts: must be in [1,") == 0);
  CHECK(err(d).find("], got 18446744073709551615") != std::string::npos);
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

TEST_CASE("verify: a corrupt moe_align golden file fails as its own case; the other files still run") {
  tooling::TempDir dir;
  std::filesystem::create_directories(dir.path("moe_align"));
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator("data/moe_align"))
    if (e.path().extension() == ".json") {
      std::filesystem::copy_file(e.path(), dir.path("moe_align/" + e.path().filename().string()));
      ++files;
    }
  REQUIRE(files > 2);
  tooling::spit(dir.path("moe_align/zz_corrupt.json"), "{\"name\": \"x\", \"num_tokens\": [\xff\xfe");
  VerifyOptions o;
  o.models = load_model_table("configs/model_configs.json");
  o.data_dir = dir.path();
  int golden = 0, passed = 0, failed = 0;
  for (const auto& f : kernel_families())
    if (f.name == "moe_align")
      for (const auto& c : f.cases(o)) {
        if (c.name.rfind("golden/", 0) != 0) continue;
        ++golden;
        const CaseResult r = c.run();
        if (r.passed) {
          ++passed;
        } else {
          ++failed;
          CHECK(c.name == "golden/zz_corrupt");
          CHECK(r.message.find("zz_corrupt.json") != std::string::npos);
        }
      }
  CHECK(golden == static_cast<int>(files) + 1);
  CHECK(passed == static_cast<int>(files));
  CHECK(failed == 1);
}
