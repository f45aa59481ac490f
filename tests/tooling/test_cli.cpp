// The moe-harness commands end to end (binary from $MOE_HARNESS): compare,
// merge, verify --shard, report, run, list. Exit codes: 0 ok, 1 a check failed
// or a regression, 2 bad input.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include <fmt/format.h>

#include "moe/npy.hpp"
#include "moe/report.hpp"
#include "reference/moe_align/moe_align_ref.hpp"
#include "reference/routing/routing_ref.hpp"
#include "tooling_util.hpp"

using namespace moe;
using tooling::harness;
using tooling::TempDir;

namespace {
const std::string kData = "tests/tooling/data/";
}

TEST_CASE("cli compare: 0 same, 1 regression, 0 speedup, 2 bad input") {
  TempDir d;
  auto r = harness("compare " + kData + "compare_a.json " + kData + "compare_b_same.json", d);
  CHECK_MESSAGE(r.code == 0, r.out);
  CHECK(r.out.find("same") != std::string::npos);
  r = harness("compare " + kData + "compare_a.json " + kData + "compare_b_slower.json --json " + d.path("c.json"), d);
  CHECK_MESSAGE(r.code == 1, r.out);
  CHECK(r.out.find("REGRESSION") != std::string::npos);
  CHECK(read_json_file(d.path("c.json"))["regressions"] == 3);  // every point +10 %, 5 vs 5 separated
  r = harness("compare " + kData + "compare_a.json " + kData + "compare_b_slower.json --threshold 20", d);
  CHECK_MESSAGE(r.code == 0, r.out);
  r = harness("compare " + kData + "compare_a.json " + kData + "compare_b_faster.json", d);
  CHECK_MESSAGE(r.code == 0, r.out);
  CHECK(r.out.find("speedup") != std::string::npos);
  r = harness("compare " + kData + "compare_a.json " + kData + "sample_verify.json", d);
  CHECK_MESSAGE(r.code == 2, r.out);
  CHECK(r.out.find("not a Google Benchmark JSON document") != std::string::npos);
  r = harness("compare " + kData + "compare_a.json /nonexistent.json", d);
  CHECK_MESSAGE(r.code == 2, r.out);
  tooling::spit(d.path("broken.json"), "{\"benchmarks\": [");
  r = harness("compare " + kData + "compare_a.json " + d.path("broken.json"), d);
  CHECK_MESSAGE(r.code == 2, r.out);
  CHECK(r.out.find("invalid JSON") != std::string::npos);
  tooling::spit(d.path("other.json"), R"({"benchmarks": [{"name": "other/M:1", "real_time": 1.0, "time_unit": "us"}]})");
  r = harness("compare " + kData + "compare_a.json " + d.path("other.json"), d);
  CHECK_MESSAGE(r.code == 2, r.out);
  CHECK(r.out.find("no benchmark name in common") != std::string::npos);
  r = harness("compare " + kData + "compare_a.json " + kData + "compare_b_same.json --threshold -3", d);
  CHECK_MESSAGE(r.code == 2, r.out);
}

TEST_CASE("cli verify --shard and merge") {
  TempDir d;
  auto r = harness("verify --shard 2/2 --json " + d.path("x.json"), d);
  CHECK_MESSAGE(r.code == 2, r.out);
  CHECK(r.out.find("--shard '2/2'") != std::string::npos);
  r = harness("verify --shard banana --json " + d.path("x.json"), d);
  CHECK_MESSAGE(r.code == 2, r.out);
  // Full run, then two shards; merged shards hold exactly the full run's cases.
  r = harness("verify --quick --json " + d.path("full.json"), d);
  REQUIRE_MESSAGE((r.code == 0 || r.code == 1), r.out);
  const int full_code = r.code;
  for (int i = 0; i < 2; ++i) {
    r = harness(fmt::format("verify --quick --shard {}/2 --json {}", i, d.path(fmt::format("s{}.json", i))), d);
    CHECK_MESSAGE((r.code == 0 || r.code == 1), r.out);
  }
  const auto full = read_json_file(d.path("full.json"));
  const auto s0 = read_json_file(d.path("s0.json")), s1 = read_json_file(d.path("s1.json"));
  CHECK(s0["shard"]["index"] == 0);
  CHECK(s1["shard"]["count"] == 2);
  CHECK(s0["cases"].size() + s1["cases"].size() == full["cases"].size());
  r = harness("merge " + d.path("s1.json") + " " + d.path("s0.json") + " --out " + d.path("m.json"), d);
  CHECK_MESSAGE(r.code == full_code, r.out);
  const auto m = read_json_file(d.path("m.json"));
  REQUIRE(m["cases"].size() == full["cases"].size());
  for (size_t i = 0; i < m["cases"].size(); ++i) {
    CHECK(m["cases"][i]["name"] == full["cases"][i]["name"]);
    CHECK(m["cases"][i]["status"] == full["cases"][i]["status"]);
  }
  CHECK(m["summary"] == full["summary"]);
  r = harness("merge " + d.path("s0.json") + " --out " + d.path("m2.json"), d);
  CHECK_MESSAGE(r.code == 2, r.out);
  CHECK(r.out.find("missing shard(s) 1/2") != std::string::npos);
  CHECK(!std::filesystem::exists(d.path("m2.json")));
  r = harness("merge " + d.path("s0.json") + " --allow-partial --out " + d.path("m3.json"), d);
  CHECK_MESSAGE((r.code == 0 || r.code == 1), r.out);
  r = harness("merge " + kData + "sample_verify.json --out " + d.path("m4.json"), d);
  CHECK_MESSAGE(r.code == 1, r.out);  // the fixture holds a failed case
  CHECK(r.out.find("1 failed") != std::string::npos);
}

