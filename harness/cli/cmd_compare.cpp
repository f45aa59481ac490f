// moe-harness compare A.json B.json: regressions and speedups of B against A
// (Google Benchmark JSON), beyond the measured noise. Exit 1 on a regression.
#include <fmt/format.h>

#include "commands.hpp"
#include "moe/atomic_file.hpp"
#include "moe/error.hpp"
#include "moe/report.hpp"

namespace moe::cli {
namespace {

struct Opts {
  std::string a, b, json;
  double threshold = 5.0;
  double noise_k = 3.0;
};
Opts o;

int run_compare(const CommonOptions&) {
  if (!o.json.empty()) {
    check_output_target(o.json);
    check_output_not_input(o.json, {o.a, o.b});
  }
  const auto a = read_bench_points(read_json_file(o.a), o.a);
  const auto b = read_bench_points(read_json_file(o.b), o.b);
  MOE_REQUIRE(!a.empty(), fmt::format("{}: no benchmarks", o.a));
  MOE_REQUIRE(!b.empty(), fmt::format("{}: no benchmarks", o.b));
  const auto r = compare_benchmarks(a, b, o.threshold, o.noise_k);
  MOE_REQUIRE(!r.rows.empty(), fmt::format("{} and {} have no benchmark name in common", o.a, o.b));
  fmt::print("A = {}\nB = {}\nbar = max(threshold {}%, {} x combined stddev)\n", o.a, o.b, o.threshold, o.noise_k);
  fmt::print("{}", format_compare_table(r));
  if (!o.json.empty()) write_file_atomic(o.json, r.to_json().dump(2) + "\n");
  return r.regressions > 0 ? 1 : 0;
}

}  // namespace

void register_compare(CLI::App& app, std::vector<Command>& out) {
  auto* sub = app.add_subcommand("compare", "Compare two Google Benchmark JSON files; exit 1 on a regression");
  sub->add_option("A", o.a, "Baseline JSON")->required()->check(CLI::ExistingFile);
  sub->add_option("B", o.b, "New JSON")->required()->check(CLI::ExistingFile);
  sub->add_option("--threshold", o.threshold, "Smallest change in percent that counts")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1000.0));
  sub->add_option("--noise-k", o.noise_k, "Noise bar in combined standard deviations")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 100.0));
  sub->add_option("--json", o.json, "Also write the comparison as JSON");
  out.push_back({sub, run_compare});
}

}  // namespace moe::cli
