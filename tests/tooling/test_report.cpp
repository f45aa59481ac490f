// Result documents: shards and merge, Google Benchmark parsing, the HTML report
// (self-contained, escaped). compare: test_compare.cpp.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include "moe/charts.hpp"
#include "moe/error.hpp"
#include "moe/report.hpp"
#include "tooling_util.hpp"

using namespace moe;
using nlohmann::json;

namespace {

const char* kData = "tests/tooling/data/";

json verify_doc(std::vector<std::tuple<int, std::string, std::string>> cases, int shard = -1, int n = 0) {
  json d{{"tool", "moe-harness verify"}, {"version", "0.1.0"}, {"backend", "none"}, {"devices", json::array()}};
  d["cases"] = json::array();
  for (auto& [i, name, st] : cases)
    d["cases"].push_back({{"index", i}, {"kernel", "k"}, {"name", name}, {"status", st}, {"message", ""}});
  if (shard >= 0) d["shard"] = {{"index", shard}, {"count", n}};
  return d;
}

json gbench(std::vector<std::tuple<std::string, double, double>> runs) {
  // name, mean us, stddev us (stddev < 0: a single iteration entry)
  json d{{"context", {{"moe_git_revision", "abc"}}}, {"benchmarks", json::array()}};
  for (auto& [name, us, sd] : runs) {
    if (sd < 0) {
      d["benchmarks"].push_back({{"name", name}, {"run_name", name}, {"run_type", "iteration"}, {"real_time", us * 1e3},
                                 {"time_unit", "ns"}, {"iterations", 10}});
      continue;
    }
    d["benchmarks"].push_back({{"name", name + "_mean"}, {"run_name", name}, {"run_type", "aggregate"},
                               {"aggregate_name", "mean"}, {"repetitions", 5}, {"real_time", us}, {"time_unit", "us"}});
    d["benchmarks"].push_back({{"name", name + "_stddev"}, {"run_name", name}, {"run_type", "aggregate"},
                               {"aggregate_name", "stddev"}, {"repetitions", 5}, {"real_time", sd}, {"time_unit", "us"}});
  }
  return d;
}

}  // namespace

TEST_CASE("shard: i/n syntax and selection") {
  const Shard s = parse_shard("1/3");
  CHECK(s.index == 1);
  CHECK(s.count == 3);
  int taken = 0;
  for (size_t i = 0; i < 30; ++i) taken += s.selects(i);
  CHECK(taken == 10);
  CHECK(s.selects(4));
  CHECK(!s.selects(3));
  CHECK(parse_shard("0/1").selects(12345));
  for (const char* bad : {"", "1", "3/3", "-1/2", "1/0", "a/b", "1/2/3", "1 /2", "0/70000", "1/-2", "/2", "1/"})
    CHECK_THROWS_AS(parse_shard(bad), InputError);
  CHECK_THROWS_WITH(parse_shard("2/2"), "--shard '2/2': i must satisfy 0 <= i < n");
}

TEST_CASE("merge: shards combine in global order; errors for gaps and duplicates") {
  const auto a = verify_doc({{0, "c0", "pass"}, {2, "c2", "fail"}, {4, "c4", "pass"}}, 0, 2);
  const auto b = verify_doc({{1, "c1", "pass"}, {3, "c3", "skip"}}, 1, 2);
  const auto m = merge_verify_docs({{"b.json", b}, {"a.json", a}});
  REQUIRE(m["cases"].size() == 5);
  for (int i = 0; i < 5; ++i) CHECK(m["cases"][i]["index"] == i);
  CHECK(m["summary"]["passed"] == 3);
  CHECK(m["summary"]["failed"] == 1);
  CHECK(m["summary"]["skipped"] == 1);
  CHECK(m["shards"]["count"] == 2);
  CHECK(m["merged_from"].size() == 2);
  CHECK(!m.contains("shard"));
  CHECK(m["tool"] == "moe-harness verify");

  CHECK_THROWS_WITH_AS(merge_verify_docs({{"a.json", a}}), "merge: missing shard(s) 1/2 (pass --allow-partial to merge anyway)",
                       InputError);
  CHECK(merge_verify_docs({{"a.json", a}}, true)["cases"].size() == 3);
  CHECK_THROWS_WITH_AS(merge_verify_docs({{"a.json", a}, {"a2.json", a}}), "merge: a.json and a2.json are both shard 0/2",
                       InputError);
  const auto c = verify_doc({{1, "c1", "pass"}, {1, "c9", "pass"}}, 1, 2);
  CHECK_THROWS_WITH_AS(merge_verify_docs({{"a.json", a}, {"c.json", c}}), "merge: case index 1 (k/c9) is twice in c.json",
                       InputError);
  // Without indexes: by name, across files (a name repeated inside one file is that file's business).
  auto na = verify_doc({{0, "n1", "pass"}, {0, "n1", "pass"}}), nb = verify_doc({{0, "n1", "pass"}});
  for (auto* d : {&na, &nb})
    for (auto& x : (*d)["cases"]) x.erase("index");
  CHECK(merge_verify_docs({{"na.json", na}})["cases"].size() == 2);
  CHECK_THROWS_WITH_AS(merge_verify_docs({{"na.json", na}, {"nb.json", nb}}), "merge: case k/n1 is in both na.json and nb.json",
                       InputError);
  const auto d3 = verify_doc({{1, "x", "pass"}}, 1, 3);
  CHECK_THROWS_WITH_AS(merge_verify_docs({{"a.json", a}, {"d.json", d3}}), doctest::Contains("is shard 1/3"), InputError);
  const auto plain = verify_doc({{0, "p", "pass"}});
  CHECK_THROWS_WITH_AS(merge_verify_docs({{"a.json", a}, {"p.json", plain}}), doctest::Contains("some inputs carry a shard"),
                       InputError);
  // Unsharded files merge in input order.
  const auto q = verify_doc({{0, "q", "fail"}});
  CHECK(merge_verify_docs({{"p.json", plain}, {"q.json", q}})["summary"]["failed"] == 1);

  auto broken = a;
  broken["cases"][1]["status"] = "maybe";
  CHECK_THROWS_WITH_AS(merge_verify_docs({{"x.json", broken}}),
                       "x.json: /cases/1/status: expected pass, fail or skip, got 'maybe'", InputError);
  CHECK_THROWS_WITH_AS(validate_verify_doc(json{{"benchmarks", json::array()}}, "g.json"),
                       "g.json: not a verify results document (no 'cases' array)", InputError);
  CHECK_THROWS_AS(merge_verify_docs({}), InputError);
}

