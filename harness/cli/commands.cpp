#include "commands.hpp"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "moe/device.hpp"
#include "moe/dtype.hpp"
#include "moe/error.hpp"
#include "moe/gpu.hpp"
#include "moe/inputs.hpp"
#include "moe/registry.hpp"

namespace moe::cli {
namespace fs = std::filesystem;

void write_file_atomic(const std::string& path, const std::string& text) {
  const fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path());
  const fs::path tmp = p.string() + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw InputError(fmt::format("cannot write {}", tmp.string()));
    f << text;
    f.flush();
    if (!f) throw Error(fmt::format("write to {} failed", tmp.string()));
  }
  fs::rename(tmp, p);
}

namespace {

struct DevicesOpts {
  bool measure = true;
  std::string json;
};
struct VerifyOpts {
  std::vector<std::string> kernels;
  bool quick = false;
  uint64_t seed = 0;
  std::string json = "moe-verify.json";
};

DevicesOpts g_devices;
VerifyOpts g_verify;

std::string resolve_data_dir(const CommonOptions& c) {
  if (!c.data_dir.empty()) return c.data_dir;
  if (fs::exists("data")) return "data";
  return std::string(MOE_SOURCE_DIR) + "/data";
}

int cmd_devices(const CommonOptions&) {
  nlohmann::json out{{"backend", gpu_backend()}, {"devices", nlohmann::json::array()}};
  fmt::print("backend: {}\n", gpu_backend());
  const auto devs = list_devices();
  if (devs.empty()) {
    fmt::print("no GPU: {}\n", std::string(gpu_backend()) == "none"
                                   ? "this build has no GPU backend (-Dgpu=none); CPU references only"
                                   : "the runtime sees no device on this machine");
  }
  for (const auto& d : devs) {
    fmt::print("GPU {}: {} ({}), {} {}s, {:.1f} GiB, L2 {:.1f} MiB, warp {}, driver {}, runtime {}\n", d.index, d.name,
               d.arch, d.sm_count, d.backend == "hip" ? "CU" : "SM", d.total_mem_bytes / 1073741824.0,
               d.l2_bytes / 1048576.0, d.warp_size, d.driver_version, d.runtime_version);
    nlohmann::json dj = d.to_json();
    if (g_devices.measure) {
      const Ceilings c = measure_ceilings(d.index);
      fmt::print("  measured: read {:.0f} GB/s, copy (read+write) {:.0f} GB/s, bf16 GEMM {}\n", c.read_gbps,
                 c.copy_gbps, c.bf16_tflops ? fmt::format("{:.0f} TFLOP/s", *c.bf16_tflops) : c.bf16_note);
      dj["ceilings"] = c.to_json();
    }
    out["devices"].push_back(dj);
  }
  if (!g_devices.json.empty()) write_file_atomic(g_devices.json, out.dump(2) + "\n");
  return 0;
}

int cmd_list(const CommonOptions&) {
  fmt::print("kernels:\n");
  for (const auto& k : kernel_families())
    fmt::print("  {:<16} {} [impls: {}] [dtypes: {}]\n", k.name, k.summary, fmt::join(k.impls, ", "),
               fmt::join(k.dtypes, ", "));
  if (kernel_families().empty()) fmt::print("  (none registered)\n");
  fmt::print("dtypes: bf16, fp16, fp32\n");
  fmt::print("value distributions: normal, fanin\n");
  fmt::print("routing distributions: softmax, balanced, zipf, one\n");
  return 0;
}

int cmd_verify(const CommonOptions& c) {
  VerifyOptions vo;
  vo.data_dir = resolve_data_dir(c);
  vo.quick = g_verify.quick;
  vo.seed = g_verify.seed;
  vo.gpu_available = !list_devices().empty();
#if MOE_HAVE_GPU
  if (vo.gpu_available) MOE_GPU_CHECK(hipSetDevice(c.device));
#endif
  if (!vo.gpu_available)
    fmt::print(stderr, "moe-harness: no GPU on this machine ({}); running the CPU references against the golden data in {}\n",
               std::string(gpu_backend()) == "none" ? "built with -Dgpu=none" : "runtime sees no device", vo.data_dir);

  for (const auto& k : g_verify.kernels) {
    bool known = false;
    for (const auto& f : kernel_families()) known |= f.name == k;
    MOE_REQUIRE(known, fmt::format("unknown kernel '{}' (see moe-harness list)", k));
  }
  std::vector<VerifyCase> cases;
  for (const auto& f : kernel_families()) {
    if (!g_verify.kernels.empty() && std::find(g_verify.kernels.begin(), g_verify.kernels.end(), f.name) == g_verify.kernels.end())
      continue;
    for (auto& vc : f.cases(vo)) cases.push_back(std::move(vc));
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
      try {
        r = vc.run();
      } catch (const std::exception& e) {
        r.passed = false;
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
    fmt::print(stderr, "[{}/{}] {} {}/{}: {} (ETA {:.0f}s)\n", i + 1, cases.size(),
               r.skipped ? "SKIP" : r.passed ? "PASS" : "FAIL", vc.kernel, vc.name, r.message, eta);
    results.push_back({{"kernel", vc.kernel},
                       {"name", vc.name},
                       {"params", vc.params},
                       {"status", r.skipped ? "skip" : r.passed ? "pass" : "fail"},
                       {"message", r.message},
                       {"metrics", r.metrics},
                       {"seconds", secs}});
  }
  nlohmann::json doc{{"tool", "moe-harness verify"},
                     {"version", MOE_VERSION},
                     {"backend", gpu_backend()},
                     {"devices", nlohmann::json::array()},
                     {"summary", {{"passed", passed}, {"failed", failed}, {"skipped", skipped}}},
                     {"cases", results}};
  for (const auto& d : list_devices()) doc["devices"].push_back(d.to_json());
  if (!g_verify.json.empty()) write_file_atomic(g_verify.json, doc.dump(2) + "\n");
  fmt::print("{} passed, {} failed, {} skipped\n", passed, failed, skipped);
  if (cases.empty()) fmt::print(stderr, "moe-harness: no verification cases selected\n");
  return failed > 0 ? 1 : 0;
}

}  // namespace

void add_commands(CLI::App& app, CommonOptions& common) {
  app.add_option("--device", common.device, "GPU index")->check(CLI::Range(0, 1023));
  app.add_option("--data-dir", common.data_dir, "Folder with golden vectors (default: ./data, else the source tree's)");

  auto* dev = app.add_subcommand("devices", "Backend, GPUs, SM/CU counts and measured ceilings");
  dev->add_flag("!--no-measure", g_devices.measure, "Skip the bandwidth and GEMM measurements");
  dev->add_option("--json", g_devices.json, "Also write the result as JSON to this file");

  app.add_subcommand("list", "Kernels, dtypes and input distributions");

  auto* ver = app.add_subcommand("verify", "Check every kernel against its CPU reference (golden data without a GPU)");
  ver->add_option("--kernel", g_verify.kernels, "Only these kernel families (repeatable)");
  ver->add_flag("--quick", g_verify.quick, "A short subset of cases");
  ver->add_option("--seed", g_verify.seed, "RNG seed for generated inputs");
  ver->add_option("--json", g_verify.json, "Results file (written atomically)")->capture_default_str();
}

int run_selected(CLI::App& app, const CommonOptions& common) {
  if (app.got_subcommand("devices")) return cmd_devices(common);
  if (app.got_subcommand("list")) return cmd_list(common);
  if (app.got_subcommand("verify")) return cmd_verify(common);
  throw InputError("no command given (see moe-harness --help)");
}

}  // namespace moe::cli