TEST_CASE("cli report: HTML and JSON written; bad inputs are exit 2") {
  TempDir d;
  std::filesystem::create_directory(d.path("r"));  // outputs go into existing folders only
  auto r = harness("report --verify " + kData + "sample_verify.json --bench " + kData + "sample_bench.json --out " +
                       d.path("r/report.html"),
                   d);
  CHECK_MESSAGE(r.code == 0, r.out);
  const std::string html = tooling::slurp(d.path("r/report.html"));
  CHECK(html.find("<svg") != std::string::npos);
  CHECK(html.find("id=\"verify-cases\"") != std::string::npos);
  const auto j = read_json_file(d.path("r/report.json"));
  CHECK(j["bench"]["points"].size() == 24);
  // Model configs used: the ones the results name.
  REQUIRE(j["configs"]["models"].size() == 3);
  CHECK(d.stray_temporaries() == 0);
  r = harness("report --out " + d.path("x.html"), d);
  CHECK_MESSAGE(r.code == 2, r.out);
  r = harness("report --bench " + kData + "sample_verify.json --out " + d.path("x.html"), d);
  CHECK_MESSAGE(r.code == 2, r.out);
  CHECK(!std::filesystem::exists(d.path("x.html")));
  r = harness("report --verify " + kData + "sample_verify.json --out " + d.path("y.html") + " --tuned-config configs/tuned_fmoe.csv", d);
  CHECK_MESSAGE(r.code == 0, r.out);
  CHECK(tooling::slurp(d.path("y.html")).find("id=\"tuned-table\"") != std::string::npos);
}

TEST_CASE("cli list: kernels and models") {
  TempDir d;
  const auto r = harness("list", d);
  CHECK_MESSAGE(r.code == 0, r.out);
  for (const char* m : {"deepseek_v3", "qwen3_235b", "llama4_scout", "kimi_k2"}) CHECK_MESSAGE(r.out.find(m) != std::string::npos, m);
}

