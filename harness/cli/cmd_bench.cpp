// moe-harness bench: runs the Google Benchmark executables bench_<family> (built
// beside this binary in the build tree, bench/bench_<family>), every family and
// the full fused MoE layer, and merges their JSON into one document.
//
//  1. lists each executable's benchmarks (--benchmark_list_tests, with --filter),
//     keeps those matching --model, numbers the list (families in name order,
//     benchmarks in registration order) and takes this shard (index % n == i);
//  2. runs each executable once with a filter naming exactly its selected
//     benchmarks, --benchmark_out=<tmp>.json, --benchmark_repetitions (every
//     repetition stays in the file beside the aggregates: compare tests them),
//     progress lines with count and ETA;
//  3. writes Google Benchmark's own entries, tagged with moe_family and
//     moe_index, into one document (--json, atomically).
//
// Under mpirun (MPI build) each rank takes shard rank/size on GPU local_rank
// (MOE_DEVICE for the executables) and rank 0 merges and writes --json.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "git_revision.h"
#include "moe/atomic_file.hpp"
#include "moe/device.hpp"
#include "moe/error.hpp"
#include "moe/model_config.hpp"
#include "moe/report.hpp"
#include "moe/stats.hpp"

namespace moe::cli {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

struct Opts {
  std::vector<std::string> kernels;
  std::vector<std::string> models;
  std::string filter;
  int repetitions = 3;
  std::string flush_l2 = "default";
  std::string json_out = "moe-bench.json";
  std::string shard;
  std::string tuned_config;
  std::string bench_dir;
  std::string model_configs;
  bool list_only = false;
  bool no_ceilings = false;
  double min_time = 0;
};

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Google Benchmark's filter is a regular expression: escape every special character.
std::string regex_escape(const std::string& s) {
  static const std::string special = R"(\^$.|?*+()[]{})";
  std::string r;
  for (char c : s) {
    if (special.find(c) != std::string::npos) r += '\\';
    r += c;
  }
  return r;
}

fs::path self_dir() {
  std::error_code ec;
  const fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::current_path() : p.parent_path();
}

struct BenchExe {
  std::string family;
  fs::path path;
};

std::vector<BenchExe> executables_in(const fs::path& dir) {
  std::vector<BenchExe> v;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return v;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (!n.starts_with("bench_") || n.size() <= 6 || e.path().has_extension()) continue;
    if (!e.is_regular_file(ec) || ::access(e.path().c_str(), X_OK) != 0) continue;
    v.push_back({n.substr(6), e.path()});
  }
  std::sort(v.begin(), v.end(), [](const BenchExe& a, const BenchExe& b) { return a.family < b.family; });
  return v;
}

// Where the executables are: --bench-dir, $MOE_BENCH_DIR, else beside this
// binary (<build>/harness/cli -> <build>/bench) or installed
// (<prefix>/bin -> <prefix>/libexec/moe-harness).
std::vector<fs::path> bench_dir_candidates(const Opts& o, bool& explicit_dir) {
  explicit_dir = true;
  if (!o.bench_dir.empty()) return {o.bench_dir};
  if (const char* e = std::getenv("MOE_BENCH_DIR"); e && *e) return {e};
  explicit_dir = false;
  const fs::path d = self_dir();
  return {d.parent_path().parent_path() / "bench", d, d.parent_path() / "libexec" / "moe-harness"};
}

struct ProcResult {
  int code = -1;
  std::vector<std::string> lines;
};

// Runs `cmd` through /bin/sh; each stdout line goes to on_line (if given) and is kept.
template <class F>
ProcResult run_capture(const std::string& cmd, F&& on_line) {
  ProcResult r;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (!f) throw Error(fmt::format("cannot run {}", cmd));
  std::string cur;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, f)) {
    for (size_t i = 0; i < n; ++i) {
      if (buf[i] == '\n') {
        on_line(cur);
        r.lines.push_back(std::move(cur));
        cur.clear();
      } else {
        cur += buf[i];
      }
    }
  }
  if (!cur.empty()) on_line(cur), r.lines.push_back(cur);
  const int st = ::pclose(f);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  return r;
}

std::string last_line(const ProcResult& r) {
  for (auto it = r.lines.rbegin(); it != r.lines.rend(); ++it)
    if (!it->empty()) return *it;
  return "";
}

