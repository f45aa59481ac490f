// moe-harness tune: benchmarks the fused MoE tile configs on the present GPU for
// models x token counts x dtype, checks every candidate's output against the CPU
// reference before accepting it, times the passing ones (median of --iters launches),
// times the fastest --finalists again alternately over --final-rounds rounds (one
// pass can catch a candidate while the card runs fast or slow for a moment: on an
// H200 a split-K candidate won by 9 % in one pass and lost by 3 % in the benchmark),
// and writes the fastest (median of its rounds) of each point as a row of the tuned-config CSV (configs/tuned_fmoe.csv format), keyed
// by the GPU's SM/CU count and its name as the runtime reports it (cu_num and
// the device column; lookups prefer rows of their own device, see
// moe/tuned_config.hpp).
//
// Sharded (--shard i/n, or rank/size under mpirun): the processes take the
// points with index % n == i of the one deterministic list and write their
// rows into the same table; update_tuned_file locks it around each
// re-read/upsert/rename, so no process loses another's rows.
//
// Candidates: fused_moe::tune_candidates (every compiled tile shape usable on
// this device x persistent x split-K). Each point's row is written as soon as
// the point is done, with update_tuned_file (re-read, upsert, temporary file,
// fsync, rename): an interrupted tuner leaves the old or the new table, never a
// torn one. The first Ctrl-C stops after the current candidate; a second one
// kills the process (the file is still intact).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "kernels/fused_moe/fused_moe.hpp"
#include "moe/atomic_file.hpp"
#include "moe/device.hpp"
#include "moe/error.hpp"
#include "moe/gpu.hpp"
#include "moe/model_config.hpp"
#include "moe/fused_moe_tuning.hpp"
#include "moe/results.hpp"
#include "moe/stats.hpp"
#if MOE_HAVE_GPU
#include "harness/families/fused_moe/fused_moe_runner.hpp"
#endif