TEST_CASE("merge: each file once, shard counts in range, indexes in their shard, options agree") {
  const auto a = verify_doc({{0, "c0", "pass"}, {2, "c2", "pass"}}, 0, 2);
  const auto b = verify_doc({{1, "c1", "pass"}}, 1, 2);
  CHECK(merge_verify_docs({{"a.json", a}, {"b.json", b}})["cases"].size() == 3);
  // One file twice doubles nothing: it is an error, sharded or not.
  auto plain = verify_doc({{0, "p", "pass"}});
  plain.erase("shard");
  CHECK_THROWS_WITH_AS(merge_verify_docs({{"p.json", plain}, {"p.json", plain}}), "merge: p.json is given twice", InputError);
  tooling::TempDir dir;
  {
    std::ofstream(dir.path("f.json")) << plain.dump();
  }
  std::filesystem::create_hard_link(dir.path("f.json"), dir.path("g.json"));
  CHECK_THROWS_WITH_AS(merge_verify_docs({{dir.path("f.json"), plain}, {dir.path("g.json"), plain}}),
                       doctest::Contains("are the same file"), InputError);
  // Counts and indexes in range before anything is built from them.
  for (const json& count : {json(-1), json(0), json(65537), json(int64_t{1} << 31), json(UINT64_MAX), json(2.0)}) {
    auto bad = verify_doc({{0, "c0", "pass"}}, 0, 2);
    bad["shard"]["count"] = count;
    CHECK_THROWS_WITH_AS(merge_verify_docs({{"n.json", bad}}, true), doctest::Contains("n.json: /shard/count: expected an integer"),
                         InputError);
  }
  const auto forged = verify_doc({{5, "c5", "pass"}}, 5, 2);
  CHECK_THROWS_WITH_AS(merge_verify_docs({{"a.json", a}, {"b.json", b}, {"f.json", forged}}),
                       "f.json: /shard/index: expected an integer in [0, 1], got 5", InputError);
  const auto stray = verify_doc({{1, "c1", "pass"}, {4, "c4", "pass"}}, 1, 2);
  CHECK_THROWS_WITH_AS(merge_verify_docs({{"a.json", a}, {"s.json", stray}}),
                       "s.json: /cases/1/index: index 4 is not in shard 1/2 (index % 2 != 1)", InputError);
  // A large count: the missing shards are counted, not listed one by one.
  const auto wide = verify_doc({{0, "c0", "pass"}}, 0, 65536);
  CHECK_THROWS_WITH_AS(merge_verify_docs({{"w.json", wide}}),
                       doctest::Contains("1/65536, 2/65536, 3/65536, 4/65536, 5/65536, 6/65536, 7/65536, 8/65536, "
                                         "9/65536, 10/65536 and 65525 more"),
                       InputError);
  // Shards of one run share its options.
  auto b7 = b, a0 = a;
  a0["options"] = {{"seed", 0}};
  b7["options"] = {{"seed", 7}};
  CHECK_THROWS_WITH_AS(merge_verify_docs({{"a.json", a0}, {"b.json", b7}}), doctest::Contains("different options"), InputError);

  // Bench shards: an index names one benchmark (its repeated entries may share it).
  auto bench_shard = [](std::vector<std::pair<int, std::string>> entries, int i, int n) {
    json d{{"benchmarks", json::array()}, {"shard", {{"index", i}, {"count", n}}}};
    for (auto& [idx, name] : entries)
      d["benchmarks"].push_back({{"name", name}, {"real_time", 1.0}, {"time_unit", "us"}, {"moe_index", idx},
                                 {"moe_family", "f"}});
    return d;
  };
  const auto b0 = bench_shard({{0, "x/M:1"}, {0, "x/M:1"}, {2, "x/M:3"}}, 0, 2);
  const auto b1 = bench_shard({{1, "x/M:2"}}, 1, 2);
  CHECK(merge_bench_docs({{"b0.json", b0}, {"b1.json", b1}})["benchmarks"].size() == 4);
  const auto b1dup = bench_shard({{1, "x/M:2"}, {1, "x/M:4"}}, 1, 2);
  CHECK_THROWS_WITH_AS(merge_bench_docs({{"b0.json", b0}, {"b1.json", b1dup}}),
                       "merge: benchmark index 1 is both x/M:2 in b1.json and x/M:4 in b1.json", InputError);
  const auto b1odd = bench_shard({{1, "x/M:2"}, {2, "x/M:4"}}, 1, 2);
  CHECK_THROWS_WITH_AS(merge_bench_docs({{"b0.json", b0}, {"b1.json", b1odd}}),
                       "b1.json: /benchmarks/1/moe_index: index 2 is not in shard 1/2 (index % 2 != 1)", InputError);
  CHECK_THROWS_WITH_AS(merge_bench_docs({{"b0.json", b0}, {"b0.json", b0}}), "merge: b0.json is given twice", InputError);
}