// Does benchmark `name` belong to `model`? The model's name as a whole word of
// the name ('/' or '_' bounded), or the model's expert count and top_k as name
// arguments (E:<experts> and k:<top_k>, as bench_moe_align names them).
bool matches_model(const std::string& name, const ModelConfig& m) {
  for (size_t pos = name.find(m.name); pos != std::string::npos; pos = name.find(m.name, pos + 1)) {
    const bool left = pos == 0 || name[pos - 1] == '/' || name[pos - 1] == '_';
    const size_t end = pos + m.name.size();
    const bool right = end == name.size() || name[end] == '/' || name[end] == '_';
    if (left && right) return true;
  }
  std::set<std::string> comps;
  size_t s = 0;
  for (size_t i = 0; i <= name.size(); ++i)
    if (i == name.size() || name[i] == '/') comps.insert(name.substr(s, i - s)), s = i + 1;
  return comps.count(fmt::format("E:{}", m.experts)) && comps.count(fmt::format("k:{}", m.top_k));
}

// tuned_file: the table the executables read ('' = heuristic only).
std::string env_prefix(const Opts& o, const std::string& tuned_file, const MpiWorld& world, std::optional<int> device) {
  std::string env;
  env += "MOE_TUNED_CONFIG=" + shell_quote(tuned_file) + " ";
  // The benchmark points come from the model configs' sweeps (bench/bench_common.hpp).
  const std::string mc = o.model_configs.empty() ? find_config_file("model_configs.json", MOE_SOURCE_DIR) : o.model_configs;
  env += "MOE_MODEL_CONFIGS=" + shell_quote(fs::absolute(mc).string()) + " ";
  if (o.flush_l2 == "on") env += "MOE_BENCH_FLUSH_L2=1 ";
  if (o.flush_l2 == "off") env += "MOE_BENCH_FLUSH_L2=0 ";
  if (o.no_ceilings) env += "MOE_BENCH_NO_CEILINGS=1 ";
  // The executables pick their GPU from MOE_DEVICE: the rank's local GPU under mpirun, else
  // --device when given (else the environment's MOE_DEVICE, else GPU 0).
  if (world.launched()) env += fmt::format("MOE_DEVICE={} ", world.local_rank);
  else if (device) env += fmt::format("MOE_DEVICE={} ", *device);
  return env;
}

