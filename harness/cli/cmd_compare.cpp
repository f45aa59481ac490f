// moe-harness compare A.json B.json: regressions and speedups of B against A
// (Google Benchmark JSON): a U test over the repetitions plus a minimum
// effect, geometric means of the time ratios. Exit 1 on a regression.
#include <memory>

#include <fmt/format.h>

#include "commands.hpp"
#include "moe/atomic_file.hpp"
#include "moe/error.hpp"
#include "moe/report.hpp"
#include "moe/stats.hpp"

namespace moe::cli {
namespace {

struct Opts {
  std::string a, b, json;
  CompareOptions cmp;
  bool force = false;
};

std::string file_label(const std::string& path, const BenchDevice& d) {
  return fmt::format("{} (device: {})", path, d.name.empty() ? "not recorded" : d.name);
}

int run_compare(const CommonOptions&, const Opts& o) {
  if (!o.json.empty()) {
    check_output_target(o.json);
    check_output_not_input(o.json, {o.a, o.b});
  }
  const auto doc_a = read_json_file(o.a), doc_b = read_json_file(o.b);
  const auto a = read_bench_points(doc_a, o.a);
  const auto b = read_bench_points(doc_b, o.b);
  MOE_REQUIRE(!a.empty(), fmt::format("{}: no benchmarks", o.a));
  MOE_REQUIRE(!b.empty(), fmt::format("{}: no benchmarks", o.b));
  const BenchDevice dev_a = read_bench_device(doc_a), dev_b = read_bench_device(doc_b);
  const auto device_warnings = check_comparable_devices(dev_a, dev_b, o.a, o.b, o.force);
  auto r = compare_benchmarks(a, b, o.cmp);
  MOE_REQUIRE(!r.rows.empty(), fmt::format("{} and {} have no benchmark name in common", o.a, o.b));
  r.warnings.insert(r.warnings.begin(), device_warnings.begin(), device_warnings.end());
  fmt::print("{}", format_compare(r, file_label(o.a, dev_a), file_label(o.b, dev_b)));
  if (!o.json.empty()) {
    auto j = r.to_json();
    j["a"] = {{"file", o.a}, {"device", dev_a.name}, {"ceilings", dev_a.ceilings}};
    j["b"] = {{"file", o.b}, {"device", dev_b.name}, {"ceilings", dev_b.ceilings}};
    write_file_atomic(o.json, j.dump(2) + "\n");
  }
  return r.regressions > 0 ? 1 : 0;
}

}  // namespace

void register_compare(CLI::App& app, std::vector<Command>& out) {
  auto o = std::make_shared<Opts>();  // bound by CLI11, owned by the command
  const CompareOptions defaults;
  auto* sub = app.add_subcommand(
      "compare",
      fmt::format(
          "Compare two Google Benchmark JSON files point by point (B against A). A point is a REGRESSION (or "
          "speedup) only when its median time changes by more than --threshold percent AND a two-sided Mann-Whitney "
          "U test over the repetitions gives p < --alpha. The test needs enough repetitions in both runs: at alpha "
          "{} at least {} each (3 vs 3 can never give p below {:g}), so with bench's default 3 such a change reads "
          "'unknown (too few repetitions)'; run bench with --repetitions {} or more for a verdict. Prints the "
          "geometric mean of the B/A time ratios, overall and per kernel. Refuses runs from different devices or "
          "with measured ceilings more than {:g}% apart (exit 2) unless --force. Exit 1 on a regression, 2 on bad "
          "input",
          defaults.alpha, rank_test_min_repetitions(defaults.alpha), rank_test_min_p(3, 3),
          rank_test_min_repetitions(defaults.alpha), kCeilingTolerance * 100));
  sub->add_option("A", o->a, "Baseline JSON")->required()->check(CLI::ExistingFile);
  sub->add_option("B", o->b, "New JSON")->required()->check(CLI::ExistingFile);
  sub->add_option("--threshold", o->cmp.threshold_pct,
                  "Minimum effect: smallest change of the median, in percent, that counts")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1000.0));
  sub->add_option("--alpha", o->cmp.alpha, "Significance level of the two-sided U test (p must be below it)")
      ->capture_default_str()
      ->check(CLI::Range(1e-6, 0.5));
  sub->add_flag("--force", o->force,
                "Compare runs from different devices or ceilings anyway (the output starts with a WARNING line)");
  sub->add_option("--json", o->json, "Also write the comparison as JSON (rows with p and verdict, geomean_ratio)");
  out.push_back({sub, [o](const CommonOptions& c) { return run_compare(c, *o); }});
}

}  // namespace moe::cli