TEST_CASE("cli run moe_align: reference outputs, --expect checks, input errors") {
  TempDir d;
  tooling::Gen gen(77);
  const int64_t M = 37;
  const int32_t K = 3, E = 11, BS = 16;
  std::vector<int32_t> ids(M * K);
  for (int64_t t = 0; t < M; ++t) {
    // distinct experts per token, some masked (-1)
    const int32_t base = static_cast<int32_t>(gen.next_u32() % E);
    for (int32_t k = 0; k < K; ++k) ids[t * K + k] = (gen.next_u32() % 9 == 0) ? -1 : (base + k) % E;
  }
  const std::vector<int64_t> shape{M, K};
  write_npy_i32(d.path("ids.npy"), shape, ids);
  const std::string common = "run moe_align --in topk_ids=" + d.path("ids.npy") + " --param num_experts=11 --param block_size=16";
  auto r = harness(common + " --reference-only --out-dir " + d.path("out"), d);
  CHECK_MESSAGE(r.code == 0, r.out);
  const auto want = ref::moe_align_block_size(align::AlignShape{M, K, E, BS}, ids);
  const auto got = read_npy(d.path("out/ref_sorted_token_ids.npy"));
  CHECK(got.to_i32() == want.sorted_token_ids);
  CHECK(read_npy(d.path("out/ref_expert_ids.npy")).to_i32() == want.expert_ids);
  CHECK(read_npy(d.path("out/ref_num_tokens_post_padded.npy")).to_i32() == std::vector<int32_t>{want.num_tokens_post_padded});
  CHECK(read_json_file(d.path("out/run.json"))["kernel"] == "moe_align");

  // --expect: the right answer (also with slots reordered within an expert, and
  // with a longer array as another library's capacity layout) passes...
  auto sorted = want.sorted_token_ids;
  std::reverse(sorted.begin(), sorted.begin() + BS);  // block 0 belongs to one expert
  sorted.resize(sorted.size() + 64, M * K);
  write_npy_i32(d.path("exp_sorted.npy"), std::vector<int64_t>{static_cast<int64_t>(sorted.size())}, sorted);
  write_npy_i32(d.path("exp_eids.npy"), std::vector<int64_t>{static_cast<int64_t>(want.expert_ids.size())}, want.expert_ids);
  r = harness(common + " --cpu-only --expect sorted_token_ids=" + d.path("exp_sorted.npy") + " --expect expert_ids=" +
                  d.path("exp_eids.npy") + " --out-dir " + d.path("out2"),
              d);
  CHECK_MESSAGE(r.code == 0, r.out);
  CHECK(r.out.find("PASS") != std::string::npos);
  // ...a wrong one fails with exit 1.
  auto wrong = want.expert_ids;
  wrong.back() = (wrong.back() + 1) % E;
  write_npy_i32(d.path("bad_eids.npy"), std::vector<int64_t>{static_cast<int64_t>(wrong.size())}, wrong);
  r = harness(common + " --cpu-only --expect expert_ids=" + d.path("bad_eids.npy") + " --out-dir " + d.path("out3"), d);
  CHECK_MESSAGE(r.code == 1, r.out);
  CHECK(r.out.find("FAIL") != std::string::npos);
  CHECK(read_json_file(d.path("out3/run.json"))["passed"] == false);

  // Input errors: exit 2 with the file named.
  write_npy_f32(d.path("f.npy"), shape, std::vector<float>(M * K, 1.0f));
  r = harness("run moe_align --in topk_ids=" + d.path("f.npy") + " --param num_experts=11 --out-dir " + d.path("o"), d);
  CHECK_MESSAGE(r.code == 2, r.out);
  CHECK(r.out.find("topk_ids must be i32") != std::string::npos);
  write_npy_i32(d.path("r1.npy"), std::vector<int64_t>{M * K}, ids);
  r = harness("run moe_align --in topk_ids=" + d.path("r1.npy") + " --param num_experts=11 --out-dir " + d.path("o"), d);
  CHECK_MESSAGE(r.code == 2, r.out);
  CHECK(r.out.find("must have rank 2") != std::string::npos);
  std::string bytes = tooling::slurp(d.path("ids.npy"));
  tooling::spit(d.path("trunc.npy"), bytes.substr(0, bytes.size() - 3));
  r = harness("run moe_align --in topk_ids=" + d.path("trunc.npy") + " --param num_experts=11 --out-dir " + d.path("o"), d);
  CHECK_MESSAGE(r.code == 2, r.out);
  CHECK(r.out.find("truncated") != std::string::npos);
  r = harness("run moe_align --in topk_ids=" + d.path("ids.npy") + " --param num_experts=5 --out-dir " + d.path("o"), d);
  CHECK_MESSAGE(r.code == 2, r.out);  // ids >= 5
  r = harness("run moe_align --in topk_ids=" + d.path("ids.npy") + " --out-dir " + d.path("o"), d);
  CHECK_MESSAGE(r.code == 2, r.out);
  CHECK(r.out.find("--param num_experts=N is required") != std::string::npos);
  r = harness("run moe_align --in topk_ids=" + d.path("ids.npy") + " --param num_experts=11 --param block_size=17 --out-dir " + d.path("o"), d);
  CHECK_MESSAGE(r.code == 2, r.out);
  r = harness("run nosuch --out-dir " + d.path("o"), d);
  CHECK_MESSAGE(r.code == 2, r.out);
  CHECK(r.out.find("unknown kernel 'nosuch'") != std::string::npos);
  r = harness("run --list", d);
  CHECK_MESSAGE(r.code == 0, r.out);
  CHECK(r.out.find("--in topk_ids=FILE.npy") != std::string::npos);
}

