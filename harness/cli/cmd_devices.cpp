#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "moe/atomic_file.hpp"
#include "moe/device.hpp"

namespace moe::cli {

void register_devices(CLI::App& app, std::vector<Command>& out) {
  struct Opts {
    bool measure = true;
    std::string json;
  };
  auto opts = std::make_shared<Opts>();  // bound by CLI11, owned by the command
  auto* sub = app.add_subcommand("devices", "Backend, GPUs, SM/CU counts and measured ceilings");
  sub->add_flag("!--no-measure", opts->measure, "Skip the bandwidth and GEMM measurements");
  sub->add_option("--json", opts->json, "Also write the result as JSON to this file");
  out.push_back({sub, [opts](const CommonOptions&) {
                   const Opts& o = *opts;
                   if (!o.json.empty()) check_output_target(o.json);
                   nlohmann::json doc{{"backend", gpu_backend()}, {"devices", nlohmann::json::array()}};
                   fmt::print("backend: {}\n", gpu_backend());
                   const auto devs = list_devices();
                   if (devs.empty())
                     fmt::print("no GPU: {}\n", std::string(gpu_backend()) == "none"
                                                    ? "this build has no GPU backend (-Dgpu=none); CPU references only"
                                                    : "the runtime sees no device on this machine");
                   for (const auto& d : devs) {
                     fmt::print("GPU {}: {} ({}), {} {}s, {:.1f} GiB, L2 {:.1f} MiB, warp {}, driver {}, runtime {}\n",
                                d.index, d.name, d.arch, d.sm_count, d.backend == "hip" ? "CU" : "SM",
                                d.total_mem_bytes / 1073741824.0, d.l2_bytes / 1048576.0, d.warp_size,
                                d.driver_version, d.runtime_version);
                     nlohmann::json dj = d.to_json();
                     if (o.measure) {
                       const Ceilings c = measure_ceilings(d.index);
                       const auto rate = [](const std::optional<double>& v, const char* unit, const std::string& note) {
                         return v ? fmt::format("{:.0f} {}", *v, unit) : note;
                       };
                       fmt::print("  measured: read {:.0f} GB/s, copy (read+write) {:.0f} GB/s, bf16 GEMM {}, fp8 GEMM {}, "
                                  "int8 GEMM {}\n",
                                  c.read_gbps, c.copy_gbps, rate(c.bf16_tflops, "TFLOP/s", c.bf16_note),
                                  rate(c.fp8_tflops, "TFLOP/s", c.fp8_note), rate(c.int8_tops, "TOP/s", c.int8_note));
                       dj["ceilings"] = c.to_json();
                     }
                     doc["devices"].push_back(dj);
                   }
                   if (!o.json.empty()) write_file_atomic(o.json, doc.dump(2) + "\n");
                   return 0;
                 }});
}

}  // namespace moe::cli
