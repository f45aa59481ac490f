#include <algorithm>
#include <chrono>
#include <map>
#include <set>

#include <unistd.h>

#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "git_revision.h"
#include "moe/atomic_file.hpp"
#include "moe/device.hpp"
#include "moe/error.hpp"
#include "moe/model_config.hpp"
#include "moe/gpu.hpp"
#include "moe/registry.hpp"
#include "moe/report.hpp"

namespace moe::cli {
namespace {

struct Opts {
  std::vector<std::string> kernels;
  bool quick = false;
  uint64_t seed = 0;
  std::string json = "moe-verify.json";
  std::string shard;  // "i/n": only cases with index % n == i
  std::string tuned_config;
  std::string model_configs;
  std::vector<std::string> where;  // "KEY=V1,V2": only cases whose params[KEY] is one of the values
  bool allow_empty = false;        // a run in which no case ran (all skipped) exits 0
};

// The end of a run: every failure again (name and message), a per-family table,
// and the verdict. Returns the exit code: 1 on any failure, and 1 when no case
// ran at all (everything skipped) unless --allow-empty.
int print_verdict(const Opts& o, const nlohmann::json& cases, const std::string& json_path, const std::string& tag) {
  struct Counts {
    int passed = 0, failed = 0, skipped = 0;
  };
  std::map<std::string, Counts> per_family;
  Counts all;
  std::vector<const nlohmann::json*> failures;
  for (const auto& c : cases) {
    const std::string status = c.value("status", "");
    auto& f = per_family[c.value("kernel", "?")];
    if (status == "pass") ++f.passed, ++all.passed;
    else if (status == "skip") ++f.skipped, ++all.skipped;
    else ++f.failed, ++all.failed, failures.push_back(&c);
  }
  if (!failures.empty()) {
    fmt::print("{}failures ({}):\n", tag, failures.size());
    for (const auto* c : failures)
      fmt::print("{}  FAIL {}/{}: {}\n", tag, c->value("kernel", "?"), c->value("name", "?"), c->value("message", ""));
  }
  if (per_family.size() > 1) {
    fmt::print("{}{:<14} {:>7} {:>7} {:>8}\n", tag, "family", "passed", "failed", "skipped");
    for (const auto& [name, f] : per_family)
      fmt::print("{}{:<14} {:>7} {:>7} {:>8}\n", tag, name, f.passed, f.failed, f.skipped);
  }
  fmt::print("{}verify: {} passed, {} failed, {} skipped{}\n", tag, all.passed, all.failed, all.skipped,
             json_path.empty() ? "" : fmt::format(" (results in {})", json_path));
  if (all.failed > 0) return 1;
  if (all.passed == 0 && !o.allow_empty) {
    fmt::print(stderr, "{}moe-harness verify: nothing ran ({} case(s), all skipped); --allow-empty accepts that\n", tag,
               all.skipped);
    return 1;
  }
  return 0;
}

// --where KEY=V1[,V2...] -> {KEY: {V1, V2}}; repeated keys accumulate values.
std::map<std::string, std::set<std::string>> parse_where(const std::vector<std::string>& args) {
  std::map<std::string, std::set<std::string>> w;
  for (const auto& a : args) {
    const auto eq = a.find('=');
    MOE_REQUIRE(eq != std::string::npos && eq > 0 && eq + 1 < a.size(),
                fmt::format("--where '{}': expected KEY=VALUE[,VALUE...] (e.g. --where M=1,16)", a));
    auto& vals = w[a.substr(0, eq)];
    size_t b = eq + 1;
    while (b <= a.size()) {
      const size_t e = std::min(a.find(',', b), a.size());
      MOE_REQUIRE(e > b, fmt::format("--where '{}': empty value", a));
      vals.insert(a.substr(b, e - b));
      b = e + 1;
    }
  }
  return w;
}

// A case parameter as the user types it: strings bare, numbers and booleans as JSON.
std::string param_text(const nlohmann::json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// Every KEY must be a parameter of the case with one of its values. A case
// without the parameter never matches (--where model=X drops the cases not built
// from a model config).
bool where_selects(const std::map<std::string, std::set<std::string>>& w, const nlohmann::json& params) {
  for (const auto& [key, vals] : w) {
    if (!params.is_object() || !params.contains(key)) return false;
    if (vals.count(param_text(params[key])) == 0) return false;
  }
  return true;
}

// This process's share of the cases, run; the results document.
nlohmann::json run_cases(const CommonOptions& c, const Opts& o, const MpiWorld& world, const std::string& shard_text,
                         const std::map<std::string, std::set<std::string>>& where, const std::string& tag) {
  shard_test_hooks(shard_text);
  const Shard shard = shard_text.empty() ? Shard{} : parse_shard(shard_text);
  const OpenTunedConfig tuned_config = open_tuned_config(o.tuned_config);
  const nlohmann::json& tuned = tuned_config.summary;
  VerifyOptions vo;
  vo.tuned_table = tuned_config.table;
  vo.data_dir = resolve_data_dir(c);
  vo.quick = o.quick;
  vo.seed = o.seed;
  const std::string model_configs_path =
      o.model_configs.empty() ? find_config_file("model_configs.json", MOE_SOURCE_DIR) : o.model_configs;
  vo.models = load_model_table(model_configs_path);
  const auto devs = list_devices();
  vo.gpu_available = !devs.empty();
  if (vo.gpu_available) {
    const int dev = world.launched() ? world.local_rank % static_cast<int>(devs.size()) : c.device;
    MOE_REQUIRE(dev < static_cast<int>(devs.size()),
                fmt::format("--device {} but only {} GPU(s) visible", dev, devs.size()));
#if MOE_HAVE_GPU
    MOE_GPU_CHECK(hipSetDevice(dev));
#endif
  } else {
    if (world.rank == 0)
      fmt::print(stderr, "moe-harness: no GPU on this machine ({}); running the CPU references against the golden data in {}\n",
               std::string(gpu_backend()) == "none" ? "built with -Dgpu=none" : "the runtime sees no device",
               vo.data_dir);
  }
  std::vector<VerifyCase> cases;
  for (const auto& f : kernel_families()) {
    if (!o.kernels.empty() && std::find(o.kernels.begin(), o.kernels.end(), f.name) == o.kernels.end()) continue;
    for (auto& vc : f.cases(vo)) cases.push_back(std::move(vc));
  }
  if (!where.empty()) {
    std::set<std::string> keys;  // for the error message
    std::vector<VerifyCase> kept;
    for (auto& vc : cases) {
      if (vc.params.is_object())
        for (auto it = vc.params.begin(); it != vc.params.end(); ++it) keys.insert(it.key());
      if (where_selects(where, vc.params)) kept.push_back(std::move(vc));
    }
    std::string known;
    for (const auto& k : keys) known += (known.empty() ? "" : ", ") + k;
    MOE_REQUIRE(!kept.empty(), fmt::format("--where selects no case (parameters of the selected cases: {})", known));
    cases = std::move(kept);
  }
  std::vector<size_t> global_index;  // position in the unsharded list (for merge)
  {
    std::vector<VerifyCase> mine;
    for (size_t i = 0; i < cases.size(); ++i)
      if (shard.selects(i)) mine.push_back(std::move(cases[i])), global_index.push_back(i);
    cases = std::move(mine);
  }

  nlohmann::json results = nlohmann::json::array();
  int passed = 0, failed = 0, skipped = 0;
  const bool live_progress = isatty(fileno(stderr)) && !world.launched();
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& vc = cases[i];
    CaseResult r;
    const auto c0 = std::chrono::steady_clock::now();
    if (vc.needs_gpu && !vo.gpu_available) {
      r.skipped = true;
      r.message = "skipped: needs a GPU";
    } else {
      // Each case is isolated: an exception (device fault, out of memory, bad
      // data file) is recorded and the sweep goes on.
      try {
        r = vc.run();
      } catch (const std::exception& e) {
        r = CaseResult{};
        r.message = fmt::format("error: {}", e.what());
#if MOE_HAVE_GPU
        (void)hipGetLastError();
#endif
      }
    }
    r.message = utf8_sanitized(r.message);  // golden files and exceptions may carry any bytes
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count();
    (r.skipped ? skipped : r.passed ? passed : failed)++;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double eta = elapsed / double(i + 1) * double(cases.size() - i - 1);
    const std::string line = fmt::format("{}[{}/{}] {} {}/{}: {} (ETA {:.0f}s)", tag, i + 1, cases.size(),
                                         r.skipped ? "SKIP" : r.passed ? "PASS" : "FAIL", vc.kernel, vc.name,
                                         r.message, eta);
    if (live_progress) {
      // A terminal: one updating line; failures stay on screen.
      fmt::print(stderr, "\r\033[K{}", !r.passed && !r.skipped ? line + "\n" : line.substr(0, 160));
      if (i + 1 == cases.size()) fmt::print(stderr, "\r\033[K");
    } else {
      fmt::print(stderr, "{}\n", line);
    }
    results.push_back({{"index", global_index[i]},
                       {"kernel", vc.kernel},
                       {"name", vc.name},
                       {"needs_gpu", vc.needs_gpu},
                       {"params", vc.params},
                       {"status", r.skipped ? "skip" : r.passed ? "pass" : "fail"},
                       {"message", r.message},
                       {"metrics", r.metrics},
                       {"seconds", secs}});
  }
  nlohmann::json doc{{"tool", "moe-harness verify"},
                     {"version", MOE_VERSION},
                     {"git_revision", MOE_GIT_REVISION},
                     {"backend", gpu_backend()},
                     {"devices", nlohmann::json::array()},
                     {"summary", {{"passed", passed}, {"failed", failed}, {"skipped", skipped}}},
                     {"cases", results}};
  for (const auto& d : devs) doc["devices"].push_back(d.to_json());
  doc["tuned_config"] = tuned;
  if (!shard_text.empty()) doc["shard"] = shard.to_json();
  auto sanitized = [](const std::vector<std::string>& v) {
    std::vector<std::string> out;
    for (const auto& x : v) out.push_back(utf8_sanitized(x));
    return out;
  };
  if (!o.where.empty()) doc["where"] = sanitized(o.where);
  // Every option that changes which cases run or what they compute; shards
  // merge only when these agree.
  doc["options"] = {{"seed", o.seed},
                    {"quick", o.quick},
                    {"kernels", sanitized(o.kernels)},
                    {"where", sanitized(o.where)},
                    {"model_configs", utf8_sanitized(model_configs_path)},
                    {"tuned_config", tuned.is_object() && tuned.contains("file") ? tuned["file"] : nlohmann::json(nullptr)},
                    {"data_dir", utf8_sanitized(vo.data_dir)},
                    {"allow_empty", o.allow_empty}};
  return doc;
}

int run_verify(const CommonOptions& c, const Opts& o) {
  // Input errors come before any work and before any notice is printed.
  for (const auto& k : o.kernels) {
    const auto& fams = kernel_families();
    MOE_REQUIRE(std::any_of(fams.begin(), fams.end(), [&](const KernelFamily& f) { return f.name == k; }),
                utf8_sanitized(fmt::format("unknown kernel '{}' (see moe-harness list)", k)));
  }
  if (!o.json.empty()) check_output_target(o.json);
  // Under mpirun every rank takes shard rank/size on GPU local_rank; rank 0 merges.
  const MpiWorld world = mpi_world();
  const std::string shard_text = world.launched() ? mpi_shard_for(world, o.shard) : o.shard;
  if (!shard_text.empty()) parse_shard(shard_text);  // bad syntax: exit 2 before any work
  const std::string tag = world.launched() ? fmt::format("[rank {}/{}] ", world.rank, world.size) : "";
  const auto where = parse_where(o.where);
  if (world.launched()) {
    // Every rank runs its share and sends its document (or its error); rank 0
    // merges and writes the file. Each rank's own results go to its rank file first.
    const RankRun run = run_rank(world, "the exchange of verify results",
                                 o.json.empty() ? "" : rank_results_path(o.json, world.rank),
                                 [&] { return run_cases(c, o, world, shard_text, where, tag); });
    if (run.mine.ok()) {
      const auto& s = run.mine.doc["summary"];
      fmt::print("{}verify: {} passed, {} failed, {} skipped\n", tag, s["passed"].get<int>(), s["failed"].get<int>(),
                 s["skipped"].get<int>());
    }
    if (world.rank != 0) {
      finish_ranks(run, o.json);
      return run.mine.doc["summary"]["failed"].get<int>() > 0 ? 1 : 0;
    }
    const nlohmann::json merged = merge_rank_reports(
        run.all, [](const auto& parts, bool allow_partial) { return merge_verify_docs(parts, allow_partial); });
    if (merged.is_null()) finish_ranks(run, o.json);  // no rank succeeded: throws, nothing written
    if (!o.json.empty())
      write_file_atomic(o.json, merged.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    fmt::print("verify: merged over {} ranks\n", world.size);
    const int verdict = print_verdict(o, merged["cases"], o.json, "");
    finish_ranks(run, o.json);
    return verdict;
  }
  const nlohmann::json doc = run_cases(c, o, world, shard_text, where, tag);
  // Invalid UTF-8 that slipped into a string is replaced: it must not lose the run.
  if (!o.json.empty()) write_file_atomic(o.json, doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  return print_verdict(o, doc["cases"], o.json, "");
}

}  // namespace

void register_verify(CLI::App& app, std::vector<Command>& out) {
  auto o = std::make_shared<Opts>();  // bound by CLI11, owned by the command
  auto* sub = app.add_subcommand("verify", "Check every kernel against its CPU reference (golden data without a GPU)");
  sub->add_option("--kernel", o->kernels, "Only these kernel families (repeatable)");
  sub->add_flag("--quick", o->quick, "A short subset of cases");
  add_seed_option(sub, o->seed, "RNG seed for generated inputs (0 to 2^64-1)");
  sub->add_option("--json", o->json, "Results file, written atomically ('' to skip)")->capture_default_str();
  sub->add_option("--shard", o->shard,
                  "Only cases with index % n == i, as i/n (merge shards with moe-harness merge); under mpirun each "
                  "rank takes rank/size on GPU local_rank, writes its own <json stem>.rank<r>.json, and rank 0 writes the merged "
                  "--json (MOE_MPI_TIMEOUT_S: seconds a rank waits for the others, default 1800)");
  sub->add_option("--where", o->where,
                  "Only cases whose parameter KEY is one of the values, as KEY=V1[,V2...] (repeatable, all must hold; "
                  "e.g. --where M=1,16 --where routing=softmax; the keys are the params in the results JSON). "
                  "model=NAME (a configs/model_configs.json name, e.g. --where model=qwen3_235b) keeps the cases built "
                  "from that model's shape in every family; a case without the KEY is not selected");
  sub->add_flag("--allow-empty", o->allow_empty,
                "Exit 0 when no case ran (all skipped, e.g. GPU cases without a GPU); without it such a run exits 1");
  add_tuned_config_option(sub, o->tuned_config);
  sub->add_option("--model-configs", o->model_configs,
                  "Models and sweeps of the model cases (default: configs/model_configs.json)");
  out.push_back({sub, [o](const CommonOptions& c) { return run_verify(c, *o); }});
}

}  // namespace moe::cli