namespace moe::cli {
namespace {
using json = nlohmann::json;
using fused_moe::LayerConfig;
using fused_moe::Problem;

struct Opts {
  std::vector<std::string> models;  // empty: the "layer" sweep's models of the model configs
  std::vector<int64_t> tokens;      // empty: the "layer" sweep's token counts
  std::string dtype = "bf16";
  std::string tuned_config;
  std::string model_configs;
  std::vector<int> split_k{1, 2, 4, 8};
  std::string persistent = "both";
  int iters = 20;
  int warmup = 3;
  int finalists = 3;     // fastest passing candidates of a point timed again (< 2: none)
  int final_rounds = 3;  // rounds of that final timing, the finalists alternating
  int64_t check_tokens = 16;
  uint64_t seed = 0;
  bool dry_run = false;
  int cu_num = 0;
  std::string device_name;
  bool wgmma = false;
  std::string shard;  // "i/n": only points with index % n == i
};

std::atomic<int> g_interrupts{0};
extern "C" void on_sigint(int) {
  if (g_interrupts.fetch_add(1) >= 1) {
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
  }
}

struct Point {
  const ModelConfig* model;
  Problem problem;
  std::vector<LayerConfig> candidates;
};

#if MOE_HAVE_GPU
struct Measured {
  double us = 0;
  double err = 0;
};

// Median per-launch time of the layer (stages + reduce; routing aligned once).
double time_layer(const Opts& o, const fused_moe::check::DeviceLayer& l, const fused_moe::check::DeviceAlign& a,
                  const LayerConfig& cfg, hipStream_t s) {
  const auto wsb = fused_moe::workspace_bytes(l.problem, cfg);
  gpu::DeviceBuffer<uint16_t> inter(static_cast<size_t>(wsb.intermediate / 2));
  gpu::DeviceBuffer<float> partial(static_cast<size_t>(std::max<int64_t>(wsb.partial / 4, 1)));
  gpu::DeviceBuffer<uint16_t> out(static_cast<size_t>(l.problem.tokens * l.problem.model_dim));
  auto counters = gpu::DeviceBuffer<int32_t>::zeros(fused_moe::kTileCounters);
  const fused_moe::Workspace ws{inter.data(), partial.data(), counters.data()};
  const auto t = l.tensors(out.data());
  for (int i = 0; i < o.warmup; ++i) fused_moe::fused_moe(l.problem, t, a.view, ws, cfg, s);
  MOE_GPU_CHECK(hipStreamSynchronize(s));
  gpu::Event start, stop;
  std::vector<double> us;
  for (int i = 0; i < std::max(1, o.iters); ++i) {
    start.record(s);
    fused_moe::fused_moe(l.problem, t, a.view, ws, cfg, s);
    stop.record(s);
    stop.sync();
    us.push_back(static_cast<double>(stop.ms_since(start)) * 1e3);
  }
  MOE_GPU_CHECK(hipGetLastError());
  std::sort(us.begin(), us.end());
  return us[us.size() / 2];
}
#endif

// The tuner's part of the (model, M, dtype) points: validated options, the
// points of this shard on the chosen device, and the table.
struct TunePlan {
  std::shared_ptr<const ModelTable> models;  // the points' models point into it
  std::string path;                          // the tuned-config CSV
  size_t table_rows = 0;
  fused_moe::DeviceLimits dev;
  bool have_gpu = false;
  size_t points_total = 0, candidates_total = 0;  // every point, unsharded
  std::vector<std::pair<size_t, Point>> mine;     // (index in the full list, point)
};

// Options that are wrong on every rank alike: exit 2 before any work.
void check_tune_options(const Opts& o) {
  MOE_REQUIRE(o.dtype == "bf16" || o.dtype == "fp16", fmt::format("--dtype must be bf16 or fp16, got '{}'", o.dtype));
  MOE_REQUIRE(o.persistent == "both" || o.persistent == "on" || o.persistent == "off",
              fmt::format("--persistent must be both, on or off, got '{}'", o.persistent));
  for (int64_t m : o.tokens) MOE_REQUIRE(m > 0, fmt::format("--tokens: token counts must be positive, got {}", m));
  for (int s : o.split_k) MOE_REQUIRE(s >= 1 && s <= 64, fmt::format("--split-k: values must be in [1, 64], got {}", s));
}

TunePlan plan_tune(const CommonOptions& c, const Opts& o, const MpiWorld& world, const Shard& shard) {
  TunePlan plan;
  const DType dt = parse_dtype(o.dtype);
  MOE_REQUIRE(dt == DType::BF16 || dt == DType::F16, fmt::format("--dtype must be bf16 or fp16, got '{}'", o.dtype));
  plan.models = std::make_shared<const ModelTable>(load_model_table(
      o.model_configs.empty() ? find_config_file("model_configs.json", MOE_SOURCE_DIR) : o.model_configs));
  const ModelTable& table = *plan.models;
  const std::vector<int64_t> token_counts = o.tokens.empty() ? table.sweep_tokens("layer") : o.tokens;
  std::vector<std::string> model_names = o.models;
  if (model_names.empty())
    for (const auto& m : table.sweep_models("layer")) model_names.push_back(m.name);
  plan.path = o.tuned_config.empty() ? default_tuned_config() : o.tuned_config;
  // The table must be readable (a malformed file is bad input before any work).
  plan.table_rows = TunedTable::load_or_empty(plan.path, tuned_impl_names()).rows().size();
  if (!o.dry_run) check_output_target(plan.path);

  std::vector<const ModelConfig*> models;
  for (const auto& n : model_names) {
    const ModelConfig& m = table.model(n);
    MOE_REQUIRE(m.activation == "silu" || m.activation == "gelu",
                fmt::format("model {}: activation '{}' has no fused_moe kernel (silu or gelu)", m.name, m.activation));
    models.push_back(&m);
  }

  const auto devs = list_devices();
  plan.have_gpu = !devs.empty();
  if (!o.dry_run) {
    if (std::string(gpu_backend()) == "none")
      throw InputError("tune: this moe-harness was built without a GPU backend (-Dgpu=none); --dry-run lists the "
                       "candidates");
    if (!plan.have_gpu) throw InputError("tune: no GPU visible (--dry-run lists the candidates without one)");
  }
#if MOE_HAVE_GPU
  if (plan.have_gpu) {
    // Under mpirun each rank tunes on GPU local_rank, as verify does.
    const int device = world.launched() ? world.local_rank % static_cast<int>(devs.size()) : c.device;
    MOE_REQUIRE(device < static_cast<int>(devs.size()),
                fmt::format("--device {} but only {} GPU(s) visible", device, devs.size()));
    MOE_GPU_CHECK(hipSetDevice(device));
    plan.dev = fused_moe::device_limits();
  }
#else
  (void)c;
  (void)world;
#endif
  if (!plan.have_gpu) {
    plan.dev.wgmma = o.wgmma;
    if (o.cu_num > 0) plan.dev.sm_count = o.cu_num;
    plan.dev.name = o.device_name;
  } else if (o.cu_num > 0 && o.cu_num != plan.dev.sm_count) {
    fmt::print(stderr, "tune: note: --cu-num {} ignored; the GPU reports {}\n", o.cu_num, plan.dev.sm_count);
  }

  fused_moe::TuneSpace space;
  space.split_k = o.split_k;
  space.persistent = o.persistent == "both" ? std::vector<bool>{false, true}
                                            : std::vector<bool>{o.persistent == "on"};
  // Points in a fixed order (models, then M); a shard takes index % n == i, as
  // verify and bench do: the large M of every model spread over the shards.
  for (const ModelConfig* m : models)
    for (int64_t M : token_counts) {
      Point pt{m, {}, {}};
      pt.problem.tokens = M;
      pt.problem.model_dim = m->model_dim;
      pt.problem.inter_dim = m->inter_dim;
      pt.problem.experts = m->experts;
      pt.problem.top_k = m->top_k;
      pt.problem.dtype = dt;
      pt.problem.act = m->activation == "silu" ? fused_moe::Activation::SiLU : fused_moe::Activation::GeluTanh;
      pt.candidates = fused_moe::tune_candidates(pt.problem, plan.dev, space);
      plan.candidates_total += pt.candidates.size();
      if (shard.selects(plan.points_total)) plan.mine.emplace_back(plan.points_total, std::move(pt));
      ++plan.points_total;
    }
  return plan;
}

// --dry-run: each point of this shard and its candidates as text, and the
// header numbers; nothing measured.
json dry_run_doc(const Opts& o, const TunePlan& plan) {
  const TunedTable before = TunedTable::load_or_empty(plan.path, tuned_impl_names());
  json points = json::array();
  size_t candidates = 0;
  for (const auto& [index, pt] : plan.mine) {
    const auto ch = fused_moe::select_config(pt.problem, plan.dev, &before);
    std::string text = fmt::format("{} M={} {}: {} candidate(s); now {} ({})\n", pt.model->name, pt.problem.tokens,
                                   o.dtype, pt.candidates.size(), ch.cfg.to_string(), ch.source);
    for (size_t i = 0; i < pt.candidates.size(); ++i) text += fmt::format("  [{}] {}\n", i, pt.candidates[i].to_string());
    points.push_back({{"index", index}, {"text", text}});
    candidates += pt.candidates.size();
  }
  return {{"points", points}, {"candidates", candidates}};
}

// The header line of a dry run over `points` of the plan's points_total.
std::string dry_run_header(const Opts& o, const TunePlan& plan, size_t points, size_t candidates, const std::string& shard_text) {
  return fmt::format(
      "tune --dry-run: {} point(s){}, {} candidate(s), cu_num {}, device '{}'{}, table {} ({} rows)\n",
      shard_text.empty() ? fmt::format("{}", points) : fmt::format("{} of {}", points, plan.points_total),
      shard_text.empty() ? "" : " (shard " + shard_text + ")", candidates, plan.dev.sm_count, plan.dev.name,
      plan.have_gpu ? ""
      : o.cu_num > 0 ? " (no GPU: assumed; --cu-num, --device-name, --wgmma)"
                     : " (no GPU: cu_num is the default, --cu-num sets it; --device-name, --wgmma)",
      plan.path, plan.table_rows);
}

// Tunes this shard's points on the GPU: each point's fastest passing candidate
// becomes a row, upserted at once (update_tuned_file, under the table's lock:
// other shards write the same file). The outcome per point.
json measure_points(const Opts& o, const TunePlan& plan, const std::string& tag) {
  json points = json::array();
  int written = 0, no_pass = 0;
  bool interrupted = false;
#if MOE_HAVE_GPU
  const auto& dev = plan.dev;
  const auto& path = plan.path;
  const auto impls = tuned_impl_names();
  const DType dt = parse_dtype(o.dtype);
  size_t total = 0;
  for (const auto& [index, pt] : plan.mine) total += pt.candidates.size();
  fmt::print(stderr, "{}tune: {} point(s), {} candidate(s) on {} (cu_num {}); rows go to {}\n", tag, plan.mine.size(),
             total, dev.name, dev.sm_count, path);
  g_interrupts = 0;
  auto old = std::signal(SIGINT, on_sigint);
  size_t done = 0;
  const auto t0 = std::chrono::steady_clock::now();
  gpu::Stream stream;
  for (const auto& [index, pt] : plan.mine) {
    if (g_interrupts) break;
    InputSpec spec;
    spec.shape = {pt.problem.tokens, pt.problem.model_dim, pt.problem.inter_dim, pt.problem.experts, pt.problem.top_k};
    spec.dtype = dt;
    spec.values = ValueDist::FanIn;
    spec.routing = RoutingDist::Softmax;
    spec.seed = o.seed;
    const fused_moe::check::DeviceLayer l(spec, pt.problem.act, pt.problem.router_weight);
    const int64_t M = pt.problem.tokens;
    const auto tokens = o.check_tokens > 0 && o.check_tokens < M ? fused_moe::check::pick_tokens(M, o.check_tokens, o.seed + 7)
                                                                  : std::vector<int64_t>{};
    const auto want = fused_moe::check::reference_for(l, tokens, /*device_weights=*/true);
    std::map<int, fused_moe::check::DeviceAlign> aligns;
    // First pass: every candidate checked against the reference, the passing ones timed.
    struct Passed {
      const LayerConfig* cfg;
      Measured first;  // first-pass time and the reference error
    };
    std::vector<Passed> passed;
    for (const auto& cand : pt.candidates) {
      if (g_interrupts) break;
      std::string verdict;
      try {
        const int bs = cand.block_size();
        if (!aligns.count(bs)) aligns.emplace(bs, fused_moe::check::align_on_device(l, bs, stream.get()));
        const auto& a = aligns.at(bs);
        const auto got = fused_moe::check::run_layer(l, a, cand, stream.get(), false);
        const auto cmp = fused_moe::check::compare(l, got, want);
        if (!cmp.passed()) {
          verdict = "REJECTED (differs from the reference): " + cmp.message();
        } else {
          const double us = time_layer(o, l, a, cand, stream.get());
          verdict = fmt::format("{:.2f} us, rel_l2 {:.2e}", us, cmp.out.rel_l2);
          passed.push_back({&cand, {us, cmp.out.rel_l2}});
        }
      } catch (const std::exception& e) {
        (void)hipGetLastError();
        verdict = fmt::format("ERROR: {}", e.what());
      }
      ++done;
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      fmt::print(stderr, "{}[{}/{}] {} M={} {}: {} (ETA {:.0f}s)\n", tag, done, total, pt.model->name, M,
                 cand.to_string(), verdict, el / double(done) * double(total - done));
    }
    // Final: the fastest few timed again, alternately over rounds (median of the rounds),
    // so that no candidate wins by being timed while the card ran fast for a moment.
    const LayerConfig* best = nullptr;
    Measured best_m;
    if (!passed.empty()) {
      std::vector<double> first_us;
      for (const auto& c : passed) first_us.push_back(c.first.us);
      const auto fastest = smallest_indices(first_us, static_cast<size_t>(std::max(1, o.finalists)));
      best = passed[fastest[0]].cfg;
      best_m = passed[fastest[0]].first;
      if (fastest.size() >= 2) {
        std::vector<std::vector<double>> rounds(fastest.size());
        for (int r = 0; r < o.final_rounds && !g_interrupts; ++r)
          for (size_t f = 0; f < fastest.size(); ++f) {
            const LayerConfig& cand = *passed[fastest[f]].cfg;
            try {
              rounds[f].push_back(time_layer(o, l, aligns.at(cand.block_size()), cand, stream.get()));
            } catch (const std::exception& e) {
              (void)hipGetLastError();
              fmt::print(stderr, "{}final {} M={} {}: ERROR: {}\n", tag, pt.model->name, M, cand.to_string(), e.what());
            }
          }
        bool any = false;
        for (size_t f = 0; f < fastest.size(); ++f) {
          if (rounds[f].size() != static_cast<size_t>(o.final_rounds)) continue;  // failed or interrupted
          const Passed& c = passed[fastest[f]];
          const double us = median(rounds[f]);
          fmt::print(stderr, "{}final {} M={} {}: first pass {:.2f} us, rounds {:.2f} us -> {:.2f} us\n", tag,
                     pt.model->name, M, c.cfg->to_string(), c.first.us, fmt::join(rounds[f], " "), us);
          if (!any || us < best_m.us) {
            best = c.cfg;
            best_m = {us, c.first.err};
            any = true;
          }
        }
      }
    }
    if (g_interrupts) break;  // a partly measured point is not written
    json outcome{{"index", index}, {"model", pt.model->name}, {"M", M}, {"dtype", o.dtype}};
    if (!best) {
      ++no_pass;
      outcome["status"] = "no_pass";
      points.push_back(outcome);
      fmt::print(stderr, "{}tune: {} M={}: no candidate passed the reference check; no row written\n", tag,
                 pt.model->name, M);
      continue;
    }
    // Keyed by this GPU's name too (device column): an H100 and an H200 both have 132 SMs.
    TunedRow row = fused_moe::tuned_row(pt.problem, dev.sm_count, *best, dev.name);
    row.us = best_m.us;
    row.err = best_m.err;
    update_tuned_file(path, row, impls);
    ++written;
    outcome["status"] = "written";
    outcome["config"] = best->to_string();
    outcome["us"] = best_m.us;
    points.push_back(outcome);
    fmt::print("{}tune: {} M={} {}: {} {:.2f} us -> {}\n", tag, pt.model->name, M, o.dtype, best->to_string(),
               best_m.us, path);
  }
  std::signal(SIGINT, old);
  interrupted = g_interrupts > 0;
#else
  (void)o;
  (void)plan;
  (void)tag;
#endif
  return {{"points", points}, {"written", written}, {"no_pass", no_pass}, {"interrupted", interrupted}};
}

// This process's part: its points, listed (--dry-run) or tuned.
json tune_shard(const CommonOptions& c, const Opts& o, const MpiWorld& world, const std::string& shard_text, const std::string& tag,
                TunePlan& plan) {
  shard_test_hooks(shard_text);
  plan = plan_tune(c, o, world, shard_text.empty() ? Shard{} : parse_shard(shard_text));
  return o.dry_run ? dry_run_doc(o, plan) : measure_points(o, plan, tag);
}

// Every point once, in the order of the full list.
json merge_point_docs(const std::vector<RankReport>& all) {
  std::vector<json> points;
  json merged{{"candidates", 0}, {"written", 0}, {"no_pass", 0}, {"interrupted", false}};
  for (const auto& r : all) {
    if (!r.ok()) continue;
    for (const auto& p : r.doc["points"]) points.push_back(p);
    for (const char* k : {"candidates", "written", "no_pass"})
      if (r.doc.contains(k)) merged[k] = merged[k].get<size_t>() + r.doc[k].get<size_t>();
    merged["interrupted"] = merged["interrupted"].get<bool>() || r.doc.value("interrupted", false);
  }
  std::sort(points.begin(), points.end(),
            [](const json& a, const json& b) { return a["index"].get<size_t>() < b["index"].get<size_t>(); });
  merged["points"] = points;
  return merged;
}

// The end of a tune: the verdict line and the exit code (130 interrupted, 1 a
// point without a passing candidate).
int tune_verdict(const json& doc, const std::string& path) {
  const int written = doc["written"].get<int>(), no_pass = doc["no_pass"].get<int>();
  if (doc["interrupted"].get<bool>()) {
    fmt::print(stderr, "tune: interrupted; {} row(s) written, {} intact\n", written, path);
    return 130;
  }
  fmt::print("tune: {} row(s) written to {}{}\n", written, path,
             no_pass ? fmt::format(", {} point(s) without a passing candidate", no_pass) : "");
  return no_pass > 0 ? 1 : 0;
}

int run_tune(const CommonOptions& c, const Opts& o) {
  check_tune_options(o);
  // Under mpirun every rank takes shard rank/size on GPU local_rank; each writes
  // its rows into the one table (locked), rank 0 reports the whole run.
  const MpiWorld world = mpi_world();
  const std::string shard_text = world.launched() ? mpi_shard_for(world, o.shard) : o.shard;
  if (!shard_text.empty()) parse_shard(shard_text);  // bad syntax: exit 2 before any work
  const std::string tag = world.launched() ? fmt::format("[rank {}/{}] ", world.rank, world.size) : "";
  TunePlan plan;
  if (!world.launched()) {
    const json doc = tune_shard(c, o, world, shard_text, tag, plan);
    if (!o.dry_run) return tune_verdict(doc, plan.path);
    fmt::print("{}", dry_run_header(o, plan, plan.mine.size(), doc["candidates"].get<size_t>(), shard_text));
    for (const auto& p : doc["points"]) fmt::print("{}", p["text"].get<std::string>());
    return 0;
  }
  // The rows are this rank's results, already in the table when it reaches the
  // exchange: no rank file.
  const RankRun run = run_rank(world, o.dry_run ? "the exchange of tune --dry-run listings" : "the exchange of tune outcomes",
                               "", [&] { return tune_shard(c, o, world, shard_text, tag, plan); });
  if (world.rank != 0) {
    finish_ranks(run, "");
    return o.dry_run ? 0 : tune_verdict(run.mine.doc, plan.path);
  }
  const json merged = merge_point_docs(run.all);
  int rc = 0;
  if (o.dry_run) {
    // The listing of the whole run, as one process prints it.
    if (run.mine.ok()) fmt::print("{}", dry_run_header(o, plan, plan.points_total, plan.candidates_total, ""));
    for (const auto& p : merged["points"]) fmt::print("{}", p["text"].get<std::string>());
  } else if (run.mine.ok()) {
    rc = tune_verdict(merged, plan.path);
  }
  finish_ranks(run, plan.path);
  return rc;
}

}  // namespace

void register_tune(CLI::App& app, std::vector<Command>& out) {
  auto o = std::make_shared<Opts>();  // bound by CLI11, owned by the command
  auto* sub = app.add_subcommand(
      "tune",
      "Benchmark the fused MoE tile configs on this GPU, check each against the CPU reference, write the fastest "
      "passing one per (model, M, dtype) into the tuned-config CSV (one row at a time, atomically), keyed by this "
      "GPU's SM/CU count and name (cu_num, device)");
  sub->add_option("--shard", o->shard,
                  "Only points with index % n == i of the (model, M) list, as i/n; shards write their rows into the "
                  "same table (locked); under mpirun each rank takes rank/size on GPU local_rank and rank 0 reports");
  sub->add_option("--model", o->models,
                  "Models of configs/model_configs.json (repeatable; default: its sweeps.layer.models)");
  sub->add_option("--tokens,-M", o->tokens, "Token counts M (repeatable; default: sweeps.layer.M of the model configs)");
  sub->add_option("--dtype", o->dtype, "bf16 or fp16")->capture_default_str();
  add_tuned_config_option(sub, o->tuned_config,
                          "Tuned-config CSV to update, row by row (default: configs/tuned_fmoe.csv; created if missing)");
  sub->add_option("--split-k", o->split_k, "Stage-2 split-K values tried (repeatable)")->capture_default_str();
  sub->add_option("--persistent", o->persistent, "Grid kinds tried: both, on, off")->capture_default_str();
  sub->add_option("--iters", o->iters, "Timed launches per candidate (median)")->capture_default_str()->check(CLI::Range(1, 100000));
  sub->add_option("--warmup", o->warmup, "Untimed launches per candidate")->capture_default_str()->check(CLI::Range(0, 1000));
  sub->add_option("--finalists", o->finalists,
                  "The fastest passing candidates of each point timed again at its end, alternately over "
                  "--final-rounds rounds; the row takes the fastest median of rounds (0 or 1: the first pass decides)")
      ->capture_default_str()
      ->check(CLI::Range(0, 100));
  sub->add_option("--final-rounds", o->final_rounds, "Rounds of the finalists' timing (each of --iters launches)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  sub->add_option("--check-tokens", o->check_tokens,
                  "Tokens compared with the CPU reference per point (0: all)")->capture_default_str()->check(CLI::NonNegativeNumber);
  add_seed_option(sub, o->seed, "RNG seed of the inputs (0 to 2^64-1)");
  sub->add_option("--model-configs", o->model_configs, "Model configs (default: configs/model_configs.json)");
  sub->add_flag("--dry-run", o->dry_run, "Only list the points and their candidates (no GPU needed)");
  sub->add_option("--cu-num", o->cu_num,
                  fmt::format("--dry-run without a GPU: the SM/CU count to assume (a positive integer; default: the "
                              "device's, without a GPU {})",
                              fused_moe::DeviceLimits{}.sm_count))
      ->check(CLI::Range(1, 1 << 16));
  sub->add_option("--device-name", o->device_name,
                  "--dry-run without a GPU: the GPU name to assume for the table's device column (e.g. 'NVIDIA H200'; "
                  "default none: only rows without a device match)");
  sub->add_flag("--wgmma", o->wgmma, "--dry-run without a GPU: assume an sm_90a build on Hopper (wgmma tiles)");
  out.push_back({sub, [o](const CommonOptions& c) { return run_tune(c, *o); }});
}

}  // namespace moe::cli
