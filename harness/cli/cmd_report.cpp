// moe-harness report: one self-contained HTML file (plus the same data as JSON)
// from verify results and Google Benchmark JSON files.
#include <filesystem>
#include <set>

#include <memory>

#include <fmt/format.h>

#include "commands.hpp"
#include "moe/atomic_file.hpp"
#include "moe/error.hpp"
#include "moe/model_config.hpp"
#include "moe/registry.hpp"
#include "moe/report.hpp"
#include "moe/tuned_config.hpp"

namespace moe::cli {
namespace {

struct Opts {
  std::vector<std::string> verify, bench, baselines;
  std::string out, json_out, model_configs, tuned_config;
};

int run_report(const CommonOptions&, const Opts& o) {
  MOE_REQUIRE(!o.verify.empty() || !o.bench.empty(), "report: give at least one --verify or --bench file");
  MOE_REQUIRE(o.baselines.empty() || !o.bench.empty(), "report: --baseline needs --bench (ours to compare with)");
  // Both outputs are checked before anything is read or written: neither may
  // replace an input (the default --json-out of results.html is results.json).
  const std::string json_out =
      o.json_out.empty() ? std::filesystem::path(o.out).replace_extension(".json").string() : o.json_out;
  check_output_target(o.out);
  check_output_target(json_out);
  MOE_REQUIRE(json_out != o.out, "report: --json-out must differ from --out");
  check_output_not_input(json_out, {o.out});
  // NAME=FILE, each name once (a name is what the report calls the baseline).
  std::vector<std::pair<std::string, std::string>> baselines;
  for (const auto& b : o.baselines) {
    const auto eq = b.find('=');
    MOE_REQUIRE(eq != std::string::npos && eq > 0 && eq + 1 < b.size(),
                "report: --baseline '" + b + "': expected NAME=FILE (e.g. torch=torch_moe_layer.gbench.json)");
    const std::string name = b.substr(0, eq), file = b.substr(eq + 1);
    for (const auto& [n, f] : baselines) MOE_REQUIRE(n != name, "report: --baseline name '" + name + "' given twice");
    MOE_REQUIRE(std::filesystem::is_regular_file(file), "report: --baseline " + name + ": no such file: " + file);
    baselines.emplace_back(name, file);
  }
  std::vector<std::string> inputs = o.verify;
  inputs.insert(inputs.end(), o.bench.begin(), o.bench.end());
  for (const auto& [n, f] : baselines) inputs.push_back(f);
  if (!o.model_configs.empty()) inputs.push_back(o.model_configs);
  if (!o.tuned_config.empty()) inputs.push_back(o.tuned_config);
  check_output_not_input(o.out, inputs);
  check_output_not_input(json_out, inputs);
  ReportInputs in;
  for (const auto& p : o.verify) in.verify.emplace_back(p, read_json_file(p));
  for (const auto& p : o.bench) in.bench.emplace_back(p, read_json_file(p));
  for (const auto& [name, file] : baselines) in.baselines.push_back({name, file, read_json_file(file)});

  // Model configs: those the results mention, else all of them.
  in.model_configs_path = o.model_configs.empty() ? find_config_file("model_configs.json", MOE_SOURCE_DIR) : o.model_configs;
  if (std::filesystem::exists(in.model_configs_path) || !o.model_configs.empty()) {
    const auto models = load_model_configs(in.model_configs_path);
    for (const auto& m : models) in.model_names.push_back(m.name);
    std::set<std::string> used;
    for (const auto& [p, d] : in.bench)
      for (const auto& bp : read_bench_points(d, p)) used.insert(shape_of(bp, in.model_names).model);
    for (const auto& [p, d] : in.verify)
      if (d.contains("cases") && d["cases"].is_array())
        for (const auto& c : d["cases"])
          if (c.contains("params") && c["params"].is_object() && c["params"].contains("model") &&
              c["params"]["model"].is_string())
            used.insert(c["params"]["model"].get<std::string>());
    bool any = false;
    for (const auto& m : models) any = any || used.count(m.name);
    for (const auto& m : models)
      if (!any || used.count(m.name)) in.models.push_back(m.to_json());
  }
  if (!o.tuned_config.empty()) {
    in.tuned = TunedTable::load(o.tuned_config, tuned_impl_names()).summary();
  }
  in.git_revision_now = git_revision_here();
  in.generated_at = utc_now_iso();
  const auto rep = build_report_json(in);
  write_file_atomic(o.out, render_report_html(rep));
  write_file_atomic(json_out, rep.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  fmt::print("report: {} verify case(s), {} benchmark point(s) -> {} (data: {})\n", rep["verify"]["cases"].size(),
             rep["bench"]["points"].size(), o.out, json_out);
  for (const auto& b : rep["baselines"])
    fmt::print("report: baseline {}: {} point(s) matched ours, {} not\n", b["name"].get<std::string>(), b["points"].size(),
               b["unmatched"].size());
  return 0;
}

}  // namespace

void register_report(CLI::App& app, std::vector<Command>& out) {
  auto o = std::make_shared<Opts>();  // bound by CLI11, owned by the command
  auto* sub = app.add_subcommand("report", "One self-contained HTML report (and JSON) from verify and benchmark results");
  sub->add_option("--verify", o->verify, "Results of moe-harness verify (repeatable)")->check(CLI::ExistingFile);
  sub->add_option("--bench", o->bench, "Google Benchmark JSON output (repeatable)")->check(CLI::ExistingFile);
  sub->add_option("--baseline", o->baselines,
                  "NAME=FILE: another implementation's Google Benchmark JSON with our benchmark names, drawn beside "
                  "ours with a table of ours / baseline (repeatable; e.g. torch=FILE from bench/anchors/torch_moe_layer.py "
                  "--gbench-json)");
  sub->add_option("--out", o->out, "HTML file to write, e.g. reports/h100.html")->required();
  sub->add_option("--json-out", o->json_out, "The report's data as JSON (default: --out with .json)");
  sub->add_option("--model-configs", o->model_configs, "Model configs (default: configs/model_configs.json)");
  sub->add_option("--tuned-config", o->tuned_config, "Tuned-config table to summarise in the report");
  out.push_back({sub, [o](const CommonOptions& c) { return run_report(c, *o); }});
}

}  // namespace moe::cli
