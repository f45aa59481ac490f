#pragma once
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace moe::cli {

struct CommonOptions {
  int device = 0;
  std::string data_dir;  // empty: ./data if present, else the source tree's data/
};

struct Command {
  CLI::App* app;
  std::function<int(const CommonOptions&)> run;
};

// Each subcommand lives in its own cmd_*.cpp and registers itself here.
void register_devices(CLI::App& app, std::vector<Command>& out);
void register_list(CLI::App& app, std::vector<Command>& out);
void register_verify(CLI::App& app, std::vector<Command>& out);
void register_report(CLI::App& app, std::vector<Command>& out);
void register_compare(CLI::App& app, std::vector<Command>& out);
void register_run(CLI::App& app, std::vector<Command>& out);
void register_merge(CLI::App& app, std::vector<Command>& out);

// Registers every subcommand on `app` (commands.cpp holds the list).
void add_commands(CLI::App& app, CommonOptions& common, std::vector<Command>& out);

// Writes `text` to `path` atomically: a temporary beside it, then rename.
void write_file_atomic(const std::string& path, const std::string& text);

// --data-dir, else ./data, else the source tree's data/.
std::string resolve_data_dir(const CommonOptions& c);

}  // namespace moe::cli