// This process's share of the benchmarks, run; the merged Google Benchmark
// document (null for --list, which prints the selection instead). `failures`:
// the executables that failed (exit 1), each with its exit code and last line.
json run_benchmarks(const Opts& o, const MpiWorld& world, std::optional<int> device, const std::string& shard_text, const std::string& tag,
                    std::vector<std::string>& failures) {
  shard_test_hooks(shard_text);
  const Shard shard = shard_text.empty() ? Shard{} : parse_shard(shard_text);
  // The tuned table: validated here (bad file = exit 2), passed on by path.
  const json tuned = open_tuned_config(o.tuned_config).summary;
  std::string tuned_file = tuned["file"].get<std::string>();
  if (!fs::exists(tuned_file)) tuned_file.clear();  // default file absent: heuristic only

  std::vector<ModelConfig> models;
  if (!o.models.empty()) {
    const auto all = load_model_configs(o.model_configs.empty() ? find_config_file("model_configs.json", MOE_SOURCE_DIR)
                                                                : o.model_configs);
    for (const auto& m : o.models) models.push_back(find_model(all, m));
  }

  // 1. the executables
  bool explicit_dir = false;
  const auto dirs = bench_dir_candidates(o, explicit_dir);
  if (!explicit_dir && std::string(gpu_backend()) == "none")
    throw InputError("bench: this moe-harness was built without a GPU backend (-Dgpu=none); the benchmarks need a "
                     "-Dgpu=cuda or -Dgpu=hip build");
  std::vector<BenchExe> exes;
  for (const auto& d : dirs) {
    exes = executables_in(d);
    if (!exes.empty()) break;
  }
  if (exes.empty()) {
    std::string where;
    for (const auto& d : dirs) where += (where.empty() ? "" : ", ") + d.string();
    throw InputError(fmt::format("bench: no bench_* executables in {} (Google Benchmark not built: install "
                                 "libbenchmark-dev, reconfigure, ninja)",
                                 where));
  }
  for (const auto& k : o.kernels)
    MOE_REQUIRE(std::any_of(exes.begin(), exes.end(), [&](const BenchExe& e) { return e.family == k; }),
                fmt::format("bench: unknown kernel '{}' (executables: {})", k, [&] {
                  std::string n;
                  for (const auto& e : exes) n += (n.empty() ? "" : ", ") + e.family;
                  return n;
                }()));
  if (!explicit_dir && list_devices().empty() && !o.list_only)
    throw InputError("bench: no GPU visible (the benchmarks need one)");

  // 2. the benchmark list
  struct Item {
    size_t exe;
    std::string name;
    size_t index;  // global
  };
  std::vector<Item> all;
  const std::string env = env_prefix(o, tuned_file, world, device);
  for (size_t ei = 0; ei < exes.size(); ++ei) {
    const auto& e = exes[ei];
    if (!o.kernels.empty() && std::find(o.kernels.begin(), o.kernels.end(), e.family) == o.kernels.end()) continue;
    std::string cmd = env + shell_quote(e.path.string()) + " --benchmark_list_tests=true";
    if (!o.filter.empty()) cmd += " --benchmark_filter=" + shell_quote(o.filter);
    const auto r = run_capture(cmd + " 2>&1", [](const std::string&) {});
    if (r.code != 0)
      throw InputError(fmt::format("bench: {} --benchmark_list_tests failed (exit {}): {}", e.path.string(), r.code,
                                   last_line(r)));
    for (const auto& n : r.lines) {
      if (n.empty() || n.find(' ') != std::string::npos) continue;  // names have no spaces
      if (!models.empty() &&
          std::none_of(models.begin(), models.end(), [&](const ModelConfig& m) { return matches_model(n, m); }))
        continue;
      all.push_back({ei, n, all.size()});
    }
  }
  std::vector<Item> mine;
  for (const auto& it : all)
    if (shard.selects(it.index)) mine.push_back(it);
  if (o.list_only) {
    for (const auto& it : mine) fmt::print("{} {} {}\n", it.index, exes[it.exe].family, it.name);
    return nullptr;
  }
  fmt::print(stderr, "{}bench: {} of {} benchmark(s) selected{} from {} executable(s) in {}\n", tag, mine.size(),
             all.size(), shard_text.empty() ? "" : " (shard " + shard_text + ")", exes.size(),
             exes[0].path.parent_path().string());

  // 3. run, one process per executable
  const fs::path tmpdir = [] {
    std::string t = (fs::temp_directory_path() / "moe-bench-XXXXXX").string();
    if (!::mkdtemp(t.data())) throw Error("mkdtemp failed");
    return fs::path(t);
  }();
  json doc{{"context", json::object()}, {"contexts", json::object()}, {"benchmarks", json::array()}};
  size_t done = 0;
  int errored = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t ei = 0; ei < exes.size(); ++ei) {
    std::map<std::string, size_t> index_of;
    std::string alt;
    for (const auto& it : mine)
      if (it.exe == ei) {
        index_of[it.name] = it.index;
        alt += (alt.empty() ? "" : "|") + regex_escape(it.name);
      }
    if (index_of.empty()) continue;
    const auto& e = exes[ei];
    const fs::path out = tmpdir / ("bench_" + e.family + ".json");
    // Line-buffered child stdout (Google Benchmark's console rows are the progress lines).
    static const std::string linebuf = fs::exists("/usr/bin/stdbuf") ? "/usr/bin/stdbuf -oL " : "";
    std::string cmd = env + linebuf + shell_quote(e.path.string()) + " --benchmark_filter=" + shell_quote("^(" + alt + ")$") +
                      " --benchmark_out=" + shell_quote(out.string()) +
                      " --benchmark_out_format=json --benchmark_color=false";
    if (o.repetitions > 0) cmd += fmt::format(" --benchmark_repetitions={}", o.repetitions);
    if (o.min_time > 0) cmd += fmt::format(" --benchmark_min_time={}", o.min_time);
    fmt::print(stderr, "{}bench: {} ({} benchmark(s))\n", tag, e.path.filename().string(), index_of.size());
    std::set<std::string> seen;
    const auto r = run_capture(cmd + " 2>&1", [&](const std::string& line) {
      const std::string first = line.substr(0, line.find(' '));
      // Console rows start with the run name (aggregate rows add _mean, ...).
      if (index_of.count(first) && seen.insert(first).second) {
        ++done;
        const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double eta = el / double(done) * double(mine.size() - done);
        fmt::print(stderr, "{}[{}/{}] {}: {} (ETA {:.0f}s)\n", tag, done, mine.size(), e.family, line, eta);
      } else if (line.starts_with("SKIP") || line.starts_with("error") || line.find("ERROR") != std::string::npos) {
        fmt::print(stderr, "{}{}: {}\n", tag, e.family, line);
      }
    });
    if (r.code == 77) throw InputError(fmt::format("bench: {}: {}", e.path.filename().string(), last_line(r)));
    if (r.code == 2) throw InputError(fmt::format("bench: {}: {}", e.path.filename().string(), last_line(r)));
    json part;
    try {
      part = read_json_file(out.string());
    } catch (const std::exception& ex) {
      failures.push_back(fmt::format("{} exit {} ({}), no JSON: {}", e.path.filename().string(), r.code, last_line(r),
                                     ex.what()));
      continue;
    }
    if (r.code != 0) failures.push_back(fmt::format("{} exit {}: {}", e.path.filename().string(), r.code, last_line(r)));
    if (doc["context"].empty()) doc["context"] = part.value("context", json::object());
    doc["contexts"][e.family] = part.value("context", json::object());
    for (auto b : part.value("benchmarks", json::array())) {
      const std::string rn = b.contains("run_name") && b["run_name"].is_string() ? b["run_name"].get<std::string>()
                                                                              : b.value("name", std::string());
      b["moe_family"] = e.family;
      if (auto it = index_of.find(rn); it != index_of.end()) b["moe_index"] = it->second;
      if (b.value("error_occurred", false)) ++errored;
      doc["benchmarks"].push_back(std::move(b));
    }
  }
  std::error_code ec;
  fs::remove_all(tmpdir, ec);
  doc["moe_bench"] = {{"tool", "moe-harness bench"},
                      {"version", MOE_VERSION},
                      {"git_revision", MOE_GIT_REVISION},
                      {"backend", gpu_backend()},
                      {"selected", mine.size()},
                      {"total", all.size()},
                      {"filter", o.filter},
                      {"kernels", o.kernels},
                      {"models", o.models},
                      {"repetitions", o.repetitions},
                      {"flush_l2", o.flush_l2},
                      {"tuned_config", tuned}};
  if (!shard_text.empty()) doc["shard"] = shard.to_json();

  for (const auto& f : failures) fmt::print(stderr, "{}bench: failed: {}\n", tag, f);
  if (world.launched()) fmt::print("{}bench: {} benchmark(s) run, {} reported an error\n", tag, done, errored);
  return doc;
}

