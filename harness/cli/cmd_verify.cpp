#include <algorithm>
#include <chrono>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "git_revision.h"
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
};
Opts o;

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

int run_verify(const CommonOptions& c) {
  // Under mpirun every rank takes shard rank/size on GPU local_rank; rank 0 merges.
  const MpiWorld world = mpi_world();
  const std::string shard_text = world.launched() ? mpi_shard_for(world, o.shard) : o.shard;
  const Shard shard = shard_text.empty() ? Shard{} : parse_shard(shard_text);
  const std::string tag = world.launched() ? fmt::format("[rank {}/{}] ", world.rank, world.size) : "";
  const auto where = parse_where(o.where);
  const nlohmann::json tuned = activate_tuned_config(o.tuned_config);
  VerifyOptions vo;
  vo.data_dir = resolve_data_dir(c);
  vo.quick = o.quick;
  vo.seed = o.seed;
  vo.models = load_model_table(o.model_configs.empty() ? find_config_file("model_configs.json", MOE_SOURCE_DIR)
                                                       : o.model_configs);
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
  for (const auto& k : o.kernels) {
    const auto& fams = kernel_families();
    MOE_REQUIRE(std::any_of(fams.begin(), fams.end(), [&](const KernelFamily& f) { return f.name == k; }),
                fmt::format("unknown kernel '{}' (see moe-harness list)", k));
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
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count();
    (r.skipped ? skipped : r.passed ? passed : failed)++;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double eta = elapsed / double(i + 1) * double(cases.size() - i - 1);
    fmt::print(stderr, "{}[{}/{}] {} {}/{}: {} (ETA {:.0f}s)\n", tag, i + 1, cases.size(),
               r.skipped ? "SKIP" : r.passed ? "PASS" : "FAIL", vc.kernel, vc.name, r.message, eta);
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
  if (!o.where.empty()) doc["where"] = o.where;
  if (world.launched()) {
    // Every rank sends its document; rank 0 merges and writes the file.
    const auto docs = mpi_gather_to_root(doc.dump());
    fmt::print("{}verify: {} passed, {} failed, {} skipped\n", tag, passed, failed, skipped);
    if (world.rank != 0) return failed > 0 ? 1 : 0;
    std::vector<std::pair<std::string, nlohmann::json>> parts;
    for (size_t r = 0; r < docs.size(); ++r) parts.emplace_back(fmt::format("rank {}", r), nlohmann::json::parse(docs[r]));
    nlohmann::json merged = merge_verify_docs(parts);
    merged["tuned_config"] = tuned;
    merged["mpi"] = {{"ranks", world.size}};
    if (!o.json.empty()) write_file_atomic(o.json, merged.dump(2) + "\n");
    const auto& s = merged["summary"];
    fmt::print("verify (merged over {} ranks): {} passed, {} failed, {} skipped{}\n", world.size,
               s["passed"].get<int>(), s["failed"].get<int>(), s["skipped"].get<int>(),
               o.json.empty() ? "" : fmt::format(" (results in {})", o.json));
    return s["failed"].get<int>() > 0 ? 1 : 0;
  }
  if (!o.json.empty()) write_file_atomic(o.json, doc.dump(2) + "\n");
  if (cases.empty()) fmt::print(stderr, "moe-harness: no verification cases selected\n");
  fmt::print("verify: {} passed, {} failed, {} skipped{}\n", passed, failed, skipped,
             o.json.empty() ? "" : fmt::format(" (results in {})", o.json));
  return failed > 0 ? 1 : 0;
}

}  // namespace

void register_verify(CLI::App& app, std::vector<Command>& out) {
  auto* sub = app.add_subcommand("verify", "Check every kernel against its CPU reference (golden data without a GPU)");
  sub->add_option("--kernel", o.kernels, "Only these kernel families (repeatable)");
  sub->add_flag("--quick", o.quick, "A short subset of cases");
  sub->add_option("--seed", o.seed, "RNG seed for generated inputs");
  sub->add_option("--json", o.json, "Results file, written atomically ('' to skip)")->capture_default_str();
  sub->add_option("--shard", o.shard,
                  "Only cases with index % n == i, as i/n (merge shards with moe-harness merge); under mpirun each "
                  "rank takes rank/size on GPU local_rank and rank 0 writes the merged --json");
  sub->add_option("--where", o.where,
                  "Only cases whose parameter KEY is one of the values, as KEY=V1[,V2...] (repeatable, all must hold; "
                  "e.g. --where M=1,16 --where routing=softmax; the keys are the params in the results JSON). "
                  "model=NAME (a configs/model_configs.json name, e.g. --where model=qwen3_235b) keeps the cases built "
                  "from that model's shape in every family; a case without the KEY is not selected");
  add_tuned_config_option(sub, o.tuned_config);
  sub->add_option("--model-configs", o.model_configs,
                  "Models and sweeps of the model cases (default: configs/model_configs.json)");
  out.push_back({sub, run_verify});
}

}  // namespace moe::cli