TEST_CASE("results documents: a wrong type names the file and the JSON pointer") {
  auto with = [](const char* key, json value, size_t entry = 0) {
    auto d = gbench({{"x/M:1", 10.0, 1.0}});
    d["benchmarks"][entry][key] = std::move(value);
    return d;
  };
  CHECK_THROWS_WITH_AS(read_bench_points(with("label", 7), "b.json"),
                       "b.json: /benchmarks/0/label: expected a string, got an integer", InputError);
  CHECK_THROWS_WITH_AS(read_bench_points(with("repetitions", "3", 1), "b.json"),
                       "b.json: /benchmarks/1/repetitions: expected an integer, got a string", InputError);
  CHECK_THROWS_WITH_AS(read_bench_points(with("real_time", json::array()), "b.json"),
                       "b.json: /benchmarks/0/real_time: expected a number, got an array", InputError);
  CHECK_THROWS_WITH_AS(read_bench_points(with("error_occurred", "yes"), "b.json"),
                       "b.json: /benchmarks/0/error_occurred: expected true or false, got a string", InputError);
  CHECK_THROWS_WITH_AS(read_bench_points(with("moe_index", -1), "b.json"),
                       doctest::Contains("b.json: /benchmarks/0/moe_index: expected an integer in [0, "), InputError);
  auto no_name = gbench({{"x/M:1", 10.0, 1.0}});
  no_name["benchmarks"][0].erase("name");
  CHECK_THROWS_WITH_AS(read_bench_points(no_name, "b.json"), "b.json: /benchmarks/0/name: missing (expected a string)",
                       InputError);
  auto moe_bench = gbench({{"x/M:1", 10.0, 1.0}});
  moe_bench["moe_bench"] = "fast";
  CHECK_THROWS_WITH_AS(read_bench_points(moe_bench, "b.json"), "b.json: /moe_bench: expected an object, got a string",
                       InputError);
  auto v = verify_doc({{0, "c0", "pass"}});
  v["cases"][0]["seconds"] = "1s";
  CHECK_THROWS_WITH_AS(validate_verify_doc(v, "v.json"), "v.json: /cases/0/seconds: expected a number, got a string",
                       InputError);
  v = verify_doc({{0, "c0", "pass"}});
  v["cases"][0]["kernel"] = 3;
  ReportInputs in;
  in.verify.emplace_back("v.json", v);
  CHECK_THROWS_WITH_AS(build_report_json(in),
                       "v.json: /cases/0/kernel: expected a string, got an integer", InputError);
  v = verify_doc({{0, "c0", "pass"}});
  v["devices"] = json::array({json::object(), 3});
  CHECK_THROWS_WITH_AS(validate_verify_doc(v, "v.json"), "v.json: /devices/1: expected an object, got an integer", InputError);
  v = verify_doc({{0, "c0", "pass"}});
  v["cases"][0] = json::array();
  CHECK_THROWS_WITH_AS(validate_verify_doc(v, "v.json"), "v.json: /cases/0: expected an object, got an array", InputError);

  // 1e400 is beyond a double: named where it is, however deep.
  tooling::TempDir dir;
  {
    std::ofstream(dir.path("big.json")) << R"({"benchmarks": [{"name": "x", "a/b": {"c": [0, 1e400]}}]})";
  }
  CHECK_THROWS_WITH_AS(read_json_file(dir.path("big.json")),
                       (dir.path("big.json") + ": /benchmarks/0/a~1b/c/1: number out of range (number overflow parsing '1e400')")
                           .c_str(),
                       InputError);
  {
    std::ofstream(dir.path("top.json")) << "-1e999";
    std::ofstream(dir.path("obj.json")) << R"({"a": [[], {"k": [1, 2, {"z": 1e400}]}]})";
  }
  CHECK_THROWS_WITH_AS(read_json_file(dir.path("top.json")), doctest::Contains("top.json: (top level): number out of range"),
                       InputError);
  CHECK_THROWS_WITH_AS(read_json_file(dir.path("obj.json")), doctest::Contains("obj.json: /a/1/k/2/z: number out of range"),
                       InputError);
}

