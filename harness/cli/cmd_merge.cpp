// moe-harness merge: combine verify results of shards (verify --shard i/n), or
// benchmark results of shards (bench --shard i/n), into one file.
#include <memory>

#include <fmt/format.h>

#include "commands.hpp"
#include "moe/atomic_file.hpp"
#include "moe/error.hpp"
#include "moe/report.hpp"

namespace moe::cli {
namespace {

struct Opts {
  std::vector<std::string> inputs;
  std::string out;
  bool allow_partial = false;
};

int run_merge(const CommonOptions&, const Opts& o) {
  check_output_target(o.out);
  check_output_not_input(o.out, o.inputs);
  std::vector<std::pair<std::string, nlohmann::json>> docs;
  for (const auto& p : o.inputs) docs.emplace_back(p, read_json_file(p));
  // Each file is one kind or the other, all files the same kind.
  auto is_bench = [](const nlohmann::json& d) { return is_bench_doc(d) && !d.contains("cases"); };
  for (const auto& [p, d] : docs)
    MOE_REQUIRE(is_bench(d) || (d.is_object() && d.contains("cases") && d["cases"].is_array()),
                utf8_sanitized(fmt::format("{}: neither verify results (a 'cases' array) nor a Google Benchmark "
                                           "document (a 'benchmarks' array)", p)));
  size_t benches = 0;
  for (const auto& [p, d] : docs) benches += is_bench(d) ? 1 : 0;
  if (benches > 0) {
    MOE_REQUIRE(benches == docs.size(), "merge: mixing benchmark (bench --json) and verify result files");
    const auto merged = merge_bench_docs(docs, o.allow_partial);
    write_file_atomic(o.out, merged.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    int errors = 0;
    for (const auto& b : merged["benchmarks"]) errors += b.value("error_occurred", false) ? 1 : 0;
    fmt::print("merge: {} benchmark file(s), {} entries ({} reported an error) -> {}\n", docs.size(),
               merged["benchmarks"].size(), errors, o.out);
    return 0;
  }
  const auto merged = merge_verify_docs(docs, o.allow_partial);
  write_file_atomic(o.out, merged.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  const auto& s = merged["summary"];
  fmt::print("merge: {} file(s), {} case(s): {} passed, {} failed, {} skipped -> {}\n", docs.size(),
             merged["cases"].size(), s["passed"].get<int>(), s["failed"].get<int>(), s["skipped"].get<int>(), o.out);
  return s["failed"].get<int>() > 0 ? 1 : 0;
}

}  // namespace

void register_merge(CLI::App& app, std::vector<Command>& out) {
  auto o = std::make_shared<Opts>();  // bound by CLI11, owned by the command
  auto* sub = app.add_subcommand("merge", "Merge verify results of shards (exit 1 if any case failed), or bench results of shards (bench --shard)");
  sub->add_option("inputs", o->inputs, "Verify result files, or bench result files (one per shard)")->required()->check(CLI::ExistingFile);
  sub->add_option("--out", o->out, "Merged results file (written atomically)")->required();
  sub->add_flag("--allow-partial", o->allow_partial, "Merge even if some shards are missing");
  out.push_back({sub, [o](const CommonOptions& c) { return run_merge(c, *o); }});
}

}  // namespace moe::cli
