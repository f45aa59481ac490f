#include "commands.hpp"

#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "moe/error.hpp"

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

std::string resolve_data_dir(const CommonOptions& c) {
  if (!c.data_dir.empty()) return c.data_dir;
  if (fs::exists("data")) return "data";
  return std::string(MOE_SOURCE_DIR) + "/data";
}

void add_commands(CLI::App& app, CommonOptions& common, std::vector<Command>& out) {
  app.add_option("--device", common.device, "GPU index")->check(CLI::TypeValidator<int>(""))->check(CLI::Range(0, 1023));
  app.add_option("--data-dir", common.data_dir, "Folder with golden vectors (default: ./data, else the source tree's)");
  register_devices(app, out);
  register_list(app, out);
  register_verify(app, out);
  register_report(app, out);
  register_compare(app, out);
  register_run(app, out);
  register_merge(app, out);
}

}  // namespace moe::cli