TEST_CASE("utf8_sanitized: invalid bytes become U+FFFD, valid text is unchanged") {
  CHECK(utf8_sanitized("plain ascii") == "plain ascii");
  CHECK(utf8_sanitized("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80") == "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
  CHECK(utf8_sanitized("a\xFF" "b") == "a\xEF\xBF\xBD" "b");
  CHECK(utf8_sanitized("\xC0\xAF") == "\xEF\xBF\xBD\xEF\xBF\xBD");          // overlong '/'
  CHECK(utf8_sanitized("\xED\xA0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  CHECK(utf8_sanitized("\xE2\x82") == "\xEF\xBF\xBD\xEF\xBF\xBD");          // cut short
  CHECK(utf8_sanitized("\xF4\x90\x80\x80").substr(0, 3) == "\xEF\xBF\xBD");  // above U+10FFFF
  const std::string s = utf8_sanitized(std::string("x\x80y\0z", 5));
  CHECK(json(s).dump() == "\"x\xEF\xBF\xBDy\\u0000z\"");
}

TEST_CASE("Google Benchmark's NaN / Infinity literals read as null, outside strings only") {
  CHECK(nonfinite_literals_as_null(R"({"a": NaN, "b": -NaN, "c": [Infinity, -Infinity], "d": "NaN -Infinity \" NaN"})") ==
        R"({"a": null, "b": null, "c": [null, null], "d": "NaN -Infinity \" NaN"})");
  CHECK(nonfinite_literals_as_null(R"({"x": 1.5e3})") == R"({"x": 1.5e3})");
  // A repeated benchmark's _cv aggregate of a counter that is 0 in every run (what
  // bench_quant wrote for TFLOPs): the file loads, the counter is simply missing there.
  const auto bench_file = [](const std::string& cv_value) {
    return R"({"context": {}, "benchmarks": [
      {"name": "quant/m/s/M:1/manual_time", "run_name": "quant/m/s/M:1/manual_time", "run_type": "iteration",
       "repetitions": 3, "repetition_index": 0, "iterations": 200, "real_time": 25.7, "cpu_time": 213.0,
       "time_unit": "us", "TFLOPs": 0, "us": 25.7},
      {"name": "quant/m/s/M:1/manual_time_cv", "run_name": "quant/m/s/M:1/manual_time", "run_type": "aggregate",
       "repetitions": 3, "aggregate_name": "cv", "aggregate_unit": "percentage", "iterations": 3,
       "real_time": 0.002, "cpu_time": 0.002, "time_unit": "us", "TFLOPs": )" +
           cv_value + R"(, "us": 0.002}]})";
  };
  tooling::TempDir dir;
  std::ofstream(dir.path("cv.json")) << bench_file("NaN");
  std::ofstream(dir.path("c_nan.json")) << bench_file("-nan");  // printf's spelling, not Google Benchmark's
  CHECK_THROWS_AS(read_json_file(dir.path("c_nan.json")), InputError);
  const json doc = read_json_file(dir.path("cv.json"));
  CHECK(doc["benchmarks"][1]["TFLOPs"].is_null());
  const auto pts = read_bench_points(doc, "cv.json");
  REQUIRE(!pts.empty());
  CHECK(pts[0].us == doctest::Approx(25.7));
}

TEST_CASE("bench points: names, labels, counters, repetitions, units, errors") {
  const auto pts = read_bench_points(read_json_file(std::string(kData) + "sample_bench.json"), "s.json");
  REQUIRE(pts.size() == 2 * 6 + 12 + 1);
  const auto& p = pts[3];
  CHECK(p.name == "align/deepseek_v3/M:256/manual_time");
  CHECK(p.kernel == "align");
  CHECK(p.model == "deepseek_v3");
  CHECK(p.variant == "");
  CHECK(p.m == 256);
  CHECK(p.us == doctest::Approx(30.0));
  CHECK(p.counters.at("pct_read_bw") > 0);
  const auto& f = pts[12];
  CHECK(f.kernel == "fused_moe");
  CHECK(f.variant == "persistent");
  CHECK(f.m == 1);
  CHECK(pts.back().error);
  CHECK(pts.back().error_message.find("out of memory") != std::string::npos);

  // Aggregates: mean and stddev; repeated iterations without aggregates: averaged here.
  auto g = read_bench_points(gbench({{"x/M:8", 10.0, 0.5}}), "g");
  REQUIRE(g.size() == 1);
  CHECK(g[0].us == 10.0);
  CHECK(g[0].us_stddev == 0.5);
  CHECK(g[0].samples == 5);
  CHECK(g[0].m == 8);
  CHECK(g[0].model == "");
  json reps{{"benchmarks", json::array()}};
  for (double t : {1.0, 2.0, 3.0})
    reps["benchmarks"].push_back({{"name", "k/mod/impl:a/M:4"}, {"run_name", "k/mod/impl:a/M:4"}, {"real_time", t},
                                  {"time_unit", "ms"}, {"GBps", t * 10}});
  g = read_bench_points(reps, "r");
  REQUIRE(g.size() == 1);
  CHECK(g[0].us == doctest::Approx(2000.0));
  CHECK(g[0].us_stddev == doctest::Approx(1000.0));
  CHECK(g[0].samples == 3);
  CHECK(g[0].counters.at("GBps") == doctest::Approx(20.0));
  CHECK(g[0].model == "mod");
  CHECK(g[0].variant == "impl:a");
  // Counter M wins over the name; label model wins over the name.
  json lab{{"benchmarks", {{{"name", "k/other/M:4"}, {"real_time", 1.0}, {"time_unit", "s"}, {"M", 7}, {"label", "model=real x=1"}}}}};
  g = read_bench_points(lab, "l");
  CHECK(g[0].m == 7);
  CHECK(g[0].model == "real");
  CHECK(g[0].variant == "other");
  CHECK(g[0].us == 1e6);
  // Plain function names: family from the executable, function name as the model.
  json plain{{"context", {{"executable", "/x/build/bench/bench_routing"}}},
             {"benchmarks", {{{"name", "BM_deepseek_v3/M:64/manual_time"}, {"real_time", 2.0}, {"time_unit", "us"}},
                             {{"name", "BM_qwen3_cfg/M:8/lanes:2"}, {"real_time", 2.0}, {"time_unit", "us"}}}}};
  g = read_bench_points(plain, "p");
  CHECK(g[0].kernel == "routing");
  CHECK(g[0].model == "deepseek_v3");
  CHECK(g[0].m == 64);
  CHECK(g[1].model == "qwen3_cfg");
  CHECK(g[1].variant == "lanes:2");
  plain["context"].erase("executable");
  g = read_bench_points(plain, "p");
  CHECK(g[0].kernel == "deepseek_v3");
  CHECK(g[0].model == "");
  CHECK_THROWS_WITH_AS(read_bench_points(json{{"cases", json::array()}}, "v.json"),
                       "v.json: not a Google Benchmark JSON document (no 'benchmarks' array)", InputError);
  json badunit{{"benchmarks", {{{"name", "a"}, {"real_time", 1.0}, {"time_unit", "fortnight"}}}}};
  CHECK_THROWS_WITH_AS(read_bench_points(badunit, "u"), doctest::Contains("unknown time_unit 'fortnight'"), InputError);
}

TEST_CASE("report: self-contained, escaped HTML with tables and charts; JSON alongside") {
  ReportInputs in;
  in.verify.emplace_back("v.json", read_json_file(std::string(kData) + "sample_verify.json"));
  in.bench.emplace_back("b.json", read_json_file(std::string(kData) + "sample_bench.json"));
  in.models = json::array({{{"name", "deepseek_v3"}, {"model_dim", 7168}, {"inter_dim", 2048}, {"experts", 256},
                            {"top_k", 8}, {"routing", {{"type", "grouped_topk"}, {"n_group", 8}, {"topk_group", 4}}},
                            {"source", "deepseek-ai/DeepSeek-V3 config.json"}}});
  in.model_configs_path = "configs/model_configs.json";
  in.git_revision_now = "0123456789abcdef0123456789abcdef01234567";
  in.generated_at = "2026-11-26T00:00:00Z";
  const json rep = build_report_json(in);
  CHECK(rep["verify"]["summary"]["failed"] == 1);
  CHECK(rep["verify"]["summary"]["skipped"] == 1);
  CHECK(rep["verify"]["kernels"].size() == 2);
  CHECK(rep["bench"]["points"].size() == 24);
  CHECK(rep["bench"]["errors"].size() == 1);
  CHECK(rep["inputs"][1]["git_revision"] == "fixture-0000");
  CHECK(rep["git_revision_at_report"] == in.git_revision_now);

  const std::string html = render_report_html(rep);
  CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
  // Nothing fetched: no scripts, stylesheets, images, fonts or URLs.
  for (const char* bad : {"<script", "<link", "src=", "href=", "http:", "https:", "@import", "url("})
    CHECK_MESSAGE(html.find(bad) == std::string::npos, bad);
  // Escaped user data.
  CHECK(html.find("golden/&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
  CHECK(html.find("&lt;b&gt;bold?&lt;/b&gt;") != std::string::npos);
  CHECK(html.find("out of memory &lt;&amp;&gt;") != std::string::npos);
  CHECK(html.find("SYNTHETIC FIXTURE &lt;not a measurement&gt;") != std::string::npos);
  // The parts a reader needs.
  for (const char* part : {"id=\"provenance\"", "id=\"device-table\"", "id=\"model-table\"", "id=\"verify-summary\"",
                           "class=\"matrix\"", "id=\"verify-cases\"", "id=\"bench-points\"", "id=\"bench-errors\"", "id=\"bench-devices\"",
                           "class=\"chart latency\"", "class=\"chart roofline\"", "0123456789abcdef0123456789abcdef01234567",
                           "fixture-0000", "rel_l2", "0/1 (1 fail)"})
    CHECK_MESSAGE(html.find(part) != std::string::npos, part);
  size_t charts = 0;
  for (size_t pos = 0; (pos = html.find("<svg", pos)) != std::string::npos; ++pos) ++charts;
  CHECK(charts == 2 * 2);  // align (2 models in one chart), fused_moe (2 variants); time + % of floor each
  CHECK(html.find("no data") == std::string::npos);
  CHECK(html.find("<polyline") != std::string::npos);

  // No inputs with data: still a valid page.
  ReportInputs empty;
  empty.verify.emplace_back("e.json", json{{"cases", json::array()}});
  const std::string e = render_report_html(build_report_json(empty));
  CHECK(e.find("No benchmark results given") != std::string::npos);
}

TEST_CASE("html_escape: the five HTML-significant characters") {
  CHECK(html_escape("a<b>&\"c'") == "a&lt;b&gt;&amp;&quot;c&#39;");
  CHECK(html_escape("plain µs") == "plain µs");
}

namespace {

BenchPoint bench_point(const std::string& family, const std::string& name, int64_t m,
                       std::map<std::string, double> counters = {}, const std::string& label = "") {
  BenchPoint p;
  p.name = name;
  p.kernel = family;
  p.m = m;
  p.us = 100;
  p.counters = std::move(counters);
  p.label = label;
  return p;
}

const std::vector<std::string> kModels{"mixtral_8x7b", "deepseek_v3", "qwen3_235b", "qwen3_30b", "llama4_scout"};

}  // namespace

TEST_CASE("report points: benchmark, model, parameters, x and dtype from our benchmark names") {
  auto s = shape_of(bench_point("fused_moe", "BM_fused_moe_layer/mixtral_8x7b/M:4096/iterations:20/manual_time", 4096,
                                {{"flops", 1e12}}),
                    kModels);
  CHECK(s.bench == "fused_moe_layer");
  CHECK(s.model == "mixtral_8x7b");
  CHECK(s.params.empty());
  CHECK(s.key == "BM_fused_moe_layer/mixtral_8x7b");
  CHECK(s.x == 4096);
  CHECK(s.x_label == "M (tokens)");
  CHECK(s.dtype == "bf16");

  s = shape_of(bench_point("fused_moe_q8", "BM_q8_layer/fp8_tensor/deepseek_v3/M:1/iterations:10/manual_time", 1,
                           {{"flops", 1e9}}),
               kModels);
  CHECK(s.bench == "q8_layer");
  CHECK(s.model == "deepseek_v3");
  REQUIRE(s.params.size() == 1);
  CHECK(s.params[0] == std::pair<std::string, std::string>{"", "fp8_tensor"});
  CHECK(s.params_text() == "fp8_tensor");
  CHECK(s.dtype == "fp8");
  CHECK(shape_of(bench_point("fused_moe_q8", "BM_q8_layer/int8_token/deepseek_v3/M:1", 1, {{"flops", 1e9}}), kModels).dtype ==
        "int8");
  // The label's dtype wins; no FLOPs declared, no dtype.
  CHECK(shape_of(bench_point("x", "BM_k/M:1", 1, {{"flops", 1.0}}, "dtype=int8"), kModels).dtype == "int8");
  CHECK(shape_of(bench_point("quant", "quant/deepseek_v3/fp8_per_tensor/M:1", 1, {{"flops", 0.0}}), kModels).dtype == "");

  // Functions named after a model: the family plus what follows the model name (the longest model that fits).
  s = shape_of(bench_point("routing", "BM_deepseek_v3_warm/M:1/iterations:50/manual_time", 1), kModels);
  CHECK(s.model == "deepseek_v3");
  CHECK(s.bench == "routing_warm");
  s = shape_of(bench_point("routing", "BM_qwen3_235b_bf16/M:16", 16), kModels);
  CHECK(s.model == "qwen3_235b");
  CHECK(s.bench == "routing_bf16");
  CHECK(shape_of(bench_point("routing", "BM_llama4_scout/M:16", 16), kModels).bench == "routing");
  // An argument named "threads" before Google Benchmark's suffixes is the benchmark's.
  s = shape_of(bench_point("routing", "BM_mixtral_8x7b_cfg/M:16384/lanes:1/threads:128/iterations:50/manual_time", 16384),
               kModels);
  CHECK(s.params_text() == "lanes:1 threads:128");
  CHECK(s.key == "BM_mixtral_8x7b_cfg/lanes:1/threads:128");

  // No M: plotted over the MiB counter, the MiB argument not a parameter.
  s = shape_of(bench_point("memory", "BM_read_probe/64/manual_time", -1, {{"MiB", 64}}), kModels);
  CHECK(s.x == 64);
  CHECK(s.x_label == "MiB");
  CHECK(s.params.empty());
  CHECK(s.bench == "read_probe");
  CHECK(std::isnan(shape_of(bench_point("memory", "BM_other/3", -1), kModels).x));

  s = shape_of(bench_point("moe_align", "BM_align/M:1/E:256/k:8/block:64/iterations:100/manual_time", 1, {{"flops", 0}}),
               kModels);
  CHECK(s.model == "");
  CHECK(s.params_text() == "E:256 k:8 block:64");
  CHECK(s.dtype == "");
  // Names without BM_: the model from the label or the second component.
  s = shape_of(bench_point("fused_moe", "fused_moe/deepseek_v3/persistent/M:1/manual_time", 1, {}, "model=deepseek_v3"), {});
  CHECK(s.model == "deepseek_v3");
  CHECK(s.bench == "fused_moe");
  CHECK(s.params_text() == "persistent");
}

TEST_CASE("report floors: the larger of the bandwidth and the compute floor, at the peak of the point's dtype") {
  const Peaks pk = Peaks::from_context(
      json{{"moe_read_gbps", "4000.0"}, {"moe_bf16_tflops", "800.0"}, {"moe_fp8_tflops", 1600.0}, {"moe_int8_tops", "n/a"}});
  CHECK(pk.read_gbps == 4000);
  CHECK(pk.of_dtype("bf16") == 800);
  CHECK(pk.of_dtype("fp8") == 1600);
  CHECK(pk.of_dtype("int8") == 0);
  CHECK(Peaks::from_context(json{{"moe_read_gbps", "4000x"}}).read_gbps == 0);
  CHECK(Peaks::from_context(json::array()).read_gbps == 0);

  // Mixtral at M = 4096 in fp8: 2.9e12 FLOPs, 1.4 GB. Compute-bound at the fp8 peak.
  const auto p = bench_point("fused_moe_q8", "BM_q8_layer/fp8_tensor/mixtral_8x7b/M:4096", 4096,
                             {{"bytes", 1.4e9}, {"flops", 2.9e12}});
  Floor f = floor_of(p, "fp8", pk);
  CHECK(f.bandwidth_us == doctest::Approx(350.0));
  CHECK(f.compute_us == doctest::Approx(2.9e12 / 1600e12 * 1e6));
  CHECK(f.us == f.compute_us);
  CHECK(f.bound == "compute");
  CHECK(f.note.empty());
  // The bf16 rate is never used for fp8: without an fp8 peak, the bandwidth floor alone, and a note.
  Peaks no_fp8 = pk;
  no_fp8.fp8_tflops = 0;
  f = floor_of(p, "fp8", no_fp8);
  CHECK(std::isnan(f.compute_us));
  CHECK(f.us == doctest::Approx(350.0));
  CHECK(f.bound == "bandwidth");
  CHECK(f.note == "no fp8 peak measured");
  // No FLOPs (a sort): bandwidth only, no note; no bytes and no FLOPs: no floor.
  f = floor_of(bench_point("moe_align", "BM_align/M:64", 64, {{"bytes", 4e6}, {"flops", 0}}), "", pk);
  CHECK(f.bound == "bandwidth");
  CHECK(f.note.empty());
  f = floor_of(bench_point("x", "x/M:1", 1), "", pk);
  CHECK(f.bound.empty());
  CHECK(std::isnan(f.us));
}

TEST_CASE("group_series: at most N per chart, split on the first dimension that varies, packed back") {
  auto check_partition = [](const std::vector<std::vector<size_t>>& groups, size_t n, size_t max) {
    std::vector<int> seen(n, 0);
    for (const auto& g : groups) {
      CHECK(g.size() <= max);
      CHECK(!g.empty());
      for (size_t i : g) seen.at(i)++;
    }
    for (size_t i = 0; i < n; ++i) CHECK(seen[i] == 1);
  };
  // Three models in one chart.
  std::vector<std::vector<std::string>> d{{"a", "layer", ""}, {"b", "layer", ""}, {"c", "layer", ""}};
  CHECK(group_series(d, 8) == std::vector<std::vector<size_t>>{{0, 1, 2}});
  // 3 models x (bf16 + 4 schemes): one chart per model (5 + 5 do not fit 8).
  d.clear();
  for (const char* m : {"a", "b", "c"}) {
    d.push_back({m, "bf16_layer", ""});
    for (const char* sc : {"fp8_tensor", "fp8_token", "fp8_block", "int8_token"}) d.push_back({m, "q8_layer", sc});
  }
  auto g = group_series(d, 8);
  CHECK(g.size() == 3);
  check_partition(g, d.size(), 8);
  CHECK(g[0] == std::vector<size_t>{0, 1, 2, 3, 4});
  // Path 1 (6 configs) and path 3 (12): path 3 split again, the pieces packed.
  d.clear();
  for (const char* w : {"8", "16", "32"})
    for (const char* st : {"0", "1"}) d.push_back({"", "align_cfg", "path:1", std::string("p5:") + w, std::string("p6:") + st});
  for (const char* s : {"128", "512", "1024", "2048"})
    for (const char* w : {"4", "8", "16"}) d.push_back({"", "align_cfg", "path:3", std::string("p5:") + s, std::string("p6:") + w});
  g = group_series(d, 8);
  check_partition(g, d.size(), 8);
  CHECK(g.size() == 3);
  // Identical series are cut in order.
  g = group_series(std::vector<std::vector<std::string>>(20, {"x"}), 8);
  CHECK(g.size() == 3);
  check_partition(g, 20, 8);
  CHECK(group_series({}, 8).empty());
}

TEST_CASE("svg_chart: colour-blind-safe palette, hover values, legends cut to fit, nothing without data") {
  std::set<std::string> colors;
  for (size_t i = 0; i < kMaxChartSeries; ++i) colors.insert(chart_color(i));
  CHECK(colors.size() == kMaxChartSeries);
  CHECK(svg_chart({"empty", "M (tokens)", "µs", true, NAN, "latency"}, {{"s", chart_color(0), false, {1, 2}, {NAN, -1}, {}}})
            .empty());
  const std::string long_name(200, 'n');
  const std::string svg = svg_chart({"t", "MiB", "GB/s", false, 100, "roofline"},
                                    {{long_name, chart_color(0), false, {1, 64}, {10, 90}, {}},
                                     {"base", chart_color(0), true, {1, 64}, {20, 80}, {}}});
  CHECK(svg.find("<title>" + long_name + "</title>") != std::string::npos);  // whole in the tooltip
  CHECK(svg.find(long_name + "</text>") == std::string::npos);               // cut in the legend
  CHECK(svg.find("…</text>") != std::string::npos);
  CHECK(svg.find("MiB=64 90</title>") != std::string::npos);
  CHECK(svg.find("stroke-dasharray=\"6 4\"") != std::string::npos);
  CHECK(svg.find("class=\"reference\"") != std::string::npos);
  size_t items = 0;
  for (size_t pos = 0; (pos = svg.find("class=\"legend-item\"", pos)) != std::string::npos; ++pos) ++items;
  CHECK(items == 2);
}

TEST_CASE("report with a baseline: lined up by name and M, ours / baseline, fp8 peak from the same device") {
  ReportInputs in;
  in.bench.emplace_back("layer.json", read_json_file(std::string(kData) + "sample_layer_bench.json"));
  in.baselines.push_back({"torch", "base.json", read_json_file(std::string(kData) + "sample_baseline.json")});
  in.model_names = kModels;
  const json rep = build_report_json(in);
  REQUIRE(rep["baselines"].size() == 1);
  const auto& b = rep["baselines"][0];
  CHECK(b["points"].size() == 8);  // 2 models x 4 M
  REQUIRE(b["unmatched"].size() == 1);
  CHECK(b["unmatched"][0] == "BM_fused_moe_layer/qwen3_235b/M:1/manual_time");
  for (const auto& p : b["points"]) {
    CHECK(p["ratio"].get<double>() == doctest::Approx(1 / 1.1));
    CHECK(p["bench"] == "fused_moe_layer");
    CHECK(p["family"] == "fused_moe");
  }
  CHECK(b["ratios"]["rows"].size() == 2);
  CHECK(b["ratios"]["geomean_by_model"]["mixtral_8x7b"].get<double>() == doctest::Approx(1 / 1.1));
  CHECK(b["ratios"]["geomean"].get<double>() == doctest::Approx(1 / 1.1));
  // Our file has no fp8 peak: the baseline's, same device; int8 has none anywhere.
  const auto& ours = rep["inputs"][0];
  CHECK(ours["ceilings"]["fp8_tflops"].get<double>() == doctest::Approx(1400.0));
  CHECK(ours["ceilings"]["from"]["fp8_tflops"] == "base.json");
  CHECK(ours["ceilings"]["int8_tops"].is_null());
  bool fp8_seen = false, int8_seen = false;
  for (const auto& p : rep["bench"]["points"]) {
    if (p["bench"] != "q8_layer") continue;
    if (p["dtype"] == "fp8") {
      fp8_seen = true;
      CHECK(p["floor"]["compute_us"].is_number());
      CHECK(p["floor"]["note"] == "");
    }
    if (p["dtype"] == "int8") {
      int8_seen = true;
      CHECK(p["floor"]["compute_us"].is_null());
      CHECK(p["floor"]["note"] == "no int8 peak measured");
    }
    CHECK(p["pct_floor"].get<double>() > 0);
  }
  CHECK((fp8_seen && int8_seen));

  const std::string html = render_report_html(rep);
  for (const char* part : {"id=\"summary\"", "id=\"layer-summary\"", "ours ÷ torch", "class=\"ratios\"", "id=\"ceilings\"",
                           "no int8 peak measured", "class=\"chart speedup\"", "MiB"})
    CHECK_MESSAGE(html.find(part) != std::string::npos, part);
  CHECK(html.find("no data") == std::string::npos);
  // No chart holds more than 8 series.
  for (size_t pos = 0; (pos = html.find("<svg", pos)) != std::string::npos; ++pos) {
    const size_t end = html.find("</svg>", pos);
    size_t items = 0;
    for (size_t q = pos; (q = html.find("class=\"legend-item\"", q)) != std::string::npos && q < end; ++q) ++items;
    CHECK(items <= kMaxChartSeries);
  }
  // A baseline file that is not a Google Benchmark document is an input error naming it.
  in.baselines[0].doc = json{{"rows", json::array()}};
  CHECK_THROWS_WITH_AS(build_report_json(in), "base.json: not a Google Benchmark JSON document (no 'benchmarks' array)",
                       InputError);
}