int run_bench(const CommonOptions& c, const Opts& o) {
  const MpiWorld world = mpi_world();
  const std::optional<int> device = c.device_given ? std::optional<int>(c.device) : std::nullopt;
  const std::string shard_text = world.launched() ? mpi_shard_for(world, o.shard) : o.shard;
  if (!shard_text.empty()) parse_shard(shard_text);  // bad syntax: exit 2 before any work
  const std::string tag = world.launched() ? fmt::format("[rank {}/{}] ", world.rank, world.size) : "";
  if (!o.json_out.empty()) check_output_target(o.json_out);
  MOE_REQUIRE(o.repetitions >= 0, "--repetitions must be >= 0");
  MOE_REQUIRE(o.flush_l2 == "default" || o.flush_l2 == "on" || o.flush_l2 == "off",
              fmt::format("--flush-l2 must be default, on or off, got '{}'", o.flush_l2));
  if (!o.filter.empty()) {
    try {
      std::regex re(o.filter, std::regex::extended);
    } catch (const std::regex_error& e) {
      throw InputError(fmt::format("--filter '{}': not a regular expression ({})", o.filter, e.what()));
    }
  }
  std::vector<std::string> failures;
  // The summary line of a document: its entries, selected benchmarks and errors.
  auto print_done = [](const json& d, const std::string& path) {
    int errored = 0;
    for (const auto& b : d["benchmarks"]) errored += b.value("error_occurred", false) ? 1 : 0;
    const size_t selected = d["moe_bench"].value("selected", size_t{0});
    fmt::print("bench: {} benchmark entr{} from {} selected benchmark(s), {} reported an error{}\n",
               d["benchmarks"].size(), d["benchmarks"].size() == 1 ? "y" : "ies", selected, errored,
               path.empty() ? "" : fmt::format(" (results in {})", path));
  };
  if (world.launched() && !o.list_only) {
    // Every rank runs its share and sends its document (or its error); rank 0
    // merges and writes the file. Each rank's own results go to its rank file first.
    const RankRun run = run_rank(world, "the exchange of bench results",
                                 o.json_out.empty() ? "" : rank_results_path(o.json_out, world.rank),
                                 [&] { return run_benchmarks(o, world, device, shard_text, tag, failures); });
    const int rc = failures.empty() ? 0 : 1;
    if (world.rank != 0) {
      finish_ranks(run, o.json_out);
      return rc;
    }
    json merged = merge_rank_reports(run.all, [](const auto& parts, bool allow_partial) {
      size_t selected = 0;
      for (const auto& [name, d] : parts) selected += d["moe_bench"].value("selected", size_t{0});
      json m = merge_bench_docs(parts, allow_partial);
      m["moe_bench"]["selected"] = selected;
      return m;
    });
    if (merged.is_null()) finish_ranks(run, o.json_out);  // no rank succeeded: throws, nothing written
    if (!o.json_out.empty()) write_file_atomic(o.json_out, merged.dump(2) + "\n");
    print_done(merged, o.json_out);
    finish_ranks(run, o.json_out);
    return rc;
  }
  const json doc = run_benchmarks(o, world, device, shard_text, tag, failures);
  if (doc.is_null()) return 0;  // --list
  if (!o.json_out.empty()) write_file_atomic(o.json_out, doc.dump(2) + "\n");
  print_done(doc, o.json_out);
  return failures.empty() ? 0 : 1;
}

}  // namespace

