// moe-harness merge: combine verify results of shards (--shard i/n) into one file.
#include <fmt/format.h>

#include "commands.hpp"
#include "moe/error.hpp"
#include "moe/report.hpp"

namespace moe::cli {
namespace {

struct Opts {
  std::vector<std::string> inputs;
  std::string out;
  bool allow_partial = false;
};
Opts o;

int run_merge(const CommonOptions&) {
  std::vector<std::pair<std::string, nlohmann::json>> docs;
  for (const auto& p : o.inputs) docs.emplace_back(p, read_json_file(p));
  const auto merged = merge_verify_docs(docs, o.allow_partial);
  atomic_write_file(o.out, merged.dump(2) + "\n");
  const auto& s = merged["summary"];
  fmt::print("merge: {} file(s), {} case(s): {} passed, {} failed, {} skipped -> {}\n", docs.size(),
             merged["cases"].size(), s["passed"].get<int>(), s["failed"].get<int>(), s["skipped"].get<int>(), o.out);
  return s["failed"].get<int>() > 0 ? 1 : 0;
}

}  // namespace

void register_merge(CLI::App& app, std::vector<Command>& out) {
  auto* sub = app.add_subcommand("merge", "Merge verify results of shards; exit 1 if any case failed");
  sub->add_option("inputs", o.inputs, "Verify result files (one per shard)")->required()->check(CLI::ExistingFile);
  sub->add_option("--out", o.out, "Merged results file (written atomically)")->required();
  sub->add_flag("--allow-partial", o.allow_partial, "Merge even if some shards are missing");
  out.push_back({sub, run_merge});
}

}  // namespace moe::cli
