#include "commands.hpp"

#include <charconv>
#include <cstdint>
#include <filesystem>

#include <fmt/format.h>

#include "moe/error.hpp"
#include "moe/fused_moe_tuning.hpp"
#include "moe/model_config.hpp"
#include "moe/registry.hpp"

namespace moe::cli {
namespace fs = std::filesystem;

std::string resolve_data_dir(const CommonOptions& c) {
  if (!c.data_dir.empty()) return c.data_dir;
  return find_data_dir(MOE_SOURCE_DIR);
}

CLI::Option* add_seed_option(CLI::App* sub, uint64_t& seed, const std::string& what) {
  // CLI11's own conversion (strtoull, base 0) would wrap -1, clamp 2^64 and read 010 as octal;
  // this check accepts plain decimal only and hands CLI11 the canonical digits.
  const CLI::Validator decimal_u64(
      [](std::string& text) -> std::string {
        uint64_t v = 0;
        const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
        if (text.empty() || r.ec != std::errc() || r.ptr != text.data() + text.size())
          return fmt::format("expected an integer in [0, {}], got '{}'", UINT64_MAX, utf8_sanitized(text));
        text = std::to_string(v);
        return "";
      },
      "UINT64");
  return sub->add_option("--seed", seed, what)->transform(decimal_u64)->capture_default_str();
}

std::string default_tuned_config() { return find_config_file("tuned_fmoe.csv", MOE_SOURCE_DIR); }

void add_tuned_config_option(CLI::App* sub, std::string& path, const std::string& what) {
  sub->add_option("--tuned-config", path,
                  what.empty() ? "Tuned-config table for the fused MoE configs (default: configs/tuned_fmoe.csv; a "
                                 "missing default file means the heuristic only)"
                               : what);
}

std::set<std::string> tuned_impl_names() {
  std::set<std::string> impls = fused_moe::tuned_impls();
  for (const auto& f : kernel_families()) impls.insert(f.impls.begin(), f.impls.end());
  return impls;
}

std::shared_ptr<const TunedTable> load_tuned_config(const std::string& path) {
  if (path.empty()) return std::make_shared<const TunedTable>(TunedTable::load_or_empty(default_tuned_config(), tuned_impl_names()));
  return std::make_shared<const TunedTable>(TunedTable::load(path, tuned_impl_names()));
}

OpenTunedConfig open_tuned_config(const std::string& path) {
  auto t = load_tuned_config(path);
  nlohmann::json summary{{"file", utf8_sanitized(t->file().empty() ? (path.empty() ? default_tuned_config() : path) : t->file())},
                         {"rows", t->rows().size()}};
  return {std::move(t), std::move(summary)};
}

void add_commands(CLI::App& app, CommonOptions& common, std::vector<Command>& out) {
  app.add_option("--device", common.device, "GPU index")
      ->check(CLI::TypeValidator<int>(""))
      ->check(CLI::Range(0, 1023))
      ->each([&common](const std::string&) { common.device_given = true; });
  app.add_option("--data-dir", common.data_dir, "Folder with golden vectors (default: ./data, else the installed prefix's share/moe-harness/data, else the source tree's)");
  register_devices(app, out);
  register_list(app, out);
  register_verify(app, out);
  register_report(app, out);
  register_compare(app, out);
  register_run(app, out);
  register_merge(app, out);
  register_bench(app, out);
  register_tune(app, out);
}

}  // namespace moe::cli
