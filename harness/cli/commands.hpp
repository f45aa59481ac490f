#pragma once
#include <functional>
#include <string>

#include <CLI/CLI.hpp>

namespace moe::cli {

struct CommonOptions {
  int device = 0;
  std::string data_dir;  // empty: the data/ folder found next to the binary's source tree
};

// Registers every subcommand on `app`.
void add_commands(CLI::App& app, CommonOptions& common);

// Runs the parsed subcommand; returns the process exit code.
int run_selected(CLI::App& app, const CommonOptions& common);

// Writes `text` to `path` atomically: a temporary beside it, then rename.
void write_file_atomic(const std::string& path, const std::string& text);

}  // namespace moe::cli