TEST_CASE("cli run routing: softmax_topk (bf16 logits, --model) and grouped_topk with bias") {
  TempDir d;
  tooling::Gen gen(91);
  const int64_t M = 29;
  const int32_t E = 128;
  std::vector<float> logits(M * E);
  std::vector<uint16_t> bits(M * E);
  for (size_t i = 0; i < logits.size(); ++i) {
    bits[i] = f32_to_bf16_bits(gen.normal() * 2.0f);
    logits[i] = bf16_bits_to_f32(bits[i]);
  }
  const std::vector<int64_t> shape{M, E};
  write_npy(d.path("logits.npy"), DType::BF16, shape,
            std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bits.data()), bits.size() * 2));
  // Qwen3-235B: softmax, top-8, renormalised.
  auto r = harness("run softmax_topk --model qwen3_235b --reference-only --in logits=" + d.path("logits.npy") + " --out-dir " + d.path("s"), d);
  CHECK_MESSAGE(r.code == 0, r.out);
  routing::SoftmaxTopkParams sp;
  sp.tokens = M, sp.experts = E, sp.top_k = 8, sp.dtype = DType::BF16, sp.renormalize = true;
  const auto want = ref::softmax_topk(logits, sp);
  CHECK(read_npy(d.path("s/ref_topk_ids.npy")).to_i32() == want.ids);
  CHECK(read_npy(d.path("s/ref_topk_weights.npy")).to_f32() == want.weights);
  CHECK(read_npy(d.path("s/ref_topk_ids.npy")).shape == std::vector<int64_t>{M, 8});
  const auto run = read_json_file(d.path("s/run.json"));
  CHECK(run["params"]["top_k"] == 8);
  CHECK(run["params"]["renormalize"] == 1);
  CHECK(run["inputs"]["logits"]["dtype"] == "bf16");

  // --expect: the reference's own files pass; swapped ids fail (exit 1); one output alone is an input error.
  const std::string base = "run softmax_topk --model qwen3_235b --cpu-only --in logits=" + d.path("logits.npy");
  r = harness(base + " --expect topk_weights=" + d.path("s/ref_topk_weights.npy") + " --expect topk_ids=" +
                  d.path("s/ref_topk_ids.npy") + " --out-dir " + d.path("e1"),
              d);
  CHECK_MESSAGE(r.code == 0, r.out);
  auto ids = want.ids;
  std::swap(ids[5 * 8 + 0], ids[5 * 8 + 7]);
  write_npy_i32(d.path("bad_ids.npy"), std::vector<int64_t>{M, 8}, ids);
  r = harness(base + " --expect topk_weights=" + d.path("s/ref_topk_weights.npy") + " --expect topk_ids=" +
                  d.path("bad_ids.npy") + " --out-dir " + d.path("e2"),
              d);
  CHECK_MESSAGE(r.code == 1, r.out);
  r = harness(base + " --expect topk_ids=" + d.path("s/ref_topk_ids.npy") + " --out-dir " + d.path("e3"), d);
  CHECK_MESSAGE(r.code == 2, r.out);
  CHECK(r.out.find("checked together") != std::string::npos);
  // Wrong routing type for the model, wrong rank, explicit --param beats --model.
  r = harness("run softmax_topk --model deepseek_v3 --in logits=" + d.path("logits.npy") + " --out-dir " + d.path("x"), d);
  CHECK_MESSAGE(r.code == 2, r.out);
  CHECK(r.out.find("not softmax top-k") != std::string::npos);
  r = harness("run softmax_topk --model qwen3_235b --reference-only --param top_k=3 --in logits=" + d.path("logits.npy") + " --out-dir " +
                  d.path("k3"),
              d);
  CHECK_MESSAGE(r.code == 0, r.out);
  CHECK(read_npy(d.path("k3/ref_topk_ids.npy")).shape == std::vector<int64_t>{M, 3});
  r = harness("run softmax_topk --param top_k=1.5 --in logits=" + d.path("logits.npy") + " --out-dir " + d.path("x"), d);
  CHECK_MESSAGE(r.code == 2, r.out);

  // DeepSeek-V3 grouped top-k over 256 experts with a score-correction bias.
  const int32_t E2 = 256;
  std::vector<float> l2(M * E2), bias(E2);
  for (auto& v : l2) v = gen.normal();
  for (auto& v : bias) v = 0.1f * gen.normal();
  write_npy_f32(d.path("l2.npy"), std::vector<int64_t>{M, E2}, l2);
  write_npy_f32(d.path("bias.npy"), std::vector<int64_t>{E2}, bias);
  r = harness("run grouped_topk --model deepseek_v3 --reference-only --in logits=" + d.path("l2.npy") + " --in bias=" + d.path("bias.npy") +
                  " --out-dir " + d.path("g"),
              d);
  CHECK_MESSAGE(r.code == 0, r.out);
  routing::GroupedTopkParams gp;
  gp.tokens = M, gp.experts = E2, gp.n_group = 8, gp.topk_group = 4, gp.top_k = 8;
  gp.scoring = routing::Scoring::Sigmoid, gp.renormalize = true, gp.routed_scaling_factor = 2.5f;
  const auto gw = ref::grouped_topk(l2, bias, gp);
  CHECK(read_npy(d.path("g/ref_topk_ids.npy")).to_i32() == gw.ids);
  CHECK(read_npy(d.path("g/ref_topk_weights.npy")).to_f32() == gw.weights);
  write_npy_f32(d.path("bias_short.npy"), std::vector<int64_t>{E2 - 1}, std::vector<float>(bias.begin(), bias.end() - 1));
  r = harness("run grouped_topk --model deepseek_v3 --in logits=" + d.path("l2.npy") + " --in bias=" + d.path("bias_short.npy") +
                  " --out-dir " + d.path("g2"),
              d);
  CHECK_MESSAGE(r.code == 2, r.out);
}