void register_bench(CLI::App& app, std::vector<Command>& out) {
  auto o = std::make_shared<Opts>();  // bound by CLI11, owned by the command
  auto* sub = app.add_subcommand(
      "bench",
      "Run the Google Benchmark executables (bench_<family>, every kernel family and the full fused MoE layer) and "
      "merge their JSON into one file; needs a GPU build with Google Benchmark");
  sub->add_option("--kernel", o->kernels, "Only these families (bench_<family> executables; repeatable)");
  sub->add_option("--model", o->models,
                  "Only benchmarks of these models (configs/model_configs.json names; matched in the benchmark name, "
                  "or as E:<experts> and k:<top_k> arguments; repeatable)");
  sub->add_option("--filter", o->filter, "Google Benchmark --benchmark_filter regular expression");
  sub->add_option("--repetitions", o->repetitions,
                  fmt::format("--benchmark_repetitions: runs of each benchmark; the JSON keeps every run and Google "
                              "Benchmark's mean, median and stddev aggregates (0 or 1: one run, no aggregates). "
                              "compare's U test needs {} or more in both runs to flag a change at its default alpha "
                              "(see compare --help)",
                              rank_test_min_repetitions(CompareOptions{}.alpha)))
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--min-time", o->min_time, "--benchmark_min_time in seconds, for benchmarks without fixed iterations");
  sub->add_option("--flush-l2", o->flush_l2,
                  "Evict L2 before each timed replay: on, off, or default (each benchmark's own choice); sets "
                  "MOE_BENCH_FLUSH_L2 for bench_common")
      ->capture_default_str();
  sub->add_option("--json", o->json_out,
                  "Merged Google Benchmark JSON (read by report --bench, compare, merge), written atomically ('' to "
                  "skip)")
      ->capture_default_str();
  sub->add_option("--shard", o->shard,
                  "Only benchmarks with index % n == i in the full list, as i/n (merge shards with moe-harness merge); "
                  "under mpirun each rank takes rank/size on GPU local_rank, writes its own <json stem>.rank<r>.json, and rank 0 "
                  "writes the merged --json (MOE_MPI_TIMEOUT_S: seconds a rank waits for the others, default 1800)");
  add_tuned_config_option(sub, o->tuned_config);
  sub->add_option("--bench-dir", o->bench_dir,
                  "Folder of the bench_* executables (default: $MOE_BENCH_DIR, else <build>/bench beside this binary, "
                  "else <prefix>/libexec/moe-harness)");
  sub->add_option("--model-configs", o->model_configs, "Model configs for --model (default: configs/model_configs.json)");
  sub->add_flag("--no-ceilings", o->no_ceilings, "Skip measuring the device ceilings (% of roofline counters are 0)");
  sub->add_flag("--list", o->list_only, "Only list the selected benchmarks (index, family, name)");
  out.push_back({sub, [o](const CommonOptions& c) { return run_bench(c, *o); }});
}

}  // namespace moe::cli
